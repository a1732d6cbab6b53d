//! Cases: many writers on one record and on one collection, and two engines on one store.

use std::collections::HashSet;

use chronos_core::{
    Collection, CollectionConfig, CreateOptions, EnrichOptions, ErrorKind, ItemId, ReadOptions,
    WriteOptions,
};
use serde_json::{json, Value};

use super::{data, full_history, Harness};

/// Read-modify-write with `expected_ov` until it wins; returns how many conflicts it saw.
async fn append_hit(c: Collection, id: ItemId, who: u64) -> u64 {
    let mut conflicts = 0;
    loop {
        let cur = c.get_latest(id, ReadOptions::new()).await.unwrap().unwrap();
        let mut hits = cur.data["hits"].as_array().cloned().unwrap();
        hits.push(json!(who));
        match c
            .update(
                id,
                &json!({"hits": hits, "last": who}),
                WriteOptions::new().expected_ov(cur.system.ov),
            )
            .await
        {
            Ok(_) => return conflicts,
            Err(e) if e.kind() == ErrorKind::Conflict => conflicts += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
}

fn assert_all_hits(v: &Value, n: u64) {
    let mut hits: Vec<u64> = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_u64().unwrap())
        .collect();
    hits.sort_unstable();
    assert_eq!(
        hits,
        (0..n).collect::<Vec<_>>(),
        "every writer's update is present exactly once"
    );
}

/// 16 concurrent read-modify-write loops on one record: exactly one winner per ov, no lost
/// update, dense history.
pub async fn concurrent_updates_one_record_lose_nothing(h: Harness) {
    let c = h.default_collection("hot").await;
    let w = c
        .create(&json!({"hits": []}), CreateOptions::new())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| tokio::spawn(append_hit(c.clone(), w.id, i)))
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let r = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.system.ov, 16);
    assert_all_hits(&data(&r), 16);
    let hist = full_history(&c, w.id).await;
    assert_eq!(
        hist.iter().map(|v| v.ov).collect::<Vec<_>>(),
        (0..=16).collect::<Vec<_>>()
    );
}

/// Concurrent enrichments without `expected_ov` all apply: no field is lost.
pub async fn concurrent_enrichments_keep_every_field(h: Harness) {
    let c = h.default_collection("enrich_hot").await;
    let w = c
        .create(&json!({"tags": []}), CreateOptions::new())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                let patch = json!({"tags": [i], format!("f{i}"): true});
                c.enrich(
                    w.id,
                    &patch,
                    EnrichOptions::new().function_id(format!("fn{i}")),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    let mut ovs = HashSet::new();
    for t in tasks {
        assert!(
            ovs.insert(t.await.unwrap().ov),
            "two enrichments got the same ov"
        );
    }
    let r = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.system.ov, 8);
    let d = data(&r);
    for i in 0..8 {
        assert_eq!(
            d[format!("f{i}")],
            json!(true),
            "field of enrichment {i} lost"
        );
        assert!(d["tags"].as_array().unwrap().contains(&json!(i)));
    }
    assert_eq!(r.system.lineage.function_ids.len(), 8);
}

/// Writers of one record through one collection handle take turns in the process: with no
/// retry budget at all (`max_write_retries(0)`), 16 concurrent updates, enrichments and
/// deletes of one record all commit — none loses a race to another of the same process —
/// each on its own ov, in a dense history.
pub async fn writers_of_one_record_take_turns_in_process(h: Harness) {
    let cfg = CollectionConfig::new(Harness::unique("turns")).max_write_retries(0);
    let c = h.engine().collection(cfg).await.unwrap();
    let w = c
        .create(&json!({"tags": []}), CreateOptions::new())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16u64)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                match i % 4 {
                    0 => {
                        c.enrich(
                            w.id,
                            &json!({"tags": [i], format!("f{i}"): true}),
                            EnrichOptions::new(),
                        )
                        .await
                    }
                    1 => {
                        c.update(
                            w.id,
                            &json!({"tags": [i], "replaced": i}),
                            WriteOptions::new(),
                        )
                        .await
                    }
                    _ => {
                        c.enrich(w.id, &json!({"tags": [i]}), EnrichOptions::new())
                            .await
                    }
                }
            })
        })
        .collect();
    let mut ovs = HashSet::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let w = t
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("writer {i} of one process lost a race: {e}"));
        assert!(ovs.insert(w.ov), "two writers got ov {}", w.ov);
    }
    assert_eq!(ovs, (1..=16).collect::<HashSet<u64>>());
    let hist = full_history(&c, w.id).await;
    assert_eq!(
        hist.iter().map(|v| v.ov).collect::<Vec<_>>(),
        (0..=16).collect::<Vec<_>>()
    );
    // Deletes queue behind the others too: the last writer of the record deletes it.
    let del = tokio::spawn({
        let c = c.clone();
        async move { c.delete(w.id, WriteOptions::new()).await }
    });
    let upd = c
        .enrich(w.id, &json!({"late": true}), EnrichOptions::new())
        .await;
    let del = del.await.unwrap();
    assert!(del.is_ok(), "delete lost a race in process: {del:?}");
    // The enrich ran before the delete (then it committed) or after it (then the record was
    // gone): never a lost race.
    if let Err(e) = &upd {
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }
}

/// Many writers on one collection: every cv is unique and each record's cvs rise with ov.
pub async fn concurrent_writers_get_unique_cvs(h: Harness) {
    let c = h.default_collection("busy").await;
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let c = c.clone();
            tokio::spawn(async move {
                let mut cvs = Vec::new();
                let w = c
                    .create(&json!({"t": t}), CreateOptions::new())
                    .await
                    .unwrap();
                cvs.push(w.cv);
                for i in 0..5 {
                    cvs.push(
                        c.update(w.id, &json!({"t": t, "i": i}), WriteOptions::new())
                            .await
                            .unwrap()
                            .cv,
                    );
                }
                (w.id, cvs)
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut max = 0;
    for t in tasks {
        let (id, cvs) = t.await.unwrap();
        for pair in cvs.windows(2) {
            assert!(pair[1] > pair[0], "cv must rise with ov on one record");
        }
        for cv in &cvs {
            assert!(seen.insert(*cv), "cv {cv} assigned twice");
            max = max.max(*cv);
        }
        let hist = full_history(&c, id).await;
        assert_eq!(hist.iter().map(|v| v.cv).collect::<Vec<_>>(), cvs);
    }
    assert_eq!(seen.len(), 48);
    assert!(h.stores.index.current_cv(c.name()).await.unwrap() >= max);
}

/// Two engines (as two processes would) on the same stores: optimistic concurrency holds
/// across them.
pub async fn two_engines_share_one_store(h: Harness) {
    let name = Harness::unique("shared");
    let cfg = chronos_core::CollectionConfig::new(name);
    let a = h.engine().collection(cfg.clone()).await.unwrap();
    let b = chronos_core::Engine::new(h.stores.clone())
        .collection(cfg)
        .await
        .unwrap();
    let w = a
        .create(&json!({"hits": []}), CreateOptions::new())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            tokio::spawn(append_hit(
                if i % 2 == 0 { a.clone() } else { b.clone() },
                w.id,
                i,
            ))
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let r = b
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.system.ov, 8);
    assert_all_hits(&data(&r), 8);
}

/// A writer that loses a race at either step of its commit — another writer takes its ov
/// just before the precommit, or between precommit and commit — leaves no payload behind:
/// with `expected_ov` it gets `Conflict`, without it retries and lands on top.
pub async fn lost_races_leave_no_payload(h: Harness) {
    use crate::fault::{faulty, FaultPlan};
    let plan = FaultPlan::new();
    let cfg = CollectionConfig::new(Harness::unique("race"));
    let racer = h.engine().collection(cfg.clone()).await.unwrap();
    let c = chronos_core::Engine::new(faulty(&h.stores, &plan))
        .collection(cfg)
        .await
        .unwrap();
    let id = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap()
        .id;
    let mut n = 0;
    for step in ["precommit", "commit_prepared"] {
        for expected in [true, false] {
            n += 1;
            let (r, theirs) = (racer.clone(), n);
            plan.interleave_before(step, async move {
                r.update(
                    id,
                    &json!({"n": theirs, "by": "racer"}),
                    WriteOptions::new(),
                )
                .await
                .expect("racer update");
            });
            let cur = c.get_latest(id, ReadOptions::new()).await.unwrap().unwrap();
            let opts = if expected {
                WriteOptions::new().expected_ov(cur.system.ov)
            } else {
                WriteOptions::new()
            };
            let mine = c.update(id, &json!({"n": n, "by": "me"}), opts).await;
            if expected {
                let e = mine.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Conflict, "{step}: {e}");
            } else {
                n += 1;
                let w = mine.unwrap();
                let latest = c.get_latest(id, ReadOptions::new()).await.unwrap().unwrap();
                assert_eq!(latest.system.ov, w.ov, "{step}");
                assert_eq!(data(&latest)["by"], "me", "{step}");
            }
            let history = full_history(&c, id).await;
            let keys = super::blob_keys(&h, &c).await;
            assert_eq!(
                keys.len(),
                history.len(),
                "{step} (expected_ov: {expected}): one payload per version, none left over: {keys:?}"
            );
        }
    }
    assert_eq!(full_history(&c, id).await.len(), 7);
}
