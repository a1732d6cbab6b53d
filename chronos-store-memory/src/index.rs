//! The in-memory [`IndexStore`]: heads and versions per collection in ordered maps.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chronos_core::time::now_ms;
use chronos_core::{
    Commit, Error, FeedPage, HeadAction, HeadEntry, HeadQuery, IndexCapabilities, IndexStore,
    ItemId, Point, Precommit, Result, VersionEntry, ERASED_CHECKSUM,
};

use crate::lock;

#[derive(Debug, Default)]
struct Coll {
    heads: BTreeMap<ItemId, HeadEntry>,
    /// Per record, versions in ascending ov (so `at` and `cv` ascend too).
    versions: BTreeMap<ItemId, Vec<VersionEntry>>,
    /// The version log in cv order (the change feed): cv → record.
    by_cv: BTreeMap<u64, ItemId>,
    /// The greatest cv pruned away (`prune_below_ov`, `prune_versions`): feed cursors below it are `Gone`.
    pruned_cv: u64,
    cv: u64,
}

impl Coll {
    /// The record's latest ov, `None` without versions.
    fn latest_ov(&self, id: ItemId) -> Option<u64> {
        self.versions
            .get(&id)
            .and_then(|vs| vs.last())
            .map(|v| v.ov)
    }

    /// Removes `id`'s versions below `below` except its latest, raising the feed's pruned
    /// watermark; returns how many went.
    fn prune(&mut self, id: ItemId, below: u64) -> u64 {
        let Some(vs) = self.versions.get_mut(&id) else {
            return 0;
        };
        let below = below.min(vs.last().map_or(0, |v| v.ov));
        let mut n = 0;
        for gone in vs.iter().filter(|v| v.ov < below) {
            self.by_cv.remove(&gone.cv);
            self.pruned_cv = self.pruned_cv.max(gone.cv);
            n += 1;
        }
        vs.retain(|v| v.ov >= below);
        n
    }

    /// Makes `id`'s versions below `below` (never its latest) content-free; returns how many
    /// changed.
    fn scrub(&mut self, id: ItemId, below: u64) -> u64 {
        let Some(vs) = self.versions.get_mut(&id) else {
            return 0;
        };
        let below = below.min(vs.last().map_or(0, |v| v.ov));
        let mut n = 0;
        for v in vs.iter_mut().filter(|v| v.ov < below && !v.is_erased()) {
            v.meta.clear();
            v.blob_key.clear();
            v.size = 0;
            v.checksum = ERASED_CHECKSUM.to_string();
            if let Some(seal) = v.seal.as_mut() {
                seal.salt = None;
            }
            n += 1;
        }
        n
    }
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

    async fn ping(&self) -> Result<()> {
        Ok(())
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
            check_ov(collection, c, coll.latest_ov(c.version.item_id))
        })?;
        Ok(Precommit::none())
    }

    async fn commit(&self, collection: &str, c: Commit) -> Result<u64> {
        self.with(collection, |coll| {
            let id = c.version.item_id;
            check_ov(collection, &c, coll.latest_ov(id))?;
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
            coll.by_cv.insert(entry.cv, id);
            vs.push(entry);
            if let Some(below) = c.prune_below_ov {
                coll.prune(id, below);
            }
            Ok(coll.cv)
        })
    }

    async fn prune_versions(&self, collection: &str, id: ItemId, below_ov: u64) -> Result<u64> {
        Ok(self.with(collection, |coll| coll.prune(id, below_ov)))
    }

    async fn scrub_versions(&self, collection: &str, id: ItemId, below_ov: u64) -> Result<u64> {
        Ok(self.with(collection, |coll| coll.scrub(id, below_ov)))
    }

    async fn repair_head(
        &self,
        collection: &str,
        id: ItemId,
        seen: Option<(u64, u64)>,
        latest_ov: u64,
        head: Option<HeadEntry>,
    ) -> Result<bool> {
        Ok(self.with(collection, |coll| {
            let now = coll.heads.get(&id).map(|h| (h.ov, h.cv));
            if now != seen || coll.latest_ov(id) != Some(latest_ov) {
                return false;
            }
            match head {
                Some(h) => coll.heads.insert(id, h),
                None => coll.heads.remove(&id),
            };
            true
        }))
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

    async fn scan_versions(
        &self,
        collection: &str,
        after: Option<(ItemId, u64)>,
        limit: usize,
    ) -> Result<Vec<VersionEntry>> {
        use std::ops::Bound;
        Ok(self.with(collection, |c| {
            let range = match after {
                Some((id, _)) => c.versions.range((Bound::Included(id), Bound::Unbounded)),
                None => c.versions.range(..),
            };
            range
                .flat_map(|(id, vs)| {
                    let start = match after {
                        Some((a, ov)) if a == *id => vs.partition_point(|v| v.ov <= ov),
                        _ => 0,
                    };
                    &vs[start..]
                })
                .take(limit)
                .cloned()
                .collect()
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

    async fn aggregate(
        &self,
        collection: &str,
        q: &chronos_core::AggregateQuery,
    ) -> Result<Option<f64>> {
        Ok(self.with(collection, |c| {
            chronos_core::aggregate::aggregate_heads(q, c.heads.values())
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

    /// cvs are assigned under the store's lock at commit, so every committed version is
    /// settled at once.
    async fn feed(&self, collection: &str, after_cv: u64, limit: usize) -> Result<FeedPage> {
        self.with(collection, |c| {
            FeedPage::check_pruned(collection, after_cv, c.pruned_cv)?;
            let versions: Vec<VersionEntry> = c
                .by_cv
                .range(after_cv + 1..)
                .take(limit)
                .filter_map(|(cv, id)| {
                    let vs = c.versions.get(id)?;
                    let i = vs.binary_search_by_key(cv, |v| v.cv).ok()?;
                    Some(vs[i].clone())
                })
                .collect();
            Ok(FeedPage::up_to(versions, limit, after_cv, c.cv))
        })
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
