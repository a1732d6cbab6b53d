//! The in-memory [`DocumentStore`]: the non-versioned databases' documents by id.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chronos_core::docs::{DocQuery, DocUpdate, Document, DocumentStore};
use chronos_core::filter::{canonical_cmp, get_path};
use chronos_core::{Error, Filter, Result, SortField};
use serde_json::{Map, Value};

use crate::lock;

/// One document collection: bodies by id.
type DocColl = BTreeMap<String, Map<String, Value>>;

/// The in-memory [`DocumentStore`].
#[derive(Default)]
pub struct MemoryDocumentStore {
    colls: Mutex<HashMap<String, DocColl>>,
}

/// Collection names and sizes only: documents may hold secrets (password hashes, tokens'
/// digests) and `Debug` output ends up in logs.
impl std::fmt::Debug for MemoryDocumentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = lock(&self.colls);
        let mut sizes: Vec<(&String, usize)> = g.iter().map(|(k, c)| (k, c.len())).collect();
        sizes.sort();
        f.debug_struct("MemoryDocumentStore")
            .field("collections", &sizes)
            .finish()
    }
}

impl MemoryDocumentStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl MemoryDocumentStore {
    /// An update under the store's lock, with an optional precondition.
    fn apply(
        &self,
        collection: &str,
        id: &str,
        expect: Option<&Filter>,
        update: DocUpdate,
        upsert: bool,
    ) -> Result<Option<Document>> {
        let mut g = lock(&self.colls);
        let c = g.entry(collection.to_string()).or_default();
        let mut body = match c.get(id) {
            Some(b) if expect.is_none_or(|f| f.matches(b)) => b.clone(),
            Some(_) => return Ok(None),
            None if upsert => Map::new(),
            None => return Ok(None),
        };
        update
            .apply(&mut body)
            .map_err(|e| e.with("collection", collection).with("id", id))?;
        c.insert(id.to_string(), body.clone());
        Ok(Some(Document {
            id: id.to_string(),
            body,
        }))
    }
}

#[async_trait]
impl DocumentStore for MemoryDocumentStore {
    async fn insert(&self, collection: &str, doc: Document) -> Result<()> {
        let mut g = lock(&self.colls);
        let c = g.entry(collection.to_string()).or_default();
        if c.contains_key(&doc.id) {
            return Err(
                Error::already_exists(format!("document '{}' already exists", doc.id))
                    .with("collection", collection)
                    .with("id", &doc.id),
            );
        }
        c.insert(doc.id, doc.body);
        Ok(())
    }

    async fn get(&self, collection: &str, id: &str) -> Result<Option<Document>> {
        let g = lock(&self.colls);
        Ok(g.get(collection).and_then(|c| c.get(id)).map(|b| Document {
            id: id.to_string(),
            body: b.clone(),
        }))
    }

    async fn replace(&self, collection: &str, doc: Document, upsert: bool) -> Result<bool> {
        let mut g = lock(&self.colls);
        let c = g.entry(collection.to_string()).or_default();
        if !upsert && !c.contains_key(&doc.id) {
            return Ok(false);
        }
        c.insert(doc.id, doc.body);
        Ok(true)
    }

    async fn update(
        &self,
        collection: &str,
        id: &str,
        update: DocUpdate,
        upsert: bool,
    ) -> Result<Option<Document>> {
        self.apply(collection, id, None, update, upsert)
    }

    async fn update_where(
        &self,
        collection: &str,
        id: &str,
        expect: &Filter,
        update: DocUpdate,
    ) -> Result<Option<Document>> {
        self.apply(collection, id, Some(expect), update, false)
    }

    async fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        Ok(lock(&self.colls)
            .get_mut(collection)
            .is_some_and(|c| c.remove(id).is_some()))
    }

    async fn find(&self, collection: &str, q: &DocQuery) -> Result<Vec<Document>> {
        let g = lock(&self.colls);
        let Some(c) = g.get(collection) else {
            return Ok(Vec::new());
        };
        let mut hits: Vec<(&String, &Map<String, Value>)> =
            c.iter().filter(|(_, b)| q.filter.matches(b)).collect();
        if let Some((field, desc)) = &q.sort {
            hits.sort_by(|(ia, a), (ib, b)| {
                let o = match field {
                    SortField::Meta(p) => {
                        canonical_cmp(get_path(a, p), get_path(b, p)).then(ia.cmp(ib))
                    }
                    _ => ia.cmp(ib),
                };
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        Ok(hits
            .into_iter()
            .skip(q.skip)
            .take(q.limit)
            .map(|(id, b)| Document {
                id: id.clone(),
                body: b.clone(),
            })
            .collect())
    }

    async fn count(&self, collection: &str, filter: &Filter) -> Result<u64> {
        let g = lock(&self.colls);
        Ok(g.get(collection).map_or(0, |c| {
            c.values().filter(|b| filter.matches(b)).count() as u64
        }))
    }

    async fn delete_where(&self, collection: &str, filter: &Filter) -> Result<u64> {
        let mut g = lock(&self.colls);
        let Some(c) = g.get_mut(collection) else {
            return Ok(0);
        };
        let before = c.len();
        c.retain(|_, b| !filter.matches(b));
        Ok((before - c.len()) as u64)
    }
}
