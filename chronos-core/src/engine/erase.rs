//! GDPR erase: [`Collection::erase`] removes every payload of every version of a record and
//! keeps its history as content-free entries, then says in an [`EraseReceipt`] when every
//! store has confirmed.
//!
//! Order, chosen so that a crash anywhere leaves something a second call finishes:
//! 1. a live record is deleted first (an ordinary DELETE, so counters and the change feed see
//!    a deletion), then an **ERASE** version is committed: no payload, empty metadata,
//!    [`ERASED_CHECKSUM`], who / why / when. From here on every read of the record says
//!    `Erased`, and no write can follow it (it is deleted; its ovs are taken).
//! 2. every blob the record's versions refer to (payloads, tombstone copies, externalised
//!    properties) is deleted, then every other blob under the record's own key prefixes that
//!    carries this database's id (payloads of failed attempts). Blobs there that do not carry
//!    it are listed in [`EraseReceipt::left_not_owned`] and left alone: nothing proves they
//!    are this database's (another database sharing the bucket may use the same id).
//! 3. only when every delete succeeded: the index entries of the earlier versions are
//!    scrubbed ([`IndexStore::scrub_versions`](crate::IndexStore::scrub_versions)) — the
//!    blob keys are what a second call needs, so they go last. The store also purges the
//!    freed bytes from its files (SQLite: `secure_delete` and a truncating checkpoint).
//!
//! A step that fails does not fail the call once the ERASE version is committed: it is
//! listed in [`EraseReceipt::pending`] and the receipt is not `complete`; calling `erase`
//! again resumes (an erased record is not erased twice — the same ERASE version is
//! reported). The heads' devShadow copies go with step 1 (the ERASE head has none).
//!
//! What erase does not reach: analytics' distinct-value sets (`countUnique`) hold values,
//! not records, so a value the erased record contributed stays counted and stored; copies
//! a consumer of the change feed made before the erase are theirs to delete.

use std::collections::HashSet;

use futures::stream::{self, StreamExt};
use serde_json::Map;

use super::observer::CommitEvent;
use super::state::HeadRead;
use super::{Collection, WriteOptions};
use crate::chain::ChainLink;
use crate::error::{Error, ErrorKind, Result};
use crate::id::ItemId;
use crate::index::{Commit, HeadAction, NewVersion, ERASED_CHECKSUM};
use crate::model::{Op, WriteResult};
use crate::time::{next_ms, now_ms};

/// Blob deletes of one erase in flight at once.
const DELETE_CONCURRENCY: usize = 8;

/// Longest `actor` / `reason` an erase records.
const MAX_AUDIT_CHARS: usize = 1000;

/// What [`Collection::erase`] did, and whether it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EraseReceipt {
    /// The collection.
    pub collection: String,
    /// The erased record.
    pub id: ItemId,
    /// The ERASE version (committed by this call, or by the earlier call this one resumed).
    pub erase: WriteResult,
    /// Who erased it, as recorded in the ERASE version.
    pub actor: String,
    /// Why, as recorded in the ERASE version.
    pub reason: String,
    /// Earlier version entries made content-free by this call (0 when an earlier call did).
    pub versions_scrubbed: u64,
    /// Blobs deleted (payloads, tombstone copies, property blobs).
    pub blobs_deleted: Vec<String>,
    /// Blobs under the record's key prefixes that do not carry this database's id: left
    /// alone, since nothing proves they are this database's (see the module docs).
    pub left_not_owned: Vec<String>,
    /// Steps that did not complete, with their error; empty when `complete`.
    pub pending: Vec<String>,
    /// Every store confirmed: no payload of the record is left in the blob store and its
    /// index entries are content-free. When `false`, call `erase` again to finish.
    pub complete: bool,
}

impl Collection {
    /// Erases record `id` completely (see the [module docs](self)): every payload of every
    /// version is deleted, the versions stay as content-free entries (ov / cv / at / op /
    /// actor / reason), an ERASE version records `actor`, `reason` and when, and the receipt
    /// says whether every store confirmed. Afterwards every read of the record or of any of
    /// its versions is an `Erased` error; its history lists the content-free entries.
    ///
    /// Errors: `Validation` for an empty or overlong `actor` / `reason`, `NotFound` for a
    /// record that never existed, and store errors met before the ERASE version committed.
    /// Erasing an erased record finishes what is pending and commits nothing.
    pub async fn erase(&self, id: ItemId, actor: &str, reason: &str) -> Result<EraseReceipt> {
        for (field, value) in [("actor", actor), ("reason", reason)] {
            if value.trim().is_empty() || value.chars().count() > MAX_AUDIT_CHARS {
                return Err(Error::validation(format!(
                    "erase needs a {field} of 1 to {MAX_AUDIT_CHARS} characters: the ERASE \
                     version records who erased the record and why"
                ))
                .with("field", field)
                .with("collection", self.name())
                .with("id", id));
            }
        }
        let (erase, actor, reason) = self.commit_erase(id, actor, reason).await?;
        let mut receipt = EraseReceipt {
            collection: self.name().to_string(),
            id,
            erase,
            actor,
            reason,
            versions_scrubbed: 0,
            blobs_deleted: Vec::new(),
            left_not_owned: Vec::new(),
            pending: Vec::new(),
            complete: false,
        };
        self.purge_erased(id, erase.ov, &mut receipt).await;
        receipt.complete = receipt.pending.is_empty();
        if receipt.complete {
            tracing::info!(collection = self.name(), %id, ov = erase.ov,
                blobs = receipt.blobs_deleted.len(), versions = receipt.versions_scrubbed,
                "record erased");
        } else {
            tracing::warn!(collection = self.name(), %id, pending = ?receipt.pending,
                "erase committed but not complete; run it again to finish");
        }
        Ok(receipt)
    }

    /// Step 1: deletes a live record, then commits its ERASE version; or finds the ERASE
    /// version an earlier call committed. Returns it with its actor and reason.
    async fn commit_erase(
        &self,
        id: ItemId,
        actor: &str,
        reason: &str,
    ) -> Result<(WriteResult, String, String)> {
        let idx = &self.stores().index;
        let ctx = |e: Error| e.with("collection", self.name()).with("id", id);
        let mut tries = 0;
        loop {
            tries += 1;
            if tries > self.inner.config.max_write_retries {
                return Err(super::conflict::retries_exhausted(self.name(), id, tries));
            }
            let cur = self.current_any(id, HeadRead::Checked).await?;
            if cur.checksum == ERASED_CHECKSUM {
                let v = idx.version(self.name(), id, cur.ov).await?.ok_or_else(|| {
                    ctx(Error::internal(
                        "the erased head's ERASE version is missing",
                    ))
                })?;
                let result = WriteResult {
                    id,
                    ov: v.ov,
                    cv: v.cv,
                    at: v.at,
                    op: v.op,
                };
                return Ok((
                    result,
                    v.actor.unwrap_or_default(),
                    v.reason.unwrap_or_default(),
                ));
            }
            if !cur.deleted {
                let opts = WriteOptions::new().actor(actor).reason(reason);
                match self.delete(id, opts).await {
                    // Deleted (by us or concurrently): the ERASE follows the tombstone.
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
            }
            let ov = cur.ov + 1;
            let now = now_ms();
            let at = if cur.updated_at >= now {
                next_ms(cur.updated_at)
            } else {
                now
            };
            let commit = Commit {
                version: NewVersion {
                    item_id: id,
                    ov,
                    op: Op::Erase,
                    at,
                    actor: Some(actor.to_string()),
                    reason: Some(reason.to_string()),
                    blob_key: String::new(),
                    meta: Map::new(),
                    size: 0,
                    checksum: ERASED_CHECKSUM.to_string(),
                    prev_ov: Some(cur.ov),
                    chain: Some(ChainLink::after(cur.chain.clone())),
                },
                created_at: cur.created_at,
                head: if self.inner.config.logical_delete {
                    HeadAction::Upsert
                } else {
                    HeadAction::Remove
                },
                // Even with versioning off: the entries below keep the blob keys a resumed
                // erase needs; they are scrubbed, not dropped.
                prune_below_ov: None,
                shadow: None,
                lineage: cur.lineage.clone().unwrap_or_default(),
                // No payload was put, so no sweep can race this commit.
                not_after: None,
            };
            let committed = match idx.commit(self.name(), commit).await {
                Ok(cv) => Some(cv),
                Err(e) if e.kind() == ErrorKind::Conflict => None,
                Err(e) => match idx.version(self.name(), id, ov).await {
                    // A lost acknowledgement: the slot holds an ERASE, which is ours or an
                    // identical concurrent erase's; either way the record is erased.
                    Ok(Some(v)) if v.op == Op::Erase => Some(v.cv),
                    _ => return Err(ctx(e)),
                },
            };
            let Some(cv) = committed else { continue };
            let result = WriteResult {
                id,
                ov,
                cv,
                at,
                op: Op::Erase,
            };
            let empty = Map::new();
            self.notify(CommitEvent {
                collection: self.name(),
                database_id: &self.inner.owner,
                id,
                ov,
                cv,
                op: Op::Erase,
                at,
                actor: Some(actor),
                meta: &empty,
                data: &empty,
            })
            .await;
            return Ok((result, actor.to_string(), reason.to_string()));
        }
    }

    /// Steps 2 and 3: the blobs, then the index entries; failures go to `pending`.
    async fn purge_erased(&self, id: ItemId, erase_ov: u64, r: &mut EraseReceipt) {
        let blob = &self.stores().blob;
        let versions = match self.all_versions(id).await {
            Ok(v) => v,
            Err(e) => {
                r.pending
                    .push(format!("index: listing the record's versions failed: {e}"));
                return;
            }
        };
        let mut referenced: HashSet<String> = HashSet::new();
        for v in &versions {
            referenced.insert(v.blob_key.clone());
            if !self.inner.config.base64_props.is_empty() {
                // A payload that cannot be read cannot name its property blobs; those that
                // carry this database's id are still found by the listing below.
                if let Ok(d) = self.load(&v.blob_key, &v.checksum).await {
                    referenced.extend(self.prop_refs(&d.data));
                }
            }
        }
        let mut referenced: Vec<String> = referenced.into_iter().collect();
        referenced.sort();
        let mut doomed = referenced.clone();
        let cfg = &self.inner.config;
        let mut dirs = vec![format!("{}{}/{id}/", cfg.blob_prefix, self.name())];
        for prop in cfg.base64_props.keys() {
            dirs.push(format!("{}{}/{prop}/{id}/", cfg.blob_prefix, self.name()));
        }
        for dir in dirs {
            let page = match blob.list_all(&dir).await {
                Ok(p) => p,
                Err(e) => {
                    r.pending.push(format!("blob listing of '{dir}': {e}"));
                    continue;
                }
            };
            for b in page {
                if referenced.binary_search(&b.key).is_ok() {
                    continue;
                }
                match self.classify(&b.key) {
                    Some((_, bid, _, w)) if bid == id && w.owner == self.inner.owner => {
                        doomed.push(b.key);
                    }
                    _ => r.left_not_owned.push(b.key),
                }
            }
        }
        // Independent deletes, a few at a time (on object stores each is a request); in
        // order, so the receipt lists them as they were found.
        let mut done = stream::iter(doomed)
            .map(|key| async move {
                let res = blob.delete(&key).await;
                (key, res)
            })
            .buffered(DELETE_CONCURRENCY);
        while let Some((key, res)) = done.next().await {
            match res {
                Ok(()) => r.blobs_deleted.push(key),
                Err(e) => r.pending.push(format!("blob '{key}': {e}")),
            }
        }
        if !r.pending.is_empty() {
            // The entries keep the keys a second call needs to finish the deletes.
            return;
        }
        match self
            .stores()
            .index
            .scrub_versions(self.name(), id, erase_ov)
            .await
        {
            Ok(n) => r.versions_scrubbed = n,
            Err(e) => r
                .pending
                .push(format!("index: scrubbing the versions failed: {e}")),
        }
    }

    /// The error every read of an erased record returns.
    pub(super) fn erased(&self, id: ItemId) -> Error {
        Error::erased(format!(
            "record {id} was erased: its versions exist without content"
        ))
        .with("collection", self.name())
        .with("id", id)
    }
}
