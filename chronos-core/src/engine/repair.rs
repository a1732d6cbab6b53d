//! Rebuilding heads from the version log: [`Collection::repair_heads`], what
//! `chronos verify --repair` runs for every `head` problem `verify` found.
//!
//! The log is the truth: a head becomes a copy of the record's latest version (no head when
//! that version is a hard delete), with `createdAt` from the first version. It is written
//! only if neither the head nor the log changed since they were read
//! ([`IndexStore::repair_head`](crate::IndexStore::repair_head)), so a repair never
//! overwrites a commit; versions and payloads are never touched.

use std::collections::BTreeSet;

use super::verify::{ProblemKind, VerifyReport};
use super::Collection;
use crate::error::Result;
use crate::id::ItemId;
use crate::index::HeadEntry;

impl Collection {
    /// Rebuilds the head of every record with a [`ProblemKind::Head`] problem in `report`
    /// from its version log; returns the ids whose head was rewritten or removed. A record
    /// written to meanwhile is left alone (its commit wrote a correct head).
    pub async fn repair_heads(&self, report: &VerifyReport) -> Result<Vec<ItemId>> {
        let ids: BTreeSet<ItemId> = report
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::Head)
            .map(|p| p.id)
            .collect();
        let mut repaired = Vec::new();
        for id in ids {
            if self.repair_head(id).await? {
                tracing::info!(collection = self.name(), %id, "rebuilt a head from the version log");
                repaired.push(id);
            }
        }
        Ok(repaired)
    }

    async fn repair_head(&self, id: ItemId) -> Result<bool> {
        let idx = &self.stores().index;
        let current = idx.head(self.name(), id).await?;
        let versions = self.every_version(id).await?;
        let Some(latest) = versions.last() else {
            // A head without versions: nothing in the log to rebuild it from.
            tracing::warn!(collection = self.name(), %id,
                "a head without any version in the log was left alone");
            return Ok(false);
        };
        let created_at = match versions.first() {
            Some(first) if first.ov == 0 => first.at,
            _ => current.as_ref().map_or(latest.at, |h| h.created_at),
        };
        let wanted = (!latest.is_tombstone() || self.inner.config.logical_delete)
            .then(|| HeadEntry::from_version(latest, created_at));
        let seen = current.as_ref().map(|h| (h.ov, h.cv));
        idx.repair_head(self.name(), id, seen, latest.ov, wanted)
            .await
    }
}
