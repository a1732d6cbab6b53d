//! Version retention (`retention.ver`): [`Collection::prune_now`] removes old versions from
//! the index and deletes their payloads.
//!
//! What goes is, per record, always a *prefix* of its history — the oldest versions — and
//! never its latest: a version is pruned when it is beyond the latest `max_per_item`, or
//! committed more than `days` before now, and every older version is pruned too (so "the
//! history from here on" stays whole). Afterwards [`Collection::get_version`] of a pruned
//! ov is `None`, history starts at the oldest kept version, and a change-feed cursor older
//! than a pruned version is `Gone` (an explicit error, never a silently shorter feed).
//!
//! Order, per page of a record's versions: the index entries go first (one
//! [`IndexStore::prune_versions`](crate::IndexStore::prune_versions) call), then the
//! payloads. A crash in between leaves only unreferenced blobs, which [`Collection::sweep`]
//! removes. Only blobs whose key carries this database's id are deleted (like the sweep);
//! others are counted in [`PruneReport::not_owned`]. A property blob (`base64Props`) goes
//! only when no kept version refers to it any more (later versions carry refs forward).
//! A prune holds the collection's restore lease, so it never runs beside a
//! [`Collection::restore_collection`] that planned to use the versions it would remove.

use std::collections::HashSet;

use futures::stream::{self, StreamExt};

use super::sweep::Kind;
use super::Collection;
use crate::error::{Error, Result};
use crate::id::ItemId;
use crate::index::{Point, VersionEntry};
use crate::time::{now_ms, Timestamp};

/// Records per page of the walk over a collection, and versions per page of a record.
const PAGE: usize = 500;
/// Records pruned at a time.
const RECORD_CONCURRENCY: usize = 8;

/// `retention.ver`: which old versions [`Collection::prune_now`] removes. At least one of
/// the two must be set; the latest version of a record is always kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VersionRetention {
    /// Versions committed more than this many days ago go (1 or more).
    pub days: Option<u32>,
    /// Only this many of a record's latest versions are kept (1 or more).
    pub max_per_item: Option<u32>,
}

impl VersionRetention {
    /// `Validation` naming the field (under `path`, e.g. `retention.ver`) when a value is
    /// out of range or neither is set.
    pub fn validate(&self, path: &str) -> Result<()> {
        let bad = |field: String, why: &str| {
            Err(Error::validation(format!("{field} {why}")).with("field", field))
        };
        if self.days.is_none() && self.max_per_item.is_none() {
            return bad(
                path.to_string(),
                "sets neither days nor maxPerItem: nothing says which versions to prune",
            );
        }
        if self.days == Some(0) {
            return bad(
                format!("{path}.days"),
                "must be at least 1 (versions younger than a day are always kept)",
            );
        }
        if self.max_per_item == Some(0) {
            return bad(
                format!("{path}.maxPerItem"),
                "must be at least 1 (a record's latest version is always kept)",
            );
        }
        Ok(())
    }
}

/// What [`Collection::prune_now`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneReport {
    /// Records examined.
    pub records: u64,
    /// Records that lost versions.
    pub pruned_records: u64,
    /// Version entries removed from the index.
    pub versions_removed: u64,
    /// Keys of the blobs deleted (payloads and property blobs).
    pub blobs_removed: Vec<String>,
    /// Blobs of pruned versions left alone because their key does not carry this
    /// database's id (upstream's layout, another database's).
    pub not_owned: u64,
}

impl PruneReport {
    /// Adds what `other` (one record's prune) removed.
    fn absorb(&mut self, other: PruneReport) {
        self.records += other.records;
        self.pruned_records += other.pruned_records;
        self.versions_removed += other.versions_removed;
        self.blobs_removed.extend(other.blobs_removed);
        self.not_owned += other.not_owned;
    }
}

impl Collection {
    /// Applies `policy` now: see the [module docs](self) for what goes and in which order.
    /// `Validation` for a policy out of range, `Conflict` while a collection restore (or
    /// another prune) holds the collection's restore lease.
    pub async fn prune_now(&self, policy: &VersionRetention) -> Result<PruneReport> {
        self.prune_at(policy, now_ms()).await
    }

    /// [`Collection::prune_now`] as if it were `now` (for a scheduler that runs a period,
    /// and for tests: `days` counts back from `now`).
    pub async fn prune_at(&self, policy: &VersionRetention, now: Timestamp) -> Result<PruneReport> {
        policy
            .validate("retention.ver")
            .map_err(|e| e.with("collection", self.name()))?;
        let cutoff = policy.days.map(|d| {
            now.as_millisecond()
                .saturating_sub(i64::from(d) * 86_400_000)
        });
        self.exclusively("prune", async {
            let mut report = PruneReport::default();
            let mut after: Option<ItemId> = None;
            loop {
                let ids = self
                    .stores()
                    .index
                    .changed_items(self.name(), Point::Cv(0), after, PAGE)
                    .await?;
                let Some(last) = ids.last() else { break };
                after = Some(*last);
                // Records are independent: a few at a time, so one record's blob deletes
                // overlap another's index round trips. In order, so the report is too.
                let mut done = stream::iter(ids)
                    .map(|id| async move {
                        let mut r = PruneReport::default();
                        self.prune_record(id, policy.max_per_item, cutoff, &mut r)
                            .await
                            .map(|()| r)
                    })
                    .buffered(RECORD_CONCURRENCY);
                while let Some(r) = done.next().await {
                    report.absorb(r?);
                }
            }
            if report.versions_removed > 0 {
                tracing::info!(
                    collection = self.name(),
                    records = report.records,
                    pruned_records = report.pruned_records,
                    versions = report.versions_removed,
                    blobs = report.blobs_removed.len(),
                    "retention pruned old versions"
                );
            }
            Ok(report)
        })
        .await
    }

    /// Prunes one record's prefix of versions that `max_per_item` / `cutoff_ms` condemn.
    async fn prune_record(
        &self,
        id: ItemId,
        max_per_item: Option<u32>,
        cutoff_ms: Option<i64>,
        report: &mut PruneReport,
    ) -> Result<()> {
        report.records += 1;
        let idx = &self.stores().index;
        // The oldest versions; when they are the whole history, the last is the latest.
        let first = idx.versions(self.name(), id, None, PAGE).await?;
        let latest = match first.last() {
            Some(v) if first.len() < PAGE => v.clone(),
            _ => match idx.version_at(self.name(), id, Point::Cv(u64::MAX)).await? {
                Some(v) => v,
                None => return Ok(()),
            },
        };
        let below_count = max_per_item.map_or(0, |m| (latest.ov + 1).saturating_sub(u64::from(m)));
        let condemned = |v: &VersionEntry| {
            v.ov < latest.ov
                && (v.ov < below_count || cutoff_ms.is_some_and(|c| v.at.as_millisecond() < c))
        };
        let mut below = 0;
        let mut removed_any = false;
        let mut first = Some(first);
        loop {
            let page = match first.take() {
                Some(page) => page,
                None => idx.versions(self.name(), id, None, PAGE).await?,
            };
            let gone: Vec<VersionEntry> = page.into_iter().take_while(condemned).collect();
            let Some(last) = gone.last() else { break };
            below = last.ov + 1;
            let n = idx.prune_versions(self.name(), id, below).await?;
            report.versions_removed += n;
            if n == 0 {
                break; // pruned by someone else meanwhile: what is left is theirs to finish
            }
            removed_any = true;
            for v in &gone {
                if v.blob_key.is_empty() || v.blob_key == latest.blob_key {
                    continue;
                }
                self.delete_owned(&v.blob_key, Kind::Payload, report)
                    .await?;
            }
            if gone.len() < PAGE {
                break;
            }
        }
        if removed_any {
            report.pruned_records += 1;
        }
        if below > 0 && !self.inner.config.base64_props.is_empty() {
            self.prune_prop_blobs(id, below, report).await?;
        }
        Ok(())
    }

    /// Deletes the record's property blobs written by pruned versions (ov below `below`)
    /// that no kept version refers to.
    async fn prune_prop_blobs(
        &self,
        id: ItemId,
        below: u64,
        report: &mut PruneReport,
    ) -> Result<()> {
        // Every ref the kept versions hold (a payload that cannot be read holds them all:
        // nothing is deleted on a guess).
        let mut refs: HashSet<String> = HashSet::new();
        for v in self.all_versions(id).await? {
            let key = &v.blob_key;
            match self.load(key, &v.checksum).await {
                Ok(d) => refs.extend(self.prop_refs(&d.data)),
                Err(e) => {
                    tracing::warn!(collection = self.name(), %id, key = %key, error = %e,
                        "retention left property blobs alone: a kept version is unreadable");
                    return Ok(());
                }
            }
        }
        let cfg = &self.inner.config;
        for prop in cfg.base64_props.keys() {
            let prefix = format!("{}{}/{prop}/{id}/", cfg.blob_prefix, self.name());
            for blob in self.stores().blob.list_all(&prefix).await? {
                let written_below = self
                    .parse_prop_key(&blob.key)
                    .is_some_and(|(bid, ov)| bid == id && ov < below);
                if written_below && !refs.contains(&blob.key) {
                    self.delete_owned(&blob.key, Kind::Property, report).await?;
                }
            }
        }
        Ok(())
    }

    /// Deletes `key` if it carries this database's id; counts it as not owned otherwise.
    async fn delete_owned(&self, key: &str, kind: Kind, report: &mut PruneReport) -> Result<()> {
        match self.classify(key) {
            Some((k, _, _, written)) if k == kind && written.owner == self.inner.owner => {
                self.stores().blob.delete(key).await?;
                report.blobs_removed.push(key.to_string());
            }
            _ => report.not_owned += 1,
        }
        Ok(())
    }
}
