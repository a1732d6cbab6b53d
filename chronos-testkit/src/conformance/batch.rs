//! Cases: batched writes — `IndexStore::commit_many` directly, and `create_many` /
//! `update_many` through the engine. Each item keeps its own outcome.

use chronos_core::time::now_ms;
use chronos_core::{
    CollectionConfig, CreateOptions, ErrorKind, HeadAction, ItemId, Op, ReadOptions, WriteOptions,
};
use serde_json::json;

use super::contracts::{commit, version};
use super::Harness;

/// `commit_many` judges each commit as `commit` would: good ones land with unique,
/// increasing cvs; a conflicting or late one fails alone and leaves nothing.
pub async fn index_commit_many_contract(h: Harness) {
    let idx = &h.stores.index;
    let coll = Harness::unique("many");
    idx.prepare(&coll, &[]).await.unwrap();
    let t0 = now_ms().as_millisecond();
    let ids: Vec<ItemId> = (0..5).map(|_| ItemId::generate()).collect();
    // ids[1] already has ov 0, so its create conflicts; ids[3] is past its deadline.
    idx.commit(
        &coll,
        commit(version(ids[1], 0, Op::Create, t0), HeadAction::Upsert),
    )
    .await
    .unwrap();
    let before = idx.current_cv(&coll).await.unwrap();
    let mut batch: Vec<_> = ids
        .iter()
        .map(|id| commit(version(*id, 0, Op::Create, t0 + 1), HeadAction::Upsert))
        .collect();
    batch[3].not_after = Some(chronos_core::Timestamp::from_millisecond(t0 - 1).unwrap());
    let results = idx.commit_many(&coll, batch).await;
    assert_eq!(results.len(), 5);
    assert_eq!(results[1].as_ref().unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(
        results[3].as_ref().unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    let cvs: Vec<u64> = [0, 2, 4]
        .iter()
        .map(|&i| {
            *results[i]
                .as_ref()
                .unwrap_or_else(|e| panic!("item {i}: {e}"))
        })
        .collect();
    assert!(cvs.iter().all(|cv| *cv > before), "{cvs:?} after {before}");
    let mut sorted = cvs.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 3, "unique cvs: {cvs:?}");
    for (&i, cv) in [0usize, 2, 4].iter().zip(&cvs) {
        let head = idx
            .head(&coll, ids[i])
            .await
            .unwrap()
            .expect("committed head");
        assert_eq!((head.ov, head.cv), (0, *cv));
        assert_eq!(
            idx.versions(&coll, ids[i], None, 10).await.unwrap().len(),
            1
        );
    }
    // The refused ones changed nothing: ids[1] keeps its first version, ids[3] has none.
    let v1 = idx.versions(&coll, ids[1], None, 10).await.unwrap();
    assert_eq!(v1.len(), 1);
    assert!(v1[0].cv <= before);
    assert!(idx.head(&coll, ids[3]).await.unwrap().is_none());
    assert!(idx
        .versions(&coll, ids[3], None, 10)
        .await
        .unwrap()
        .is_empty());
    // The feed sees exactly the three new versions.
    let feed = idx.feed(&coll, before, 100).await.unwrap();
    assert_eq!(feed.versions.len(), 3, "{feed:?}");
    assert!(idx.commit_many(&coll, Vec::new()).await.is_empty());

    // Records far apart in history in one batch (stores may check them differently): a
    // record at ov 20 gets ov 21, a stale ov 5 of it in another batch conflicts, a new one
    // gets ov 0.
    let long = ItemId::generate();
    for ov in 0..=20 {
        let op = if ov == 0 { Op::Create } else { Op::Update };
        idx.commit(
            &coll,
            commit(
                version(long, ov, op, t0 + 10 + ov as i64),
                HeadAction::Upsert,
            ),
        )
        .await
        .unwrap();
    }
    let fresh = ItemId::generate();
    let results = idx
        .commit_many(
            &coll,
            vec![
                commit(version(long, 21, Op::Update, t0 + 40), HeadAction::Upsert),
                commit(version(fresh, 0, Op::Create, t0 + 40), HeadAction::Upsert),
            ],
        )
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let results = idx
        .commit_many(
            &coll,
            vec![
                commit(version(long, 5, Op::Update, t0 + 50), HeadAction::Upsert),
                commit(version(fresh, 1, Op::Update, t0 + 50), HeadAction::Upsert),
            ],
        )
        .await;
    assert_eq!(results[0].as_ref().unwrap_err().kind(), ErrorKind::Conflict);
    assert!(results[1].is_ok(), "{results:?}");
    assert_eq!(idx.head(&coll, long).await.unwrap().unwrap().ov, 21);
    assert_eq!(idx.head(&coll, fresh).await.unwrap().unwrap().ov, 1);
}

/// `create_many`: one result per item, in order; a bad item, a taken id and an id given twice
/// fail alone; batches longer than `batch_size` run in chunks and lose nothing.
pub async fn create_many_reports_each_item(h: Harness) {
    let c = h
        .collection(CollectionConfig::new("batch").batch_size(3))
        .await;
    let taken = c
        .create(&json!({"n": -1}), CreateOptions::new())
        .await
        .unwrap()
        .id;
    let twice = ItemId::generate();
    let items = vec![
        (json!({"n": 0}), CreateOptions::new()),
        (json!({"_id": "x"}), CreateOptions::new()),
        (json!({"n": 2}), CreateOptions::new().id(taken)),
        (json!({"n": 3}), CreateOptions::new().id(twice)),
        (json!({"n": 4}), CreateOptions::new().id(twice)),
        (json!([1, 2]), CreateOptions::new()),
    ]
    .into_iter()
    .chain((6..11).map(|n| (json!({"n": n}), CreateOptions::new())));
    let results = c.create_many(items).await;
    assert_eq!(results.len(), 11);
    let kind = |i: usize| results[i].as_ref().err().map(|e| e.kind());
    assert_eq!(kind(1), Some(ErrorKind::Validation));
    assert_eq!(kind(2), Some(ErrorKind::AlreadyExists));
    assert_eq!(kind(4), Some(ErrorKind::Validation));
    assert_eq!(kind(5), Some(ErrorKind::Validation));
    let e = results[4].as_ref().unwrap_err().to_string();
    assert!(e.contains("more than once") && e.contains("item=4"), "{e}");
    let mut cvs = Vec::new();
    for i in [0, 3, 6, 7, 8, 9, 10] {
        let w = results[i]
            .as_ref()
            .unwrap_or_else(|e| panic!("item {i}: {e}"));
        assert_eq!((w.ov, w.op), (0, Op::Create));
        let r = c
            .get_latest(w.id, ReadOptions::new())
            .await
            .unwrap()
            .expect("created");
        assert_eq!(r.data["n"], json!(i));
        cvs.push(w.cv);
    }
    let mut unique = cvs.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), cvs.len(), "unique cvs: {cvs:?}");
    // The taken id keeps its own content.
    let r = c
        .get_latest(taken, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.data["n"], json!(-1));
    // Nothing was left that a sweep must clean beyond the refused items' payloads: every
    // committed payload reads back, and verify finds no damage.
    let report = c.verify(|_| {}).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records, 8);
    let empty: Vec<(serde_json::Value, CreateOptions)> = Vec::new();
    assert!(c.create_many(empty).await.is_empty());
}

/// `update_many`: a stale `expected_ov`, a missing record, a deleted one and a record named
/// twice fail alone; the rest commit, each one version on.
pub async fn update_many_reports_each_item(h: Harness) {
    let c = h
        .collection(CollectionConfig::new("batchup").batch_size(4))
        .await;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(
            c.create(&json!({"n": n}), CreateOptions::new())
                .await
                .unwrap()
                .id,
        );
    }
    c.delete(ids[4], WriteOptions::new()).await.unwrap();
    let stale = WriteOptions {
        expected_ov: Some(7),
        ..WriteOptions::new()
    };
    let pinned = WriteOptions {
        expected_ov: Some(0),
        ..WriteOptions::new()
    };
    let results = c
        .update_many(vec![
            (ids[0], json!({"n": 100}), WriteOptions::new()),
            (ids[1], json!({"n": 101}), stale),
            (ItemId::generate(), json!({"n": 102}), WriteOptions::new()),
            (ids[4], json!({"n": 104}), WriteOptions::new()),
            (ids[2], json!({"n": 102}), pinned),
            (ids[0], json!({"n": 200}), WriteOptions::new()),
            (ids[5], json!({"n": 105}), WriteOptions::new()),
        ])
        .await;
    assert_eq!(results.len(), 7);
    let kind = |i: usize| results[i].as_ref().err().map(|e| e.kind());
    assert_eq!(kind(1), Some(ErrorKind::Conflict));
    assert_eq!(kind(2), Some(ErrorKind::NotFound));
    assert_eq!(kind(3), Some(ErrorKind::NotFound));
    assert_eq!(kind(5), Some(ErrorKind::Validation));
    for (i, id, n) in [(0, ids[0], 100), (4, ids[2], 102), (6, ids[5], 105)] {
        let w = results[i]
            .as_ref()
            .unwrap_or_else(|e| panic!("item {i}: {e}"));
        assert_eq!((w.id, w.ov, w.op), (id, 1, Op::Update));
        let r = c.get_latest(id, ReadOptions::new()).await.unwrap().unwrap();
        assert_eq!(r.data["n"], json!(n));
    }
    // The refused items changed nothing.
    let r = c
        .get_latest(ids[1], ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.system.ov, r.data["n"].clone()), (0, json!(1)));
    assert!(c
        .get_latest(ids[4], ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    assert!(c.verify(|_| {}).await.unwrap().is_ok());
}

/// `update_many` beside single writers on the same records: items that lose a race are
/// retried on their own, so every write lands exactly once.
pub async fn update_many_beside_writers_loses_nothing(h: Harness) {
    let c = h.default_collection("batchrace").await;
    let mut ids = Vec::new();
    for n in 0..8 {
        ids.push(
            c.create(&json!({"n": n}), CreateOptions::new())
                .await
                .unwrap()
                .id,
        );
    }
    let rounds = 5;
    let batcher = {
        let (c, ids) = (c.clone(), ids.clone());
        tokio::spawn(async move {
            for r in 0..rounds {
                let items = ids
                    .iter()
                    .map(|id| (*id, json!({"batch": r}), WriteOptions::new()));
                for res in c.update_many(items).await {
                    res.expect("a batch update without expected_ov lands");
                }
            }
        })
    };
    let single = {
        let (c, ids) = (c.clone(), ids.clone());
        tokio::spawn(async move {
            for r in 0..rounds {
                for id in &ids {
                    c.update(*id, &json!({"single": r}), WriteOptions::new())
                        .await
                        .expect("a single update lands");
                }
            }
        })
    };
    batcher.await.unwrap();
    single.await.unwrap();
    for id in ids {
        let h = c
            .history(id, chronos_core::HistoryOptions::default())
            .await
            .unwrap();
        assert_eq!(h.versions.len(), 1 + 2 * rounds, "record {id}");
    }
}
