//! Cases: the sweep deletes only what it can prove is its own database's garbage — never
//! another database's payloads in a shared bucket, never the payload of a write that is still
//! being acknowledged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chronos_core::{CollectionConfig, CreateOptions, Engine, ErrorKind, ReadOptions, WriteOptions};
use serde_json::json;

use super::{blob_keys, data, planted_key, sweep_now, Harness};
use crate::fault::{faulty, FaultPlan};

/// The index store's database id is valid, stable across handles and calls, and written
/// into every blob key.
pub async fn database_id_is_stable(h: Harness) {
    let id = h.stores.index.database_id().await.unwrap();
    assert!(
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
        "{id}"
    );
    for _ in 0..3 {
        assert_eq!(h.stores.index.database_id().await.unwrap(), id);
    }
    let c = h.default_collection("dbid").await;
    assert_eq!(c.database_id(), id);
    let again = h.engine().collection(c.config().clone()).await.unwrap();
    assert_eq!(again.database_id(), id);
    c.create(&json!({"a": 1}), CreateOptions::new())
        .await
        .unwrap();
    let keys = blob_keys(&h, &c).await;
    assert!(
        keys.iter().all(|k| k.contains(&format!("/item-{id}-"))),
        "{keys:?}"
    );
}

/// Two databases whose collections share one bucket *with the same prefix* (what two
/// configurations, or two spellings of one location, produce): each sweep removes its own
/// garbage and nothing of the other's, and every record of both still reads back.
/// `b` gets `a`'s blob store.
pub async fn sweeps_spare_other_databases_in_one_bucket(a: Harness, mut b: Harness) {
    b.stores.blob = a.stores.blob.clone();
    let ida = a.stores.index.database_id().await.unwrap();
    let idb = b.stores.index.database_id().await.unwrap();
    assert_ne!(ida, idb, "two databases share an id");
    let name = Harness::unique("shared");
    let open = |h: &Harness| {
        let cfg = CollectionConfig::new(name.clone());
        let engine = h.engine();
        async move { engine.collection(cfg).await.unwrap() }
    };
    let (ca, cb) = (open(&a).await, open(&b).await);
    let mut written = Vec::new();
    for (c, who) in [(&ca, "a"), (&cb, "b")] {
        for n in 0..3 {
            let w = c
                .create(&json!({"who": who, "n": n}), CreateOptions::new())
                .await
                .unwrap();
            c.update(w.id, &json!({"who": who, "n": n + 10}), WriteOptions::new())
                .await
                .unwrap();
            written.push((who, w.id, n));
        }
    }
    // One genuine orphan each, so each sweep has something of its own to remove.
    let orphan_a = planted_key(&ca, &ida, 1, "000000000000000000000001/v0", "item", ".json");
    let orphan_b = planted_key(&cb, &idb, 1, "000000000000000000000002/v0", "item", ".json");
    for k in [&orphan_a, &orphan_b] {
        a.stores
            .blob
            .put_if_absent(k, Bytes::from_static(b"{}"))
            .await
            .unwrap();
    }
    let ra = sweep_now(&a, &ca).await;
    assert_eq!(ra.removed, vec![orphan_a]);
    assert_eq!(ra.not_owned, 7, "b's six payloads and orphan: {ra:?}");
    let rb = sweep_now(&b, &cb).await;
    assert_eq!(rb.removed, vec![orphan_b]);
    // Fresh engines (no cache anywhere) read every version of both databases.
    let (fa, fb) = (open(&a).await, open(&b).await);
    for (who, id, n) in written {
        let c = if who == "a" { &fa } else { &fb };
        let latest = c.get_latest(id, ReadOptions::new()).await.unwrap().unwrap();
        assert_eq!(data(&latest), json!({"who": who, "n": n + 10}));
        let first = c
            .get_version(id, 0, ReadOptions::new())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(data(&first), json!({"who": who, "n": n}));
    }
}

/// Sweeping at the shortest grace period the collection allows, continuously, beside four
/// writers and one whose commits are delayed past the grace period (a slow store): every
/// acknowledged write reads back afterwards, the slow writes are refused rather than
/// acknowledged without a payload, and once the writers stop and the grace period passes, a
/// sweep leaves exactly the referenced payloads.
pub async fn sweep_beside_writers_loses_no_acknowledged_write(h: Harness) {
    // A short deadline, and a skew margin for stores that cannot refuse a late commit
    // themselves (MongoDB: a commit in flight longer than this is outside the contract).
    let cfg = CollectionConfig::new(Harness::unique("busy"))
        .write_deadline(Duration::from_millis(500))
        .clock_skew(Duration::from_millis(500));
    let grace = cfg.min_sweep_grace();
    let c = h.engine().collection(cfg).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sweeper = {
        let (c, stop) = (c.clone(), stop.clone());
        tokio::spawn(async move {
            let mut sweeps = 0u32;
            while !stop.load(Ordering::Relaxed) {
                c.sweep(grace).await.expect("sweep");
                sweeps += 1;
                tokio::task::yield_now().await;
            }
            sweeps
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let c = c.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut failed = 0;
                for n in 0..40 {
                    let doc = json!({"w": w, "n": n});
                    match c.create(&doc, CreateOptions::new()).await {
                        Ok(r) => acked.push((r, doc)),
                        Err(e) if e.kind() == ErrorKind::Unavailable => failed += 1,
                        Err(e) => panic!("writer {w}: {e}"),
                    }
                }
                (acked, failed)
            })
        })
        .collect();
    let slow = {
        let plan = FaultPlan::new();
        let c = Engine::new(faulty(&h.stores, &plan))
            .collection(c.config().clone())
            .await
            .unwrap();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..2 {
                // A slow payload put / commit preparation (what the deadline bounds; a commit
                // request in flight longer than the clock-skew margin is outside the contract).
                plan.interleave_before("precommit", async move {
                    tokio::time::sleep(grace + Duration::from_millis(300)).await;
                });
                let doc = json!({"slow": n});
                match c.create(&doc, CreateOptions::new()).await {
                    Ok(r) => acked.push((r, doc)),
                    Err(e) => assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}"),
                }
            }
            acked
        })
    };
    let mut acked = slow.await.unwrap();
    let mut failed = 0;
    for w in writers {
        let (a, f) = w.await.unwrap();
        acked.extend(a);
        failed += f;
    }
    stop.store(true, Ordering::Relaxed);
    let sweeps = sweeper.await.unwrap();
    assert!(sweeps > 0);
    assert!(
        acked.len() >= 80,
        "most writes must succeed ({} acked, {failed} past their deadline)",
        acked.len()
    );
    let fresh = h.engine().collection(c.config().clone()).await.unwrap();
    for (r, doc) in &acked {
        let got = fresh
            .get_version(r.id, r.ov, ReadOptions::new())
            .await
            .unwrap_or_else(|e| panic!("acknowledged {} unreadable: {e}", r.id))
            .unwrap();
        assert_eq!(&data(&got), doc);
    }
    tokio::time::sleep(grace * 2).await;
    c.sweep(grace).await.unwrap();
    let mut stored = blob_keys(&h, &c).await;
    stored.sort();
    let mut referenced: Vec<String> = Vec::new();
    for (r, _) in &acked {
        let v = h.stores.index.version(c.name(), r.id, r.ov).await.unwrap();
        referenced.push(v.unwrap().blob_key);
    }
    referenced.sort();
    assert_eq!(stored, referenced);
}

/// A write whose blob put and commit preparation outlast its deadline is refused with
/// `Unavailable` and leaves nothing: no version, no payload.
pub async fn late_attempts_do_not_commit(h: Harness) {
    let plan = FaultPlan::new();
    let on_time = h.default_collection("late").await;
    let w = on_time
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    // The same collection with a deadline that the delayed step below overruns tenfold.
    let cfg = on_time
        .config()
        .clone()
        .write_deadline(Duration::from_millis(100))
        .clock_skew(Duration::ZERO);
    let c = Engine::new(faulty(&h.stores, &plan))
        .collection(cfg)
        .await
        .unwrap();
    plan.interleave_before("precommit", async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
    });
    let e = c
        .update(w.id, &json!({"n": 1}), WriteOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("deadline"), "{e}");
    let latest = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.system.ov, 0);
    assert_eq!(
        blob_keys(&h, &c).await.len(),
        1,
        "the late payload was removed"
    );
}
