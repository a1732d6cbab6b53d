//! The spool's invariant as a property: under any sequence of writes and store faults
//! (outages, lost acknowledgements, failed read-backs), once the store is back and the spool
//! drained, every write the caller was told is committed or queued is in the record's
//! history exactly once (unless it became a dead letter: then not at all), in the order the
//! caller issued them per record; a write that returned an error is there at most once.

mod common;

use std::collections::HashMap;

use chronos_core::{
    CreateOptions, EnrichOptions, HistoryOptions, IdempotencyKey, ItemId, WriteOptions,
};
use chronos_fallback::Outcome;
use chronos_testkit::fault::{FaultMode, FaultPlan};
use common::*;
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    /// The blob store refuses puts until the next `Heal` (an outage).
    Outage,
    Heal,
    /// The commit lands but its acknowledgement is lost (the engine reads it back).
    LostAck,
    /// The commit lands, its acknowledgement is lost and the read-back fails too.
    LostAckUnknown,
    /// The head read fails (nothing reaches the store).
    HeadDown,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Update,
    Enrich,
    Delete,
    Create,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::None),
        1 => Just(Fault::Outage),
        1 => Just(Fault::Heal),
        1 => Just(Fault::LostAck),
        1 => Just(Fault::LostAckUnknown),
        1 => Just(Fault::HeadDown),
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![4 => Just(Kind::Update), 2 => Just(Kind::Enrich), 1 => Just(Kind::Delete), 1 => Just(Kind::Create)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]
    #[test]
    fn every_acknowledged_write_lands_exactly_once_in_order(
        steps in proptest::collection::vec((0usize..3, kind(), fault()), 1..24)
    ) {
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
            let plan = FaultPlan::new();
            let c = collection(&plan).await;
            let dir = tempfile::tempdir().unwrap();
            let spool = spool(dir.path(), &c);
            let w = spool.collection("main", "users");
            let mut records: Vec<ItemId> = Vec::new();
            // (record, key) of every write that returned Ok, in issue order; and of errors.
            let mut acked: Vec<(ItemId, IdempotencyKey)> = Vec::new();
            let mut failed: Vec<(ItemId, IdempotencyKey)> = Vec::new();
            for _ in 0..3 {
                let key = IdempotencyKey::generate();
                let o = w.create(&json!({"n": 0}), CreateOptions::new().idempotency_key(key.clone())).await.unwrap();
                records.push(o.id());
                acked.push((o.id(), key));
            }
            let mut outage = false;
            for (n, (r, k, f)) in steps.iter().enumerate() {
                match f {
                    Fault::Outage => outage = true,
                    Fault::Heal => outage = false,
                    _ => {}
                }
                plan.clear();
                if outage {
                    plan.fail_every("put_if_absent", FaultMode::Before);
                }
                match f {
                    Fault::LostAck if !outage => plan.fail_op("commit_prepared", FaultMode::After),
                    Fault::LostAckUnknown if !outage => {
                        plan.fail_op("commit_prepared", FaultMode::After);
                        let p = plan.clone();
                        plan.interleave_before("version", async move { p.fail_every("version", FaultMode::Before) });
                    }
                    Fault::HeadDown if !outage => plan.fail_op("head", FaultMode::Before),
                    _ => {}
                }
                let key = IdempotencyKey::generate();
                let id = match k { Kind::Create => ItemId::generate(), _ => records[*r] };
                let res = match k {
                    Kind::Update => w.update(id, &json!({"n": n}), WriteOptions::new().idempotency_key(key.clone())).await,
                    Kind::Enrich => w.enrich(id, &json!({"e": n}), EnrichOptions::new().idempotency_key(key.clone())).await,
                    Kind::Delete => w.delete(id, WriteOptions::new().idempotency_key(key.clone())).await,
                    Kind::Create => w.create(&json!({"n": n}), CreateOptions::new().id(id).idempotency_key(key.clone())).await,
                };
                if matches!(k, Kind::Create) {
                    records.push(id);
                }
                match res {
                    Ok(Outcome::Committed(_) | Outcome::Queued(_)) => acked.push((id, key)),
                    Err(_) => failed.push((id, key)),
                }
            }
            plan.clear();
            drain(&spool).await;
            let dead: Vec<IdempotencyKey> = spool.dead_letters(None, 1000).into_iter().map(|d| d.op.op_id).collect();
            // Which keys each record's history holds, in order.
            let mut history: HashMap<ItemId, Vec<String>> = HashMap::new();
            for id in &records {
                if let Ok(h) = c.history(*id, HistoryOptions { limit: 1000, ..Default::default() }).await {
                    history.insert(*id, h.versions.iter().map(|v| v.blob_key.clone()).collect());
                }
            }
            let count = |id: &ItemId, key: &IdempotencyKey| {
                history.get(id).map_or(0, |keys| keys.iter().filter(|b| b.contains(key.as_str())).count())
            };
            for (id, key) in &acked {
                let want = usize::from(!dead.contains(key));
                prop_assert_eq!(count(id, key), want, "write {} on {}: dead letters {:?}", key, id, dead);
            }
            for (id, key) in &failed {
                prop_assert!(count(id, key) <= 1, "failed write {} landed twice", key);
            }
            // Per record, the acknowledged writes appear in the order they were issued.
            for id in &records {
                let Some(keys) = history.get(id) else { continue };
                let landed: Vec<&IdempotencyKey> = keys.iter().filter_map(|b| {
                    acked.iter().find(|(i, k)| i == id && b.contains(k.as_str())).map(|(_, k)| k)
                }).collect();
                let issued: Vec<&IdempotencyKey> = acked.iter()
                    .filter(|(i, k)| i == id && !dead.contains(k) && landed.contains(&k))
                    .map(|(_, k)| k).collect();
                prop_assert_eq!(landed, issued, "record {}", id);
            }
            Ok(())
        })?;
    }
}
