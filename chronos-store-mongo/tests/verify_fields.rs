//! Property: every single-field change to a stored version document or head document —
//! made with the raw driver, as someone with write access to the database would — is found
//! by `Collection::verify` and located at its record and version (the fields, the fixture and
//! the rule are `chronos_testkit::tamper`'s, shared with SQLite's test). 500 random cases by
//! default (`PROPTEST_CASES` overrides); each case puts back the document it changed, and
//! the collection verifies clean at the end.

#![cfg(chronos_services)]

mod common;

use chronos_core::{CollectionConfig, Engine, ItemId};
use chronos_store_mongo::Transactions;
use chronos_testkit::tamper::{self, Field};
use mongodb::bson::{doc, Bson, DateTime, Document};

fn oid(id: ItemId) -> mongodb::bson::oid::ObjectId {
    mongodb::bson::oid::ObjectId::from_bytes(id.bytes())
}

fn hex(n: i64, width: usize) -> String {
    format!("{n:0width$x}")
}

fn add_ms(d: &mut Document, key: &str, by: i64) {
    let t = d.get_datetime(key).unwrap().timestamp_millis();
    d.insert(key, DateTime::from_millis(t + by));
}

fn add_i64(d: &mut Document, key: &str, by: i64) {
    let v = match d.get(key) {
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Int32(v)) => i64::from(*v),
        _ => 0,
    };
    d.insert(key, v + by);
}

fn flip_first(d: &mut Document, key: &str) {
    let s = d.get_str(key).unwrap();
    let first = if s.starts_with('a') { "b" } else { "a" };
    let changed = format!("{first}{}", &s[1..]);
    d.insert(key, changed);
}

/// Changes `field` in the document `d` (a version's or the head's); `None` removes it.
fn change(field: Field, mut d: Document, n: i64) -> Option<Document> {
    let seal = |d: &mut Document, key: &str, v: String| {
        d.get_document_mut("seal").unwrap().insert(key, v);
    };
    match field {
        Field::Ov => add_i64(&mut d, "ov", 100),
        Field::Cv => add_i64(&mut d, "cv", 1_000_000 + n),
        Field::Op => {
            let op = if d.get_str("op").unwrap() == "UPDATE" {
                "CREATE"
            } else {
                "UPDATE"
            };
            d.insert("op", op);
        }
        Field::At => add_ms(&mut d, "at", 1 + n % 5),
        Field::Actor => {
            if d.remove("actor").is_none() {
                d.insert("actor", "mallory");
            }
        }
        Field::Reason => {
            let r = format!("{}x", d.get_str("reason").unwrap_or(""));
            d.insert("reason", r);
        }
        Field::BlobKey | Field::HeadBlobKey => {
            let k = format!("{}.moved", d.get_str("jsonKey").unwrap());
            d.insert("jsonKey", k);
        }
        Field::Meta | Field::HeadMeta => {
            d.get_document_mut("metaIndexed")
                .unwrap()
                .insert("n", n + 1000);
        }
        Field::Size | Field::HeadSize => add_i64(&mut d, "size", 1 + n % 7),
        Field::Checksum | Field::HeadChecksum => flip_first(&mut d, "checksum"),
        Field::PrevOv => {
            let p = match d.get("prevOv") {
                Some(Bson::Int64(v)) => *v,
                _ => 0,
            };
            d.insert("prevOv", p + 1 + n % 3);
        }
        Field::SealSalt => seal(&mut d, "salt", hex(n, 32)),
        Field::SealDigest => seal(&mut d, "digest", hex(n, 64)),
        Field::SealPrev => seal(&mut d, "prev", hex(n, 64)),
        Field::SealHash => seal(&mut d, "hash", hex(n, 64)),
        Field::SealRemoved => {
            d.remove("seal");
        }
        Field::RowRemoved | Field::HeadRemoved => return None,
        Field::HeadOv => add_i64(&mut d, "ov", 1 + n % 3),
        Field::HeadCv => add_i64(&mut d, "cv", 1 + n % 3),
        Field::HeadUpdatedAt => add_ms(&mut d, "updatedAt", -1 - n % 5),
        Field::HeadDeleted => match d.get("deletedAt") {
            Some(Bson::DateTime(_)) => {
                d.remove("deletedAt");
            }
            _ => {
                let at = *d.get_datetime("updatedAt").unwrap();
                d.insert("deletedAt", at);
            }
        },
        Field::HeadChain => {
            d.insert("chain", hex(n, 64));
        }
    }
    Some(d)
}

#[test]
fn verify_locates_every_changed_field() {
    let Some(uri) = common::uri() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let name = common::db_name();
    let (coll, ids, db) = rt.block_on(async {
        let conn = chronos_store_mongo::MongoConnection::connect(&uri, Transactions::Auto)
            .await
            .unwrap();
        let stores = conn.database(&name).await.unwrap();
        let engine = Engine::new(chronos_core::Stores {
            index: stores.index(),
            blob: std::sync::Arc::new(chronos_testkit::MemoryBlobStore::new()),
            lock: stores.lock(),
        });
        let coll = engine.collection(CollectionConfig::new("m")).await.unwrap();
        let ids = tamper::fixture(&coll).await;
        let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
        (coll, ids, client.database(&name))
    });
    assert!(rt.block_on(coll.verify(|_| {})).unwrap().is_ok());
    let ver = db.collection::<Document>("m_ver");
    let head = db.collection::<Document>("m_head");
    tamper::run_cases(500, |rec, ov, field, n| {
        let id = ids[rec];
        rt.block_on(async {
            let (target, filter) = if field.is_head() {
                (&head, doc! {"_id": oid(id)})
            } else {
                (&ver, doc! {"itemId": oid(id), "ov": ov as i64})
            };
            let original = target.find_one(filter.clone()).await.unwrap().unwrap();
            let key = doc! {"_id": original.get("_id").unwrap().clone()};
            match change(field, original.clone(), n) {
                Some(d) => {
                    let r = target.replace_one(key.clone(), d).await.unwrap();
                    assert_eq!(r.matched_count, 1);
                }
                None => {
                    target.delete_one(key.clone()).await.unwrap();
                }
            }
            let report = coll.verify(|_| {}).await.unwrap();
            target
                .replace_one(key, original)
                .upsert(true)
                .await
                .unwrap();
            tamper::located(&report, id, ov, field)
        })
    });
    let end = rt.block_on(coll.verify(|_| {})).unwrap();
    assert!(end.is_ok(), "every case restored what it changed: {end:?}");
    rt.block_on(async { db.drop().await }).unwrap();
}
