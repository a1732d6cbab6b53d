//! A declared document layout on MongoDB: date fields are native BSON dates (what the
//! database's own tools and TTL indexes see), read back as the text written, and the
//! declared indexes exist on the canonical copy that filters use, the TTL index on the date.

#![cfg(chronos_services)]

mod common;

use chronos_core::{DocLayout, Document};
use chronos_store_mongo::{MongoConnection, Transactions};
use mongodb::bson::{doc, Bson};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_dates_are_native_and_indexes_exist() {
    let uri = common::uri().expect("CHRONOS_TEST_MONGODB_URI");
    let conn = MongoConnection::connect(&uri, Transactions::Auto)
        .await
        .unwrap();
    let name = common::db_name();
    let docs = conn.database(&name).await.unwrap().docs();
    docs.prepare(
        "events",
        &DocLayout::new([vec!["tenantId", "at"]], &["at", "loose"]).expire_at("at"),
    )
    .await
    .unwrap();
    let body =
        json!({"tenantId": "t", "at": "2026-01-02T03:04:05.678Z", "loose": "2026-01-02T03:04:05Z"});
    docs.insert(
        "events",
        Document {
            id: "e1".into(),
            body: body.as_object().cloned().unwrap(),
        },
    )
    .await
    .unwrap();

    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let raw = client
        .database(&name)
        .collection::<mongodb::bson::Document>("events");
    let stored = raw.find_one(doc! {"_id": "e1"}).await.unwrap().unwrap();
    match stored.get("at") {
        Some(Bson::DateTime(d)) => assert_eq!(d.timestamp_millis(), 1_767_323_045_678),
        other => panic!("at is not a native date: {other:?}"),
    }
    assert_eq!(
        stored.get("loose"),
        Some(&Bson::String("2026-01-02T03:04:05Z".into())),
        "text that would not read back identically stays text"
    );
    let back = docs.get("events", "e1").await.unwrap().unwrap();
    assert_eq!(serde_json::Value::Object(back.body), body);

    let names: Vec<String> = raw.list_index_names().await.unwrap();
    assert!(
        names
            .iter()
            .any(|n| n.contains("_c.tenantId") && n.contains("_c.at")),
        "the declared index is on the canonical copy: {names:?}"
    );
    assert!(
        names.iter().any(|n| n == "ttl_at"),
        "the TTL index exists: {names:?}"
    );
    client.database(&name).drop().await.unwrap();
}
