//! Cases: the store traits' own contracts, exercised directly (no engine).

use std::time::Duration;

use bytes::Bytes;
use chronos_core::docs::{DocQuery, DocUpdate, Document};
use chronos_core::time::now_ms;
use chronos_core::{
    Commit, ErrorKind, Filter, HeadAction, ItemId, NewVersion, Op, Point, SortField, Timestamp,
};
use serde_json::{json, Map, Value};

use super::Harness;

pub(super) fn version(id: ItemId, ov: u64, op: Op, at_ms: i64) -> NewVersion {
    NewVersion {
        item_id: id,
        ov,
        op,
        at: chronos_core::Timestamp::from_millisecond(at_ms).unwrap(),
        actor: Some("t".into()),
        reason: None,
        blob_key: format!("k/{id}/v{ov}"),
        meta: json!({"ov": ov}).as_object().cloned().unwrap(),
        size: 1,
        checksum: String::new(),
        prev_ov: ov.checked_sub(1),
        chain: None,
    }
}

pub(super) fn commit(v: NewVersion, head: HeadAction) -> Commit {
    Commit::new(v, head)
}

/// `IndexStore::commit` appends `(id, ov)` only after `ov - 1`, atomically with the head.
pub async fn index_commit_contract(h: Harness) {
    let idx = &h.stores.index;
    let coll = Harness::unique("idx");
    idx.prepare(&coll, &["ov".to_string()]).await.unwrap();
    idx.prepare(&coll, &["ov".to_string()])
        .await
        .expect("prepare is idempotent");
    let id = ItemId::generate();
    let t0 = now_ms().as_millisecond();

    let e = idx
        .commit(
            &coll,
            commit(version(id, 1, Op::Update, t0), HeadAction::Upsert),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "ov 1 before ov 0: {e}");
    assert!(idx.head(&coll, id).await.unwrap().is_none());
    assert!(idx.versions(&coll, id, None, 10).await.unwrap().is_empty());
    assert_eq!(idx.current_cv(&coll).await.unwrap(), 0);

    // A commit past its deadline is refused and changes nothing, by `commit` and by
    // `commit_prepared` alike.
    let mut late = commit(version(id, 0, Op::Create, t0), HeadAction::Upsert);
    late.not_after = Some(Timestamp::from_millisecond(t0 - 1).unwrap());
    let e = idx.commit(&coll, late.clone()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "late commit: {e}");
    assert!(e.to_string().contains("deadline"), "{e}");
    let p = idx.precommit(&coll, &late).await.unwrap();
    let e = idx.commit_prepared(&coll, late, p).await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Unavailable,
        "late prepared commit: {e}"
    );
    assert!(idx.head(&coll, id).await.unwrap().is_none());
    assert!(idx.versions(&coll, id, None, 10).await.unwrap().is_empty());

    let mut first = commit(version(id, 0, Op::Create, t0), HeadAction::Upsert);
    first.not_after = Some(Timestamp::from_millisecond(t0 + 60_000).unwrap());
    first.lineage = chronos_core::Lineage {
        parent_id: Some("p-1".into()),
        parent_collection: Some("parents".into()),
        function_ids: vec!["f1".into(), "f2".into()],
        ..Default::default()
    };
    let cv0 = idx.commit(&coll, first.clone()).await.unwrap();
    assert_eq!(
        idx.head(&coll, id).await.unwrap().unwrap().lineage,
        Some(first.lineage),
        "the head keeps the commit's lineage"
    );
    let e = idx
        .commit(
            &coll,
            commit(version(id, 0, Op::Create, t0), HeadAction::Upsert),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "duplicate ov 0");
    let cv1 = idx
        .commit(
            &coll,
            commit(version(id, 1, Op::Update, t0 + 10), HeadAction::Upsert),
        )
        .await
        .unwrap();
    assert!(cv1 > cv0);
    let head = idx.head(&coll, id).await.unwrap().unwrap();
    assert_eq!(
        (head.ov, head.cv, head.blob_key.as_str()),
        (1, cv1, format!("k/{id}/v1").as_str())
    );
    assert_eq!(
        head.created_at.as_millisecond(),
        t0 + 10,
        "created_at comes from the commit"
    );
    assert_eq!(head.updated_at.as_millisecond(), t0 + 10);
    assert_eq!(head.meta, json!({"ov": 1}).as_object().cloned().unwrap());

    let at = |ms: i64| Point::At(chronos_core::Timestamp::from_millisecond(ms).unwrap());
    assert!(idx
        .version_at(&coll, id, at(t0 - 1))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        idx.version_at(&coll, id, at(t0 + 9))
            .await
            .unwrap()
            .unwrap()
            .ov,
        0
    );
    assert_eq!(
        idx.version_at(&coll, id, at(t0 + 10))
            .await
            .unwrap()
            .unwrap()
            .ov,
        1
    );
    assert_eq!(
        idx.version_at(&coll, id, Point::Cv(cv0))
            .await
            .unwrap()
            .unwrap()
            .ov,
        0
    );
    assert_eq!(idx.version(&coll, id, 1).await.unwrap().unwrap().cv, cv1);
    assert!(idx.version(&coll, id, 2).await.unwrap().is_none());

    // A hard delete removes the head but appends to the log.
    let cv2 = idx
        .commit(
            &coll,
            commit(version(id, 2, Op::Delete, t0 + 20), HeadAction::Remove),
        )
        .await
        .unwrap();
    assert!(idx.head(&coll, id).await.unwrap().is_none());
    assert_eq!(idx.versions(&coll, id, None, 10).await.unwrap().len(), 3);
    assert_eq!(idx.versions(&coll, id, Some(0), 1).await.unwrap()[0].ov, 1);
    // Pruning drops older entries in the same commit.
    let mut c3 = commit(version(id, 3, Op::Restore, t0 + 30), HeadAction::Upsert);
    c3.prune_below_ov = Some(3);
    let cv3 = idx.commit(&coll, c3).await.unwrap();
    assert_eq!(
        idx.versions(&coll, id, None, 10)
            .await
            .unwrap()
            .iter()
            .map(|v| v.ov)
            .collect::<Vec<_>>(),
        [3]
    );
    assert_eq!(idx.current_cv(&coll).await.unwrap(), cv3);
    assert!(cv3 > cv2);

    // changed_items pages distinct ids in ascending order.
    let mut ids: Vec<ItemId> = (0..5).map(|_| ItemId::generate()).collect();
    for other in &ids {
        idx.commit(
            &coll,
            commit(version(*other, 0, Op::Create, t0 + 40), HeadAction::Upsert),
        )
        .await
        .unwrap();
        idx.commit(
            &coll,
            commit(version(*other, 1, Op::Update, t0 + 41), HeadAction::Upsert),
        )
        .await
        .unwrap();
    }
    ids.sort();
    let first = idx
        .changed_items(&coll, Point::Cv(cv3), None, 3)
        .await
        .unwrap();
    let rest = idx
        .changed_items(&coll, Point::Cv(cv3), first.last().copied(), 3)
        .await
        .unwrap();
    assert_eq!([first, rest].concat(), ids);
    let by_time = idx
        .changed_items(&coll, at(t0 + 40), None, 100)
        .await
        .unwrap();
    assert_eq!(by_time, ids, "versions at t0+41 are after t0+40");
    assert!(idx
        .changed_items(&coll, at(t0 + 41), None, 100)
        .await
        .unwrap()
        .is_empty());
}

/// `IndexStore::precommit` + `commit_prepared`: the split commit keeps `commit`'s contract,
/// and a precommit alone changes nothing a reader can see.
pub async fn index_precommit_contract(h: Harness) {
    let idx = &h.stores.index;
    let coll = &Harness::unique("pre");
    idx.prepare(coll, &[]).await.unwrap();
    let id = ItemId::generate();
    let t0 = now_ms().as_millisecond();
    let split = |c: Commit| async move {
        let p = idx.precommit(coll, &c).await?;
        idx.commit_prepared(coll, c, p).await
    };
    let log = |id| async move {
        idx.versions(coll, id, None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|v| (v.ov, v.blob_key))
            .collect::<Vec<_>>()
    };

    // A gap is refused by one half or the other, and nothing shows.
    let gap = commit(version(id, 1, Op::Update, t0), HeadAction::Upsert);
    let e = split(gap).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "ov 1 before ov 0: {e}");
    assert!(idx.head(coll, id).await.unwrap().is_none());
    assert!(log(id).await.is_empty());

    let cv0 = split(commit(version(id, 0, Op::Create, t0), HeadAction::Upsert))
        .await
        .unwrap();
    assert_eq!(idx.head(coll, id).await.unwrap().unwrap().cv, cv0);

    // Two writers prepare ov 1; the first to commit wins, the other's prepared commit is
    // refused — the check is repeated (or enforced) at commit time.
    let mut a = commit(version(id, 1, Op::Update, t0 + 1), HeadAction::Upsert);
    a.version.blob_key = "k/a".into();
    let mut b = commit(version(id, 1, Op::Update, t0 + 2), HeadAction::Upsert);
    b.version.blob_key = "k/b".into();
    let pa = idx.precommit(coll, &a).await.unwrap();
    let pb = idx.precommit(coll, &b).await.unwrap();
    if let (Some(x), Some(y)) = (pa.reserved_cv, pb.reserved_cv) {
        assert_ne!(x, y, "reserved cvs are unique");
        assert!(
            x > cv0 && y > cv0,
            "reserved after a completed commit: above its cv"
        );
    }
    // A precommit alone is invisible.
    let head = idx.head(coll, id).await.unwrap().unwrap();
    assert_eq!((head.ov, head.cv), (0, cv0));
    assert_eq!(log(id).await.len(), 1);

    let cva = idx.commit_prepared(coll, a, pa).await.unwrap();
    assert!(cva > cv0);
    let e = idx.commit_prepared(coll, b, pb).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "stale precommit: {e}");
    let head = idx.head(coll, id).await.unwrap().unwrap();
    assert_eq!((head.ov, head.cv, head.blob_key.as_str()), (1, cva, "k/a"));
    assert_eq!(
        log(id).await,
        [(0, format!("k/{id}/v0")), (1, "k/a".into())]
    );

    // A precommit for an ov that is already taken is refused by one half or the other.
    let again = commit(version(id, 1, Op::Update, t0 + 3), HeadAction::Upsert);
    assert_eq!(split(again).await.unwrap_err().kind(), ErrorKind::Conflict);
    // And a removal goes through the split path like any commit.
    let cvd = split(commit(
        version(id, 2, Op::Delete, t0 + 4),
        HeadAction::Remove,
    ))
    .await
    .unwrap();
    assert!(cvd > cva);
    assert!(idx.head(coll, id).await.unwrap().is_none());
    assert_eq!(log(id).await.len(), 3);
    assert!(idx.current_cv(coll).await.unwrap() >= cvd);
}

/// `BlobStore`: create-only puts, exact gets, idempotent deletes, ordered prefix listing.
pub async fn blob_store_contract(h: Harness) {
    let b = &h.stores.blob;
    let p = Harness::unique("blobs");
    let k = format!("{p}/a/one.json");
    b.put_if_absent(&k, Bytes::from_static(b"first"))
        .await
        .unwrap();
    let e = b
        .put_if_absent(&k, Bytes::from_static(b"second"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert_eq!(b.get(&k).await.unwrap(), Bytes::from_static(b"first"));
    let missing = format!("{p}/missing");
    let e = b.get(&missing).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains(&missing), "{e}");
    b.delete(&missing)
        .await
        .expect("deleting a missing key is fine");

    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for i in 0..5 {
        b.put_if_absent(&format!("{p}/b/{i}"), Bytes::from(big.clone()))
            .await
            .unwrap();
    }
    b.put_if_absent(&format!("{p}x/outside"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(b.get(&format!("{p}/b/3")).await.unwrap().len(), big.len());
    let page1 = b.list(&format!("{p}/"), None, 4).await.unwrap();
    let page2 = b
        .list(&format!("{p}/"), Some(&page1.last().unwrap().key), 4)
        .await
        .unwrap();
    let keys: Vec<String> = page1.iter().chain(&page2).map(|m| m.key.clone()).collect();
    let mut expected = vec![k.clone()];
    expected.extend((0..5).map(|i| format!("{p}/b/{i}")));
    assert_eq!(keys, expected);
    assert_eq!(page1[1].size, big.len() as u64);
    let all: Vec<String> = b
        .list_all(&format!("{p}/"))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(all, expected, "list_all is every page of list");
    b.delete(&k).await.unwrap();
    assert_eq!(b.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    b.put_if_absent(&k, Bytes::from_static(b"again"))
        .await
        .expect("a deleted key can be written again");
}

/// `Lock`: one holder at a time, token-checked release, takeover after expiry.
pub async fn lock_contract(h: Harness) {
    let l = &h.stores.lock;
    let key = Harness::unique("lock");
    let a = l
        .try_acquire(&key, Duration::from_secs(30))
        .await
        .unwrap()
        .expect("free key");
    assert!(
        l.try_acquire(&key, Duration::from_secs(30))
            .await
            .unwrap()
            .is_none(),
        "held"
    );
    assert!(l
        .try_acquire(&format!("{key}-other"), Duration::from_secs(30))
        .await
        .unwrap()
        .is_some());
    assert!(l.release(&a).await.unwrap());
    assert!(!l.release(&a).await.unwrap(), "double release");
    let short = l
        .try_acquire(&key, Duration::from_millis(50))
        .await
        .unwrap()
        .expect("free again");
    tokio::time::sleep(Duration::from_millis(120)).await;
    let taker = l
        .try_acquire(&key, Duration::from_secs(30))
        .await
        .unwrap()
        .expect("expired lease is taken over");
    assert_ne!(taker.token, short.token);
    assert!(
        !l.release(&short).await.unwrap(),
        "a lost lease cannot release the new holder"
    );
    assert!(l
        .try_acquire(&key, Duration::from_secs(30))
        .await
        .unwrap()
        .is_none());
    // Renewal: a held lease is extended (and stays exclusive past its first expiry); a lost
    // one — taken over, or released — cannot be renewed.
    assert!(
        l.renew(&short, Duration::from_secs(30))
            .await
            .unwrap()
            .is_none(),
        "a taken-over lease cannot be renewed"
    );
    assert!(l.release(&taker).await.unwrap());
    let beat = l
        .try_acquire(&key, Duration::from_millis(300))
        .await
        .unwrap()
        .expect("free");
    let renewed = l
        .renew(&beat, Duration::from_secs(30))
        .await
        .unwrap()
        .expect("held lease renews");
    assert_eq!(renewed.token, beat.token);
    assert!(renewed.expires_at > beat.expires_at);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        l.try_acquire(&key, Duration::from_secs(30))
            .await
            .unwrap()
            .is_none(),
        "the renewed lease outlives its first expiry"
    );
    assert!(l.release(&renewed).await.unwrap());
    assert!(
        l.renew(&renewed, Duration::from_secs(30))
            .await
            .unwrap()
            .is_none(),
        "a released lease cannot be renewed"
    );
    let lapsing = l
        .try_acquire(&key, Duration::from_millis(50))
        .await
        .unwrap()
        .expect("free");
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(
        l.renew(&lapsing, Duration::from_secs(30))
            .await
            .unwrap()
            .is_none(),
        "an expired lease is lost, even if nobody took it"
    );

    // Under contention exactly one of many acquirers wins.
    let key2 = Harness::unique("race");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let l = l.clone();
            let k = key2.clone();
            tokio::spawn(async move {
                l.try_acquire(&k, Duration::from_secs(30))
                    .await
                    .unwrap()
                    .is_some()
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += t.await.unwrap() as usize;
    }
    assert_eq!(winners, 1);
}

fn body(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

/// `DocumentStore`: create-only insert, replace, atomic set/inc with upsert, filtered sorted
/// queries, counts, and no lost increments under concurrency.
pub async fn document_store_contract(h: Harness) {
    let d = &h.docs;
    let c = Harness::unique("docs");
    for (i, (name, n)) in [("ann", 3), ("bob", 1), ("cid", 2), ("dee", 5)]
        .into_iter()
        .enumerate()
    {
        d.insert(
            &c,
            Document {
                id: format!("d{i}"),
                body: body(json!({"name": name, "n": n, "tags": ["t"]})),
            },
        )
        .await
        .unwrap();
    }
    let e = d
        .insert(
            &c,
            Document {
                id: "d0".into(),
                body: Map::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert_eq!(
        d.get(&c, "d0").await.unwrap().unwrap().body["name"],
        json!("ann")
    );
    assert!(d.get(&c, "nope").await.unwrap().is_none());

    let q = DocQuery {
        filter: Filter::parse(&json!({"n": {"$gte": 2}})).unwrap(),
        sort: Some((SortField::Meta("n".into()), true)),
        skip: 1,
        limit: 2,
    };
    let names: Vec<Value> = d
        .find(&c, &q)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.body["name"].clone())
        .collect();
    assert_eq!(names, [json!("ann"), json!("cid")]);
    assert_eq!(
        d.count(&c, &Filter::parse(&json!({"tags": "t"})).unwrap())
            .await
            .unwrap(),
        4
    );

    assert!(!d
        .replace(
            &c,
            Document {
                id: "zz".into(),
                body: Map::new()
            },
            false
        )
        .await
        .unwrap());
    assert!(d
        .replace(
            &c,
            Document {
                id: "d1".into(),
                body: body(json!({"name": "bo"}))
            },
            false
        )
        .await
        .unwrap());
    assert_eq!(
        d.get(&c, "d1").await.unwrap().unwrap().body,
        body(json!({"name": "bo"}))
    );

    let up = DocUpdate {
        set: vec![("stats.last".into(), json!("x"))],
        inc: vec![("stats.count".into(), 2.into())],
    };
    assert!(d
        .update(&c, "new", up.clone(), false)
        .await
        .unwrap()
        .is_none());
    let doc = d
        .update(&c, "new", up.clone(), true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc.body, body(json!({"stats": {"last": "x", "count": 2}})));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let d = d.clone();
            let c = c.clone();
            tokio::spawn(async move {
                let inc = DocUpdate {
                    set: vec![],
                    inc: vec![("stats.count".into(), 1.into())],
                };
                d.update(&c, "new", inc, false).await.unwrap().unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        d.get(&c, "new").await.unwrap().unwrap().body["stats"]["count"],
        json!(18)
    );
    let bad = DocUpdate {
        set: vec![],
        inc: vec![("stats.last".into(), 1.into())],
    };
    assert_eq!(
        d.update(&c, "new", bad, false).await.unwrap_err().kind(),
        ErrorKind::Validation
    );

    assert!(d.delete(&c, "d0").await.unwrap());
    assert!(!d.delete(&c, "d0").await.unwrap());
    assert_eq!(d.count(&c, &Filter::All).await.unwrap(), 4);

    // The skip scan over a field: each distinct string once, ascending; numbers, nulls,
    // arrays and missing fields are not strings.
    let t = Harness::unique("tenants");
    let values = [
        json!("t-b"),
        json!("t-a"),
        json!("t-b"),
        json!(""),
        json!(7),
        json!(null),
        json!(["t-z"]),
        json!("T-c"),
        json!("t-a"),
        json!("é"),
    ];
    for (i, v) in values.iter().enumerate() {
        d.insert(
            &t,
            Document {
                id: format!("x{i}"),
                body: body(json!({"tenantId": v})),
            },
        )
        .await
        .unwrap();
    }
    d.insert(
        &t,
        Document {
            id: "none".into(),
            body: Map::new(),
        },
    )
    .await
    .unwrap();
    let all = chronos_core::distinct_strings(d.as_ref(), &t, "tenantId", 100)
        .await
        .unwrap();
    assert_eq!(all, ["", "T-c", "t-a", "t-b", "é"]);
    let two = chronos_core::distinct_strings(d.as_ref(), &t, "tenantId", 2)
        .await
        .unwrap();
    assert_eq!(two, ["", "T-c"]);
    let empty = Harness::unique("none");
    assert!(
        chronos_core::distinct_strings(d.as_ref(), &empty, "tenantId", 9)
            .await
            .unwrap()
            .is_empty()
    );
}

/// `ping` answers on a healthy store, repeatedly, and changes nothing: the database id and
/// a collection's cv stay as they were.
pub async fn index_ping_contract(h: Harness) {
    let idx = &h.stores.index;
    let id = idx.database_id().await.unwrap();
    let c = h.default_collection("ping").await;
    c.create(
        &serde_json::json!({"n": 1}),
        chronos_core::CreateOptions::new(),
    )
    .await
    .unwrap();
    let cv = idx.current_cv(c.name()).await.unwrap();
    for _ in 0..3 {
        idx.ping().await.unwrap();
    }
    assert_eq!(idx.database_id().await.unwrap(), id);
    assert_eq!(idx.current_cv(c.name()).await.unwrap(), cv);
}
