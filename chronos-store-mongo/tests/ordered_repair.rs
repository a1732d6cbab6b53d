//! The ordered (non-transactional) commit path after a crash between its steps: a version
//! whose head write never happened is found by the next `head` read, which repairs the head —
//! also when the lost step was a head removal, and however long the history is.

#![cfg(chronos_services)]

mod common;

use chronos_core::{Commit, HeadAction, ItemId, NewVersion, Op, Timestamp};
use chronos_store_mongo::{MongoConnection, Transactions};
use mongodb::bson::{doc, oid::ObjectId, Document};
use serde_json::json;

fn commit(id: ItemId, ov: u64, op: Op, head: HeadAction) -> Commit {
    let at = Timestamp::from_millisecond(1_800_000_000_000 + ov as i64).unwrap();
    Commit::new(
        NewVersion {
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
        head,
    )
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

/// Writes read the head alone (`head_for_write`, one request less), so after a crash that
/// left the head behind the log a write starts from the old head: its commit is a lost race,
/// and the retry starts from the repaired head — an enrichment merges into the version the
/// log holds, not the one the stale head names. Deletes and updates are tried the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_a_lagging_head_retry_from_the_repaired_one() {
    use chronos_core::{
        CollectionConfig, CreateOptions, Engine, EnrichOptions, ReadOptions, Stores, WriteOptions,
    };
    let Some(uri) = common::uri() else { return };
    let conn = MongoConnection::connect(&uri, Transactions::Off)
        .await
        .unwrap();
    let db_name = common::db_name();
    let mdb = conn.database(&db_name).await.unwrap();
    let c = Engine::new(Stores {
        index: mdb.index(),
        blob: std::sync::Arc::new(chronos_testkit::MemoryBlobStore::new()),
        lock: mdb.lock(),
    })
    .collection(CollectionConfig::new("lag"))
    .await
    .unwrap();
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let heads = client.database(&db_name).collection::<Document>("lag_head");
    let mut latest = json!({"n": 0});
    let id = c.create(&latest, CreateOptions::new()).await.unwrap().id;
    let oid = ObjectId::from_bytes(id.bytes());
    for round in 1..=3u64 {
        // The head of the current version, kept; the next version commits; the head goes
        // back, as if the process had died between that version's insert and its head write.
        let stale = heads.find_one(doc! {"_id": oid}).await.unwrap().unwrap();
        latest = json!({"n": round, "kept": round});
        let w = c.update(id, &latest, WriteOptions::new()).await.unwrap();
        heads.replace_one(doc! {"_id": oid}, stale).await.unwrap();
        let next = match round {
            1 => c
                .enrich(id, &json!({"more": round}), EnrichOptions::new())
                .await
                .unwrap(),
            2 => c
                .update(id, &json!({"n": 20, "kept": 20}), WriteOptions::new())
                .await
                .unwrap(),
            _ => c.delete(id, WriteOptions::new()).await.unwrap(),
        };
        assert_eq!(
            next.ov,
            w.ov + 1,
            "round {round}: the write went on from the log"
        );
        let history = c.history(id, Default::default()).await.unwrap();
        assert_eq!(
            history.versions.iter().map(|v| v.ov).collect::<Vec<_>>(),
            (0..=next.ov).collect::<Vec<_>>(),
            "round {round}: a dense history, nothing lost or written twice"
        );
        if round == 1 {
            let r = c.get_latest(id, ReadOptions::new()).await.unwrap().unwrap();
            assert_eq!(
                r.data["kept"], 1,
                "the enrichment kept the update it did not see"
            );
            assert_eq!(r.data["more"], 1);
        }
    }
    assert!(c
        .get_latest(id, ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    client.database(&db_name).drop().await.unwrap();
}
