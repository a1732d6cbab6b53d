//! Collection restore: append-only return of every changed record to a point in history.

use std::time::Duration;

use super::state::HeadRead;
use super::{Collection, CollectionRestoreOptions, CollectionTarget, WriteOptions};
use crate::error::{Error, Result};
use crate::id::ItemId;
use crate::index::Point;
use crate::model::WriteResult;

/// How long a collection restore's lease lasts without renewal: a restore whose process died
/// blocks the next one this long at most. A running restore renews it every third of it.
pub const RESTORE_LEASE: Duration = Duration::from_secs(30);
const PAGE: usize = 500;

/// What happens to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreAction {
    /// Append a RESTORE version with the content of `to_ov`.
    Restore {
        /// The version whose content comes back.
        to_ov: u64,
    },
    /// Append a tombstone (the record did not exist, or was deleted, at the target).
    Delete,
}

/// One record's planned change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedChange {
    /// The record.
    pub id: ItemId,
    /// Its ov when planned (the write is conditional on it).
    pub from_ov: u64,
    /// What to do.
    pub action: RestoreAction,
}

/// The outcome of [`Collection::restore_collection`].
#[derive(Debug)]
pub struct RestoreReport {
    /// The target.
    pub target: CollectionTarget,
    /// Every change computed, in id order.
    pub planned: Vec<PlannedChange>,
    /// The versions written (empty on a dry run).
    pub applied: Vec<WriteResult>,
    /// Records whose change failed (e.g. modified concurrently), with the error.
    pub failed: Vec<(ItemId, Error)>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl Collection {
    /// Returns every record changed after `target` to its state at `target`, by appending
    /// versions: a record live then gets a RESTORE of that version; a record created after, or
    /// deleted at, the target gets a tombstone. Nothing is removed from history. Records that
    /// change concurrently are reported in `failed` (each write is conditional on the ov seen
    /// when planning). Only one collection restore runs at a time per collection (a lease in
    /// the lock store, renewed while it runs); a second gets `Conflict`. A restore that was
    /// interrupted (its process killed) is finished by running it again once its lease has
    /// lapsed ([`CollectionRestoreOptions::lease_ttl`]): records already back at the target
    /// are skipped. A dry run takes no lease.
    pub async fn restore_collection(
        &self,
        target: CollectionTarget,
        opts: CollectionRestoreOptions,
    ) -> Result<RestoreReport> {
        if let Point::Cv(n) = target {
            let current = self.stores().index.current_cv(self.name()).await?;
            if n > current {
                return Err(Error::validation(format!(
                    "target cv {n} is beyond the collection's current cv {current}"
                ))
                .with("collection", self.name()));
            }
        }
        if opts.dry_run {
            // Reads only: no lease, so a plan can be looked at while a restore runs (or
            // while a dead one's lease lapses).
            return self.restore_collection_locked(target, &opts).await;
        }
        let ttl = opts.lease_ttl.unwrap_or(RESTORE_LEASE);
        self.exclusively_for(
            "restore_collection",
            ttl,
            self.restore_collection_locked(target, &opts),
        )
        .await
    }

    /// Runs `work` holding the collection's restore lease (default ttl), renewed while it
    /// runs: a collection restore and a retention prune never run beside each other, nor two
    /// of either. `Conflict` naming `what` when the lease is held.
    pub(super) async fn exclusively<T>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.exclusively_for(what, RESTORE_LEASE, work).await
    }

    async fn exclusively_for<T>(
        &self,
        what: &str,
        ttl: Duration,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let lock_key = format!("{}:restore-collection", self.name());
        let lease = self
            .stores()
            .lock
            .try_acquire(&lock_key, ttl)
            .await?
            .ok_or_else(|| {
                Error::conflict(format!(
                    "cannot {what}: a restore_collection or retention prune is running on this \
                     collection (or its process died less than {ttl:?} ago); run again later — \
                     a re-run finishes what an interrupted one left"
                ))
                .with("collection", self.name())
            })?;
        let beat = self.heartbeat(lease.clone(), ttl);
        futures::pin_mut!(work, beat);
        let result = match futures::future::select(work, beat).await {
            futures::future::Either::Left((r, _)) => r,
            futures::future::Either::Right((lost, _)) => Err(lost),
        };
        let released = self.stores().lock.release(&lease).await;
        let out = result?;
        released?;
        Ok(out)
    }

    /// Renews the restore's lease every third of its ttl until the lease is lost; returns
    /// why. Driven beside the restore, which stops when this returns.
    async fn heartbeat(&self, mut lease: crate::lock::Lease, ttl: Duration) -> Error {
        loop {
            futures_timer::Delay::new(ttl / 3).await;
            match self.stores().lock.renew(&lease, ttl).await {
                Ok(Some(l)) => lease = l,
                Ok(None) => {
                    tracing::warn!(
                        collection = self.name(),
                        "restore_collection / prune lost its lease; stopping"
                    );
                    return Error::conflict(
                        "restore_collection / prune lost its lease (it lapsed or was taken over) \
                         and stopped; run it again to finish",
                    )
                    .with("collection", self.name());
                }
                Err(e) if crate::time::now_ms() < lease.expires_at => {
                    tracing::warn!(collection = self.name(), error = %e, "renewing the restore lease failed; retrying");
                }
                Err(e) => return e.with("collection", self.name()),
            }
        }
    }

    async fn restore_collection_locked(
        &self,
        target: CollectionTarget,
        opts: &CollectionRestoreOptions,
    ) -> Result<RestoreReport> {
        let planned = self.plan_restore(target).await?;
        let mut report = RestoreReport {
            target,
            planned,
            applied: Vec::new(),
            failed: Vec::new(),
            dry_run: opts.dry_run,
        };
        if opts.dry_run {
            return Ok(report);
        }
        let idx = &self.stores().index;
        for change in report.planned.clone() {
            let w = WriteOptions {
                expected_ov: Some(change.from_ov),
                actor: opts.actor.clone(),
                reason: opts.reason.clone(),
                idempotency_key: None,
            };
            let r = match change.action {
                RestoreAction::Delete => self.delete(change.id, w).await,
                RestoreAction::Restore { to_ov } => {
                    match idx.version(self.name(), change.id, to_ov).await? {
                        Some(v) => self.restore_to(change.id, &v, w).await,
                        None => Err(Error::not_found(format!(
                            "version {to_ov} of record {} vanished",
                            change.id
                        ))),
                    }
                }
            };
            match r {
                Ok(w) => report.applied.push(w),
                Err(e) => report.failed.push((change.id, e)),
            }
        }
        Ok(report)
    }

    async fn plan_restore(&self, target: CollectionTarget) -> Result<Vec<PlannedChange>> {
        let idx = &self.stores().index;
        let mut plan = Vec::new();
        let mut after = None;
        loop {
            let ids = idx.changed_items(self.name(), target, after, PAGE).await?;
            let Some(last) = ids.last() else { break };
            after = Some(*last);
            for id in ids {
                let cur = self.current_any(id, HeadRead::Checked).await?;
                let then = idx.version_at(self.name(), id, target).await?;
                let action = match then {
                    Some(v) if !v.is_tombstone() => {
                        if v.ov == cur.ov || (!cur.deleted && self.same_content(&cur, &v).await?) {
                            continue;
                        }
                        RestoreAction::Restore { to_ov: v.ov }
                    }
                    _ if cur.deleted => continue,
                    _ => RestoreAction::Delete,
                };
                plan.push(PlannedChange {
                    id,
                    from_ov: cur.ov,
                    action,
                });
            }
        }
        Ok(plan)
    }

    /// Whether the current version already has the target's content (so a repeated restore
    /// has nothing to do).
    async fn same_content(
        &self,
        cur: &super::state::Current,
        target: &crate::VersionEntry,
    ) -> Result<bool> {
        let now = self.load(&cur.blob_key, &cur.checksum).await?;
        let then = self.load(&target.blob_key, &target.checksum).await?;
        Ok(crate::filter::json_eq(
            &serde_json::Value::Object(now.data),
            &serde_json::Value::Object(then.data),
        ) && now.system.lineage == then.system.lineage)
    }
}
