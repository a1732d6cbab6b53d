//! The blob store: immutable payloads by key (S3 / Azure Blob / filesystem / memory).

use std::fmt::Debug;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::time::Timestamp;

/// Listing entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// The key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// When the blob was written.
    pub last_modified: Timestamp,
}

/// What a blob store can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BlobCapabilities {
    /// It can issue presigned GET URLs.
    pub presign: bool,
}

impl BlobCapabilities {
    /// Capabilities with presigning on or off.
    pub fn new(presign: bool) -> Self {
        Self { presign }
    }
}

/// A key/value store of immutable payloads, bound to one bucket (or container, or root
/// directory).
///
/// # Contract (checked by the conformance suite on every backend)
/// - [`BlobStore::put_if_absent`] is create-only: if the key exists it returns
///   [`ErrorKind::AlreadyExists`](crate::ErrorKind::AlreadyExists) and leaves the existing
///   bytes untouched. A reader never observes a partially written blob.
/// - [`BlobStore::get`] returns exactly the bytes written, or `NotFound` naming the key.
/// - [`BlobStore::delete`] is idempotent (deleting a missing key is `Ok`).
/// - [`BlobStore::list`] returns keys with the prefix in ascending byte order;
///   [`BlobStore::list_all`] returns what paging through `list` would.
/// - Transient failures map to `Unavailable`.
/// - [`BlobStore::presign_get`] is available exactly when
///   [`BlobCapabilities::presign`] says so; otherwise it is `Unsupported`.
#[async_trait]
pub trait BlobStore: Send + Sync + Debug {
    /// What this store can do.
    fn capabilities(&self) -> BlobCapabilities;

    /// Writes `bytes` at `key` unless the key exists.
    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<()>;

    /// Reads the blob at `key`.
    async fn get(&self, key: &str) -> Result<Bytes>;

    /// Removes the blob at `key` if present.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Up to `limit` blobs whose key starts with `prefix` and sorts after `after`.
    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<BlobMeta>>;

    /// Every blob whose key starts with `prefix`, in ascending byte order (about 100 bytes of
    /// memory per blob). The default pages through [`BlobStore::list`]; a store whose
    /// listing cannot resume cheaply from a key (a directory walk) lists once instead, so
    /// a scan of n blobs costs one listing, not n / page of them.
    async fn list_all(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        let mut out: Vec<BlobMeta> = Vec::new();
        loop {
            let after = out.last().map(|b| b.key.clone());
            let page = self.list(prefix, after.as_deref(), 1000).await?;
            let n = page.len();
            out.extend(page);
            if n < 1000 {
                return Ok(out);
            }
        }
    }

    /// A URL that lets anyone holding it `GET` the blob at `key` for `ttl` (S3 SigV4, Azure
    /// SAS). The blob's existence is not checked. Stores that cannot presign return
    /// `Unsupported` naming themselves.
    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String> {
        let _ = ttl;
        Err(Error::unsupported(format!(
            "this blob store ({self:?}) cannot issue presigned URLs"
        ))
        .with("key", key))
    }
}
