//! The fallback queue through the facade on the embedded default (SQLite + files): config
//! errors, writes queued while the blob directory is unusable, replayed exactly once by the
//! background replayer after it is back, the spool surviving a restart of the facade, and
//! the worker job.

use std::path::Path;
use std::time::{Duration, Instant};

use chronos::fallback::Outcome;
use chronos::{Chronos, ChronosConfig, ErrorKind, Route};
use chronos_core::{CreateOptions, HistoryOptions, Op, WriteOptions};
use serde_json::json;

fn config(dir: &Path) -> ChronosConfig {
    let mut c = ChronosConfig::embedded(dir).unwrap();
    c.fallback = Some(
        serde_json::from_value(json!({
            "enabled": true,
            "spoolDir": dir.join("spool"),
            "retryDelayMs": 10,
            "maxDelayMs": 100
        }))
        .unwrap(),
    );
    c.sweep_safety =
        Some(serde_json::from_value(json!({"writeDeadlineMs": 200, "clockSkewMs": 0})).unwrap());
    c
}

/// Makes the blob directory unusable (a file where it should be) and back. Root ignores
/// permissions, a file in the way stops everyone.
fn break_blobs(dir: &Path) {
    let blobs = dir.join("blobs");
    std::fs::rename(&blobs, dir.join("blobs.away")).unwrap();
    std::fs::write(&blobs, b"not a directory").unwrap();
}

fn heal_blobs(dir: &Path) {
    std::fs::remove_file(dir.join("blobs")).unwrap();
    std::fs::rename(dir.join("blobs.away"), dir.join("blobs")).unwrap();
}

async fn wait_drained(chronos: &Chronos) {
    let until = Instant::now() + Duration::from_secs(20);
    while chronos.fallback().unwrap().stats().pending > 0 {
        assert!(
            Instant::now() < until,
            "{:?}",
            chronos.fallback().unwrap().pending(None, 10)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn bad_fallback_config_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    // Upstream's configurations enable the queue without a spool directory: they load, the
    // queue is reported as unusable, and writing through it names the missing field.
    let mut c = ChronosConfig::embedded(dir.path()).unwrap();
    c.fallback = Some(serde_json::from_value(json!({"enabled": true, "maxRetries": 3})).unwrap());
    assert_eq!(c.unsupported_options(), ["fallback"]);
    let chronos = Chronos::from_config(c).unwrap();
    let e = chronos
        .spooled(&Route::runtime("default", "users"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("fallback.spoolDir"), "{e}");
    let mut c = ChronosConfig::embedded(dir.path()).unwrap();
    c.fallback = Some(serde_json::from_value(json!({"enabled": true, "maxDelayMs": 0})).unwrap());
    let e = Chronos::from_config(c).unwrap_err();
    assert!(e.to_string().contains("fallback.retryDelayMs"), "{e}");

    let chronos = Chronos::embedded(dir.path()).unwrap();
    let e = chronos
        .spooled(&Route::runtime("default", "users"))
        .unwrap_err();
    assert!(e.to_string().contains("fallback.enabled"), "{e}");
    let mut c = config(dir.path());
    assert!(
        c.unsupported_options().is_empty(),
        "{:?}",
        c.unsupported_options()
    );
    c.fallback.as_mut().unwrap().dead_letter_collection = Some("dlq".into());
    assert_eq!(c.unsupported_options(), ["fallback.deadLetterCollection"]);
    let chronos = Chronos::from_config(config(dir.path())).unwrap();
    let e = chronos
        .spooled(&Route::runtime("nobody", "users"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TenantNotConfigured, "{e}");
}

#[tokio::test]
async fn writes_queue_during_an_outage_and_replay_once_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let route = Route::runtime("default", "orders");
    let chronos = Chronos::from_config(config(dir.path())).unwrap();
    let orders = chronos.spooled(&route).unwrap();
    let first = orders
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    let id = first.committed().expect("committed while up").id;

    break_blobs(dir.path());
    let mut queued = Vec::new();
    for n in 1..=5 {
        match orders
            .update(id, &json!({"n": n}), WriteOptions::new())
            .await
            .unwrap()
        {
            Outcome::Queued(q) => queued.push(q),
            Outcome::Committed(r) => panic!("committed while the blobs are unusable: {r:?}"),
        }
    }
    let fresh: Vec<_> = {
        let mut v = Vec::new();
        for n in 0..5 {
            match orders
                .create(&json!({"fresh": n}), CreateOptions::new())
                .await
                .unwrap()
            {
                Outcome::Queued(q) => v.push(q.id),
                other => panic!("{other:?}"),
            }
        }
        v
    };
    assert!(
        queued[0].reason.contains("UNAVAILABLE"),
        "{}",
        queued[0].reason
    );
    assert_eq!(chronos.fallback().unwrap().stats().pending, 10);

    heal_blobs(dir.path());
    wait_drained(&chronos).await;
    let c = chronos.with(&route).await.unwrap();
    let h = c.history(id, HistoryOptions::default()).await.unwrap();
    assert_eq!(h.versions.len(), 6, "five queued updates, each once");
    assert!(h.versions.iter().skip(1).all(|v| v.op == Op::Update));
    let latest = c.get_latest(id, Default::default()).await.unwrap().unwrap();
    assert_eq!(latest.data["n"], 5, "applied in the order they were issued");
    for f in &fresh {
        assert_eq!(
            c.history(*f, HistoryOptions::default())
                .await
                .unwrap()
                .versions
                .len(),
            1
        );
    }
    assert_eq!(chronos.fallback().unwrap().stats().replayed, 10);
    chronos.shutdown().await;
}

#[tokio::test]
async fn queued_writes_survive_a_restart_of_the_facade() {
    let dir = tempfile::tempdir().unwrap();
    let route = Route::runtime("default", "events");
    let ids = {
        let chronos = Chronos::from_config(config(dir.path())).unwrap();
        // Open the collection while up, so the outage hits the write, not the open.
        chronos.with(&route).await.unwrap();
        let events = chronos.spooled(&route).unwrap();
        break_blobs(dir.path());
        let mut ids = Vec::new();
        for n in 0..3 {
            let o = events
                .create(&json!({"n": n}), CreateOptions::new())
                .await
                .unwrap();
            assert!(matches!(o, Outcome::Queued(_)), "{o:?}");
            ids.push(o.id());
        }
        chronos.shutdown().await;
        ids
    };
    heal_blobs(dir.path());
    let chronos = Chronos::from_config(config(dir.path())).unwrap();
    let spool = chronos.fallback().unwrap();
    assert_eq!(spool.stats().pending, 3, "the spool is read back");
    // Looking starts no replay; the worker job replays it (run by hand here, once the
    // failed attempts' deadline has passed).
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(spool.stats().pending, 3);
    let jobs = chronos.maintenance_jobs();
    let job = jobs
        .iter()
        .find(|j| j.name().starts_with("fallback-replay:"))
        .expect("registered");
    assert_eq!(job.name(), format!("fallback-replay:{}", spool.id()));
    let now = chronos_core::time::now_ms();
    let period = chronos::worker::Period {
        index: 0,
        start: now,
        end: now,
    };
    let report = job.run(&period).await.unwrap();
    assert_eq!(report["applied"], 3, "{report}");
    assert_eq!(spool.stats().pending, 0);
    let c = chronos.with(&route).await.unwrap();
    for id in ids {
        assert_eq!(
            c.history(id, HistoryOptions::default())
                .await
                .unwrap()
                .versions
                .len(),
            1
        );
    }
    chronos.shutdown().await;
}
