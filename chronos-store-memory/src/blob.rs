//! The in-memory [`BlobStore`]: payloads in one ordered map, listed by prefix.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use chronos_core::time::now_ms;
use chronos_core::{BlobCapabilities, BlobMeta, BlobStore, Error, Result, Timestamp};

use crate::lock;

/// The in-memory [`BlobStore`].
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    blobs: Mutex<BTreeMap<String, (Bytes, Timestamp)>>,
}

impl MemoryBlobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    fn capabilities(&self) -> BlobCapabilities {
        BlobCapabilities::new(false)
    }

    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<()> {
        let mut g = lock(&self.blobs);
        if g.contains_key(key) {
            return Err(
                Error::already_exists(format!("blob '{key}' already exists")).with("key", key),
            );
        }
        g.insert(key.to_string(), (bytes, now_ms()));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        lock(&self.blobs)
            .get(key)
            .map(|(b, _)| b.clone())
            .ok_or_else(|| {
                Error::not_found(format!("blob '{key}' does not exist")).with("key", key)
            })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        lock(&self.blobs).remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<BlobMeta>> {
        let g = lock(&self.blobs);
        let start = match after {
            Some(a) if a >= prefix => std::ops::Bound::Excluded(a.to_string()),
            _ => std::ops::Bound::Included(prefix.to_string()),
        };
        Ok(g.range((start, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, (b, t))| BlobMeta {
                key: k.clone(),
                size: b.len() as u64,
                last_modified: *t,
            })
            .collect())
    }
}
