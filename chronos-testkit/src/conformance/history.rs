//! Cases: immutability of committed versions, ov/at/cv ordering, time travel, history paging,
//! payload integrity and the orphan sweep.

use std::time::Duration;

use bytes::Bytes;
use chronos_core::time::next_ms;
use chronos_core::{
    CollectionRestoreOptions, CreateOptions, EnrichOptions, ErrorKind, HistoryOptions, ItemId,
    Point, ReadOptions, RestoreTarget, Timestamp, WriteOptions,
};
use serde_json::json;

use super::{blob_keys, data, full_history, planted_key, sweep_now, Harness};

fn before(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond() - 1).unwrap()
}

/// Invariant 1: a committed version reads back identically, and its payload bytes are never
/// touched, whatever is written afterwards.
pub async fn committed_versions_are_immutable(h: Harness) {
    let c = h.default_collection("immut").await;
    let w = c
        .create(&json!({"n": 0, "tags": ["x"]}), CreateOptions::new())
        .await
        .unwrap();
    for i in 1..=4 {
        c.update(w.id, &json!({"n": i, "tags": ["x"]}), WriteOptions::new())
            .await
            .unwrap();
    }
    let mut snapshot = Vec::new();
    for v in full_history(&c, w.id).await {
        let rec = c
            .get_version(w.id, v.ov, ReadOptions::new())
            .await
            .unwrap()
            .unwrap();
        let bytes = h.stores.blob.get(&v.blob_key).await.unwrap();
        snapshot.push((v, rec, bytes));
    }
    let cv_mark = h.stores.index.current_cv(c.name()).await.unwrap();
    c.enrich(
        w.id,
        &json!({"tags": ["y"]}),
        EnrichOptions::new().function_id("f"),
    )
    .await
    .unwrap();
    c.delete(w.id, WriteOptions::new()).await.unwrap();
    c.restore_object(w.id, RestoreTarget::Ov(2), WriteOptions::new())
        .await
        .unwrap();
    c.update(w.id, &json!({"n": 100}), WriteOptions::new())
        .await
        .unwrap();
    c.restore_collection(Point::Cv(cv_mark), CollectionRestoreOptions::new())
        .await
        .unwrap();
    sweep_now(&h, &c).await;
    for (v, rec, bytes) in snapshot {
        let again = c
            .get_version(w.id, v.ov, ReadOptions::new())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again, rec, "version {} changed", v.ov);
        assert_eq!(
            h.stores.blob.get(&v.blob_key).await.unwrap(),
            bytes,
            "payload of v{} changed",
            v.ov
        );
        assert_eq!(
            h.stores.index.version(c.name(), w.id, v.ov).await.unwrap(),
            Some(v)
        );
    }
}

/// Invariant 3: per record, ovs are dense from 0 and `at` strictly increases with ov, even
/// for writes in the same millisecond.
pub async fn ovs_are_dense_and_at_increases(h: Harness) {
    let c = h.default_collection("dense").await;
    let w = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    for i in 1..=20 {
        let r = c
            .update(w.id, &json!({"n": i}), WriteOptions::new())
            .await
            .unwrap();
        assert_eq!(r.ov, i);
    }
    let hist = full_history(&c, w.id).await;
    assert_eq!(hist.len(), 21);
    for (i, v) in hist.iter().enumerate() {
        assert_eq!(v.ov, i as u64);
        assert_eq!(v.prev_ov, i.checked_sub(1).map(|p| p as u64));
    }
    for pair in hist.windows(2) {
        assert!(
            pair[1].at > pair[0].at,
            "at must strictly increase: {:?}",
            (pair[0].at, pair[1].at)
        );
        assert!(pair[1].cv > pair[0].cv, "cv must increase with ov");
    }
}

/// Invariant 4: cvs are unique per collection and increase in commit order.
pub async fn cvs_are_unique_and_follow_commit_order(h: Harness) {
    let c = h.default_collection("cvs").await;
    let other = h.default_collection("cvs_other").await;
    let mut ids = Vec::new();
    let mut last = 0;
    for i in 0..6 {
        let w = c
            .create(&json!({"i": i}), CreateOptions::new())
            .await
            .unwrap();
        assert!(w.cv > last, "cv {} after {last}", w.cv);
        last = w.cv;
        ids.push(w.id);
        // Another collection's writes do not consume this collection's cvs.
        other
            .create(&json!({"i": i}), CreateOptions::new())
            .await
            .unwrap();
    }
    for (i, id) in ids.iter().enumerate() {
        let w = if i % 2 == 0 {
            c.update(*id, &json!({"u": i}), WriteOptions::new())
                .await
                .unwrap()
        } else {
            c.delete(*id, WriteOptions::new()).await.unwrap()
        };
        assert!(w.cv > last);
        last = w.cv;
    }
    assert_eq!(h.stores.index.current_cv(c.name()).await.unwrap(), last);
    assert_eq!(
        last, 12,
        "one cv per commit, none skipped in a quiet collection"
    );
}

/// Invariant 5: `get_as_of(t)` is the version with the greatest `at <= t`; before creation
/// and while deleted the record reads as absent.
pub async fn get_as_of_returns_version_current_at_instant(h: Harness) {
    let c = h.default_collection("asof").await;
    let w0 = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    let w1 = c
        .update(w0.id, &json!({"n": 1}), WriteOptions::new())
        .await
        .unwrap();
    let wd = c.delete(w0.id, WriteOptions::new()).await.unwrap();
    let wr = c
        .restore_object(w0.id, RestoreTarget::Ov(0), WriteOptions::new())
        .await
        .unwrap();
    let ro = ReadOptions::new;
    let n = |r: Option<chronos_core::Record>| r.map(|r| data(&r)["n"].clone());

    assert_eq!(
        n(c.get_as_of(w0.id, before(w0.at), ro()).await.unwrap()),
        None
    );
    assert_eq!(
        n(c.get_as_of(w0.id, w0.at, ro()).await.unwrap()),
        Some(json!(0))
    );
    assert_eq!(
        n(c.get_as_of(w0.id, before(w1.at), ro()).await.unwrap()),
        Some(json!(0))
    );
    assert_eq!(
        n(c.get_as_of(w0.id, w1.at, ro()).await.unwrap()),
        Some(json!(1))
    );
    assert_eq!(
        n(c.get_as_of(w0.id, wd.at, ro()).await.unwrap()),
        None,
        "deleted at t reads as absent"
    );
    let t = c
        .get_as_of(w0.id, wd.at, ro().include_deleted(true))
        .await
        .unwrap()
        .unwrap();
    assert!(t.system.deleted && t.system.ov == 2);
    assert_eq!(
        n(c.get_as_of(w0.id, before(wr.at), ro()).await.unwrap()),
        None
    );
    let now = c
        .get_as_of(w0.id, next_ms(wr.at), ro())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.system.ov, data(&now)["n"].clone()), (3, json!(0)));
    assert_eq!(now.system.updated_at, wr.at);
    assert!(c
        .get_as_of(ItemId::generate(), wr.at, ro())
        .await
        .unwrap()
        .is_none());
}

/// History pages in ascending ov; an unknown record is `NotFound`; limits are checked.
pub async fn history_pages_in_order(h: Harness) {
    let c = h.default_collection("hist").await;
    let w = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    for i in 1..7 {
        c.update(w.id, &json!({"n": i}), WriteOptions::new())
            .await
            .unwrap();
    }
    let mut opts = HistoryOptions {
        after_ov: None,
        limit: 3,
    };
    let mut pages = Vec::new();
    loop {
        let p = c.history(w.id, opts.clone()).await.unwrap();
        pages.push(p.versions.iter().map(|v| v.ov).collect::<Vec<_>>());
        match p.next_after_ov {
            Some(a) => opts.after_ov = Some(a),
            None => break,
        }
    }
    assert_eq!(pages, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
    let e = c
        .history(ItemId::generate(), HistoryOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = c
        .history(
            w.id,
            HistoryOptions {
                after_ov: None,
                limit: 0,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
}

/// A payload whose bytes do not match the stored checksum is an error naming the key.
pub async fn corrupted_payload_is_an_error_naming_its_key(h: Harness) {
    let c = h.default_collection("corrupt").await;
    let w = c
        .create(&json!({"secret": "x"}), CreateOptions::new())
        .await
        .unwrap();
    let head = h.stores.index.head(c.name(), w.id).await.unwrap().unwrap();
    h.stores.blob.delete(&head.blob_key).await.unwrap();
    h.stores
        .blob
        .put_if_absent(&head.blob_key, Bytes::from_static(b"{\"secret\":\"y\"}"))
        .await
        .unwrap();
    let e = c.get_latest(w.id, ReadOptions::new()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
    assert_eq!(e.context("key"), Some(head.blob_key.as_str()), "{e}");
    let e = c
        .get_version(w.id, 0, ReadOptions::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
}

/// The sweep removes unreferenced payloads of the collection older than the grace period and
/// nothing else.
pub async fn sweep_removes_only_unreferenced_blobs(h: Harness) {
    let c = h.default_collection("sweep").await;
    let a = c
        .create(&json!({"a": 1}), CreateOptions::new())
        .await
        .unwrap();
    c.update(a.id, &json!({"a": 2}), WriteOptions::new())
        .await
        .unwrap();
    let own = c.database_id().to_string();
    let now = chronos_core::time::now_ms().as_millisecond();
    let (fresh_id, a_id) = (ItemId::generate(), a.id.to_string());
    let fresh_dir = format!("{fresh_id}/v0");
    // Own, unreferenced, slot free, written long ago: garbage.
    let orphan_new = planted_key(&c, &own, 1, &fresh_dir, "item", ".json");
    // Own, unreferenced, its slot (a, v1) taken by another version: garbage however young.
    let orphan_taken = planted_key(&c, &own, now, &format!("{a_id}/v1"), "item", ".json");
    // Own, unreferenced, slot free, young: may still commit — kept.
    let young = planted_key(&c, &own, now + 60_000, &fresh_dir, "item", ".json");
    // Not provably ours: another database's, an older release's, anything else.
    let other_db = planted_key(&c, "0ther", 1, &fresh_dir, "item", ".json");
    let legacy = format!("{}/{fresh_id}/v0/item-0011223344556677.json", c.name());
    let foreign = format!("{}/README.txt", c.name());
    let planted = [
        &orphan_new,
        &orphan_taken,
        &young,
        &other_db,
        &legacy,
        &foreign,
    ];
    for k in planted {
        h.stores
            .blob
            .put_if_absent(k, Bytes::from_static(b"{}"))
            .await
            .unwrap();
    }
    let e = c.sweep(Duration::from_secs(60)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    assert!(e.to_string().contains("minimum"), "{e}");
    let mut r = sweep_now(&h, &c).await;
    r.removed.sort();
    let mut expected = vec![orphan_new, orphan_taken];
    expected.sort();
    assert_eq!(r.removed, expected);
    assert_eq!(r.scanned, 8);
    assert_eq!((r.not_owned, r.too_young), (3, 1));
    let keys = blob_keys(&h, &c).await;
    assert_eq!(keys.len(), 6);
    for k in [&young, &other_db, &legacy, &foreign] {
        assert!(keys.contains(k), "{k} was removed");
    }
    assert_eq!(
        data(
            &c.get_version(a.id, 0, ReadOptions::new())
                .await
                .unwrap()
                .unwrap()
        ),
        json!({"a": 1})
    );
    assert_eq!(
        data(
            &c.get_latest(a.id, ReadOptions::new())
                .await
                .unwrap()
                .unwrap()
        ),
        json!({"a": 2})
    );
}

/// devShadow: small payloads ride in the head (exactly their bytes) and latest reads and
/// list pages are served from it — they work even without the blob; large payloads and
/// expired shadows go to the blob store.
pub async fn dev_shadow_serves_latest_reads(h: Harness) {
    use chronos_core::{CollectionConfig, ListOptions};
    let c = h
        .collection(CollectionConfig::new("shadow").dev_shadow(1024, Duration::from_secs(3600)))
        .await;
    let small = c
        .create(&json!({"s": "small"}), CreateOptions::new())
        .await
        .unwrap();
    let big = c
        .create(&json!({"s": "x".repeat(5000)}), CreateOptions::new())
        .await
        .unwrap();
    let head = h
        .stores
        .index
        .head(c.name(), small.id)
        .await
        .unwrap()
        .unwrap();
    let shadow = head.shadow.clone().expect("a small payload is shadowed");
    assert_eq!(
        shadow.json.as_bytes(),
        &h.stores.blob.get(&head.blob_key).await.unwrap()[..],
        "the shadow is the payload"
    );
    assert!(
        h.stores
            .index
            .head(c.name(), big.id)
            .await
            .unwrap()
            .unwrap()
            .shadow
            .is_none(),
        "too big to shadow"
    );

    h.stores.blob.delete(&head.blob_key).await.unwrap();
    let r = c
        .get_latest(small.id, ReadOptions::new())
        .await
        .unwrap()
        .expect("served from the shadow");
    assert_eq!(data(&r), json!({"s": "small"}));
    let listed = c
        .list_by_meta(ListOptions::new().filter(json!({"s": "small"})))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let e = c
        .get_version(small.id, 0, ReadOptions::new())
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::NotFound,
        "versions always read the blob: {e}"
    );
    // Writes that build on the current payload take it from the shadow as well.
    let w = c
        .enrich(small.id, &json!({"t": [1]}), EnrichOptions::new())
        .await
        .unwrap();
    let r = c
        .get_latest(small.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.system.ov, data(&r)),
        (w.ov, json!({"s": "small", "t": [1]}))
    );
    let w = c
        .update(big.id, &json!({"s": "now small"}), WriteOptions::new())
        .await
        .unwrap();
    assert!(h
        .stores
        .index
        .head(c.name(), w.id)
        .await
        .unwrap()
        .unwrap()
        .shadow
        .is_some());

    // An expired shadow is ignored.
    let z = h
        .collection(CollectionConfig::new("shadow0").dev_shadow(1024, Duration::ZERO))
        .await;
    let w = z
        .create(&json!({"s": "small"}), CreateOptions::new())
        .await
        .unwrap();
    let head = h.stores.index.head(z.name(), w.id).await.unwrap().unwrap();
    h.stores.blob.delete(&head.blob_key).await.unwrap();
    let e = z.get_latest(w.id, ReadOptions::new()).await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::NotFound,
        "an expired shadow must not be served: {e}"
    );
}
