//! Writes: create, update, delete, enrich, restore_object.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use super::attempt::Attempt;
use super::payload::{self, Decoded, StoredSystem};
use super::{Collection, CreateOptions, EnrichOptions, RestoreTarget, WriteOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::filter::get_path;
use crate::id::ItemId;
use crate::index::{Commit, HeadAction, HeadEntry, NewVersion, Point, Shadow, VersionEntry};
use crate::merge::deep_merge;
use crate::model::{payload_from_value, to_payload, Lineage, Op, WriteResult};
use crate::time::{next_ms, now_ms, Timestamp};

/// How often a write without `expected_ov` retries after losing a race. Each retry means
/// another writer committed, so the collection as a whole always makes progress; a single
/// writer among n on one hot record wins each round with odds near 1/n, so the budget is large
/// (with the backoff below, about a minute at worst) and `Conflict` after it is exceptional.
const MAX_RETRIES: usize = 1_000;

/// Jittered exponential backoff: about 1 ms doubling to 32 ms, times a random 0.5–1.5.
fn backoff(tries: usize) -> Duration {
    let base_us = 500u64 << tries.min(6);
    let mut r = [0u8; 2];
    let _ = getrandom::getrandom(&mut r);
    let jitter = 0.5 + f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX);
    Duration::from_micros((base_us as f64 * jitter) as u64)
}

/// The current state of a record that a write builds on.
#[derive(Debug, Clone)]
pub(super) struct Current {
    pub(super) ov: u64,
    pub(super) blob_key: String,
    pub(super) checksum: String,
    pub(super) created_at: Timestamp,
    pub(super) updated_at: Timestamp,
    pub(super) deleted: bool,
    /// The head's devShadow copy of the current payload, if any.
    pub(super) shadow: Option<Shadow>,
    /// The head's copy of the current lineage, if the store kept one.
    pub(super) lineage: Option<Lineage>,
}

impl From<&HeadEntry> for Current {
    fn from(h: &HeadEntry) -> Self {
        Current {
            ov: h.ov,
            blob_key: h.blob_key.clone(),
            checksum: h.checksum.clone(),
            created_at: h.created_at,
            updated_at: h.updated_at,
            deleted: h.deleted_at.is_some(),
            shadow: h.shadow.clone(),
            lineage: h.lineage.clone(),
        }
    }
}

/// What one appended version contains.
struct Draft {
    id: ItemId,
    op: Op,
    data: Map<String, Value>,
    lineage: Lineage,
    actor: Option<String>,
    reason: Option<String>,
}

impl Collection {
    /// Creates a record (ov 0). `data` is any value that serializes to a JSON object without
    /// `_system` or `_id`.
    ///
    /// Lineage: `parent` sets `parentId`/`parentCollection` and, unless `origin` is given, the
    /// origin too; an origin with a `system` is stored as `system:collection`.
    pub async fn create<T: Serialize + Sync + ?Sized>(
        &self,
        data: &T,
        opts: CreateOptions,
    ) -> Result<WriteResult> {
        let data = to_payload(data).map_err(|e| e.with("collection", self.name()))?;
        self.check_required(&data, None)?;
        let lineage = lineage_for_create(&opts)?;
        let id = opts.id.unwrap_or_else(ItemId::generate);
        let draft = Draft {
            id,
            op: Op::Create,
            data,
            lineage,
            actor: opts.actor,
            reason: opts.reason,
        };
        self.append(None, draft).await.map_err(|e| {
            if e.kind() == ErrorKind::Conflict {
                Error::already_exists(format!("record {id} already exists"))
                    .with("collection", self.name())
                    .with("id", id)
            } else {
                e
            }
        })
    }

    /// Replaces a live record's data (a new version). With `expected_ov` the write fails with
    /// `Conflict` and changes nothing unless the record is at that ov.
    pub async fn update<T: Serialize + Sync + ?Sized>(
        &self,
        id: ItemId,
        data: &T,
        opts: WriteOptions,
    ) -> Result<WriteResult> {
        let data =
            to_payload(data).map_err(|e| e.with("collection", self.name()).with("id", id))?;
        self.check_required(&data, Some(id))?;
        self.retrying(opts.expected_ov, || async {
            let cur = self.current_live(id).await?;
            self.check_expected(id, opts.expected_ov, &cur)?;
            // A replacement only needs the lineage: from the head when it has a copy, so the
            // payload is not read at all.
            let lineage = match &cur.lineage {
                Some(l) => l.clone(),
                None => self.load_current(&cur).await?.system.lineage,
            };
            let draft = Draft {
                id,
                op: Op::Update,
                data: data.clone(),
                lineage,
                actor: opts.actor.clone(),
                reason: opts.reason.clone(),
            };
            self.append(Some(&cur), draft).await
        })
        .await
    }

    /// Deletes a live record: appends a tombstone version. With logical delete (default) the
    /// head stays as a tombstone; otherwise the head is removed (history is kept either way).
    pub async fn delete(&self, id: ItemId, opts: WriteOptions) -> Result<WriteResult> {
        self.retrying(opts.expected_ov, || async {
            let cur = self.current_live(id).await?;
            self.check_expected(id, opts.expected_ov, &cur)?;
            // The tombstone copies the last content when it can be read; a payload that is
            // missing or damaged must not make the record undeletable, so then it is empty.
            let prev = match self.load_current(&cur).await {
                Ok(prev) => prev,
                Err(e) if matches!(e.kind(), ErrorKind::Internal | ErrorKind::NotFound) => {
                    tracing::warn!(collection = self.name(), %id, error = %e,
                        "deleting a record whose payload cannot be read: the tombstone keeps no content");
                    Decoded {
                        data: Map::new(),
                        system: StoredSystem {
                            lineage: cur.lineage.clone().unwrap_or_default(),
                            ..Default::default()
                        },
                    }
                }
                Err(e) => return Err(e),
            };
            let draft = Draft {
                id,
                op: Op::Delete,
                data: prev.data,
                lineage: prev.system.lineage,
                actor: opts.actor.clone(),
                reason: opts.reason.clone(),
            };
            self.append(Some(&cur), draft).await
        })
        .await
    }

    /// Deep-merges one patch (a JSON object) or several (an array of objects, applied in
    /// order) into a live record: objects merge, arrays union, scalars replace. The function
    /// id, if any, joins `functionIds`. Without `expected_ov` the merge is applied to the
    /// latest version atomically (re-read and retried if another writer wins), so concurrent
    /// enrichments never lose each other's fields.
    pub async fn enrich<T: Serialize + Sync + ?Sized>(
        &self,
        id: ItemId,
        patches: &T,
        opts: EnrichOptions,
    ) -> Result<WriteResult> {
        let patches =
            parse_patches(patches).map_err(|e| e.with("collection", self.name()).with("id", id))?;
        self.retrying(opts.expected_ov, || async {
            let cur = self.current_live(id).await?;
            self.check_expected(id, opts.expected_ov, &cur)?;
            let Decoded { mut data, system } = self.load_current(&cur).await?;
            for p in &patches {
                deep_merge(&mut data, p);
            }
            self.check_required(&data, Some(id))?;
            let mut lineage = system.lineage;
            if let Some(f) = &opts.function_id {
                union_into_strings(&mut lineage.function_ids, f);
            }
            let draft = Draft {
                id,
                op: Op::Update,
                data,
                lineage,
                actor: opts.actor.clone(),
                reason: opts.reason.clone(),
            };
            self.append(Some(&cur), draft).await
        })
        .await
    }

    /// Appends a `RESTORE` version whose content is that of version `target` (by ov, or the
    /// version current at an instant). Restoring a deleted record undeletes it; history is
    /// never removed. A target that is itself a deletion is a validation error.
    pub async fn restore_object(
        &self,
        id: ItemId,
        target: RestoreTarget,
        opts: WriteOptions,
    ) -> Result<WriteResult> {
        let ctx = |e: Error| e.with("collection", self.name()).with("id", id);
        let idx = &self.stores().index;
        let version = match target {
            RestoreTarget::Ov(ov) => idx.version(self.name(), id, ov).await?.ok_or_else(|| {
                ctx(Error::not_found(format!(
                    "version {ov} of record {id} does not exist"
                )))
            })?,
            RestoreTarget::At(t) => idx
                .version_at(self.name(), id, Point::At(t))
                .await?
                .ok_or_else(|| {
                    ctx(Error::not_found(format!(
                        "record {id} did not exist at {t}"
                    )))
                })?,
        };
        if version.is_tombstone() {
            return Err(ctx(Error::validation(format!(
                "version {} of record {id} is a deletion; restore to a live version (or delete)",
                version.ov
            ))));
        }
        self.restore_to(id, &version, opts).await
    }

    /// Appends a RESTORE version with the content of `version` (shared with collection restore).
    pub(super) async fn restore_to(
        &self,
        id: ItemId,
        version: &VersionEntry,
        opts: WriteOptions,
    ) -> Result<WriteResult> {
        let target = self.load(&version.blob_key, &version.checksum).await?;
        self.retrying(opts.expected_ov, || async {
            let cur = self.current_any(id).await?;
            self.check_expected(id, opts.expected_ov, &cur)?;
            let draft = Draft {
                id,
                op: Op::Restore,
                data: target.data.clone(),
                lineage: target.system.lineage.clone(),
                actor: opts.actor.clone(),
                reason: opts.reason.clone(),
            };
            self.append(Some(&cur), draft).await
        })
        .await
    }

    /// Runs `attempt` until it succeeds, fails with something other than a lost race, or —
    /// when the caller pinned `expected_ov` — fails at all.
    async fn retrying<F, Fut>(
        &self,
        expected_ov: Option<u64>,
        mut attempt: F,
    ) -> Result<WriteResult>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<WriteResult>>,
    {
        let mut tries = 0;
        loop {
            match attempt().await {
                Err(e)
                    if e.kind() == ErrorKind::Conflict
                        && expected_ov.is_none()
                        && tries < MAX_RETRIES =>
                {
                    tries += 1;
                    // After a few immediate retries, back off with jitter so that many writers
                    // on one hot record take turns instead of colliding forever.
                    if tries > 2 {
                        futures_timer::Delay::new(backoff(tries)).await;
                    }
                }
                other => return other,
            }
        }
    }

    /// The head of a live record, or `NotFound`.
    async fn current_live(&self, id: ItemId) -> Result<Current> {
        let head = self.stores().index.head(self.name(), id).await?;
        match head {
            Some(h) if h.deleted_at.is_none() => Ok(Current::from(&h)),
            Some(_) => Err(
                Error::not_found(format!("record {id} is deleted; restore it first"))
                    .with("collection", self.name())
                    .with("id", id),
            ),
            None => Err(self.not_found(id)),
        }
    }

    /// The record's latest state, deleted or not; for hard-deleted records (no head), the
    /// latest version in the log.
    pub(super) async fn current_any(&self, id: ItemId) -> Result<Current> {
        let idx = &self.stores().index;
        if let Some(h) = idx.head(self.name(), id).await? {
            return Ok(Current::from(&h));
        }
        let latest = idx.version_at(self.name(), id, Point::Cv(u64::MAX)).await?;
        let Some(v) = latest else {
            return Err(self.not_found(id));
        };
        let created_at = match idx.version(self.name(), id, 0).await? {
            Some(first) => first.at,
            None => v.at,
        };
        Ok(Current {
            ov: v.ov,
            blob_key: v.blob_key.clone(),
            checksum: v.checksum.clone(),
            created_at,
            updated_at: v.at,
            deleted: v.is_tombstone(),
            shadow: None,
            lineage: None,
        })
    }

    pub(super) fn not_found(&self, id: ItemId) -> Error {
        Error::not_found(format!("record {id} does not exist"))
            .with("collection", self.name())
            .with("id", id)
    }

    fn check_expected(&self, id: ItemId, expected: Option<u64>, cur: &Current) -> Result<()> {
        match expected {
            Some(e) if e != cur.ov => Err(Error::conflict(format!(
                "expected ov {e} but record {id} is at ov {}",
                cur.ov
            ))
            .with("collection", self.name())
            .with("id", id)),
            _ => Ok(()),
        }
    }

    fn check_required(&self, data: &Map<String, Value>, id: Option<ItemId>) -> Result<()> {
        for field in &self.inner.config.required_indexed {
            if get_path(data, field).is_none_or(Value::is_null) {
                let mut e = Error::validation(format!("missing required indexed field '{field}'"))
                    .with("collection", self.name())
                    .with("field", field);
                if let Some(id) = id {
                    e = e.with("id", id);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// The current payload (see [`Collection::load_shadowed`]).
    async fn load_current(&self, cur: &Current) -> Result<Decoded> {
        self.load_shadowed(cur.shadow.as_ref(), &cur.blob_key, &cur.checksum)
            .await
    }

    /// A head's payload: from its unexpired devShadow copy when it has one, otherwise from the
    /// blob store; checksum-verified either way.
    pub(super) async fn load_shadowed(
        &self,
        shadow: Option<&Shadow>,
        key: &str,
        checksum: &str,
    ) -> Result<Decoded> {
        match shadow {
            Some(s) if s.expires_at > now_ms() => payload::decode(s.json.as_bytes(), key, checksum)
                .map_err(|e| e.with("collection", self.name())),
            _ => self.load(key, checksum).await,
        }
    }

    pub(super) async fn load(&self, key: &str, checksum: &str) -> Result<Decoded> {
        let bytes = self
            .stores()
            .blob
            .get(key)
            .await
            .map_err(|e| e.with("collection", self.name()).with("key", key))?;
        payload::decode(&bytes, key, checksum).map_err(|e| e.with("collection", self.name()))
    }

    /// Puts a blob under a key unique to this attempt. `AlreadyExists` can then only mean
    /// that the store (or its client's retry) already wrote it and the acknowledgement was
    /// lost: if the stored bytes are exactly ours, the put succeeded.
    pub(super) async fn put_unique(&self, key: &str, bytes: Bytes) -> Result<()> {
        let blob = &self.stores().blob;
        match blob.put_if_absent(key, bytes.clone()).await {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => match blob.get(key).await {
                Ok(stored) if stored == bytes => Ok(()),
                _ => Err(e),
            },
            other => other,
        }
    }

    /// Puts the payload, then commits the version. See the module docs for why this order
    /// can never damage a committed version.
    async fn append(&self, cur: Option<&Current>, mut d: Draft) -> Result<WriteResult> {
        let cfg = &self.inner.config;
        let ov = cur.map_or(0, |c| c.ov + 1);
        // Every blob of this attempt carries its database and start in its key (see
        // `attempt`): the sweep's proof of what it may delete.
        let attempt = Attempt::start(&self.inner.owner);
        // What is stored must read back: merges and restores are checked like new data.
        crate::model::check_map_depth(&d.data)
            .map_err(|e| e.with("collection", self.name()).with("id", d.id))?;
        // Externalised properties become refs before anything is derived from the document.
        self.externalize(&mut d.data, d.id, ov, &attempt).await?;
        let now = now_ms();
        // `at` must strictly increase per record even if clocks jump back or writes are fast.
        let at = match cur {
            Some(c) if c.updated_at >= now => next_ms(c.updated_at),
            _ => now,
        };
        let created_at = cur.map_or(at, |c| c.created_at);
        let deleted = d.op == Op::Delete;
        let system = StoredSystem {
            inserted_at: Some(created_at),
            updated_at: Some(at),
            deleted_at: deleted.then_some(at),
            deleted,
            lineage: d.lineage.clone(),
        };
        let meta = payload::extract_meta(&d.data, &cfg.indexed_props);
        let enc = payload::encode(&d.data, &system);
        let size = enc.bytes.len() as u64;
        if size > cfg.max_payload_bytes {
            // Externalised content already stored for this attempt is unreferenced: garbage
            // for the sweep (its slot stays free, so after the grace period).
            return Err(Error::validation(format!(
                "payload of {size} bytes exceeds the collection's maximum of {} bytes \
                 (max_payload_bytes; large binary content belongs in base64Props)",
                cfg.max_payload_bytes
            ))
            .with("collection", self.name())
            .with("id", d.id)
            .with("limit", cfg.max_payload_bytes));
        }
        // The metadata is a copy inside the index (all of the document without indexedProps):
        // bounded, so the index store is not asked to hold a second large copy. Measured
        // only when the payload could exceed the bound at all.
        if size > cfg.max_meta_bytes {
            let meta_size = serde_json::to_vec(&meta).map_or(0, |v| v.len()) as u64;
            if meta_size > cfg.max_meta_bytes {
                return Err(Error::validation(format!(
                    "indexed metadata of {meta_size} bytes exceeds the collection's maximum of \
                     {} bytes (max_meta_bytes): {}",
                    cfg.max_meta_bytes,
                    if cfg.indexed_props.is_empty() {
                        "without indexedProps the whole document is indexed; list the fields \
                         to index in indexedProps"
                    } else {
                        "an indexed property holds a large value; index smaller fields"
                    }
                ))
                .with("collection", self.name())
                .with("id", d.id)
                .with("limit", cfg.max_meta_bytes));
            }
        }
        let (stored, gz) = payload::maybe_compress(&enc.bytes, cfg.compression);
        let key = payload::blob_key(&cfg.blob_prefix, self.name(), d.id, ov, &attempt, gz);
        let shadow = match cfg.shadow {
            Some(p) if size <= p.max_bytes => Some(Shadow {
                json: String::from_utf8_lossy(&enc.bytes).into_owned(),
                expires_at: Timestamp::from_millisecond(
                    at.as_millisecond().saturating_add(p.ttl.as_millis() as i64),
                )
                .unwrap_or(at),
            }),
            _ => None,
        };
        let ctx = |e: Error| e.with("collection", self.name()).with("id", d.id);
        let commit = Commit {
            version: NewVersion {
                item_id: d.id,
                ov,
                op: d.op,
                at,
                actor: d.actor,
                reason: d.reason,
                blob_key: key.clone(),
                meta,
                size,
                checksum: enc.checksum,
                prev_ov: cur.map(|c| c.ov),
            },
            created_at,
            head: if deleted && !cfg.logical_delete {
                HeadAction::Remove
            } else {
                HeadAction::Upsert
            },
            prune_below_ov: (!cfg.versioning && ov > 0).then_some(ov),
            shadow,
            lineage: d.lineage,
            not_after: Some(attempt.deadline(cfg.write_deadline)),
        };
        let done = |cv| WriteResult {
            id: d.id,
            ov,
            cv,
            at,
            op: d.op,
        };
        let taken = || {
            ctx(Error::conflict(format!(
                "record {} was changed concurrently (ov {ov} is already taken)",
                d.id
            )))
        };
        // The payload first, then the commit. What the index can do before the payload is
        // stored (checks, a cv reservation; nothing visible) overlaps the put.
        let idx = &self.stores().index;
        let (put, prepared) = futures::join!(
            self.put_unique(&key, stored),
            idx.precommit(self.name(), &commit)
        );
        put.map_err(|e| ctx(e).with("key", &key))?;
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                // No commit was sent, so no version can refer to this payload.
                let _ = self.stores().blob.delete(&key).await;
                return Err(if e.kind() == ErrorKind::Conflict {
                    taken()
                } else {
                    ctx(e)
                });
            }
        };
        if attempt.expired(cfg.write_deadline) {
            // Past its deadline a sweep may already treat this attempt's blobs as garbage, so
            // it must not commit. Nothing was sent, so the payload can go.
            let _ = self.stores().blob.delete(&key).await;
            tracing::warn!(collection = self.name(), id = %d.id, ov, deadline = ?cfg.write_deadline,
                "write attempt passed its deadline before its commit; refused");
            return Err(ctx(Error::unavailable(format!(
                "the write took longer than its deadline of {:?} before its commit (slow blob \
                 or index store); nothing was committed, retry it",
                cfg.write_deadline
            ))));
        }
        match idx.commit_prepared(self.name(), commit, prepared).await {
            Ok(cv) => {
                if let (false, Some(c)) = (cfg.versioning, cur) {
                    // Versioning off: the previous payload is no longer referenced. A failure
                    // here only leaves garbage for the sweep.
                    let _ = self.stores().blob.delete(&c.blob_key).await;
                }
                Ok(done(cv))
            }
            Err(e) if e.kind() == ErrorKind::Conflict => {
                // ov is taken — by us if a retry delivered this commit twice (the first one
                // landed, its acknowledgement was lost, the repeat found the ov taken). Our
                // unique key tells.
                match self.stores().index.version(self.name(), d.id, ov).await {
                    Ok(Some(v)) if v.blob_key == key => return Ok(done(v.cv)),
                    Ok(_) => {
                        // Someone else's version: ours never committed and never will (its
                        // ov is taken), so its payload is garbage now.
                        let _ = self.stores().blob.delete(&key).await;
                    }
                    // Unknown: leave the payload for the sweep.
                    Err(_) => {}
                }
                Err(taken())
            }
            Err(e) => {
                // The outcome is unknown (e.g. the acknowledgement was lost). Our version is
                // identified by its unique blob key, so one read settles it.
                match self.stores().index.version(self.name(), d.id, ov).await {
                    Ok(Some(v)) if v.blob_key == key => Ok(done(v.cv)),
                    // Not committed. The blob stays for the sweep: on a networked store a
                    // commit could in principle still be in flight, and deleting the payload
                    // of a version that then lands would break invariant 1.
                    Ok(_) => Err(ctx(e)),
                    Err(_) => Err(ctx(e).set_indeterminate()),
                }
            }
        }
    }
}

fn union_into_strings(ids: &mut Vec<String>, f: &str) {
    if !ids.iter().any(|x| x == f) {
        ids.push(f.to_string());
    }
}

fn parse_patches<T: Serialize + Sync + ?Sized>(patches: &T) -> Result<Vec<Map<String, Value>>> {
    let v = serde_json::to_value(patches)
        .map_err(|e| Error::validation(format!("patch does not serialize to JSON: {e}")))?;
    let list = match v {
        Value::Array(items) if items.is_empty() => {
            return Err(Error::validation("enrich needs at least one patch"))
        }
        Value::Array(items) => items,
        other => vec![other],
    };
    list.into_iter()
        .enumerate()
        .map(|(i, p)| payload_from_value(p).map_err(|e| e.with("patch", i)))
        .collect()
}

fn lineage_for_create(opts: &CreateOptions) -> Result<Lineage> {
    let mut l = Lineage::default();
    let nonempty = |what: &str, s: &str| {
        if s.trim().is_empty() {
            Err(Error::validation(format!("{what} must not be empty")).with("field", what))
        } else {
            Ok(())
        }
    };
    if let Some(p) = &opts.parent {
        nonempty("parentRecord.id", &p.id)?;
        nonempty("parentRecord.collection", &p.collection)?;
        l.parent_id = Some(p.id.clone());
        l.parent_collection = Some(p.collection.clone());
        l.origin_id = Some(p.id.clone());
        l.origin_collection = Some(p.collection.clone());
    }
    if let Some(o) = &opts.origin {
        nonempty("origin.id", &o.id)?;
        nonempty("origin.collection", &o.collection)?;
        l.origin_id = Some(o.id.clone());
        l.origin_collection = Some(match &o.system {
            Some(s) => {
                nonempty("origin.system", s)?;
                format!("{s}:{}", o.collection)
            }
            None => o.collection.clone(),
        });
    }
    Ok(l)
}
