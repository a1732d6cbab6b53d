//! The erase canary scan on MongoDB: a record's content planted in payload fields, indexed
//! metadata and the devShadow copy is, after `Collection::erase`, in no document of any
//! collection of the database (the raw BSON of every document is searched), with and
//! without transactions; another record's content still is.

#![cfg(chronos_services)]

mod common;

use std::sync::Arc;

use chronos_core::{CollectionConfig, CreateOptions, Engine, Stores, WriteOptions};
use chronos_store_mongo::{MongoConnection, Transactions};
use futures::TryStreamExt;
use mongodb::bson::Document;
use serde_json::json;

const CANARY: &[u8] = b"CANARY-mongo-3d9a";
const KEPT: &[u8] = b"KEPT-mongo-77c1";

/// How many documents of database `db` (any collection) contain `needle` in their BSON.
async fn documents_containing(db: &mongodb::Database, needle: &[u8]) -> usize {
    let mut hits = 0;
    for name in db.list_collection_names().await.unwrap() {
        let mut cursor = db
            .collection::<Document>(&name)
            .find(Document::new())
            .await
            .unwrap();
        while let Some(d) = cursor.try_next().await.unwrap() {
            let bytes = mongodb::bson::to_vec(&d).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits += 1;
            }
        }
    }
    hits
}

async fn scan(mode: Transactions) {
    let Some(uri) = common::uri() else { return };
    let conn = MongoConnection::connect(&uri, mode).await.unwrap();
    let name = common::db_name();
    let stores = conn.database(&name).await.unwrap();
    let engine = Engine::new(Stores {
        index: stores.index(),
        blob: Arc::new(chronos_testkit::MemoryBlobStore::new()),
        lock: stores.lock(),
    });
    let c = engine
        .collection(
            CollectionConfig::new("people").dev_shadow(1 << 20, std::time::Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let canary = String::from_utf8_lossy(CANARY).into_owned();
    let doc =
        |n: u32| json!({"email": format!("{canary}-{n}"), "nested": {"note": canary}, "n": n});
    let w = c.create(&doc(0), CreateOptions::new()).await.unwrap();
    for n in 1..4 {
        c.update(w.id, &doc(n), WriteOptions::new()).await.unwrap();
    }
    c.create(
        &json!({"email": String::from_utf8_lossy(KEPT)}),
        CreateOptions::new(),
    )
    .await
    .unwrap();
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let db = client.database(&name);
    assert!(
        documents_containing(&db, CANARY).await >= 5,
        "{mode:?}: heads and versions hold the canary before the erase"
    );

    let r = c.erase(w.id, "dpo", "gdpr").await.unwrap();
    assert!(r.complete, "{mode:?}: {r:?}");
    assert_eq!(
        documents_containing(&db, CANARY).await,
        0,
        "{mode:?}: a document still holds the erased content"
    );
    assert_eq!(
        documents_containing(&db, KEPT).await,
        2,
        "{mode:?}: head + version of the other record"
    );
    db.drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_leaves_no_canary_in_any_collection() {
    scan(Transactions::Auto).await;
    scan(Transactions::Off).await;
}
