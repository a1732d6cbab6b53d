//! The spool end to end on the in-memory backend with injected faults: writes queue only
//! when the store is unavailable, replay applies each exactly once and in order per record,
//! dead letters, retry, cancel, restart, a full spool.

mod common;

use std::time::Duration;

use chronos_core::{
    CreateOptions, EnrichOptions, ErrorKind, HistoryOptions, ItemId, Op, WriteOptions,
};
use chronos_fallback::{OpKind, Outcome, Settings, Spool};
use chronos_testkit::fault::{FaultMode, FaultPlan};
use common::*;
use serde_json::json;

fn queued(o: &Outcome) -> &chronos_fallback::Queued {
    match o {
        Outcome::Queued(q) => q,
        Outcome::Committed(r) => panic!("committed, not queued: {r:?}"),
    }
}

async fn ops(c: &chronos_core::Collection, id: ItemId) -> Vec<Op> {
    c.history(id, HistoryOptions::default())
        .await
        .unwrap()
        .versions
        .iter()
        .map(|v| v.op)
        .collect()
}

#[tokio::test]
async fn writes_queue_while_the_store_is_down_and_replay_once_in_order() {
    let Fixture {
        plan,
        c,
        spool,
        dir: _dir,
    } = fixture().await;
    let w = spool.collection("main", "users");

    let up = w
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    let id = up.committed().expect("store up: committed").id;

    plan.fail_every("put_if_absent", FaultMode::Before);
    let u = w
        .update(id, &json!({"n": 1}), WriteOptions::new())
        .await
        .unwrap();
    assert!(queued(&u).reason.contains("UNAVAILABLE"), "{u:?}");
    let e = w
        .enrich(id, &json!({"m": 2}), EnrichOptions::new())
        .await
        .unwrap();
    assert!(
        queued(&e).reason.contains("queued"),
        "goes behind the update: {e:?}"
    );
    let d = w.delete(id, WriteOptions::new()).await.unwrap();
    queued(&d);
    let fresh = w
        .create(&json!({"new": true}), CreateOptions::new().actor("ada"))
        .await
        .unwrap();
    let fresh_id = queued(&fresh).id;
    assert_eq!(spool.stats().pending, 4);
    let kinds: Vec<OpKind> = spool.pending(None, 10).iter().map(|p| p.op.kind).collect();
    assert_eq!(
        kinds,
        [
            OpKind::Update,
            OpKind::Enrich,
            OpKind::Delete,
            OpKind::Create
        ]
    );
    // Still down: replays fail and wait, nothing is lost or applied.
    tokio::time::sleep(Duration::from_millis(120)).await;
    spool.replay_due().await.unwrap();
    assert_eq!(spool.stats().pending, 4);
    assert_eq!(ops(&c, id).await, [Op::Create]);

    plan.clear();
    drain(&spool).await;
    assert_eq!(
        ops(&c, id).await,
        [Op::Create, Op::Update, Op::Update, Op::Delete]
    );
    let h = c.history(id, HistoryOptions::default()).await.unwrap();
    assert_eq!(h.versions.len(), 4, "each operation exactly once");
    assert_eq!(ops(&c, fresh_id).await, [Op::Create]);
    let rec = c
        .get_version(fresh_id, 0, Default::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.data, json!({"new": true}).as_object().unwrap().clone());
    let s = spool.stats();
    assert_eq!(
        (s.pending, s.queued, s.replayed, s.found_committed),
        (0, 4, 4, 0),
        "{s:?}"
    );
    // Nothing more to do.
    let r = spool.replay_due().await.unwrap();
    assert_eq!(r.applied + r.found_committed + r.dead_lettered, 0);
}

/// A commit whose acknowledgement is lost, and whose read-back fails too: the write is
/// queued with an unknown outcome; the replay finds its version instead of writing another.
async fn lost_ack_case(expected_ov: Option<u64>) {
    let Fixture {
        plan,
        c,
        spool,
        dir: _dir,
    } = fixture().await;
    let w = spool.collection("main", "users");
    let id = w
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap()
        .id();

    plan.fail_op("commit_prepared", FaultMode::After);
    let p2 = plan.clone();
    plan.interleave_before("version", async move {
        p2.fail_every("version", FaultMode::Before)
    });
    let opts = WriteOptions {
        expected_ov,
        ..WriteOptions::new()
    };
    let out = w.update(id, &json!({"n": 1}), opts).await.unwrap();
    assert_eq!(plan.fired(), Some("version"), "the read-back failed");
    let q = queued(&out).clone();
    plan.clear();
    assert_eq!(
        c.history(id, HistoryOptions::default())
            .await
            .unwrap()
            .versions
            .len(),
        2,
        "the lost acknowledgement's commit landed"
    );
    drain(&spool).await;
    let h = c.history(id, HistoryOptions::default()).await.unwrap();
    assert_eq!(
        h.versions.len(),
        2,
        "not applied a second time: {:?}",
        h.versions
    );
    let s = spool.stats();
    assert_eq!(
        (s.replayed, s.found_committed, s.dead_letters),
        (0, 1, 0),
        "{s:?}"
    );
    assert!(spool.dead_letters(None, 10).is_empty());
    // Its version names its key.
    let found = c
        .find_committed(id, &q.op_id, chronos_core::Timestamp::MIN)
        .await
        .unwrap();
    assert_eq!(found.map(|r| r.ov), Some(1));
}

#[tokio::test]
async fn a_lost_acknowledgement_is_found_not_applied_twice() {
    lost_ack_case(None).await;
}

#[tokio::test]
async fn a_replayed_update_with_expected_ov_recognises_its_own_commit() {
    lost_ack_case(Some(0)).await;
}

#[tokio::test]
async fn errors_retrying_cannot_fix_are_returned_not_queued() {
    let Fixture {
        plan,
        spool,
        dir: _dir,
        ..
    } = fixture().await;
    let w = spool.collection("main", "users");
    let e = w
        .create(&json!({"_system": 1}), CreateOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    let e = w
        .update(ItemId::generate(), &json!({"a": 1}), WriteOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = w
        .enrich(ItemId::generate(), &json!([]), EnrichOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    let id = w
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap()
        .id();
    let e = w
        .update(id, &json!({"n": 1}), WriteOptions::new().expected_ov(7))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    // Validation happens before queueing too: a bad payload is never queued while down.
    plan.fail_every("put_if_absent", FaultMode::Before);
    let e = w
        .update(id, &json!({"_id": 1}), WriteOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(spool.stats().queued, 0);
}

#[tokio::test]
async fn attempts_run_out_into_dead_letters_which_can_be_retried_or_cancelled() {
    let plan = FaultPlan::new();
    let c = collection(&plan).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(
        Settings {
            max_retries: 3,
            ..settings(dir.path())
        },
        std::sync::Arc::new(One(c.clone())),
    )
    .unwrap();
    let w = spool.collection("main", "users");
    plan.fail_every("put_if_absent", FaultMode::Before);
    let a = queued(
        &w.create(&json!({"a": 1}), CreateOptions::new())
            .await
            .unwrap(),
    )
    .clone();
    let b = queued(
        &w.create(&json!({"b": 1}), CreateOptions::new())
            .await
            .unwrap(),
    )
    .clone();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while spool.stats().dead_letters < 2 {
        assert!(std::time::Instant::now() < until);
        spool.replay_due().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dead = spool.dead_letters(None, 10);
    assert_eq!(dead.len(), 2);
    assert!(
        dead[0].error.contains("gave up after 3 attempts"),
        "{}",
        dead[0].error
    );
    assert!(
        dead[0].error.contains("injected fault"),
        "{}",
        dead[0].error
    );
    assert_eq!(dead[0].attempts, 2, "attempts before the last");

    plan.clear();
    spool.retry(&a.op_id).await.unwrap();
    spool.cancel(&b.op_id).await.unwrap();
    let e = spool.cancel(&b.op_id).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains(b.op_id.as_str()), "{e}");
    drain(&spool).await;
    assert_eq!(ops(&c, a.id).await, [Op::Create]);
    assert_eq!(
        c.history(b.id, HistoryOptions::default())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound,
        "a cancelled operation is never applied"
    );
    assert_eq!(spool.stats().dead_letters, 0);
    assert_eq!(spool.retry_all().await.unwrap(), 0);
}

#[tokio::test]
async fn a_conflict_at_replay_is_a_dead_letter_at_once() {
    let Fixture {
        plan,
        c,
        spool,
        dir: _dir,
    } = fixture().await;
    let w = spool.collection("main", "users");
    let id = w
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap()
        .id();
    plan.fail_every("put_if_absent", FaultMode::Before);
    queued(
        &w.update(id, &json!({"n": 1}), WriteOptions::new().expected_ov(0))
            .await
            .unwrap(),
    );
    plan.clear();
    // Someone else wins ov 1 meanwhile.
    c.update(id, &json!({"n": 99}), WriteOptions::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let r = spool.replay_due().await.unwrap();
    assert_eq!(r.dead_lettered, 1, "{r:?}");
    let dead = spool.dead_letters(None, 10);
    assert!(dead[0].error.starts_with("CONFLICT"), "{}", dead[0].error);
    assert_eq!(ops(&c, id).await.len(), 2);
}

#[tokio::test]
async fn a_restart_keeps_pending_operations_and_dead_letters() {
    let plan = FaultPlan::new();
    let c = collection(&plan).await;
    let dir = tempfile::tempdir().unwrap();
    let ids = {
        let spool = spool(dir.path(), &c);
        let w = spool.collection("main", "users");
        plan.fail_every("put_if_absent", FaultMode::Before);
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(
                queued(
                    &w.create(&json!({"i": i}), CreateOptions::new())
                        .await
                        .unwrap(),
                )
                .clone(),
            );
        }
        spool.cancel(&ids[3].op_id).await.unwrap();
        ids
    };
    plan.clear();
    let spool = spool(dir.path(), &c);
    assert_eq!(spool.stats().pending, 19);
    let order: Vec<_> = spool
        .pending(None, 100)
        .into_iter()
        .map(|p| p.op.op_id)
        .collect();
    let want: Vec<_> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, q)| q.op_id.clone())
        .collect();
    assert_eq!(order, want, "spool order survives the restart");
    // Paging.
    let first = spool.pending(None, 5);
    let next = spool.pending(Some(first[4].op.seq), 5);
    assert_eq!(next[0].op.op_id, want[5]);
    drain(&spool).await;
    for (i, q) in ids.iter().enumerate() {
        let h = c.history(q.id, HistoryOptions::default()).await;
        if i == 3 {
            assert!(h.is_err());
        } else {
            assert_eq!(h.unwrap().versions.len(), 1);
        }
    }
    drop(spool);
    let again = common::spool(dir.path(), &c);
    assert_eq!(
        again.stats().pending,
        0,
        "done operations stay done after a restart"
    );
}

#[tokio::test]
async fn a_full_spool_refuses_the_write_and_drops_nothing() {
    let plan = FaultPlan::new();
    let c = collection(&plan).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(
        Settings {
            max_bytes: chronos_fallback::config::MIN_SPOOL_BYTES,
            ..settings(dir.path())
        },
        std::sync::Arc::new(One(c.clone())),
    )
    .unwrap();
    let w = spool.collection("main", "users");
    plan.fail_every("put_if_absent", FaultMode::Before);
    let big = "x".repeat(8 * 1024);
    let mut accepted = Vec::new();
    let err = loop {
        match w.create(&json!({"big": big}), CreateOptions::new()).await {
            Ok(o) => accepted.push(queued(&o).id),
            Err(e) => break e,
        }
        assert!(accepted.len() < 100);
    };
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("maxSpoolBytes"), "{err}");
    assert!(accepted.len() >= 5, "{}", accepted.len());
    assert_eq!(spool.stats().pending, accepted.len());
    plan.clear();
    drain(&spool).await;
    for id in &accepted {
        assert_eq!(ops(&c, *id).await, [Op::Create]);
    }
    // Space is reclaimed: queueing works again.
    plan.fail_every("put_if_absent", FaultMode::Before);
    queued(
        &w.create(&json!({"big": big}), CreateOptions::new())
            .await
            .unwrap(),
    );
}

#[tokio::test]
async fn the_background_replayer_drains_the_spool() {
    let Fixture {
        plan,
        c,
        spool,
        dir: _dir,
    } = fixture().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bg = {
        let s = spool.clone();
        tokio::spawn(async move {
            s.run_replayer(async {
                let _ = stopped.await;
            })
            .await
        })
    };
    plan.fail_every("put_if_absent", FaultMode::Before);
    let w = spool.collection("main", "users");
    let q = queued(
        &w.create(&json!({"a": 1}), CreateOptions::new())
            .await
            .unwrap(),
    )
    .clone();
    plan.clear();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while spool.stats().pending > 0 {
        assert!(
            std::time::Instant::now() < until,
            "the replayer did not run"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ops(&c, q.id).await, [Op::Create]);
    stop.send(()).unwrap();
    bg.await.unwrap();
}
