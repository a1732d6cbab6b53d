//! Cases: append-only restore of one record and of a whole collection (invariant 9).

use chronos_core::{
    CollectionRestoreOptions, CreateOptions, ErrorKind, ItemId, Op, Point, ReadOptions,
    RestoreAction, RestoreTarget, WriteOptions,
};
use serde_json::json;
use std::time::Duration;

use super::{data, full_history, Harness};

/// Restore by ov or by time appends a RESTORE version (undeleting); bad targets are errors.
pub async fn restore_object_by_ov_and_time(h: Harness) {
    let c = h.default_collection("rest").await;
    let w0 = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    let w1 = c
        .update(w0.id, &json!({"n": 1}), WriteOptions::new())
        .await
        .unwrap();
    c.delete(w0.id, WriteOptions::new()).await.unwrap();
    let r = c
        .restore_object(
            w0.id,
            RestoreTarget::Ov(0),
            WriteOptions::new().actor("ops"),
        )
        .await
        .unwrap();
    assert_eq!((r.ov, r.op), (3, Op::Restore));
    let latest = c
        .get_latest(w0.id, ReadOptions::new())
        .await
        .unwrap()
        .expect("undeleted");
    assert_eq!(data(&latest), json!({"n": 0}));
    assert!(!latest.system.deleted);
    let r = c
        .restore_object(
            w0.id,
            RestoreTarget::At(w1.at),
            WriteOptions::new().expected_ov(3),
        )
        .await
        .unwrap();
    assert_eq!(r.ov, 4);
    assert_eq!(
        data(
            &c.get_latest(w0.id, ReadOptions::new())
                .await
                .unwrap()
                .unwrap()
        ),
        json!({"n": 1})
    );
    let ops: Vec<Op> = full_history(&c, w0.id).await.iter().map(|v| v.op).collect();
    assert_eq!(
        ops,
        [Op::Create, Op::Update, Op::Delete, Op::Restore, Op::Restore],
        "append-only"
    );

    let e = c
        .restore_object(w0.id, RestoreTarget::Ov(99), WriteOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let early = chronos_core::Timestamp::from_millisecond(w0.at.as_millisecond() - 1).unwrap();
    let e = c
        .restore_object(w0.id, RestoreTarget::At(early), WriteOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = c
        .restore_object(w0.id, RestoreTarget::Ov(2), WriteOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    assert_eq!(full_history(&c, w0.id).await.len(), 5);
}

/// Collection restore (by cv and by time): changed records go back, records created later are
/// deleted, deleted ones come back; a dry run writes nothing; history only grows; a second
/// run has nothing to do.
pub async fn restore_collection_returns_to_target(h: Harness) {
    let c = h.default_collection("rc").await;
    let a = c
        .create(&json!({"name": "a"}), CreateOptions::new())
        .await
        .unwrap();
    let b = c
        .create(&json!({"name": "b"}), CreateOptions::new())
        .await
        .unwrap();
    let u = c
        .create(&json!({"name": "untouched"}), CreateOptions::new())
        .await
        .unwrap();
    let gone = c
        .create(&json!({"name": "gone"}), CreateOptions::new())
        .await
        .unwrap();
    c.delete(gone.id, WriteOptions::new()).await.unwrap();
    let mark_cv = h.stores.index.current_cv(c.name()).await.unwrap();
    let mark_at = c
        .get_latest(gone.id, ReadOptions::new().include_deleted(true))
        .await
        .unwrap()
        .unwrap()
        .system
        .updated_at;
    // Later writes to other records must not share the mark's millisecond.
    tokio::time::sleep(Duration::from_millis(3)).await;

    c.update(a.id, &json!({"name": "a2"}), WriteOptions::new())
        .await
        .unwrap();
    c.delete(b.id, WriteOptions::new()).await.unwrap();
    let d = c
        .create(&json!({"name": "d"}), CreateOptions::new())
        .await
        .unwrap();
    let mut lengths_before = Vec::new();
    for id in [a.id, b.id, d.id] {
        lengths_before.push(full_history(&c, id).await.len());
    }

    let cv_before = h.stores.index.current_cv(c.name()).await.unwrap();
    let plan = c
        .restore_collection(
            Point::Cv(mark_cv),
            CollectionRestoreOptions::new().dry_run(true),
        )
        .await
        .unwrap();
    assert!(plan.dry_run && plan.applied.is_empty());
    assert_eq!(
        h.stores.index.current_cv(c.name()).await.unwrap(),
        cv_before,
        "dry run writes nothing"
    );
    let mut actions: Vec<(ItemId, RestoreAction)> =
        plan.planned.iter().map(|p| (p.id, p.action)).collect();
    actions.sort_by_key(|(id, _)| *id);
    let mut expected = vec![
        (a.id, RestoreAction::Restore { to_ov: 0 }),
        (b.id, RestoreAction::Restore { to_ov: 0 }),
        (d.id, RestoreAction::Delete),
    ];
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(actions, expected);

    let report = c
        .restore_collection(
            Point::Cv(mark_cv),
            CollectionRestoreOptions::new()
                .actor("ops")
                .reason("rollback"),
        )
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.applied.len(), 3);
    assert_eq!(
        data(
            &c.get_latest(a.id, ReadOptions::new())
                .await
                .unwrap()
                .unwrap()
        ),
        json!({"name": "a"})
    );
    assert_eq!(
        data(
            &c.get_latest(b.id, ReadOptions::new())
                .await
                .unwrap()
                .unwrap()
        ),
        json!({"name": "b"})
    );
    assert!(c
        .get_latest(d.id, ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    assert!(c
        .get_latest(gone.id, ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        c.get_latest(u.id, ReadOptions::new())
            .await
            .unwrap()
            .unwrap()
            .system
            .ov,
        0
    );
    for (id, before) in [a.id, b.id, d.id].iter().zip(lengths_before) {
        let hist = full_history(&c, *id).await;
        assert_eq!(
            hist.len(),
            before + 1,
            "restore appends exactly one version"
        );
        assert_eq!(hist.last().unwrap().actor.as_deref(), Some("ops"));
    }

    let again = c
        .restore_collection(
            Point::Cv(mark_cv),
            CollectionRestoreOptions::new().dry_run(true),
        )
        .await
        .unwrap();
    assert!(
        again.planned.is_empty(),
        "already at target: {:?}",
        again.planned
    );

    // By time: going back to `mark_at` is the same state, so nothing to do either.
    let by_time = c
        .restore_collection(Point::At(mark_at), CollectionRestoreOptions::new())
        .await
        .unwrap();
    assert!(by_time.planned.is_empty(), "{:?}", by_time.planned);
    // Back to before anything existed: every live record becomes deleted.
    let origin = chronos_core::Timestamp::from_millisecond(a.at.as_millisecond() - 1).unwrap();
    let wipe = c
        .restore_collection(Point::At(origin), CollectionRestoreOptions::new())
        .await
        .unwrap();
    assert!(wipe.failed.is_empty());
    assert_eq!(wipe.applied.len(), 3, "a, b and untouched are deleted");
    assert!(c
        .list_by_meta(chronos_core::ListOptions::new())
        .await
        .unwrap()
        .items
        .is_empty());
    let ops: Vec<Op> = full_history(&c, a.id).await.iter().map(|v| v.op).collect();
    assert_eq!(ops, [Op::Create, Op::Update, Op::Restore, Op::Delete]);
}

/// Only one collection restore runs at a time; a target beyond the current cv is invalid.
pub async fn restore_collection_is_exclusive(h: Harness) {
    let c = h.default_collection("rcx").await;
    c.create(&json!({"a": 1}), CreateOptions::new())
        .await
        .unwrap();
    let lease = h
        .stores
        .lock
        .try_acquire(
            &format!("{}:restore-collection", c.name()),
            Duration::from_secs(60),
        )
        .await
        .unwrap()
        .expect("lease");
    let e = c
        .restore_collection(Point::Cv(0), CollectionRestoreOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(h.stores.lock.release(&lease).await.unwrap());
    let r = c
        .restore_collection(Point::Cv(0), CollectionRestoreOptions::new())
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 1);
    let e = c
        .restore_collection(Point::Cv(999), CollectionRestoreOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    // The lease is released after each run.
    c.restore_collection(Point::Cv(1), CollectionRestoreOptions::new().dry_run(true))
        .await
        .unwrap();
}

/// The restore's lease is short and renewed while it runs: a restore slower than its lease
/// still completes; one whose holder dies mid-way (its future dropped, its lease left
/// behind) blocks others only until the lease lapses — a dry run not at all — and a re-run
/// then finishes it, every record back at the target.
pub async fn restore_collection_survives_its_holder_dying(h: Harness) {
    use crate::fault::{faulty, FaultPlan};
    let c = h.default_collection("resume").await;
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(
            c.create(&json!({"n": n}), CreateOptions::new())
                .await
                .unwrap()
                .id,
        );
    }
    let mark = h.stores.index.current_cv(c.name()).await.unwrap();
    let scribble = |round: i64| {
        let (c, ids) = (c.clone(), ids.clone());
        async move {
            for id in ids {
                c.update(id, &json!({"n": -round}), WriteOptions::new())
                    .await
                    .unwrap();
            }
        }
    };
    let plan = FaultPlan::new();
    let slow = chronos_core::Engine::new(faulty(&h.stores, &plan))
        .collection(c.config().clone())
        .await
        .unwrap();
    // Short enough to wait out; long enough that a renewal every third of it survives a
    // loaded machine.
    let ttl = Duration::from_millis(1000);
    let opts = || CollectionRestoreOptions::new().lease_ttl(ttl);

    // Slower than its lease (12 writes × 200 ms > 1 s): the heartbeat keeps it.
    scribble(1).await;
    plan.add_latency("put_if_absent", Duration::from_millis(200));
    let r = slow
        .restore_collection(Point::Cv(mark), opts())
        .await
        .unwrap();
    assert_eq!((r.applied.len(), r.failed.len()), (12, 0));

    // Dies mid-way: dropped after a few writes, its lease left to lapse.
    scribble(2).await;
    let cut = tokio::time::timeout(
        Duration::from_millis(1200),
        slow.restore_collection(Point::Cv(mark), opts()),
    )
    .await;
    assert!(
        cut.is_err(),
        "the restore finished before it could be interrupted"
    );
    plan.clear_latency();
    let e = c
        .restore_collection(Point::Cv(mark), opts())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    let dry = c
        .restore_collection(Point::Cv(mark), opts().dry_run(true))
        .await
        .unwrap();
    assert!(!dry.planned.is_empty() && dry.planned.len() <= 12);
    tokio::time::sleep(ttl * 2).await;
    let r = c.restore_collection(Point::Cv(mark), opts()).await.unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(
        r.planned.len(),
        dry.planned.len(),
        "the re-run does what was left"
    );
    for (n, id) in ids.iter().enumerate() {
        let got = c
            .get_latest(*id, ReadOptions::new())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.data["n"], json!(n), "record {id}");
    }
}
