//! Two OS processes on one database file: commits stay dense and unique (CAS), leases are
//! exclusive, and increments are not lost. The parent test re-runs this test binary twice as
//! child workers (selected by environment variables).

use std::process::Command;
use std::time::Duration;

use chronos_core::docs::DocUpdate;
use chronos_core::{Commit, ErrorKind, HeadAction, ItemId, NewVersion, Op};
use chronos_store_sqlite::SqliteBackend;
use serde_json::json;

const COLL: &str = "shared";
const COMMITS_PER_WORKER: u64 = 30;
const LEASES_PER_WORKER: u64 = 15;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The child side: does nothing unless started by `two_processes_share_one_file`.
#[test]
fn child_worker() {
    let (Ok(uri), Ok(id), Ok(worker)) = (
        std::env::var("CHRONOS_2P_DB"),
        std::env::var("CHRONOS_2P_ID"),
        std::env::var("CHRONOS_2P_WORKER"),
    ) else {
        return;
    };
    let id = ItemId::parse(&id).unwrap();
    rt().block_on(async move {
        let db = SqliteBackend::open(&uri).await.unwrap();
        let (idx, lock, docs) = (db.index(), db.lock(), db.docs());
        idx.prepare(COLL, &[]).await.unwrap();
        for n in 0..COMMITS_PER_WORKER {
            loop {
                let head = idx.head(COLL, id).await.unwrap();
                let ov = head.as_ref().map_or(0, |h| h.ov + 1);
                let v = NewVersion {
                    item_id: id,
                    ov,
                    op: if ov == 0 { Op::Create } else { Op::Update },
                    at: chronos_core::time::now_ms(),
                    actor: Some(worker.clone()),
                    reason: None,
                    blob_key: format!("{worker}/{n}"),
                    meta: json!({"w": worker, "n": n}).as_object().cloned().unwrap(),
                    size: 0,
                    checksum: String::new(),
                    prev_ov: ov.checked_sub(1),
                    chain: None,
                };
                let c = Commit::new(v, HeadAction::Upsert);
                match idx.commit(COLL, c).await {
                    Ok(_) => break,
                    Err(e) if e.kind() == ErrorKind::Conflict => continue,
                    Err(e) => panic!("commit failed: {e}"),
                }
            }
        }
        let mut held = 0;
        while held < LEASES_PER_WORKER {
            let Some(lease) = lock
                .try_acquire("critical", Duration::from_secs(30))
                .await
                .unwrap()
            else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            // Inside the critical section nobody else may be: the owner slot must be empty.
            let doc = docs.get("state", "owner").await.unwrap();
            if doc.is_some_and(|d| d.body.get("who").is_some_and(|w| !w.is_null())) {
                docs.update(
                    "state",
                    "violations",
                    DocUpdate {
                        set: vec![],
                        inc: vec![("n".into(), 1.into())],
                    },
                    true,
                )
                .await
                .unwrap();
            }
            let set = |v: serde_json::Value| DocUpdate {
                set: vec![("who".into(), v)],
                inc: vec![],
            };
            docs.update("state", "owner", set(json!(worker)), true)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
            docs.update("state", "owner", set(serde_json::Value::Null), true)
                .await
                .unwrap();
            docs.update(
                "state",
                "entries",
                DocUpdate {
                    set: vec![],
                    inc: vec![("n".into(), 1.into())],
                },
                true,
            )
            .await
            .unwrap();
            assert!(lock.release(&lease).await.unwrap());
            held += 1;
        }
    });
}

#[test]
fn two_processes_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite://{}", dir.path().join("shared.db").display());
    let id = ItemId::generate();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["w1", "w2"]
        .iter()
        .map(|w| {
            Command::new(&exe)
                .args(["child_worker", "--exact", "--nocapture", "--test-threads=1"])
                .env("CHRONOS_2P_DB", &uri)
                .env("CHRONOS_2P_ID", id.to_string())
                .env("CHRONOS_2P_WORKER", w)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn child test process")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a child worker failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    rt().block_on(async move {
        let db = SqliteBackend::open(&uri).await.unwrap();
        let versions = db.index().versions(COLL, id, None, 1000).await.unwrap();
        assert_eq!(versions.len() as u64, 2 * COMMITS_PER_WORKER);
        let mut seen = std::collections::HashSet::new();
        for (i, v) in versions.iter().enumerate() {
            assert_eq!(v.ov, i as u64, "ovs are dense");
            assert!(
                seen.insert((v.meta["w"].clone(), v.meta["n"].clone())),
                "a commit landed twice"
            );
        }
        for pair in versions.windows(2) {
            assert!(pair[1].cv > pair[0].cv);
        }
        let workers: std::collections::HashSet<_> =
            versions.iter().map(|v| v.meta["w"].clone()).collect();
        assert_eq!(workers.len(), 2, "both processes committed");
        let docs = db.docs();
        assert!(
            docs.get("state", "violations").await.unwrap().is_none(),
            "two holders of one lease"
        );
        let entries = docs.get("state", "entries").await.unwrap().unwrap();
        assert_eq!(
            entries.body["n"],
            json!(2 * LEASES_PER_WORKER),
            "an increment was lost"
        );
    });
}
