//! kill -9 in the middle of writing: a child process creates records as fast as it can on
//! the embedded backends with `durability: "powerLoss"` and prints each acknowledgement; the
//! parent kills it with SIGKILL at varying points, then a fresh process-equivalent reads
//! every acknowledged record back (and the store still takes writes).

use std::path::Path;

use chronos::{Chronos, Route};
use chronos_core::{CreateOptions, ItemId, ReadOptions};
use serde_json::json;

const CHILD_ENV: &str = "CHRONOS_CRASH_CHILD_DIR";

fn config(dir: &Path) -> String {
    json!({
        "dbConnections": { "local": { "mongoUri": format!("sqlite://{}", dir.join("db").display()) } },
        "spacesConnections": {},
        "databases": { "runtime": { "tenantDatabases": [
            { "tenantId": "t", "dbConnRef": "local", "dbName": "crash" }
        ]}},
        "localStorage": { "enabled": true, "basePath": dir.join("blobs").display().to_string() },
        "durability": "powerLoss"
    })
    .to_string()
}

/// The writer, run as a child process by the test below (ignored when run directly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of killed_writer_loses_no_acknowledged_write"]
async fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let chronos = Chronos::from_json(&config(Path::new(&dir))).unwrap();
    let c = chronos.with(&Route::runtime("t", "events")).await.unwrap();
    for n in 0u64.. {
        let w = c
            .create(
                &json!({"n": n, "pad": "x".repeat(2000)}),
                CreateOptions::new(),
            )
            .await
            .unwrap();
        // One line per acknowledged write, flushed before the next write starts.
        println!("ACK {} {n}", w.id);
    }
}

#[test]
fn killed_writer_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<(ItemId, u64)> = Vec::new();
    for (round, kill_after) in [7usize, 41, 90].into_iter().enumerate() {
        let mut child = chronos_testkit::child::ChildWriter::spawn(
            "crash_child_writer",
            &[(CHILD_ENV, &dir.path().display().to_string())],
        );
        let mut lines = child.wait_for("ACK ", kill_after);
        // Acknowledgements printed before the kill landed count too.
        lines.extend(child.kill("ACK "));
        assert!(lines.len() >= kill_after, "round {round}");
        for rest in lines {
            let (id, n) = rest.split_once(' ').unwrap();
            acked.push((ItemId::parse(id).unwrap(), n.parse().unwrap()));
        }
    }
    assert!(acked.len() >= 7 + 41 + 90);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let chronos = Chronos::from_json(&config(dir.path())).unwrap();
        let c = chronos.with(&Route::runtime("t", "events")).await.unwrap();
        for (id, n) in &acked {
            let r = c
                .get_latest(*id, ReadOptions::new())
                .await
                .unwrap_or_else(|e| panic!("acknowledged {id} unreadable: {e}"))
                .unwrap_or_else(|| panic!("acknowledged {id} lost"));
            assert_eq!(r.data["n"], json!(n));
        }
        c.create(&json!({"after": "crash"}), CreateOptions::new())
            .await
            .expect("the store takes writes after the crashes");
        chronos.shutdown().await;
    });
}
