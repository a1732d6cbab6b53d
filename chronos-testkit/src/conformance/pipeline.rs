//! Cases: the commit pipeline's seams — conflict causes callers can tell apart, and the
//! commit observer called exactly once per committed version (also when a lost
//! acknowledgement is resolved as committed), never for a write that did not commit.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chronos_core::{
    Collection, CollectionConfig, CommitEvent, CommitObserver, ConflictCause, CreateOptions,
    Engine, EnrichOptions, ErrorKind, ItemId, Op, RestoreTarget, WriteOptions,
};
use serde_json::json;

use super::Harness;
use crate::fault::{faulty, FaultMode, FaultPlan};

/// What the observer keeps of an event: id, ov, cv, op and the data's `n`.
type Seen = (ItemId, u64, u64, Op, String);

/// Records every event it is shown.
#[derive(Debug, Default)]
struct Recorder {
    seen: Mutex<Vec<Seen>>,
    /// Fail every call (the write must stand anyway).
    fail: bool,
}

#[async_trait]
impl CommitObserver for Recorder {
    async fn committed(&self, e: CommitEvent<'_>) -> chronos_core::Result<()> {
        let name = e.data.get("n").map(|v| v.to_string()).unwrap_or_default();
        self.seen
            .lock()
            .unwrap()
            .push((e.id, e.ov, e.cv, e.op, name));
        if self.fail {
            return Err(chronos_core::Error::unavailable("observer down"));
        }
        Ok(())
    }
}

/// `StaleExpectedOv` before anything is written, `LostRace` when another writer takes the
/// ov during the write, `RetriesExhausted` when a retrying write runs out of attempts.
pub async fn conflict_causes_are_distinct(h: Harness) {
    let c = h.default_collection("causes").await;
    let w = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    let stale = c
        .update(w.id, &json!({"n": 1}), WriteOptions::new().expected_ov(5))
        .await
        .unwrap_err();
    assert_eq!(stale.kind(), ErrorKind::Conflict, "{stale}");
    assert_eq!(
        stale.conflict_cause(),
        Some(ConflictCause::StaleExpectedOv),
        "{stale}"
    );
    assert_eq!(stale.context("cause"), Some("stale_expected_ov"), "{stale}");

    // A competitor commits the next ov just before our commit reaches the store.
    let (pinned, plan) = racer(&h, &c, 1000).await;
    rival_before_commit(&plan, &c, w.id, "rival");
    let cur = c
        .get_latest(w.id, Default::default())
        .await
        .unwrap()
        .unwrap();
    let lost = pinned
        .update(
            w.id,
            &json!({"n": "pinned"}),
            WriteOptions::new().expected_ov(cur.system.ov),
        )
        .await
        .unwrap_err();
    assert_eq!(lost.kind(), ErrorKind::Conflict, "{lost}");
    assert_eq!(
        lost.conflict_cause(),
        Some(ConflictCause::LostRace),
        "{lost}"
    );

    // Without expected_ov a lost race is retried; with no retries left it is exhausted.
    let (impatient, plan) = racer(&h, &c, 0).await;
    let cur = c
        .get_latest(w.id, Default::default())
        .await
        .unwrap()
        .unwrap();
    rival_before_commit(&plan, &c, w.id, "rival 2");
    let exhausted = impatient
        .update(w.id, &json!({"n": "late"}), WriteOptions::new())
        .await
        .unwrap_err();
    assert_eq!(
        exhausted.conflict_cause(),
        Some(ConflictCause::RetriesExhausted),
        "{exhausted}"
    );
    assert_eq!(exhausted.context("attempts"), Some("1"), "{exhausted}");
    let after = c
        .get_latest(w.id, Default::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.system.ov,
        cur.system.ov + 1,
        "only the rival committed"
    );
    assert_eq!(after.data["n"], "rival 2");

    // With retries a lost race is invisible: the write lands after the rival's.
    let (retrying, plan) = racer(&h, &c, 1000).await;
    rival_before_commit(&plan, &c, w.id, "rival 3");
    let ok = retrying
        .update(w.id, &json!({"n": "patient"}), WriteOptions::new())
        .await
        .unwrap();
    assert_eq!(ok.ov, after.system.ov + 2);
}

/// A second handle on `c`'s collection through fault wrappers, with `retries`.
async fn racer(h: &Harness, c: &Collection, retries: usize) -> (Collection, FaultPlan) {
    let plan = FaultPlan::new();
    let cfg = c.config().clone().max_write_retries(retries);
    let racer = Engine::new(faulty(&h.stores, &plan))
        .collection(cfg)
        .await
        .unwrap();
    (racer, plan)
}

/// Makes a rival update of `id` through `c` commit right before the plan's next commit.
fn rival_before_commit(plan: &FaultPlan, c: &Collection, id: ItemId, n: &'static str) {
    let rival = c.clone();
    plan.interleave_before("commit_prepared", async move {
        rival
            .update(id, &json!({ "n": n }), WriteOptions::new())
            .await
            .unwrap();
    });
}

/// Every committed version reaches the observer once, with its id, ov, cv and op; failed
/// writes never do; a failing observer fails no write; a lost acknowledgement resolved as
/// committed is reported once.
pub async fn commit_observer_sees_each_commit_once(h: Harness) {
    let rec = Arc::new(Recorder::default());
    let plan = FaultPlan::new();
    let cfg = CollectionConfig::new(Harness::unique("observed"));
    let c = Engine::new(faulty(&h.stores, &plan))
        .observe(rec.clone())
        .collection(cfg.clone())
        .await
        .unwrap();
    let mut expected = Vec::new();
    let mut push = |w: chronos_core::WriteResult, n: &str| {
        expected.push((w.id, w.ov, w.cv, w.op, n.to_string()));
    };
    let w = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    push(w, "0");
    push(
        c.update(w.id, &json!({"n": 1}), WriteOptions::new())
            .await
            .unwrap(),
        "1",
    );
    push(
        c.enrich(w.id, &json!({"e": 1}), EnrichOptions::new())
            .await
            .unwrap(),
        "1",
    );
    // Failed writes: a stale expected_ov, a commit that never reached the store.
    c.update(w.id, &json!({"n": 9}), WriteOptions::new().expected_ov(0))
        .await
        .unwrap_err();
    plan.fail_op("commit_prepared", FaultMode::Before);
    c.update(w.id, &json!({"n": 9}), WriteOptions::new())
        .await
        .unwrap_err();
    // A lost acknowledgement: committed, resolved by reading back, reported once.
    plan.fail_op("commit_prepared", FaultMode::After);
    push(
        c.update(w.id, &json!({"n": 2}), WriteOptions::new())
            .await
            .unwrap(),
        "2",
    );
    push(c.delete(w.id, WriteOptions::new()).await.unwrap(), "2");
    push(
        c.restore_object(w.id, RestoreTarget::Ov(0), WriteOptions::new())
            .await
            .unwrap(),
        "0",
    );
    assert_eq!(*rec.seen.lock().unwrap(), expected);
    let ops: Vec<Op> = expected.iter().map(|e| e.3).collect();
    assert_eq!(
        ops,
        [
            Op::Create,
            Op::Update,
            Op::Update,
            Op::Update,
            Op::Delete,
            Op::Restore
        ]
    );

    // An observer that fails does not fail the write.
    let failing = Arc::new(Recorder {
        fail: true,
        ..Default::default()
    });
    let c2 = Engine::new(h.stores.clone())
        .observe(failing.clone())
        .collection(cfg)
        .await
        .unwrap();
    let w2 = c2
        .update(w.id, &json!({"n": 3}), WriteOptions::new())
        .await
        .unwrap();
    assert_eq!(failing.seen.lock().unwrap().len(), 1);
    let latest = c2
        .get_latest(w.id, Default::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.system.ov, w2.ov);
}
