//! kill -9 between commit and counter update: a child process writes (creates, some updates)
//! on a runtime database with counters; the parent kills it with SIGKILL at a random point,
//! 20 rounds per durable backend (SQLite; MongoDB with the server suites), and after each
//! recovery the totals equal a rebuild from the version log, which equals the number of
//! committed versions. On MongoDB a killed writer's cv reservation holds the change feed up
//! until it expires: the run shortens it (`CHRONOS_MONGO_RESERVATION_TTL_MS`, 1 s) and waits
//! it out before recovering.

use std::time::Duration;

use chronos::{Chronos, Route, TotalsQuery};
use chronos_core::{CreateOptions, WriteOptions};
use serde_json::json;

mod counters_support;
use counters_support as wired;

const CHILD_ENV: &str = "CHRONOS_COUNTERS_CHILD_CONFIG";
const TTL_MS: &str = "1000";

/// The writer, run as a child process by the test below (ignored when run directly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of killed_writers_leave_exact_counters"]
async fn counters_child_writer() {
    let Ok(cfg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let chronos = Chronos::from_json(&cfg).unwrap();
    let c = chronos.with(&Route::runtime("a", "events")).await.unwrap();
    for n in 0u64.. {
        let w = c
            .create(&json!({"n": n % 20, "k": n % 7}), CreateOptions::new())
            .await
            .unwrap();
        if n % 3 == 0 {
            c.update(w.id, &json!({"n": 1}), WriteOptions::new())
                .await
                .unwrap();
        }
        println!("ACK {n}");
    }
}

/// A pseudo-random number below `n` (the clock's nanoseconds: kill points need no more).
fn random_below(n: u64) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (t ^ (t >> 7)) % n
}

fn chronos_store_mongo_ttl_var() -> &'static str {
    "CHRONOS_MONGO_RESERVATION_TTL_MS"
}

#[test]
fn killed_writers_leave_exact_counters() {
    // Before any MongoDB store of this process reads it (this binary runs this test alone).
    std::env::set_var(chronos_store_mongo_ttl_var(), TTL_MS);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // memory:// lives in one process only: the crash test is for the durable backends.
    for uri in wired::uris(dir.path())
        .into_iter()
        .filter(|u| !u.starts_with("memory"))
    {
        let cfg = wired::config(&uri, dir.path(), &wired::suffix());
        let mongo = uri.starts_with("mongodb");
        for round in 0..20 {
            let kill_after = 1 + random_below(40) as usize;
            let mut child = chronos_testkit::child::ChildWriter::spawn(
                "counters_child_writer",
                &[(CHILD_ENV, &cfg), (chronos_store_mongo_ttl_var(), TTL_MS)],
            );
            child.wait_for("ACK ", kill_after);
            // Somewhere inside the next write: between its commit and its counter update,
            // or anywhere else.
            std::thread::sleep(Duration::from_micros(random_below(3000)));
            child.kill("ACK ");
            rt.block_on(async {
                let chronos = Chronos::from_json(&cfg).unwrap();
                if mongo {
                    // The killed writer's reservation expires (TTL), then a reader's mark
                    // settles it: read the feed until it reaches the last cv handed out.
                    let c = chronos.with(&Route::runtime("a", "events")).await.unwrap();
                    let last = c.stores().index.current_cv(c.name()).await.unwrap();
                    let start = std::time::Instant::now();
                    let mut cursor = chronos_core::ChangeCursor::start();
                    while cursor.cv() < last {
                        assert!(
                            start.elapsed() < Duration::from_secs(30),
                            "round {round}: the feed never settled"
                        );
                        cursor = c.changes(&cursor, 1000).await.unwrap().cursor;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                let counters = chronos.counters();
                counters.catch_up("a", "events").await.unwrap();
                let q = TotalsQuery::new()
                    .tenant("a")
                    .collection("events")
                    .include_rules(true);
                let recovered = counters.get_totals(&q).await.unwrap().remove(0);
                counters.recount("a", "events").await.unwrap();
                let rebuilt = counters.get_totals(&q).await.unwrap().remove(0);
                assert_eq!(recovered.counts, rebuilt.counts, "{uri} round {round}");
                assert_eq!(recovered.rules, rebuilt.rules, "{uri} round {round}");
                // And the rebuild is the version log: every committed version once.
                let c = chronos.with(&Route::runtime("a", "events")).await.unwrap();
                let mut cursor = chronos_core::ChangeCursor::start();
                let mut versions = 0u64;
                loop {
                    let page = c.changes(&cursor, 1000).await.unwrap();
                    if page.changes.is_empty() {
                        break;
                    }
                    versions += page.changes.len() as u64;
                    cursor = page.cursor;
                }
                let r = rebuilt.counts;
                assert_eq!(
                    r.created + r.updated + r.deleted,
                    versions,
                    "{uri} round {round}"
                );
                chronos.shutdown().await;
            });
        }
    }
}
