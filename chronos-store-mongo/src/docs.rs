//! [`DocumentStore`] on MongoDB: one MongoDB collection per document collection; the body's
//! fields at top level as given, plus `_c`, a canonical copy that filters and sorts use.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chronos_core::docs::{DocLayout, DocQuery, DocUpdate, Document, DocumentStore};
use chronos_core::filter::canonical;
use chronos_core::time::format_instant;
use chronos_core::{Error, Filter, Result, SortField, Timestamp};
use mongodb::bson::{self, doc, Bson};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, Database, IndexModel};
use serde_json::{Map, Value};

use crate::conv;
use crate::error::{is_duplicate_key, map_err};
use crate::filter;
use crate::index::find_sorted;
use crate::seen::Seen;
use crate::sortkey;

mod sorted;

/// The MongoDB document store of one database.
#[derive(Debug)]
pub struct MongoDocumentStore {
    db: Database,
    /// Collections whose documents are known to carry sort keys (`sorted::backfill`).
    sortable: Seen,
    /// The date fields each prepared collection declared ([`DocLayout::dates`]).
    dates: RwLock<HashMap<String, Arc<[String]>>>,
}

const CANON: &str = "_c";
/// Sort tags (`_s.o`) and keys (`_s.k`) of a body's arrays and objects ([`sortkey`]).
const SORT: &str = "_s";
/// The nonce of the insert that created a document (see `insert`).
const WRITE: &str = "_w";
/// The sparse index on `_s.o`, created once every document of a collection has its keys.
const SORT_INDEX: &str = "chronos_sortkeys";

fn check_name(coll: &str) -> Result<()> {
    chronos_core::engine::validate_collection_name(coll)
}

/// `s` as a native date when it is exactly [`format_instant`]'s form (so that decoding gives
/// back the same text).
fn as_date(s: &str) -> Option<Bson> {
    let t = chronos_core::time::parse_instant(s).ok()?;
    (format_instant(t) == s).then(|| Bson::DateTime(conv::date(t)))
}

fn encode(doc: &Document, dates: &[String]) -> Result<bson::Document> {
    if [CANON, SORT, WRITE, "_id"]
        .iter()
        .any(|k| doc.body.contains_key(*k))
    {
        return Err(Error::validation(
            "document bodies may not use the reserved fields _id, _c, _s and _w",
        )
        .with("id", &doc.id));
    }
    let mut d = conv::to_doc(&doc.body);
    for f in dates {
        if let Some(date) = d.get_str(f).ok().and_then(as_date) {
            d.insert(f.clone(), date);
        }
    }
    d.insert("_id", &doc.id);
    d.insert(
        CANON,
        conv::to_bson(&canonical(&Value::Object(doc.body.clone()))),
    );
    if let Some(keys) = sort_keys(&doc.body) {
        d.insert(SORT, keys);
    }
    Ok(d)
}

/// `_s` of a body: its containers' sort tags and keys ([`sortkey`]), if it has any.
fn sort_keys(body: &Map<String, Value>) -> Option<bson::Document> {
    let mut s = bson::Document::new();
    sortkey::annotate_as(body, &mut s, "o", "k");
    (!s.is_empty()).then_some(s)
}

fn decode(mut d: bson::Document) -> Result<Document> {
    let id = match d.remove("_id") {
        Some(Bson::String(s)) => s,
        Some(other) => other.to_string(),
        None => return Err(Error::internal("stored document lacks _id")),
    };
    d.remove(CANON);
    d.remove(SORT);
    d.remove(WRITE);
    let mut body = conv::from_doc(&d);
    // Dates were written from instants' text (see `encode`): give back that text.
    for (k, v) in &d {
        if let Bson::DateTime(t) = v {
            if let Ok(t) = Timestamp::from_millisecond(t.timestamp_millis()) {
                body.insert(k.clone(), Value::String(format_instant(t)));
            }
        }
    }
    Ok(Document { id, body })
}

impl MongoDocumentStore {
    pub(crate) fn new(db: Database) -> Self {
        Self {
            db,
            sortable: Seen::default(),
            dates: RwLock::default(),
        }
    }
    fn dates(&self, coll: &str) -> Arc<[String]> {
        let g = self.dates.read().unwrap_or_else(|e| e.into_inner());
        g.get(coll)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }
    fn encode(&self, coll: &str, doc: &Document) -> Result<bson::Document> {
        encode(doc, &self.dates(coll))
    }
    fn coll(&self, name: &str) -> Result<Collection<bson::Document>> {
        check_name(name)?;
        Ok(self.db.collection(name))
    }

    /// Read, check, apply, then replace only if unchanged; with an optional precondition.
    async fn apply(
        &self,
        coll: &str,
        id: &str,
        expect: Option<&Filter>,
        update: DocUpdate,
        upsert: bool,
    ) -> Result<Option<Document>> {
        // Read, apply, then replace only if unchanged (compare-and-swap on the canonical copy);
        // retried on a lost race so concurrent increments are never lost.
        let c = self.coll(coll)?;
        for _ in 0..100 {
            let current = c
                .find_one(doc! {"_id": id})
                .await
                .map_err(|e| map_err(e, "read document"))?;
            let (mut body, guard) = match current {
                Some(d) => {
                    let guard = d.get(CANON).cloned().unwrap_or(Bson::Null);
                    let body = decode(d)?.body;
                    // Checked on the body the compare-and-swap below is guarded by.
                    if !expect.is_none_or(|f| f.matches(&body)) {
                        return Ok(None);
                    }
                    (body, Some(guard))
                }
                None if upsert => (Map::new(), None),
                None => return Ok(None),
            };
            update
                .apply(&mut body)
                .map_err(|e| e.with("collection", coll).with("id", id))?;
            let next = Document {
                id: id.to_string(),
                body,
            };
            let encoded = self.encode(coll, &next)?;
            let ok = match guard {
                Some(g) => c
                    .find_one_and_replace(doc! {"_id": id, CANON: g}, encoded)
                    .return_document(ReturnDocument::After)
                    .await
                    .map_err(|e| map_err(e, "update document"))?
                    .is_some(),
                None => match c.insert_one(encoded).await {
                    Ok(_) => true,
                    Err(e) if is_duplicate_key(&e) => false,
                    Err(e) => return Err(map_err(e, "update document")),
                },
            };
            if ok {
                return Ok(Some(next));
            }
        }
        Err(Error::unavailable("document update kept conflicting")
            .with("collection", coll)
            .with("id", id))
    }
}

#[async_trait]
impl DocumentStore for MongoDocumentStore {
    async fn insert(&self, coll: &str, doc: Document) -> Result<()> {
        let c = self.coll(coll)?;
        // The driver retries a write whose answer it lost; a server that does not remember
        // retried writes then reports our own document as a duplicate. The write's nonce
        // tells the two apart, so `AlreadyExists` means another insert made it.
        let nonce = bson::oid::ObjectId::new();
        let mut encoded = self.encode(coll, &doc)?;
        encoded.insert(WRITE, nonce);
        match c.insert_one(encoded).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => {
                let ours = c
                    .find_one(doc! {"_id": &doc.id, WRITE: nonce})
                    .projection(doc! {"_id": 1})
                    .await
                    .map_err(|e| map_err(e, "read document").with("collection", coll))?;
                if ours.is_some() {
                    tracing::debug!(collection = coll, id = %doc.id,
                        "a retried insert found its own document");
                    return Ok(());
                }
                Err(
                    Error::already_exists(format!("document '{}' already exists", doc.id))
                        .with("collection", coll)
                        .with("id", &doc.id),
                )
            }
            Err(e) => Err(map_err(e, "insert document").with("collection", coll)),
        }
    }

    async fn get(&self, coll: &str, id: &str) -> Result<Option<Document>> {
        let d = self
            .coll(coll)?
            .find_one(doc! {"_id": id})
            .await
            .map_err(|e| map_err(e, "read document"))?;
        d.map(decode).transpose()
    }

    async fn replace(&self, coll: &str, doc: Document, upsert: bool) -> Result<bool> {
        let r = self
            .coll(coll)?
            .replace_one(doc! {"_id": &doc.id}, self.encode(coll, &doc)?)
            .upsert(upsert)
            .await
            .map_err(|e| map_err(e, "replace document").with("collection", coll))?;
        Ok(r.matched_count == 1 || r.upserted_id.is_some())
    }

    async fn update(
        &self,
        coll: &str,
        id: &str,
        update: DocUpdate,
        upsert: bool,
    ) -> Result<Option<Document>> {
        self.apply(coll, id, None, update, upsert).await
    }

    async fn update_where(
        &self,
        coll: &str,
        id: &str,
        expect: &Filter,
        update: DocUpdate,
    ) -> Result<Option<Document>> {
        self.apply(coll, id, Some(expect), update, false).await
    }

    async fn delete(&self, coll: &str, id: &str) -> Result<bool> {
        let r = self
            .coll(coll)?
            .delete_one(doc! {"_id": id})
            .await
            .map_err(|e| map_err(e, "delete document"))?;
        Ok(r.deleted_count == 1)
    }

    async fn find(&self, coll: &str, q: &DocQuery) -> Result<Vec<Document>> {
        let sort = match &q.sort {
            Some((SortField::Meta(p), desc)) => return self.find_sorted(coll, q, p, *desc).await,
            Some((_, true)) => doc! {"_id": -1},
            _ => doc! {"_id": 1},
        };
        let docs = find_sorted(
            &self.coll(coll)?,
            filter::translate(&q.filter, &format!("{CANON}.")),
            sort,
            q.skip,
            q.limit,
            "find documents",
        )
        .await
        .map_err(|e| e.with("collection", coll))?;
        docs.into_iter().map(decode).collect()
    }

    async fn count(&self, coll: &str, f: &Filter) -> Result<u64> {
        self.coll(coll)?
            .count_documents(filter::translate(f, &format!("{CANON}.")))
            .await
            .map_err(|e| map_err(e, "count documents").with("collection", coll))
    }

    async fn delete_where(&self, coll: &str, f: &Filter) -> Result<u64> {
        let r = self
            .coll(coll)?
            .delete_many(filter::translate(f, &format!("{CANON}.")))
            .await
            .map_err(|e| map_err(e, "delete documents").with("collection", coll))?;
        Ok(r.deleted_count)
    }

    async fn prepare(&self, coll: &str, layout: &DocLayout) -> Result<()> {
        let c = self.coll(coll)?;
        // Filters and sorts run on the canonical copy, so that is what the indexes cover.
        let mut models: Vec<IndexModel> = layout
            .indexes
            .iter()
            .filter(|ix| !ix.is_empty())
            .map(|ix| {
                let keys: bson::Document = ix
                    .iter()
                    .map(|p| (format!("{CANON}.{p}"), Bson::Int32(1)))
                    .collect();
                IndexModel::builder().keys(keys).build()
            })
            .collect();
        // TTL indexes work on top-level native dates, which is what `encode` writes for a
        // declared date field.
        if let Some(f) = &layout.expire_at {
            let mut keys = bson::Document::new();
            keys.insert(f.clone(), 1);
            models.push(
                IndexModel::builder()
                    .keys(keys)
                    .options(
                        IndexOptions::builder()
                            .name(format!("ttl_{f}"))
                            .expire_after(std::time::Duration::ZERO)
                            .build(),
                    )
                    .build(),
            );
        }
        if !models.is_empty() {
            c.create_indexes(models)
                .await
                .map_err(|e| map_err(e, "create document indexes").with("collection", coll))?;
        }
        self.dates
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(coll.to_string(), Arc::from(layout.dates.clone()));
        Ok(())
    }
}
