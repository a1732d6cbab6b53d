//! Bench rows for the fallback spool: writes queued while the store is down (16 writers, one
//! durable append each, sharing `fdatasync`s) beside the raw way to make each write durable on
//! its own — one append and one `fdatasync` of the same bytes per write; and the replay of
//! what was queued, beside the same creates made directly.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chronos_core::{Collection, CreateOptions, Error, Result};
use chronos_fallback::{Outcome, Resolve, Settings, Spool};

use crate::stats::{concurrently, Row};
use crate::{coll, doc, payload_bytes, Setup};

/// Concurrent writers.
const WRITERS: usize = 16;

/// The store is down: every write is queued.
struct Down;

#[async_trait::async_trait]
impl Resolve for Down {
    async fn collection(&self, _target: &str) -> Result<Collection> {
        Err(Error::unavailable("bench: the store is down"))
    }
}

/// The store is back.
struct Up(Collection);

#[async_trait::async_trait]
impl Resolve for Up {
    async fn collection(&self, _target: &str) -> Result<Collection> {
        Ok(self.0.clone())
    }
}

pub(crate) async fn rows(s: &Setup, n: usize) -> Vec<Row> {
    let per = (n / WRITERS).max(8);
    let dir = tempfile::tempdir().expect("spool dir");
    let spool =
        Spool::open(Settings::new(dir.path().join("spool")), Arc::new(Down)).expect("open spool");
    let spooled = spool.collection("bench", "spooled");
    let queued = concurrently(
        &format!("spooled create ({WRITERS} writers, store down)"),
        WRITERS,
        per,
        move |w, i| {
            let spooled = spooled.clone();
            async move {
                match spooled
                    .create(&doc(w * per + i), CreateOptions::new())
                    .await
                    .expect("spooled create")
                {
                    Outcome::Queued(_) => {}
                    Outcome::Committed(_) => panic!("the store is down"),
                }
            }
        },
    )
    .await;
    // Raw: the same JSON appended and fdatasynced per write, one file shared by the writers.
    let file = Arc::new(Mutex::new(
        std::fs::File::create(dir.path().join("raw.log")).expect("raw log"),
    ));
    let raw = concurrently(
        &format!("raw append + fdatasync ({WRITERS} writers)"),
        WRITERS,
        per,
        move |w, i| {
            let file = file.clone();
            async move {
                let bytes = payload_bytes(w * per + i);
                tokio::task::spawn_blocking(move || {
                    let mut f = file.lock().expect("raw log");
                    f.write_all(&bytes)
                        .and_then(|_| f.sync_data())
                        .expect("raw append");
                })
                .await
                .expect("blocking append");
            }
        },
    )
    .await;
    let per_sec = queued.per_sec;
    let pending = spool.stats().pending;
    drop(spool);

    // Replay: the queued creates applied on this backend, beside direct creates.
    let c = coll(s, "spooled", &["status", "n"]).await;
    let spool = Spool::open(
        Settings::new(dir.path().join("spool")),
        Arc::new(Up(c.clone())),
    )
    .expect("reopen spool");
    let start = Instant::now();
    let mut applied = 0;
    while spool.stats().pending > 0 {
        let r = spool.replay_due().await.expect("replay");
        applied += r.applied + r.found_committed;
    }
    let replay_wall = start.elapsed();
    assert_eq!(applied, pending, "every queued create replayed once");
    let direct = concurrently(
        &format!("direct create ({WRITERS} writers)"),
        WRITERS,
        per,
        move |w, i| {
            let c = c.clone();
            async move {
                c.create(&doc(w * per + i), CreateOptions::new())
                    .await
                    .expect("create");
            }
        },
    )
    .await;
    let replay_rate = applied as f64 / replay_wall.as_secs_f64().max(1e-9);
    vec![
        Row::Versus {
            chronos: queued,
            raw,
            target: 1.0,
        },
        Row::Value {
            name: "spooled writes/s (store down, goal ≥ 1,000)".into(),
            value: format!("{per_sec:.0}/s"),
            pass: Some(per_sec >= 1000.0),
            json: serde_json::json!({"perSec": per_sec, "goal": 1000}),
        },
        Row::Value {
            name: format!("replay of {applied} queued creates vs direct creates"),
            value: format!(
                "{replay_rate:.0}/s vs {:.0}/s ({:.2}x)",
                direct.per_sec,
                replay_rate / direct.per_sec.max(1e-9)
            ),
            pass: None,
            json: serde_json::json!({"replayPerSec": replay_rate, "directPerSec": direct.per_sec}),
        },
    ]
}
