//! Payload blobs of the write and read paths: loading (from a devShadow copy or the blob
//! store, checksum-verified), the create-only put under an attempt-unique key, and the
//! clean-up of blobs no version will reference.

use bytes::Bytes;

use super::payload::{self, Decoded};
use super::state::Current;
use super::Collection;
use crate::error::{Error, ErrorKind, Result};
use crate::index::{Shadow, ERASED_CHECKSUM};
use crate::time::now_ms;

impl Collection {
    /// The current payload (see [`Collection::load_shadowed`]).
    pub(super) async fn load_current(&self, cur: &Current) -> Result<Decoded> {
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
        if checksum == ERASED_CHECKSUM {
            // An erased version has no payload to fetch: say so, whoever asked.
            return Err(Error::erased(
                "the record was erased: this version's content is gone for good",
            )
            .with("collection", self.name()));
        }
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

    /// Deletes a blob no version references (a failed attempt's payload). A failure only
    /// leaves garbage for the sweep, so it is logged, not returned.
    pub(super) async fn discard(&self, key: &str, why: &'static str) {
        if let Err(e) = self.stores().blob.delete(key).await {
            tracing::warn!(collection = self.name(), key, why, error = %e,
                "could not delete an unreferenced blob; the sweep will remove it");
        }
    }
}
