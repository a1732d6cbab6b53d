//! GDPR erase through the facade, on memory, SQLite and MongoDB (payloads in local files):
//! the receipt completes, the counters count the record's versions exactly (folded before
//! the content went), and a raw scan of every file the stores keep — the SQLite database and
//! its WAL while the database is open, every blob file — finds none of the planted canaries.

use std::path::Path;

use chronos::{Chronos, ErrorKind, ReadOptions, Route, TotalsQuery};
use chronos_core::{CreateOptions, WriteOptions};
use serde_json::json;

mod counters_support;
use counters_support::{config, suffix, uris};

const CANARY: &str = "CANARY-b41d-gdpr";

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_leaves_no_canary_in_any_store_file() {
    let dir = tempfile::tempdir().unwrap();
    for uri in uris(dir.path()) {
        let chronos = Chronos::from_json(&config(&uri, dir.path(), &suffix())).unwrap();
        let route = Route::runtime("a", "people");
        let c = chronos.with(&route).await.unwrap();
        let doc = |n: u32| json!({"email": format!("{CANARY}-{n}@example.com"), "n": n});
        let w = c.create(&doc(0), CreateOptions::new()).await.unwrap();
        for n in 1..4 {
            c.update(w.id, &doc(n), WriteOptions::new()).await.unwrap();
        }
        let kept = c
            .create(&json!({"email": "kept@example.com"}), CreateOptions::new())
            .await
            .unwrap();
        assert!(
            !files_containing(dir.path(), CANARY.as_bytes()).is_empty(),
            "{uri}: the canary is planted where the scan looks"
        );

        let r = chronos
            .erase(&route, w.id, "dpo@example.com", "request #17")
            .await
            .unwrap();
        assert!(r.complete, "{uri}: {r:?}");
        assert_eq!(r.erase.ov, 5, "{uri}: DELETE at 4, ERASE at 5");
        let hits = files_containing(dir.path(), CANARY.as_bytes());
        assert!(hits.is_empty(), "{uri}: the canary survives in {hits:?}");

        let e = c.get_latest(w.id, ReadOptions::new()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Erased, "{uri}: {e}");
        let other = c
            .get_latest(kept.id, ReadOptions::new())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(other.data["email"], json!("kept@example.com"));

        // Counters: one create, three updates, one delete; the erase counts as nothing.
        chronos.counters().catch_up("a", "people").await.unwrap();
        let q = TotalsQuery::new().collection("people");
        let t = &chronos.counters().get_totals(&q).await.unwrap()[0];
        assert_eq!(
            (t.counts.created, t.counts.updated, t.counts.deleted),
            (2, 3, 1),
            "{uri}"
        );
        chronos.shutdown().await;
        std::fs::remove_dir_all(dir.path().join("blobs")).ok();
    }
}
