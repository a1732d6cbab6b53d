//! `chronos worker` on the real binary: `--once` runs the due periods of the configured
//! rules and prints them (each once: a second pass runs nothing), a running worker stops
//! cleanly on SIGTERM, a configuration with nothing to schedule is refused, and the
//! embedded default runs its maintenance jobs (messaging retention, session purge).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chronos_core::time::{format_instant, now_ms};
use chronos_core::Timestamp;
use serde_json::{json, Value};

fn write_config(dir: &Path) -> std::path::PathBuf {
    let cfg = json!({
        "dbConnections": { "local": { "mongoUri": format!("sqlite://{}", dir.join("db").display()) } },
        "spacesConnections": {},
        "databases": { "runtime": { "tenantDatabases": [
            { "tenantId": "default", "dbConnRef": "local", "dbName": "runtime_default", "analyticsDbName": "analytics" }
        ]}},
        "localStorage": { "enabled": true, "basePath": dir.join("blobs").display().to_string() },
        "collectionMaps": { "events": { "indexedProps": ["at", "kind"] } },
        "analytics": { "timeBasedRules": [
            { "name": "daily_events", "collection": "events", "query": { "kind": "view" },
              "operation": "count", "saveMode": "timeframe", "timeframe": "daily", "timeField": "at" }
        ]}
    });
    let path = dir.join("chronos.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    path
}

fn chronos(cfg: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chronos"))
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn worker_once_runs_each_due_period_once() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path());
    let yesterday = Timestamp::from_millisecond(now_ms().as_millisecond() - 86_400_000).unwrap();
    for kind in ["view", "view", "click"] {
        let data = json!({"kind": kind, "at": format_instant(yesterday)}).to_string();
        let out = chronos(&cfg, &["create", "-c", "events", "--data", &data]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = chronos(
        &cfg,
        &["worker", "--once", "--horizon-hours", "48", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        (2..=3).contains(&runs.len()),
        "the days ended within 48 hours: {runs:?}"
    );
    let day = yesterday.as_millisecond().div_euclid(86_400_000) * 86_400_000;
    let start = format_instant(Timestamp::from_millisecond(day).unwrap());
    let run = runs
        .iter()
        .find(|r| r["start"] == start.as_str())
        .expect("yesterday ran");
    assert_eq!(run["job"], "time:daily_events");
    assert_eq!(run["report"]["values"]["default"], 2.0, "{run}");
    let again = chronos(&cfg, &["worker", "--once", "--horizon-hours", "48"]);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 run(s), 0 failed"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[cfg(unix)]
#[test]
fn worker_stops_cleanly_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronos"))
        .arg("--config")
        .arg(&cfg)
        .args(["worker", "--poll", "1", "--horizon-hours", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("worker running") {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "the worker exited early"
        );
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(status.success(), "{status:?}: {rest}");
    assert!(rest.contains("worker stopped"), "{rest}");
}

#[test]
fn worker_without_jobs_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // Runtime data only: no rules, no messaging, identities or counter retention.
    let cfg = json!({
        "dbConnections": { "local": { "mongoUri": format!("sqlite://{}", tmp.path().join("db").display()) } },
        "spacesConnections": {},
        "databases": { "runtime": { "tenantDatabases": [
            { "tenantId": "default", "dbConnRef": "local", "dbName": "runtime_default", "analyticsDbName": "analytics" }
        ]}},
        "localStorage": { "enabled": true, "basePath": tmp.path().join("blobs").display().to_string() }
    });
    let path = tmp.path().join("chronos.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    let out = chronos(&path, &["worker", "--once"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing to schedule"), "{err}");
}

#[test]
fn the_embedded_default_runs_its_maintenance_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chronos"))
        .args(["--data-dir"])
        .arg(tmp.path())
        .args(["worker", "--once", "--horizon-hours", "1", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jobs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["job"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for job in ["messaging-retention", "sessions-purge"] {
        assert!(jobs.iter().any(|j| j == job), "{job} did not run: {jobs:?}");
    }
}
