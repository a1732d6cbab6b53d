//! Data written by the TypeScript chronos-db (v2.3.5) reads back through our API: head and
//! version documents in its layout (Int32 counters, `jsonBucket`/`jsonKey`, a DELETE that
//! points at the previous payload) and `item.json` payloads at its keys.

#![cfg(chronos_services)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use chronos_core::{
    BlobStore, CollectionConfig, Engine, HistoryOptions, ItemId, ListOptions, Op, ReadOptions,
    Stores, Timestamp, WriteOptions,
};
use chronos_store_mongo::{MongoConnection, Transactions};
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use serde_json::json;
use sha2::{Digest, Sha256};

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Our connection, a raw driver client (to write upstream's documents) and the name of a
/// database no other test uses; `None` without a server.
async fn fresh_database() -> Option<(MongoConnection, mongodb::Client, String)> {
    let uri = common::uri()?;
    let conn = MongoConnection::connect(&uri, Transactions::Auto)
        .await
        .unwrap();
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    Some((conn, client, common::db_name()))
}

/// Opens `collection` of `stores` with in-memory blobs.
async fn open(
    stores: &chronos_store_mongo::MongoStores,
    collection: &str,
) -> chronos_core::Result<chronos_core::Collection> {
    Engine::new(Stores {
        index: stores.index(),
        blob: Arc::new(chronos_testkit::MemoryBlobStore::new()),
        lock: stores.lock(),
    })
    .collection(CollectionConfig::new(collection))
    .await
}

/// Exactly the indexes upstream creates (names, keys, options), before any of ours.
async fn upstream_indexes(db: &mongodb::Database, c: &str, indexed: &[&str]) {
    let ix = |keys: Document, name: &str, unique: bool| {
        mongodb::IndexModel::builder()
            .keys(keys)
            .options(
                mongodb::options::IndexOptions::builder()
                    .name(name.to_string())
                    .unique(unique.then_some(true))
                    .build(),
            )
            .build()
    };
    let mut head = vec![
        ix(doc! {"itemId": 1}, "idx_head_itemId", true),
        ix(doc! {"cv": -1}, "idx_head_cv", false),
        ix(doc! {"ov": -1}, "idx_head_ov", false),
        ix(doc! {"updatedAt": -1}, "idx_head_updatedAt", false),
        ix(doc! {"deletedAt": 1}, "idx_head_deletedAt", false),
    ];
    for p in indexed {
        head.push(ix(
            doc! {format!("metaIndexed.{p}"): 1},
            &format!("meta_{p}_1"),
            false,
        ));
    }
    db.collection::<Document>(&format!("{c}_head"))
        .create_indexes(head)
        .await
        .unwrap();
    db.collection::<Document>(&format!("{c}_ver"))
        .create_indexes([
            ix(doc! {"itemId": 1, "ov": -1}, "idx_ver_itemId_ov", false),
            ix(doc! {"at": -1}, "idx_ver_at", false),
            ix(doc! {"at": -1, "ov": -1}, "idx_ver_at_ov", false),
            ix(doc! {"cv": -1}, "idx_ver_cv", false),
            ix(doc! {"op": 1}, "idx_ver_op", false),
            ix(doc! {"ov": -1}, "idx_ver_ov", false),
        ])
        .await
        .unwrap();
    db.collection::<Document>(&format!("{c}_locks"))
        .create_indexes([
            ix(doc! {"itemId": 1}, "itemId_unique", true),
            mongodb::IndexModel::builder()
                .keys(doc! {"expiresAt": 1})
                .options(
                    mongodb::options::IndexOptions::builder()
                        .name("expiresAt_ttl".to_string())
                        .expire_after(std::time::Duration::from_secs(0))
                        .build(),
                )
                .build(),
            ix(doc! {"serverId": 1}, "serverId_index", false),
            ix(
                doc! {"serverId": 1, "expiresAt": 1},
                "serverId_expiresAt_compound",
                false,
            ),
        ])
        .await
        .unwrap();
}

/// Upstream's write race leaves two entries for one `(itemId, ov)`: opening the collection
/// names them (id and ov) in a clear error instead of a raw duplicate-key failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_upstream_versions_are_named() {
    let Some((conn, client, db_name)) = fresh_database().await else {
        return;
    };
    let db = client.database(&db_name);
    upstream_indexes(&db, "orders", &[]).await;
    let oid = ObjectId::new();
    // The head points at the entry with the lower cv: that one must be kept.
    for (cv, key) in [(3_i32, "item.json"), (4, "item-loser.json")] {
        db.collection::<Document>("orders_ver")
            .insert_one(doc! {"_id": ObjectId::new(), "itemId": oid, "ov": 1_i32, "cv": cv, "op": "UPDATE",
                "at": DateTime::now(), "jsonKey": format!("orders/{oid}/v1/{key}"), "metaIndexed": {},
                "size": 2_i32, "checksum": ""})
            .await
            .unwrap();
    }
    db.collection::<Document>("orders_head")
        .insert_one(doc! {"_id": oid, "itemId": oid, "ov": 1_i32, "cv": 3_i32, "jsonKey": format!("orders/{oid}/v1/item.json"),
            "metaIndexed": {}, "size": 2_i32, "checksum": "", "createdAt": DateTime::now(), "updatedAt": DateTime::now()})
        .await
        .unwrap();
    let stores = conn.database(&db_name).await.unwrap();
    let e = open(&stores, "orders").await.unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.kind(), chronos_core::ErrorKind::InvalidConfig, "{msg}");
    assert!(msg.contains(&oid.to_hex()) && msg.contains("ov 1"), "{msg}");
    assert!(msg.contains("2 entries"), "{msg}");

    // The repair keeps the head's entry and moves the other aside (nothing is deleted).
    let moved = stores.repair_duplicate_versions("orders").await.unwrap();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0].kept_because, "head");
    assert!(moved[0].moved_key.ends_with("item-loser.json"), "{moved:?}");
    assert_eq!(
        db.collection::<Document>("orders_ver_duplicates")
            .count_documents(doc! {})
            .await
            .unwrap(),
        1
    );
    assert!(stores
        .repair_duplicate_versions("orders")
        .await
        .unwrap()
        .is_empty());
    let orders = open(&stores, "orders")
        .await
        .expect("opens after the repair");
    let v = orders
        .stores()
        .index
        .version("orders", ItemId::from_bytes(oid.bytes()), 1)
        .await
        .unwrap()
        .unwrap();
    assert!(v.blob_key.ends_with("/item.json"));
    client.database(&db_name).drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_layout_reads_back() {
    let Some((conn, client, db_name)) = fresh_database().await else {
        return;
    };
    let db = client.database(&db_name);
    let blobs = Arc::new(chronos_testkit::MemoryBlobStore::new());

    upstream_indexes(&db, "users", &["email", "status"]).await;

    let oid = ObjectId::new();
    let id = ItemId::from_bytes(oid.bytes());
    let t = |s: &str| DateTime::parse_rfc3339_str(s).unwrap();
    let versions = [
        (
            0_i32,
            1_i32,
            "CREATE",
            "2026-01-01T10:00:00.000Z",
            json!({"email": "a@x.io", "status": "active"}),
        ),
        (
            1,
            5,
            "UPDATE",
            "2026-01-02T10:00:00.000Z",
            json!({"email": "a@x.io", "status": "vip"}),
        ),
    ];
    let mut keys = Vec::new();
    for (ov, cv, op, at, data) in &versions {
        let key = format!("users/{oid}/v{ov}/item.json");
        let mut payload = data.clone();
        payload["_system"] = json!({"insertedAt": "2026-01-01T10:00:00.000Z", "updatedAt": at, "state": "new-not-synched"});
        let bytes = serde_json::to_vec(&payload).unwrap();
        blobs
            .put_if_absent(&key, Bytes::from(bytes.clone()))
            .await
            .unwrap();
        let mut ver = doc! {
            "_id": ObjectId::new(), "itemId": oid, "ov": *ov, "cv": *cv, "op": *op, "at": t(at),
            "actor": "ts-app", "reason": "seed", "jsonBucket": "chronos-compat", "jsonKey": &key,
            "metaIndexed": {"email": data["email"].as_str().unwrap(), "status": data["status"].as_str().unwrap()},
            "size": bytes.len() as i32, "checksum": sha(&bytes),
        };
        if *ov > 0 {
            ver.insert("prevOv", *ov - 1);
        }
        db.collection::<Document>("users_ver")
            .insert_one(ver)
            .await
            .unwrap();
        keys.push((key, bytes));
    }
    // A DELETE writes no JSON: it points at the previous version's object.
    let (last_key, last_bytes) = keys.last().cloned().unwrap();
    db.collection::<Document>("users_ver")
            .insert_one(doc! {
                "_id": ObjectId::new(), "itemId": oid, "ov": 2_i32, "cv": 9_i32, "op": "DELETE", "at": t("2026-01-03T10:00:00.000Z"),
                "jsonBucket": "chronos-compat", "jsonKey": &last_key, "metaIndexed": {"email": "a@x.io", "status": "vip"},
                "size": last_bytes.len() as i32, "checksum": sha(&last_bytes), "prevOv": 1_i32,
            })
            .await
            .unwrap();
    db.collection::<Document>("users_head")
            .insert_one(doc! {
                "_id": oid, "itemId": oid, "ov": 2_i32, "cv": 9_i32, "jsonBucket": "chronos-compat", "jsonKey": &last_key,
                "metaIndexed": {"email": "a@x.io", "status": "vip"}, "size": last_bytes.len() as i32,
                "checksum": sha(&last_bytes), "createdAt": t("2026-01-01T10:00:00.000Z"),
                "updatedAt": t("2026-01-03T10:00:00.000Z"), "deletedAt": t("2026-01-03T10:00:00.000Z"),
            })
            .await
            .unwrap();
    db.collection::<Document>("users_counter")
        .insert_one(doc! {"_id": "cv", "value": 34_i32})
        .await
        .unwrap();

    let stores = conn.database(&db_name).await.unwrap();
    let users = Engine::new(Stores {
        index: stores.index(),
        blob: blobs.clone(),
        lock: stores.lock(),
    })
    .collection(CollectionConfig::new("users").indexed_props(["email", "status"]))
    .await
    .unwrap();
    let ro = ReadOptions::new;
    assert!(
        users.get_latest(id, ro()).await.unwrap().is_none(),
        "the upstream delete holds"
    );
    let tomb = users
        .get_latest(id, ro().include_deleted(true))
        .await
        .unwrap()
        .unwrap();
    assert!(tomb.system.deleted && tomb.system.ov == 2 && tomb.system.cv == 9);
    assert_eq!(tomb.data["status"], "vip");
    let v0 = users.get_version(id, 0, ro()).await.unwrap().unwrap();
    assert_eq!(v0.data["status"], "active");
    assert_eq!(v0.system.inserted_at.to_string(), "2026-01-01T10:00:00Z");
    let asof = users
        .get_as_of(
            id,
            "2026-01-02T12:00:00Z".parse::<Timestamp>().unwrap(),
            ro(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (asof.system.ov, asof.data["status"].as_str()),
        (1, Some("vip"))
    );
    let hist = users
        .history(id, HistoryOptions::default())
        .await
        .unwrap()
        .versions;
    assert_eq!(
        hist.iter().map(|v| v.op).collect::<Vec<_>>(),
        [Op::Create, Op::Update, Op::Delete]
    );
    assert_eq!(hist[0].actor.as_deref(), Some("ts-app"));
    let listed = users
        .list_by_meta(
            ListOptions::new()
                .filter(json!({"status": "vip"}))
                .include_deleted(true),
        )
        .await
        .unwrap();
    assert_eq!(listed.items.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);

    // New writes continue the upstream counters and never touch upstream payloads.
    let w = users
        .restore_object(
            id,
            chronos_core::RestoreTarget::Ov(0),
            WriteOptions::new().expected_ov(2),
        )
        .await
        .unwrap();
    assert_eq!((w.ov, w.cv), (3, 35));
    for (key, bytes) in keys {
        assert_eq!(
            blobs.get(&key).await.unwrap(),
            Bytes::from(bytes),
            "upstream payload {key} changed"
        );
    }
    assert_eq!(
        users.get_latest(id, ro()).await.unwrap().unwrap().data["status"],
        "active"
    );
    client.database(&db_name).drop().await.unwrap();
}

/// An index that cannot coexist with one Chronos needs (same name, other keys) is a
/// configuration error naming the collection and the index — no raw server bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_indexes_are_named_without_raw_bytes() {
    let Some((conn, client, db_name)) = fresh_database().await else {
        return;
    };
    let db = client.database(&db_name);
    db.collection::<Document>("items_head")
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"cv": 1})
                .options(
                    mongodb::options::IndexOptions::builder()
                        .name("itemId".to_string())
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();
    let stores = conn.database(&db_name).await.unwrap();
    let e = open(&stores, "items").await.unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.kind(), chronos_core::ErrorKind::InvalidConfig, "{msg}");
    assert!(msg.contains("items_head"), "{msg}");
    for raw in ["RawDocument", "server response", "labels"] {
        assert!(!msg.contains(raw), "{msg}");
        assert!(!format!("{e:?}").contains(raw), "{e:?}");
    }
    client.database(&db_name).drop().await.unwrap();
}
