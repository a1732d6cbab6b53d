//! The public writes: create, update, delete, enrich, restore_object. Each reads the record's
//! current state, builds the new version's content (a [`Draft`]) and hands it to the commit
//! pipeline (`commit.rs`), inside the retry loop when no `expected_ov` pins it.

use serde::Serialize;
use serde_json::{Map, Value};

use super::commit::Draft;
use super::payload::{Decoded, StoredSystem};
use super::{Collection, CreateOptions, EnrichOptions, RestoreTarget, WriteOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::id::ItemId;
use crate::index::{Point, VersionEntry};
use crate::merge::deep_merge;
use crate::model::{payload_from_value, to_payload, Lineage, Op, WriteResult};

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
            key: opts.idempotency_key,
        };
        self.append(None, draft).await.map_err(|e| {
            if super::conflict::is_lost_race(&e) {
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
        let (data, opts) = (&data, &opts);
        self.retrying(id, opts.expected_ov, |how| async move {
            let cur = self.current_live(id, how).await?;
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
                key: opts.idempotency_key.clone(),
            };
            self.append(Some(&cur), draft).await
        })
        .await
    }

    /// Deletes a live record: appends a tombstone version. With logical delete (default) the
    /// head stays as a tombstone; otherwise the head is removed (history is kept either way).
    pub async fn delete(&self, id: ItemId, opts: WriteOptions) -> Result<WriteResult> {
        let opts = &opts;
        self.retrying(id, opts.expected_ov, |how| async move {
            let cur = self.current_live(id, how).await?;
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
                key: opts.idempotency_key.clone(),
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
        let (patches, opts) = (&patches, &opts);
        self.retrying(id, opts.expected_ov, |how| async move {
            let cur = self.current_live(id, how).await?;
            self.check_expected(id, opts.expected_ov, &cur)?;
            let Decoded { mut data, system } = self.load_current(&cur).await?;
            for p in patches {
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
                key: opts.idempotency_key.clone(),
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
        if version.is_erased() {
            return Err(self.erased(id));
        }
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
        let (target, opts) = (&target, &opts);
        self.retrying(id, opts.expected_ov, |how| async move {
            let cur = self.current_any(id, how).await?;
            self.check_expected(id, opts.expected_ov, &cur)?;
            let draft = Draft {
                id,
                op: Op::Restore,
                data: target.data.clone(),
                lineage: target.system.lineage.clone(),
                actor: opts.actor.clone(),
                reason: opts.reason.clone(),
                key: opts.idempotency_key.clone(),
            };
            self.append(Some(&cur), draft).await
        })
        .await
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

pub(super) fn lineage_for_create(opts: &CreateOptions) -> Result<Lineage> {
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
