//! Maintenance: the sweep, which removes blobs that failed or losing write attempts left.
//!
//! A blob is deleted only when the sweep can prove it is its own database's garbage:
//! 1. its key carries this database's id (see [`super::attempt`]) — blobs of other databases
//!    sharing the bucket, upstream's and older releases' keys are never touched;
//! 2. nothing refers to it (the version it was written for, the head);
//! 3. it can never become referenced: its version slot `(id, ov)` is taken by another
//!    attempt's version (or the record is past that ov), or the attempt that wrote it is
//!    older than the grace period, which is at least the write deadline (after which the
//!    engine refuses to commit) plus the clock-skew margin.

use std::time::Duration;

use super::attempt::{self, Written};
use super::externals::{PROP_BLOB_STEM, PROP_TEXT_STEM};
use super::payload::{self, PAYLOAD_STEM};
use super::Collection;
use crate::error::{Error, Result};
use crate::id::ItemId;
use crate::index::Point;
use crate::time::now_ms;

/// What [`Collection::sweep`] found and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Blobs examined.
    pub scanned: u64,
    /// Keys of unreferenced blobs that were removed.
    pub removed: Vec<String>,
    /// Blobs left alone because nothing proves they are this database's: other databases'
    /// (a shared bucket), upstream's layout, keys written before blob keys named their
    /// database, anything else found under the prefix.
    pub not_owned: u64,
    /// Unreferenced blobs of this database left alone because the attempt that wrote them is
    /// younger than the grace period (it may still commit).
    pub too_young: u64,
}

/// Which kind of blob of this collection a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Payload,
    Property,
}

impl Collection {
    /// Removes blobs of this collection that no version references and never will — the
    /// leftovers of failed or losing writes. Blobs whose version slot is still free are
    /// removed only once the attempt that wrote them is older than `older_than`, which must
    /// be at least [`CollectionConfig::min_sweep_grace`](super::CollectionConfig::min_sweep_grace)
    /// (a `Validation` error otherwise). Only blobs whose key carries this collection's
    /// [`Collection::database_id`] are ever deleted, whatever else shares the bucket.
    pub async fn sweep(&self, older_than: Duration) -> Result<SweepReport> {
        let cfg = &self.inner.config;
        let min = cfg.min_sweep_grace();
        if older_than < min {
            return Err(Error::validation(format!(
                "sweep grace period {older_than:?} is below the minimum {min:?} (write deadline \
                 {:?} + clock skew {:?}): a younger unreferenced blob may belong to a write that \
                 is still being committed",
                cfg.write_deadline, cfg.clock_skew
            ))
            .with("collection", self.name()));
        }
        let cutoff_ms = now_ms()
            .as_millisecond()
            .saturating_sub(older_than.as_millis().min(i64::MAX as u128) as i64);
        let prefix = format!("{}{}/", cfg.blob_prefix, self.name());
        let mut report = SweepReport::default();
        for blob in self.stores().blob.list_all(&prefix).await? {
            report.scanned += 1;
            let Some((kind, id, ov, written)) = self.classify(&blob.key) else {
                report.not_owned += 1;
                continue;
            };
            if written.owner != self.inner.owner {
                report.not_owned += 1;
                continue;
            }
            match self.fate(kind, id, ov, &blob.key).await? {
                Fate::Referenced => continue,
                Fate::Undecided if written.started_ms >= cutoff_ms => {
                    report.too_young += 1;
                    continue;
                }
                Fate::Undecided | Fate::SlotTaken => {}
            }
            self.stores().blob.delete(&blob.key).await?;
            tracing::debug!(collection = self.name(), key = %blob.key, "sweep removed an unreferenced blob");
            report.removed.push(blob.key);
        }
        if !report.removed.is_empty() || report.not_owned > 0 {
            tracing::info!(
                collection = self.name(),
                scanned = report.scanned,
                removed = report.removed.len(),
                not_owned = report.not_owned,
                too_young = report.too_young,
                "sweep finished"
            );
        }
        Ok(report)
    }

    /// What a key under this collection's prefix is, if it is a blob an attempt wrote.
    pub(super) fn classify(&self, key: &str) -> Option<(Kind, ItemId, u64, Written)> {
        let cfg = &self.inner.config;
        if let Some((id, ov)) = payload::parse_blob_key(&cfg.blob_prefix, self.name(), key) {
            return Some((
                Kind::Payload,
                id,
                ov,
                attempt::parse_file(key, PAYLOAD_STEM)?,
            ));
        }
        let (id, ov) = self.parse_prop_key(key)?;
        let written = attempt::parse_file(key, PROP_BLOB_STEM)
            .or_else(|| attempt::parse_file(key, PROP_TEXT_STEM))?;
        Some((Kind::Property, id, ov, written))
    }

    /// Whether the blob `key`, written for version `ov` of `id`, is referenced, can never be,
    /// or may still be.
    ///
    /// The order of the reads matters: the record's latest ov is read *before* the version
    /// slot. Had the attempt that wrote `key` committed in between, the slot read sees it;
    /// if the slot is empty but the record was already past `ov` when first read, no commit
    /// can ever fill it (a record's latest ov never goes down).
    async fn fate(&self, kind: Kind, id: ItemId, ov: u64, key: &str) -> Result<Fate> {
        let idx = &self.stores().index;
        let head = idx.head(self.name(), id).await?;
        let latest = match &head {
            Some(h) => Some(h.ov),
            None => idx
                .version_at(self.name(), id, Point::Cv(u64::MAX))
                .await?
                .map(|v| v.ov),
        };
        let slot = idx.version(self.name(), id, ov).await?;
        let referenced = match kind {
            Kind::Payload => {
                slot.as_ref().is_some_and(|v| v.blob_key == key)
                    || head.as_ref().is_some_and(|h| h.blob_key == key)
            }
            Kind::Property => {
                let mut payloads: Vec<(&str, &str)> = Vec::new();
                if let Some(v) = &slot {
                    payloads.push((&v.blob_key, &v.checksum));
                }
                if let Some(h) = &head {
                    // The head is often that very version: read its payload once.
                    if payloads.iter().all(|(k, _)| *k != h.blob_key) {
                        payloads.push((&h.blob_key, &h.checksum));
                    }
                }
                // Its version pruned (versioning off, retention): a kept version may still
                // carry the ref forward, so every kept version is asked.
                let kept = if slot.is_none() && latest.is_some_and(|l| l > ov) {
                    self.all_versions(id).await?
                } else {
                    Vec::new()
                };
                for v in &kept {
                    if payloads.iter().all(|(k, _)| *k != v.blob_key) {
                        payloads.push((&v.blob_key, &v.checksum));
                    }
                }
                self.any_refers_to(&payloads, key).await
            }
        };
        Ok(if referenced {
            Fate::Referenced
        } else if slot.is_some() || latest.is_some_and(|l| l >= ov) {
            Fate::SlotTaken
        } else {
            Fate::Undecided
        })
    }

    /// Every version entry of `id` the index keeps that has a payload, ascending.
    pub(super) async fn all_versions(&self, id: ItemId) -> Result<Vec<crate::index::VersionEntry>> {
        let mut all = self.every_version(id).await?;
        all.retain(|v| !v.blob_key.is_empty());
        Ok(all)
    }

    /// Whether any of the payloads refers to the property blob `key`. A payload that cannot
    /// be read counts as referring to it: the sweep only deletes what it knows to be garbage
    /// (later versions carry refs forward, and with versioning off the writing version may be
    /// gone, so the head is asked too).
    async fn any_refers_to(&self, payloads: &[(&str, &str)], key: &str) -> bool {
        for (k, sum) in payloads {
            match self.load(k, sum).await {
                Ok(d) if !self.refers_to(&d.data, key) => {}
                _ => return true,
            }
        }
        false
    }
}

/// What the sweep may do with one of its own blobs.
enum Fate {
    /// A version or the head refers to it: never delete.
    Referenced,
    /// Its version slot is filled by another attempt, or the record is past it: no commit
    /// can ever refer to it.
    SlotTaken,
    /// Nothing refers to it yet, and its attempt could still commit until its deadline.
    Undecided,
}
