//! In-memory backends: the reference implementation of every store trait.
//!
//! These are products, not mocks: they honour the full trait contracts (checked by the same
//! conformance suite as every other backend), so users can unit-test their own code against
//! them. Everything lives behind one mutex per store; clone the `Arc` to let several engines
//! share a store the way several processes share a database.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chronos_core::docs::{DocQuery, DocUpdate, Document, DocumentStore};
use chronos_core::filter::{canonical_cmp, get_path};
use chronos_core::time::now_ms;
use chronos_core::{
    BlobCapabilities, BlobMeta, BlobStore, Commit, Error, Filter, HeadAction, HeadEntry, HeadQuery,
    IndexCapabilities, IndexStore, ItemId, Lease, Lock, Point, Precommit, Result, SortField,
    Timestamp, VersionEntry,
};
use serde_json::{Map, Value};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a half-applied commit (each mutation
    // completes before anything can panic), so a poisoned lock is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Default)]
struct Coll {
    heads: BTreeMap<ItemId, HeadEntry>,
    /// Per record, versions in ascending ov (so `at` and `cv` ascend too).
    versions: BTreeMap<ItemId, Vec<VersionEntry>>,
    cv: u64,
}

/// The in-memory [`IndexStore`].
#[derive(Debug, Default)]
pub struct MemoryIndexStore {
    colls: Mutex<HashMap<String, Coll>>,
    database_id: std::sync::OnceLock<String>,
}

impl MemoryIndexStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    fn with<R>(&self, coll: &str, f: impl FnOnce(&mut Coll) -> R) -> R {
        let mut g = lock(&self.colls);
        f(g.entry(coll.to_string()).or_default())
    }
}

#[async_trait]
impl IndexStore for MemoryIndexStore {
    fn capabilities(&self) -> IndexCapabilities {
        IndexCapabilities::new(true)
    }

    async fn database_id(&self) -> Result<String> {
        Ok(self
            .database_id
            .get_or_init(chronos_core::new_database_id)
            .clone())
    }

    async fn prepare(&self, collection: &str, _indexed: &[String]) -> Result<()> {
        self.with(collection, |_| ());
        Ok(())
    }

    /// The ov check alone, so the engine's handling of a conflict found before the payload
    /// is stored runs on this backend too.
    async fn precommit(&self, collection: &str, c: &Commit) -> Result<Precommit> {
        self.with(collection, |coll| {
            let latest = coll
                .versions
                .get(&c.version.item_id)
                .and_then(|vs| vs.last())
                .map(|v| v.ov);
            check_ov(collection, c, latest)
        })?;
        Ok(Precommit::none())
    }

    async fn commit(&self, collection: &str, c: Commit) -> Result<u64> {
        self.with(collection, |coll| {
            let id = c.version.item_id;
            let latest = coll
                .versions
                .get(&id)
                .and_then(|vs| vs.last())
                .map(|v| v.ov);
            check_ov(collection, &c, latest)?;
            c.check_deadline(collection, now_ms())?;
            let vs = coll.versions.entry(id).or_default();
            coll.cv += 1;
            let entry = c.version.into_entry(coll.cv);
            match c.head {
                HeadAction::Upsert => {
                    let mut head = HeadEntry::from_version(&entry, c.created_at);
                    head.shadow = c.shadow;
                    head.lineage = Some(c.lineage);
                    coll.heads.insert(id, head);
                }
                HeadAction::Remove => {
                    coll.heads.remove(&id);
                }
            }
            if let Some(below) = c.prune_below_ov {
                vs.retain(|v| v.ov >= below);
            }
            vs.push(entry);
            Ok(coll.cv)
        })
    }

    async fn head(&self, collection: &str, id: ItemId) -> Result<Option<HeadEntry>> {
        Ok(self.with(collection, |c| c.heads.get(&id).cloned()))
    }

    async fn version(&self, collection: &str, id: ItemId, ov: u64) -> Result<Option<VersionEntry>> {
        Ok(self.with(collection, |c| {
            let vs = c.versions.get(&id)?;
            vs.binary_search_by_key(&ov, |v| v.ov)
                .ok()
                .map(|i| vs[i].clone())
        }))
    }

    async fn version_at(
        &self,
        collection: &str,
        id: ItemId,
        point: Point,
    ) -> Result<Option<VersionEntry>> {
        Ok(self.with(collection, |c| {
            let vs = c.versions.get(&id)?;
            let n = match point {
                Point::At(t) => vs.partition_point(|v| v.at <= t),
                Point::Cv(cv) => vs.partition_point(|v| v.cv <= cv),
            };
            n.checked_sub(1).map(|i| vs[i].clone())
        }))
    }

    async fn versions(
        &self,
        collection: &str,
        id: ItemId,
        after_ov: Option<u64>,
        limit: usize,
    ) -> Result<Vec<VersionEntry>> {
        Ok(self.with(collection, |c| {
            let Some(vs) = c.versions.get(&id) else {
                return Vec::new();
            };
            let start = after_ov.map_or(0, |a| vs.partition_point(|v| v.ov <= a));
            vs[start..].iter().take(limit).cloned().collect()
        }))
    }

    async fn query_heads(&self, collection: &str, q: &HeadQuery) -> Result<Vec<HeadEntry>> {
        Ok(self.with(collection, |c| {
            let mut hits: Vec<&HeadEntry> = c
                .heads
                .values()
                .filter(|h| q.include_deleted || h.deleted_at.is_none())
                .filter(|h| q.filter.matches(&h.meta))
                .filter(|h| q.after.as_ref().is_none_or(|k| q.sort.is_after(h, k)))
                .collect();
            hits.sort_by(|a, b| q.sort.compare(a, b));
            hits.into_iter().take(q.limit).cloned().collect()
        }))
    }

    async fn changed_items(
        &self,
        collection: &str,
        since: Point,
        after_id: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<ItemId>> {
        Ok(self.with(collection, |c| {
            let range = match after_id {
                Some(a) => c
                    .versions
                    .range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
                None => c.versions.range(..),
            };
            range
                .filter(|(_, vs)| {
                    vs.last().is_some_and(|v| match since {
                        Point::At(t) => v.at > t,
                        Point::Cv(n) => v.cv > n,
                    })
                })
                .map(|(id, _)| *id)
                .take(limit)
                .collect()
        }))
    }

    async fn current_cv(&self, collection: &str) -> Result<u64> {
        Ok(self.with(collection, |c| c.cv))
    }
}

/// The in-memory [`BlobStore`].
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    blobs: Mutex<BTreeMap<String, (Bytes, Timestamp)>>,
}

impl MemoryBlobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    fn capabilities(&self) -> BlobCapabilities {
        BlobCapabilities::new(false)
    }

    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<()> {
        let mut g = lock(&self.blobs);
        if g.contains_key(key) {
            return Err(
                Error::already_exists(format!("blob '{key}' already exists")).with("key", key),
            );
        }
        g.insert(key.to_string(), (bytes, now_ms()));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        lock(&self.blobs)
            .get(key)
            .map(|(b, _)| b.clone())
            .ok_or_else(|| {
                Error::not_found(format!("blob '{key}' does not exist")).with("key", key)
            })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        lock(&self.blobs).remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<BlobMeta>> {
        let g = lock(&self.blobs);
        let start = match after {
            Some(a) if a >= prefix => std::ops::Bound::Excluded(a.to_string()),
            _ => std::ops::Bound::Included(prefix.to_string()),
        };
        Ok(g.range((start, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, (b, t))| BlobMeta {
                key: k.clone(),
                size: b.len() as u64,
                last_modified: *t,
            })
            .collect())
    }
}

/// The in-memory [`Lock`].
#[derive(Debug, Default)]
pub struct MemoryLock {
    leases: Mutex<HashMap<String, Lease>>,
}

impl MemoryLock {
    /// No leases held.
    pub fn new() -> Self {
        Self::default()
    }
}

/// A random token for leases.
pub(crate) fn token() -> String {
    ItemId::generate().to_string()
}

#[async_trait]
impl Lock for MemoryLock {
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>> {
        let now = now_ms();
        let mut g = lock(&self.leases);
        if g.get(key).is_some_and(|l| l.expires_at > now) {
            return Ok(None);
        }
        let expires_at = chronos_core::lock::lease_expiry(now, ttl)?;
        let lease = Lease {
            key: key.to_string(),
            token: token(),
            expires_at,
        };
        g.insert(key.to_string(), lease.clone());
        Ok(Some(lease))
    }

    async fn release(&self, lease: &Lease) -> Result<bool> {
        let mut g = lock(&self.leases);
        if g.get(&lease.key).is_some_and(|l| l.token == lease.token) {
            g.remove(&lease.key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>> {
        let now = now_ms();
        let mut g = lock(&self.leases);
        match g.get_mut(&lease.key) {
            Some(l) if l.token == lease.token && l.expires_at > now => {
                l.expires_at = chronos_core::lock::lease_expiry(now, ttl)?;
                Ok(Some(l.clone()))
            }
            _ => Ok(None),
        }
    }
}

/// One document collection: bodies by id.
type DocColl = BTreeMap<String, Map<String, Value>>;

/// The in-memory [`DocumentStore`].
#[derive(Debug, Default)]
pub struct MemoryDocumentStore {
    colls: Mutex<HashMap<String, DocColl>>,
}

impl MemoryDocumentStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
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
        let mut g = lock(&self.colls);
        let c = g.entry(collection.to_string()).or_default();
        let mut body = match c.get(id) {
            Some(b) => b.clone(),
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
}

/// A fresh set of in-memory stores.
pub fn memory_stores() -> chronos_core::Stores {
    chronos_core::Stores {
        index: Arc::new(MemoryIndexStore::new()),
        blob: Arc::new(MemoryBlobStore::new()),
        lock: Arc::new(MemoryLock::new()),
    }
}

/// Conflict unless `c` appends right after `latest` (the record's greatest committed ov).
fn check_ov(collection: &str, c: &Commit, latest: Option<u64>) -> Result<()> {
    let ok = match (latest, c.version.ov) {
        (None, 0) => true,
        (Some(l), ov) => ov == l + 1,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        let id = c.version.item_id;
        Err(Error::conflict(format!(
            "cannot commit ov {} of {id}: latest committed ov is {latest:?}",
            c.version.ov
        ))
        .with("collection", collection)
        .with("id", id))
    }
}
