//! Cases: create, update, delete, enrich, lineage, typed access, collection switches.

use chronos_core::{
    CollectionConfig, CreateOptions, EnrichOptions, ErrorKind, ItemId, ListOptions, Op,
    ReadOptions, RestoreTarget, WriteOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{blob_keys, data, full_history, Harness};

/// A created record reads back with its data, id and `_system` fields.
pub async fn create_then_get_latest(h: Harness) {
    let c = h
        .collection(CollectionConfig::new("users").indexed_props(["email"]))
        .await;
    let before = chronos_core::time::now_ms();
    let payload = json!({"email": "ada@example.com", "name": "Ada", "tags": ["a"], "n": 1.5});
    let w = c
        .create(
            &payload,
            CreateOptions::new().actor("tester").reason("signup"),
        )
        .await
        .unwrap();
    assert_eq!((w.ov, w.op), (0, Op::Create));
    assert!(w.cv >= 1);
    assert!(w.at >= before);

    let r = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .expect("record exists");
    assert_eq!(data(&r), payload);
    assert_eq!(r.id, w.id);
    assert_eq!((r.system.ov, r.system.cv), (0, w.cv));
    assert_eq!((r.system.inserted_at, r.system.updated_at), (w.at, w.at));
    assert!(!r.system.deleted && r.system.deleted_at.is_none());
    let doc = r.to_json();
    assert_eq!(doc["_id"], json!(w.id.to_string()));
    assert_eq!(doc["_system"]["ov"], json!(0));
    assert_eq!(doc["name"], json!("Ada"));

    let hist = full_history(&c, w.id).await;
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].op, Op::Create);
    assert_eq!(hist[0].actor.as_deref(), Some("tester"));
    assert_eq!(hist[0].reason.as_deref(), Some("signup"));
    assert_eq!(
        serde_json::Value::Object(hist[0].meta.clone()),
        json!({"email": "ada@example.com"})
    );

    assert!(c
        .get_latest(ItemId::generate(), ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    let projected = c
        .get_latest(w.id, ReadOptions::new().projection(["name"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&projected), json!({"name": "Ada"}));
}

/// Invalid payloads are validation errors naming the problem, and nothing is written.
pub async fn create_rejects_invalid_payloads(h: Harness) {
    let c = h
        .collection(
            CollectionConfig::new("orders")
                .indexed_props(["orderId", "total"])
                .required_indexed(["orderId"]),
        )
        .await;
    let cases = [
        (json!([1, 2]), "must be a JSON object"),
        (json!("text"), "must be a JSON object"),
        (json!({"orderId": "1", "_system": {"ov": 9}}), "_system"),
        (json!({"orderId": "1", "_id": "x"}), "_id"),
        (json!({"total": 3}), "orderId"),
        (json!({"orderId": null}), "orderId"),
    ];
    for (payload, needle) in cases {
        let e = c.create(&payload, CreateOptions::new()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation, "{payload}: {e}");
        assert!(e.to_string().contains(needle), "{payload}: {e}");
    }
    let e = c
        .create(
            &json!({"orderId": "1"}),
            CreateOptions::new().parent("", "x"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(
        h.stores.index.current_cv(c.name()).await.unwrap(),
        0,
        "no version was committed"
    );
    assert!(blob_keys(&h, &c).await.is_empty(), "no payload was stored");
    assert!(c
        .list_by_meta(ListOptions::new())
        .await
        .unwrap()
        .items
        .is_empty());
}

/// A caller-chosen id works once; a second create with it is `AlreadyExists`.
pub async fn create_with_explicit_id(h: Harness) {
    let c = h.default_collection("items").await;
    let id = ItemId::generate();
    let w = c
        .create(&json!({"v": 1}), CreateOptions::new().id(id))
        .await
        .unwrap();
    assert_eq!(w.id, id);
    let e = c
        .create(&json!({"v": 2}), CreateOptions::new().id(id))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains(&id.to_string()));
    let r = c.get_latest(id, ReadOptions::new()).await.unwrap().unwrap();
    assert_eq!(data(&r), json!({"v": 1}));
    assert_eq!(full_history(&c, id).await.len(), 1);
}

/// Parent and origin set lineage; an origin system prefixes the origin collection.
pub async fn lineage_from_parent_and_origin(h: Harness) {
    let c = h.default_collection("children").await;
    let w = c
        .create(
            &json!({"name": "child"}),
            CreateOptions::new().parent("parent-1", "parent_items"),
        )
        .await
        .unwrap();
    let s = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap()
        .system;
    assert_eq!(s.lineage.parent_id.as_deref(), Some("parent-1"));
    assert_eq!(s.lineage.parent_collection.as_deref(), Some("parent_items"));
    assert_eq!(s.lineage.origin_id.as_deref(), Some("parent-1"));
    assert_eq!(s.lineage.origin_collection.as_deref(), Some("parent_items"));

    let w = c
        .create(
            &json!({"customerId": "ext-123"}),
            CreateOptions::new().origin("stripe_cus_123", "customers", Some("stripe")),
        )
        .await
        .unwrap();
    let r = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        r.system.lineage.origin_id.as_deref(),
        Some("stripe_cus_123")
    );
    assert_eq!(
        r.system.lineage.origin_collection.as_deref(),
        Some("stripe:customers")
    );
    assert!(r.system.lineage.parent_id.is_none());
    assert_eq!(
        r.to_json()["_system"]["originCollection"],
        json!("stripe:customers")
    );
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    email: String,
    age: u32,
}

/// Typed structs go in and come out through serde.
pub async fn typed_access_roundtrips(h: Harness) {
    let c = h.default_collection("typed").await;
    let u = User {
        email: "t@example.com".into(),
        age: 41,
    };
    let w = c.create(&u, CreateOptions::new()).await.unwrap();
    let back: User = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap()
        .to_typed()
        .unwrap();
    assert_eq!(back, u);
    let e = c.create(&42u8, CreateOptions::new()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
}

/// Update replaces the user data wholesale but keeps lineage, functionIds and insertedAt.
pub async fn update_replaces_data_and_keeps_lineage(h: Harness) {
    let c = h.default_collection("docs").await;
    let w0 = c
        .create(
            &json!({"a": 1, "b": 2}),
            CreateOptions::new().parent("p", "parents"),
        )
        .await
        .unwrap();
    let w1 = c
        .enrich(
            w0.id,
            &json!({"c": 3}),
            EnrichOptions::new().function_id("f@1"),
        )
        .await
        .unwrap();
    let w2 = c
        .update(
            w0.id,
            &json!({"z": 26}),
            WriteOptions::new().expected_ov(w1.ov),
        )
        .await
        .unwrap();
    assert_eq!((w2.ov, w2.op), (2, Op::Update));
    let r = c
        .get_latest(w0.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&r), json!({"z": 26}));
    assert_eq!(r.system.lineage.function_ids, vec!["f@1".to_string()]);
    assert_eq!(r.system.lineage.parent_id.as_deref(), Some("p"));
    assert_eq!(r.system.inserted_at, w0.at);
    assert_eq!(r.system.updated_at, w2.at);
    // Without expected_ov an update applies to whatever is current.
    let w3 = c
        .update(w0.id, &json!({"z": 27}), WriteOptions::new())
        .await
        .unwrap();
    assert_eq!(w3.ov, 3);
}

/// Writes to a record that does not exist, or is deleted, are `NotFound`.
pub async fn writes_to_missing_or_deleted_records_fail(h: Harness) {
    let c = h.default_collection("gone").await;
    let ghost = ItemId::generate();
    for e in [
        c.update(ghost, &json!({"a": 1}), WriteOptions::new())
            .await
            .unwrap_err(),
        c.delete(ghost, WriteOptions::new()).await.unwrap_err(),
        c.enrich(ghost, &json!({"a": 1}), EnrichOptions::new())
            .await
            .unwrap_err(),
        c.restore_object(ghost, RestoreTarget::Ov(0), WriteOptions::new())
            .await
            .unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert_eq!(e.context("id"), Some(ghost.to_string().as_str()), "{e}");
    }
    let w = c
        .create(&json!({"a": 1}), CreateOptions::new())
        .await
        .unwrap();
    c.delete(w.id, WriteOptions::new()).await.unwrap();
    for e in [
        c.update(w.id, &json!({"a": 2}), WriteOptions::new())
            .await
            .unwrap_err(),
        c.delete(w.id, WriteOptions::new()).await.unwrap_err(),
        c.enrich(w.id, &json!({"a": 2}), EnrichOptions::new())
            .await
            .unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("deleted"), "{e}");
    }
    assert_eq!(full_history(&c, w.id).await.len(), 2);
}

/// Invariant 2: a stale `expected_ov` fails with `Conflict` on every write and changes nothing.
pub async fn stale_expected_ov_conflicts_and_changes_nothing(h: Harness) {
    let c = h.default_collection("cas").await;
    let w = c
        .create(&json!({"v": 0}), CreateOptions::new())
        .await
        .unwrap();
    c.update(w.id, &json!({"v": 1}), WriteOptions::new().expected_ov(0))
        .await
        .unwrap();
    let cv_before = h.stores.index.current_cv(c.name()).await.unwrap();
    let blobs_before = blob_keys(&h, &c).await;
    let latest_before = c.get_latest(w.id, ReadOptions::new()).await.unwrap();
    for stale in [0, 2, 7] {
        let errs = [
            c.update(
                w.id,
                &json!({"v": 9}),
                WriteOptions::new().expected_ov(stale),
            )
            .await
            .unwrap_err(),
            c.delete(w.id, WriteOptions::new().expected_ov(stale))
                .await
                .unwrap_err(),
            c.enrich(
                w.id,
                &json!({"v": 9}),
                EnrichOptions::new().expected_ov(stale),
            )
            .await
            .unwrap_err(),
            c.restore_object(
                w.id,
                RestoreTarget::Ov(0),
                WriteOptions::new().expected_ov(stale),
            )
            .await
            .unwrap_err(),
        ];
        for e in errs {
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
            assert_eq!(
                e.conflict_cause(),
                Some(chronos_core::ConflictCause::StaleExpectedOv),
                "{e}"
            );
            assert!(
                e.to_string().contains(&format!("expected ov {stale}")),
                "{e}"
            );
        }
    }
    assert_eq!(
        c.get_latest(w.id, ReadOptions::new()).await.unwrap(),
        latest_before
    );
    assert_eq!(full_history(&c, w.id).await.len(), 2);
    assert_eq!(
        h.stores.index.current_cv(c.name()).await.unwrap(),
        cv_before
    );
    assert_eq!(
        blob_keys(&h, &c).await,
        blobs_before,
        "no payload left behind"
    );
}

/// A logical delete hides the record from default reads; `include_deleted` shows the tombstone.
pub async fn logical_delete_reads(h: Harness) {
    let c = h.default_collection("soft").await;
    let w0 = c
        .create(&json!({"name": "x", "status": "on"}), CreateOptions::new())
        .await
        .unwrap();
    let wd = c
        .delete(
            w0.id,
            WriteOptions::new()
                .expected_ov(0)
                .actor("gdpr")
                .reason("request"),
        )
        .await
        .unwrap();
    assert_eq!((wd.ov, wd.op), (1, Op::Delete));
    assert!(c
        .get_latest(w0.id, ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    let t = c
        .get_latest(w0.id, ReadOptions::new().include_deleted(true))
        .await
        .unwrap()
        .expect("tombstone");
    assert!(t.system.deleted);
    assert_eq!(t.system.deleted_at, Some(wd.at));
    assert_eq!(
        data(&t),
        json!({"name": "x", "status": "on"}),
        "a tombstone carries the last content"
    );
    assert!(c
        .get_version(w0.id, 1, ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    assert!(c
        .get_version(w0.id, 1, ReadOptions::new().include_deleted(true))
        .await
        .unwrap()
        .is_some());
    assert!(c
        .get_version(w0.id, 0, ReadOptions::new())
        .await
        .unwrap()
        .is_some());
    let listed = c.list_by_meta(ListOptions::new()).await.unwrap();
    assert!(listed.items.is_empty());
    let all = c
        .list_by_meta(ListOptions::new().include_deleted(true))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
    assert!(all.items[0].system.deleted);
    let hist = full_history(&c, w0.id).await;
    assert_eq!(hist[1].actor.as_deref(), Some("gdpr"));
}

/// With logical delete off, delete removes the head; the version log keeps everything, so time
/// travel and restore still work.
pub async fn hard_delete_keeps_history(h: Harness) {
    let c = h
        .collection(CollectionConfig::new("hard").logical_delete(false))
        .await;
    let w0 = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    let w1 = c
        .update(w0.id, &json!({"n": 1}), WriteOptions::new())
        .await
        .unwrap();
    c.delete(w0.id, WriteOptions::new()).await.unwrap();
    assert!(c
        .get_latest(w0.id, ReadOptions::new().include_deleted(true))
        .await
        .unwrap()
        .is_none());
    assert!(h
        .stores
        .index
        .head(c.name(), w0.id)
        .await
        .unwrap()
        .is_none());
    assert!(c
        .list_by_meta(ListOptions::new().include_deleted(true))
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(full_history(&c, w0.id).await.len(), 3);
    let v1 = c
        .get_as_of(w0.id, w1.at, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&v1), json!({"n": 1}));
    let e = c.delete(w0.id, WriteOptions::new()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let r = c
        .restore_object(
            w0.id,
            RestoreTarget::Ov(1),
            WriteOptions::new().expected_ov(2),
        )
        .await
        .unwrap();
    assert_eq!((r.ov, r.op), (3, Op::Restore));
    let back = c
        .get_latest(w0.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&back), json!({"n": 1}));
    assert_eq!(back.system.inserted_at, w0.at);
}

/// Enrich deep-merges objects, unions arrays, replaces scalars and records function ids.
pub async fn enrich_merges_and_tracks_functions(h: Harness) {
    let c = h.default_collection("enrich").await;
    let w = c
        .create(
            &json!({"tags": ["a"], "meta": {"x": 1}, "n": 1}),
            CreateOptions::new(),
        )
        .await
        .unwrap();
    c.enrich(
        w.id,
        &json!({"tags": ["b", "a"], "meta": {"y": 2}, "n": 2}),
        EnrichOptions::new().function_id("f1"),
    )
    .await
    .unwrap();
    let r = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        data(&r),
        json!({"tags": ["a", "b"], "meta": {"x": 1, "y": 2}, "n": 2})
    );
    assert_eq!(r.system.lineage.function_ids, ["f1"]);

    let batch = json!([{"tags": ["c"]}, {"meta": {"x": 9}}, {"tags": ["d"]}]);
    let wb = c
        .enrich(
            w.id,
            &batch,
            EnrichOptions::new().function_id("f2").expected_ov(1),
        )
        .await
        .unwrap();
    assert_eq!(wb.ov, 2, "a batch is one version");
    c.enrich(
        w.id,
        &json!({"n": 3}),
        EnrichOptions::new().function_id("f1"),
    )
    .await
    .unwrap();
    let r = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        data(&r),
        json!({"tags": ["a", "b", "c", "d"], "meta": {"x": 9, "y": 2}, "n": 3})
    );
    assert_eq!(r.system.lineage.function_ids, ["f1", "f2"]);

    let e = c
        .enrich(w.id, &json!([]), EnrichOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    let e = c
        .enrich(w.id, &json!([{"a": 1}, 5]), EnrichOptions::new())
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.context("patch")),
        (ErrorKind::Validation, Some("1")),
        "{e}"
    );
    let e = c
        .enrich(w.id, &json!({"_system": {}}), EnrichOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(full_history(&c, w.id).await.len(), 4);
}

/// With versioning off only the latest version is kept (ovs still count up).
pub async fn versioning_off_keeps_only_latest(h: Harness) {
    let c = h
        .collection(CollectionConfig::new("nover").versioning(false))
        .await;
    let w = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    c.update(w.id, &json!({"n": 1}), WriteOptions::new())
        .await
        .unwrap();
    let w2 = c
        .update(w.id, &json!({"n": 2}), WriteOptions::new())
        .await
        .unwrap();
    assert_eq!(w2.ov, 2);
    let hist = full_history(&c, w.id).await;
    assert_eq!(hist.iter().map(|v| v.ov).collect::<Vec<_>>(), [2]);
    assert!(c
        .get_version(w.id, 0, ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    let r = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&r), json!({"n": 2}));
    assert_eq!(r.system.inserted_at, w.at);
    assert_eq!(
        blob_keys(&h, &c).await.len(),
        1,
        "earlier payloads are removed"
    );
}
