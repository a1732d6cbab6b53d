//! `chronos fallback …` over a spool holding operations queued by the library while the blob
//! directory was unusable: stats, pending, cancel, replay.

use std::path::Path;
use std::process::Command;

use chronos::fallback::Outcome;
use chronos::{Chronos, Route};
use chronos_core::CreateOptions;
use serde_json::{json, Value};

fn config(dir: &Path) -> String {
    json!({
        "dbConnections": { "local": { "mongoUri": format!("sqlite://{}", dir.join("db").display()) } },
        "spacesConnections": {},
        "databases": { "runtime": { "tenantDatabases": [
            { "tenantId": "default", "dbConnRef": "local", "dbName": "runtime_default" }
        ]}},
        "localStorage": { "enabled": true, "basePath": dir.join("blobs").display().to_string() },
        "sweepSafety": { "writeDeadlineMs": 100, "clockSkewMs": 0 },
        "fallback": { "enabled": true, "spoolDir": dir.join("spool"), "retryDelayMs": 10 }
    })
    .to_string()
}

fn cli(cfg: &Path, args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_chronos"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_cli_lists_cancels_and_replays_queued_operations() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = dir.join("chronos.json");
    std::fs::write(&cfg, config(dir)).unwrap();
    let route = Route::runtime("default", "orders");
    let ops: Vec<_> = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let chronos = Chronos::from_json(&config(dir)).unwrap();
        chronos.with(&route).await.unwrap();
        // The blob directory made unusable: a file in its place.
        if dir.join("blobs").exists() {
            std::fs::rename(dir.join("blobs"), dir.join("blobs.away")).unwrap();
        }
        std::fs::write(dir.join("blobs"), b"in the way").unwrap();
        let orders = chronos.spooled(&route).unwrap();
        let mut ops = Vec::new();
        for n in 0..2 {
            match orders
                .create(&json!({"n": n}), CreateOptions::new())
                .await
                .unwrap()
            {
                Outcome::Queued(q) => ops.push(q),
                other => panic!("{other:?}"),
            }
        }
        chronos.shutdown().await;
        ops
    });
    std::fs::remove_file(dir.join("blobs")).unwrap();
    if dir.join("blobs.away").exists() {
        std::fs::rename(dir.join("blobs.away"), dir.join("blobs")).unwrap();
    }

    let stats = &cli(&cfg, &["fallback", "stats"])[0];
    assert_eq!(stats["pending"], 2, "{stats}");
    let pending = cli(&cfg, &["fallback", "pending"]);
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0]["op"]["opId"], ops[0].op_id.as_str());
    assert_eq!(pending[0]["op"]["kind"], "create");
    cli(&cfg, &["fallback", "cancel", ops[1].op_id.as_str()]);
    std::thread::sleep(std::time::Duration::from_millis(150));
    let r = &cli(&cfg, &["fallback", "replay"])[0];
    assert_eq!(r["applied"], 1, "{r}");
    assert_eq!(cli(&cfg, &["fallback", "stats"])[0]["pending"], 0);
    let got = cli(&cfg, &["get", "-c", "orders", &ops[0].id.to_string()]);
    assert_eq!(got[0]["n"], 0, "{got:?}");

    // A bad operation id is a validation error naming the rule.
    let out = Command::new(env!("CARGO_BIN_EXE_chronos"))
        .args(["fallback", "retry", "nope", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("idempotency key"));
}
