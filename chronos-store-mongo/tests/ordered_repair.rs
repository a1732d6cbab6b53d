//! The ordered (non-transactional) commit path after a crash between its steps: a version
//! whose head write never happened is found by the next `head` read, which repairs the head —
//! also when the lost step was a head removal, and however long the history is.

#![cfg(chronos_services)]

mod common;

use chronos_core::{Commit, HeadAction, ItemId, Lineage, NewVersion, Op, Timestamp};
use chronos_store_mongo::{MongoConnection, Transactions};
use mongodb::bson::{doc, oid::ObjectId, Document};
use serde_json::json;

fn commit(id: ItemId, ov: u64, op: Op, head: HeadAction) -> Commit {
    let at = Timestamp::from_millisecond(1_800_000_000_000 + ov as i64).unwrap();
    Commit {
        version: NewVersion {
            item_id: id,
            ov,
            op,
            at,
            actor: None,
            reason: None,
            blob_key: format!("c/{id}/v{ov}/item-x.json"),
            meta: json!({"ov": ov}).as_object().cloned().unwrap(),
            size: 2,
            checksum: "00".into(),
            prev_ov: ov.checked_sub(1),
            chain: None,
        },
        created_at: at,
        head,
        prune_below_ov: None,
        shadow: None,
        lineage: Lineage::default(),
        not_after: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_head_is_repaired_on_read() {
    let Some(uri) = common::uri() else { return };
    let conn = MongoConnection::connect(&uri, Transactions::Off)
        .await
        .unwrap();
    let db_name = common::db_name();
    let idx = conn.database(&db_name).await.unwrap().index();
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let db = client.database(&db_name);
    let (heads, log) = (
        db.collection::<Document>("c_head"),
        db.collection::<Document>("c_ver"),
    );
    let id = ItemId::generate();
    let oid = ObjectId::from_bytes(id.bytes());
    for ov in 0..30 {
        let op = if ov == 0 { Op::Create } else { Op::Update };
        idx.commit("c", commit(id, ov, op, HeadAction::Upsert))
            .await
            .unwrap();
    }
    assert_eq!(idx.head("c", id).await.unwrap().unwrap().ov, 29);
    let head_29 = heads.find_one(doc! {"_id": oid}).await.unwrap().unwrap();

    // A crash after the version insert of ov 30: the head is still ov 29's.
    idx.commit("c", commit(id, 30, Op::Update, HeadAction::Upsert))
        .await
        .unwrap();
    heads.replace_one(doc! {"_id": oid}, head_29).await.unwrap();
    let h = idx.head("c", id).await.unwrap().unwrap();
    assert_eq!(
        (h.ov, h.blob_key.as_str()),
        (30, format!("c/{id}/v30/item-x.json").as_str())
    );
    let stored = heads.find_one(doc! {"_id": oid}).await.unwrap().unwrap();
    assert_eq!(
        stored.get_i64("ov").unwrap(),
        30,
        "the repair is written back"
    );

    // The next commit goes on from the repaired head.
    idx.commit("c", commit(id, 31, Op::Update, HeadAction::Upsert))
        .await
        .unwrap();
    assert_eq!(idx.head("c", id).await.unwrap().unwrap().ov, 31);

    // A crash after the version insert of a hard delete: the head should be gone.
    log.insert_one(doc! {
        "_id": ObjectId::new(), "itemId": oid, "ov": 32_i64, "cv": 999_i64, "op": "DELETE",
        "at": mongodb::bson::DateTime::from_millis(1_800_000_000_032), "jsonKey": "k",
        "metaIndexed": {}, "size": 1_i64, "checksum": "00", "headRemoved": true,
    })
    .await
    .unwrap();
    assert!(idx.head("c", id).await.unwrap().is_none());
    assert!(heads.find_one(doc! {"_id": oid}).await.unwrap().is_none());

    // A record whose first head write was lost.
    let other = ItemId::generate();
    idx.commit("c", commit(other, 0, Op::Create, HeadAction::Upsert))
        .await
        .unwrap();
    heads
        .delete_one(doc! {"_id": ObjectId::from_bytes(other.bytes())})
        .await
        .unwrap();
    assert_eq!(idx.head("c", other).await.unwrap().unwrap().ov, 0);
    db.drop().await.unwrap();
}
