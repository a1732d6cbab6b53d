//! Sorting by a metadata path whose values are arrays or objects, or that passes through an
//! array, pages in the canonical order on MongoDB (the heads' stored sort keys): across
//! many pages in both directions, after heads written without keys (by the TypeScript
//! library, or by an earlier Chronos) are given theirs, and with an explicit `Unsupported`
//! for containers too long to key.

#![cfg(chronos_services)]

mod common;

use std::cmp::Ordering;
use std::sync::Arc;

use chronos_core::filter::{canonical, canonical_cmp, get_path};
use chronos_core::{
    Collection, CollectionConfig, CreateOptions, Engine, ErrorKind, ItemId, ListOptions, Stores,
};
use chronos_store_mongo::{MongoConnection, Transactions};
use chronos_testkit::MemoryBlobStore;
use mongodb::bson::{doc, Document};
use serde_json::{json, Map, Value};

/// Collection `c` of database `db`, its payloads in `blobs`.
async fn open_with(uri: &str, db: &str, c: &str, blobs: Arc<MemoryBlobStore>) -> Collection {
    let conn = MongoConnection::connect(uri, Transactions::Off)
        .await
        .unwrap();
    let stores = conn.database(db).await.unwrap();
    Engine::new(Stores {
        index: stores.index(),
        blob: blobs,
        lock: stores.lock(),
    })
    .collection(CollectionConfig::new(c))
    .await
    .unwrap()
}

async fn open(uri: &str, db: &str, c: &str) -> Collection {
    open_with(uri, db, c, Arc::new(MemoryBlobStore::new())).await
}

/// `(id, doc)` pairs in the canonical order of `path`.
fn canonical_order(rows: &[(ItemId, Value)], path: &str, desc: bool) -> Vec<ItemId> {
    let mut rows: Vec<(ItemId, Value)> = rows
        .iter()
        .map(|(id, d)| {
            let d = canonical(d);
            let key = get_path(d.as_object().unwrap(), path)
                .cloned()
                .unwrap_or(Value::Null);
            (*id, key)
        })
        .collect();
    rows.sort_by(|(ia, a), (ib, b)| {
        let o: Ordering = canonical_cmp(Some(a), Some(b)).then(ia.cmp(ib));
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    rows.into_iter().map(|(id, _)| id).collect()
}

async fn paged(c: &Collection, path: &str, desc: bool, limit: usize) -> Vec<ItemId> {
    let mut opts = ListOptions::new().sort_by_meta(path, desc).limit(limit);
    let mut out = Vec::new();
    loop {
        let page = c.list_by_meta(opts.clone()).await.unwrap();
        assert!(page.unreadable.is_empty(), "{:?}", page.unreadable);
        out.extend(page.items.iter().map(|r| r.id));
        match page.next_cursor {
            Some(cur) => opts.cursor = Some(cur),
            None => return out,
        }
    }
}

async fn create_all(c: &Collection) -> Vec<(ItemId, Value)> {
    let mut rows = Vec::new();
    for d in chronos_testkit::conformance::sort_edge_documents() {
        let id = ItemId::generate();
        c.create(&d, CreateOptions::new().id(id)).await.unwrap();
        rows.push((id, d));
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_and_paths_through_arrays_page_in_the_canonical_order() {
    let Some(uri) = common::uri() else { return };
    let db = common::db_name();
    let c = open(&uri, &db, "things").await;
    let rows = create_all(&c).await;
    for path in ["t", "o.t", "o"] {
        for desc in [false, true] {
            for limit in [1, 4, 7, 100] {
                assert_eq!(
                    paged(&c, path, desc, limit).await,
                    canonical_order(&rows, path, desc),
                    "by {path}, desc {desc}, {limit} a page"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_written_without_sort_keys_get_them_before_the_first_sort() {
    let Some(uri) = common::uri() else { return };
    let db = common::db_name();
    let blobs = Arc::new(MemoryBlobStore::new());
    let c = open_with(&uri, &db, "things", blobs.clone()).await;
    let rows = create_all(&c).await;
    // As upstream (or Chronos before sort keys) left them.
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let raw = client.database(&db);
    let heads = raw.collection::<Document>("things_head");
    let stripped = heads
        .update_many(
            doc! {},
            doc! {"$unset": {"metaOdd": "", "metaSortKeys": ""}},
        )
        .await
        .unwrap();
    assert!(stripped.modified_count > 20);
    let counter = raw.collection::<Document>("things_counter");
    counter.delete_one(doc! {"_id": "sortKeys"}).await.unwrap();

    // A new process: it does not know the collection's heads have keys.
    let c = open_with(&uri, &db, "things", blobs).await;
    assert_eq!(
        paged(&c, "t", false, 5).await,
        canonical_order(&rows, "t", false)
    );
    let keyed = heads
        .count_documents(doc! {"metaOdd": {"$exists": true}})
        .await
        .unwrap();
    assert_eq!(keyed, stripped.modified_count);
    let state = counter
        .find_one(doc! {"_id": "sortKeys"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.get_i32("version").unwrap(), 1);
    assert_eq!(
        paged(&c, "o.t", true, 3).await,
        canonical_order(&rows, "o.t", true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_too_long_to_key_is_refused_not_misplaced() {
    let Some(uri) = common::uri() else { return };
    let db = common::db_name();
    let c = open(&uri, &db, "things").await;
    let long = "y".repeat(2_000);
    let mut ids = Vec::new();
    for d in [json!({"a": [long]}), json!({"a": ["b"]}), json!({"a": 1})] {
        let m: Map<String, Value> = d.as_object().unwrap().clone();
        ids.push(c.create(&m, CreateOptions::new()).await.unwrap().id);
    }
    let err = c
        .list_by_meta(ListOptions::new().sort_by_meta("a", false))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains(&ids[0].to_string()), "{err}");
    // Without it, the others page as usual.
    let page = c
        .list_by_meta(
            ListOptions::new()
                .filter(json!({"a": {"$ne": "y".repeat(2_000)}}))
                .sort_by_meta("a", false),
        )
        .await
        .unwrap();
    let got: Vec<ItemId> = page.items.iter().map(|r| r.id).collect();
    assert_eq!(got, [ids[2], ids[1]]);
}

/// The document store: bodies written without sort keys get them before the first sort, and
/// a container too long to key is refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_without_sort_keys_get_them_and_long_containers_are_refused() {
    use chronos_core::{DocQuery, Document as Doc, Filter, SortField};
    let Some(uri) = common::uri() else { return };
    let db = common::db_name();
    let docs = |uri: String, db: String| async move {
        MongoConnection::connect(&uri, Transactions::Off)
            .await
            .unwrap()
            .database(&db)
            .await
            .unwrap()
            .docs()
    };
    let store = docs(uri.clone(), db.clone()).await;
    let values = [
        json!([3, 1]),
        json!(2),
        json!([]),
        json!({"x": 1}),
        json!("a"),
    ];
    for (i, v) in values.iter().enumerate() {
        let body = json!({ "t": v }).as_object().unwrap().clone();
        store
            .insert(
                "d",
                Doc {
                    id: format!("d{i}"),
                    body,
                },
            )
            .await
            .unwrap();
    }
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let raw = client.database(&db).collection::<Document>("d");
    let stripped = raw
        .update_many(doc! {}, doc! {"$unset": {"_s": ""}})
        .await
        .unwrap();
    assert_eq!(
        stripped.modified_count, 3,
        "the arrays and the object had keys"
    );

    let store = docs(uri.clone(), db.clone()).await;
    let sorted = |skip: usize| DocQuery {
        filter: Filter::parse(&json!({})).unwrap(),
        sort: Some((SortField::Meta("t".into()), false)),
        skip,
        limit: 2,
    };
    let mut got = Vec::new();
    while let Ok(page) = store.find("d", &sorted(got.len())).await {
        if page.is_empty() {
            break;
        }
        got.extend(page.into_iter().map(|d| d.id));
    }
    // 2 < "a" < {"x":1} < [3,1] and [] by canonical text: "[3,1]" < "[]".
    assert_eq!(got, ["d1", "d4", "d3", "d0", "d2"]);
    let names = raw.list_index_names().await.unwrap();
    assert!(names.iter().any(|n| n == "chronos_sortkeys"), "{names:?}");
    assert_eq!(
        raw.count_documents(doc! {"_s": {"$exists": true}})
            .await
            .unwrap(),
        3
    );

    let long = json!({ "t": ["y".repeat(2_000)] })
        .as_object()
        .unwrap()
        .clone();
    store
        .insert(
            "d",
            Doc {
                id: "long".into(),
                body: long,
            },
        )
        .await
        .unwrap();
    // Refused on the page that would hold it (the third: after 2, "a", {"x":1} and before
    // the other arrays), not before.
    assert_eq!(store.find("d", &sorted(0)).await.unwrap().len(), 2);
    let e = store.find("d", &sorted(2)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("'long'"), "{e}");
}

/// A body may not use the fields the store keeps beside it (`_id`, the canonical copy `_c`,
/// the sort keys `_s`, the insert's nonce `_w`): each would be overwritten or dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_may_not_use_the_stores_own_fields() {
    use chronos_core::Document as Doc;
    let Some(uri) = common::uri() else { return };
    let store = MongoConnection::connect(&uri, Transactions::Off)
        .await
        .unwrap()
        .database(&common::db_name())
        .await
        .unwrap()
        .docs();
    for field in ["_id", "_c", "_s", "_w"] {
        let body = json!({ field: 1, "a": 2 }).as_object().unwrap().clone();
        let e = store
            .insert(
                "d",
                Doc {
                    id: "x".into(),
                    body: body.clone(),
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation, "{field}: {e}");
        assert!(e.to_string().contains(field), "{field}: {e}");
        let e = store
            .replace(
                "d",
                Doc {
                    id: "x".into(),
                    body,
                },
                true,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation, "{field}: {e}");
    }
    assert!(store.get("d", "x").await.unwrap().is_none());
}
