//! Case: invariant 6 under injected faults — every store call of every write fails in turn,
//! before or after reaching the store, or reaches it twice (a client retry after a lost
//! acknowledgement); no acknowledged write is lost, no failed write becomes visible, a
//! repeated call never fails or doubles a write, and the sweep removes every leftover.

use chronos_core::{
    Collection, CollectionConfig, CreateOptions, Engine, EnrichOptions, ErrorKind, ItemId,
    ReadOptions, Record, RestoreTarget, VersionEntry, WriteOptions, WriteResult,
};
use serde_json::json;

use super::{blob_keys, sweep_now, Harness};
use crate::fault::{faulty, FaultMode, FaultPlan};

#[derive(Debug, Clone, Copy)]
enum Write {
    Create,
    Update,
    Enrich,
    Delete,
    Restore,
}

async fn run_write(c: &Collection, w: Write, id: ItemId) -> chronos_core::Result<WriteResult> {
    match w {
        Write::Create => {
            c.create(&json!({"n": "new"}), CreateOptions::new().id(id))
                .await
        }
        Write::Update => {
            c.update(id, &json!({"n": 2}), WriteOptions::new().expected_ov(1))
                .await
        }
        Write::Enrich => {
            c.enrich(
                id,
                &json!({"e": [1]}),
                EnrichOptions::new().function_id("f"),
            )
            .await
        }
        Write::Delete => c.delete(id, WriteOptions::new()).await,
        Write::Restore => {
            c.restore_object(id, RestoreTarget::Ov(0), WriteOptions::new())
                .await
        }
    }
}

type Snapshot = (Option<Record>, Vec<VersionEntry>);

async fn snapshot(c: &Collection, id: ItemId) -> Snapshot {
    let latest = c
        .get_latest(id, ReadOptions::new().include_deleted(true))
        .await
        .unwrap();
    let hist = match c.history(id, Default::default()).await {
        Ok(p) => p.versions,
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("history: {e}"),
    };
    (latest, hist)
}

/// Invariant 6, on every write and every store call it makes.
pub async fn injected_faults_never_lose_or_expose_writes(h: Harness) {
    let mut scenarios = 0;
    for write in [
        Write::Create,
        Write::Update,
        Write::Enrich,
        Write::Delete,
        Write::Restore,
    ] {
        for mode in [FaultMode::Before, FaultMode::After, FaultMode::Twice] {
            let mut n = 0;
            loop {
                let plan = FaultPlan::new();
                let cfg = CollectionConfig::new(Harness::unique("fault"));
                let c = Engine::new(faulty(&h.stores, &plan))
                    .collection(cfg.clone())
                    .await
                    .unwrap();
                // Reads for checking go around the fault wrappers.
                let check = h.engine().collection(cfg).await.unwrap();

                let w0 = c
                    .create(&json!({"n": 0}), CreateOptions::new())
                    .await
                    .unwrap();
                let w1 = c
                    .update(w0.id, &json!({"n": 1}), WriteOptions::new())
                    .await
                    .unwrap();
                let target = if matches!(write, Write::Create) {
                    ItemId::generate()
                } else {
                    w0.id
                };
                let before = snapshot(&check, target).await;

                plan.fail_nth(n, mode);
                let result = run_write(&c, write, target).await;
                let fired = plan.fired();
                plan.clear();
                let ctx = format!("{write:?} with fault {mode:?} at call {n} ({fired:?})");

                let after = snapshot(&check, target).await;
                match &result {
                    Ok(w) => {
                        let latest = after
                            .0
                            .as_ref()
                            .unwrap_or_else(|| panic!("{ctx}: acknowledged write lost"));
                        assert_eq!((latest.system.ov, latest.system.cv), (w.ov, w.cv), "{ctx}");
                        assert_eq!(after.1.len(), before.1.len() + 1, "{ctx}");
                    }
                    Err(e) if mode == FaultMode::Twice => {
                        panic!("{ctx}: a call delivered twice failed the write: {e}")
                    }
                    Err(e) => {
                        assert!(fired.is_some(), "{ctx}: failed without a fault: {e}");
                        assert_eq!(e.kind(), ErrorKind::Unavailable, "{ctx}: {e}");
                        if !e.is_indeterminate() {
                            assert_eq!(after, before, "{ctx}: a failed write became visible");
                        }
                    }
                }
                for acked in [w0, w1] {
                    let v = check
                        .get_version(acked.id, acked.ov, ReadOptions::new())
                        .await
                        .unwrap();
                    assert_eq!(
                        v.map(|r| r.system.cv),
                        Some(acked.cv),
                        "{ctx}: acknowledged v{} lost",
                        acked.ov
                    );
                }

                // Leftovers are garbage the sweep removes; what stays is referenced.
                sweep_now(&h, &check).await;
                let mut referenced: Vec<String> = Vec::new();
                for id in [w0.id, target] {
                    if let Ok(p) = check.history(id, Default::default()).await {
                        referenced.extend(p.versions.into_iter().map(|v| v.blob_key));
                    }
                }
                referenced.sort();
                referenced.dedup();
                let mut stored = blob_keys(&h, &check).await;
                stored.sort();
                assert_eq!(
                    stored, referenced,
                    "{ctx}: unreferenced payloads survive the sweep"
                );

                scenarios += 1;
                if fired.is_none() {
                    assert!(n >= 2, "{write:?} makes at least two store calls");
                    break;
                }
                n += 1;
            }
        }
    }
    assert!(scenarios >= 45, "only {scenarios} fault scenarios ran");
}
