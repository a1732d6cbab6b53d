//! What a write builds on: the record's current state ([`Current`]), and the checks made
//! against it before anything is written (live, `expected_ov`, required fields).

use serde_json::{Map, Value};

use super::conflict;
use super::Collection;
use crate::error::{Error, Result};
use crate::filter::get_path;
use crate::id::ItemId;
use crate::index::{HeadEntry, Point, Shadow, ERASED_CHECKSUM};
use crate::model::Lineage;
use crate::time::Timestamp;

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
    /// The current version's chain hash, which the next version links to.
    pub(super) chain: Option<String>,
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
            chain: h.chain.clone(),
        }
    }
}

/// How a write reads the head it builds on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeadRead {
    /// [`IndexStore::head`](crate::IndexStore::head): never behind the version log.
    Checked,
    /// [`IndexStore::head_for_write`](crate::IndexStore::head_for_write) first: cheaper on
    /// some stores, and possibly behind the log, which the commit then refuses as a lost
    /// race. Only for the first attempt of a write that retries lost races; a head that does
    /// not show a live record is read again, checked, before any answer is given from it.
    MayLag,
}

impl Collection {
    /// The head, read as `how` says; a lagging read is trusted only when it shows a record.
    async fn read_head(&self, id: ItemId, how: HeadRead, live: bool) -> Result<Option<HeadEntry>> {
        let idx = &self.stores().index;
        if how == HeadRead::MayLag {
            match idx.head_for_write(self.name(), id).await? {
                Some(h) if !live || h.deleted_at.is_none() => return Ok(Some(h)),
                _ => {}
            }
        }
        idx.head(self.name(), id).await
    }

    /// The head of a live record, or `NotFound`.
    pub(super) async fn current_live(&self, id: ItemId, how: HeadRead) -> Result<Current> {
        let head = self.read_head(id, how, true).await?;
        match head {
            Some(h) if h.deleted_at.is_none() => Ok(Current::from(&h)),
            Some(h) if h.checksum == ERASED_CHECKSUM => Err(self.erased(id)),
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
    pub(super) async fn current_any(&self, id: ItemId, how: HeadRead) -> Result<Current> {
        let idx = &self.stores().index;
        if let Some(h) = self.read_head(id, how, false).await? {
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
            chain: v.seal.as_ref().map(|s| s.hash.clone()),
        })
    }

    pub(super) fn not_found(&self, id: ItemId) -> Error {
        Error::not_found(format!("record {id} does not exist"))
            .with("collection", self.name())
            .with("id", id)
    }

    pub(super) fn check_expected(
        &self,
        id: ItemId,
        expected: Option<u64>,
        cur: &Current,
    ) -> Result<()> {
        match expected {
            Some(e) if e != cur.ov => Err(conflict::stale_expected(self.name(), id, e, cur.ov)),
            _ => Ok(()),
        }
    }

    pub(super) fn check_required(
        &self,
        data: &Map<String, Value>,
        id: Option<ItemId>,
    ) -> Result<()> {
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
}
