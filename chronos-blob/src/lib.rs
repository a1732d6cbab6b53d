//! # chronos-blob
//!
//! [`BlobStore`] implementations over [`object_store`]: S3-compatible services and Azure Blob
//! Storage (through a [`SpaceConnection`]), the local filesystem and memory. One
//! [`ObjectBlobStore`] is one bucket, container or root directory.
//!
//! Writes are create-only (`PutMode::Create`: `If-None-Match: *` on S3 and Azure), so no
//! committed payload can be overwritten; the filesystem backend stages each blob in a
//! temporary file and publishes it with a hard link, so a crash never leaves a partial file
//! under a key. S3 and Azure stores presign GET URLs ([`BlobStore::presign_get`]); the
//! filesystem and memory stores say they cannot.
//!
//! Cargo features pick the backends: `fs` (local files), `s3`, `azure`; all on by default.
//!
//! ```
//! # #[cfg(feature = "fs")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use chronos_core::BlobStore;
//! let dir = tempfile::tempdir().unwrap();
//! let blobs = chronos_blob::ObjectBlobStore::local(dir.path())?;
//! blobs.put_if_absent("users/a.json", bytes::Bytes::from_static(b"{}")).await?;
//! assert_eq!(blobs.get("users/a.json").await?, bytes::Bytes::from_static(b"{}"));
//! # Ok::<(), chronos_core::Error>(())
//! # }).unwrap();
//! ```

#[cfg(any(feature = "s3", feature = "azure"))]
mod create;
#[cfg(any(feature = "s3", feature = "azure"))]
mod http;
mod kind;
#[cfg(feature = "fs")]
mod local;
#[cfg(any(feature = "s3", feature = "azure"))]
mod space;

use std::fmt;
#[cfg(feature = "fs")]
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chronos_core::{BlobCapabilities, BlobMeta, BlobStore, Error, ErrorKind, Result, Timestamp};
use futures::TryStreamExt;
use object_store::path::Path;
#[cfg(feature = "spaces")]
use object_store::signer::Signer;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

pub use kind::{SpaceKind, SpaceOptions};
#[cfg(any(feature = "s3", feature = "azure"))]
pub use space::SpaceConnection;

/// A [`BlobStore`] over any `object_store` backend.
#[derive(Clone)]
pub struct ObjectBlobStore {
    inner: Arc<dyn ObjectStore>,
    /// Presigns URLs, for stores that can.
    #[cfg(feature = "spaces")]
    signer: Option<Arc<dyn Signer>>,
    /// What to show in Debug and errors (never credentials).
    label: String,
    /// For a durable local store: its root. Every put is then fsynced, file and directories.
    sync_root: Option<std::path::PathBuf>,
    /// For a local store: its root, listed and read directly ([`local`]).
    #[cfg(feature = "fs")]
    local_root: Option<std::path::PathBuf>,
    /// For a bucket of a spaces connection: `(connection, bucket)`, named when the bucket is
    /// missing.
    bucket: Option<(String, String)>,
}

impl fmt::Debug for ObjectBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBlobStore")
            .field("store", &self.label)
            .finish()
    }
}

impl ObjectBlobStore {
    /// Blobs as files under `root` (created if missing).
    #[cfg(feature = "fs")]
    pub fn local(root: impl AsRef<FsPath>) -> Result<Self> {
        let root = root.as_ref();
        std::fs::create_dir_all(root).map_err(|e| {
            Error::invalid_config(format!(
                "cannot create blob directory '{}': {e}",
                root.display()
            ))
        })?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(root)
            .map_err(|e| {
                Error::invalid_config(format!(
                    "cannot use blob directory '{}': {e}",
                    root.display()
                ))
            })?
            .with_automatic_cleanup(true);
        Ok(Self {
            inner: Arc::new(fs),
            #[cfg(feature = "spaces")]
            signer: None,
            label: format!("local:{}", root.display()),
            sync_root: None,
            // object_store resolves its root the same way.
            local_root: std::fs::canonicalize(root).ok(),
            bucket: None,
        })
    }

    /// [`ObjectBlobStore::local`] whose puts survive a power loss, not only a process crash:
    /// each put returns only after the file and every directory from it up to `root` are
    /// fsynced (so the new name is on disk too). Slower: one or more disk flushes per write.
    #[cfg(feature = "fs")]
    pub fn local_durable(root: impl AsRef<FsPath>) -> Result<Self> {
        let root = root.as_ref();
        let mut store = Self::local(root)?;
        store.sync_root = Some(root.to_path_buf());
        store.label.push_str(" (fsync)");
        Ok(store)
    }

    /// fsyncs the file of `key` and its directories up to the root.
    #[cfg(feature = "fs")]
    async fn sync(&self, root: &FsPath, key: &str) -> Result<()> {
        let file = root.join(key);
        let root = root.to_path_buf();
        blocking("fsync", move || -> std::io::Result<()> {
            std::fs::File::open(&file)?.sync_all()?;
            let mut dir = file.parent();
            while let Some(d) = dir {
                std::fs::File::open(d)?.sync_all()?;
                if d == root {
                    break;
                }
                dir = d.parent();
            }
            Ok(())
        })
        .await?
        .map_err(|e| self.io_failed("fsync", key, e))
    }

    /// Blobs in process memory (for tests and ephemeral use).
    pub fn memory() -> Self {
        Self {
            inner: Arc::new(object_store::memory::InMemory::new()),
            #[cfg(feature = "spaces")]
            signer: None,
            label: "memory".into(),
            sync_root: None,
            #[cfg(feature = "fs")]
            local_root: None,
            bucket: None,
        }
    }

    /// Wraps any configured `object_store` backend; `label` names it in Debug and errors.
    pub fn from_object_store(inner: Arc<dyn ObjectStore>, label: impl Into<String>) -> Self {
        Self {
            inner,
            #[cfg(feature = "spaces")]
            signer: None,
            label: label.into(),
            sync_root: None,
            #[cfg(feature = "fs")]
            local_root: None,
            bucket: None,
        }
    }

    /// Lets this store presign GET URLs with `signer` (normally the same `object_store`
    /// backend, e.g. `AmazonS3` or `MicrosoftAzure`).
    #[cfg(feature = "spaces")]
    pub fn with_signer(mut self, signer: Arc<dyn Signer>) -> Self {
        self.signer = Some(signer);
        self
    }

    fn path(key: &str) -> Result<Path> {
        Path::parse(key).map_err(|e| {
            Error::validation(format!("invalid blob key '{key}': {e}")).with("key", key)
        })
    }

    /// Every blob under `prefix` sorting after `after`, sorted. object_store lists by whole
    /// path segments: the directory part of the prefix is listed and keys that really start
    /// with it kept. Listing order is not guaranteed by every backend, hence the sort.
    async fn listed(&self, prefix: &str, after: Option<&str>) -> Result<Vec<BlobMeta>> {
        let dir = match prefix.rfind('/') {
            Some(i) if i > 0 => Some(Self::path(&prefix[..i])?),
            _ => None,
        };
        let mut found = match self.listed_locally(dir.as_ref(), prefix).await? {
            Some(found) => found,
            None => {
                self.listed_by_object_store(dir.as_ref(), prefix, after)
                    .await?
            }
        };
        if let Some(a) = after {
            found.retain(|m| m.key.as_str() > a);
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    /// A local store's listing without `object_store` ([`local`]), when its names allow.
    #[cfg(feature = "fs")]
    async fn listed_locally(
        &self,
        dir: Option<&Path>,
        prefix: &str,
    ) -> Result<Option<Vec<BlobMeta>>> {
        let Some(root) = self.local_root.clone() else {
            return Ok(None);
        };
        let dir = dir.map(|d| d.to_string()).unwrap_or_default();
        let owned = prefix.to_string();
        let listed = blocking("listing", move || local::list(&root, &dir, &owned)).await?;
        listed.map_err(|e| self.io_failed("list", prefix, e))
    }

    /// A local blob's bytes in one blocking read ([`local`]); errors as `object_store`
    /// gives them (a directory is not a blob).
    #[cfg(feature = "fs")]
    async fn read_local(&self, path: std::path::PathBuf, key: &str) -> Result<Bytes> {
        use std::io::ErrorKind as Io;
        let read = blocking("read", move || std::fs::read(path)).await?;
        match read {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(e)
                if matches!(
                    e.kind(),
                    Io::NotFound | Io::IsADirectory | Io::NotADirectory
                ) =>
            {
                Err(Error::new(ErrorKind::NotFound, absent(key)).with("key", key))
            }
            Err(e) => Err(self.io_failed("get", key, e)),
        }
    }

    #[cfg(not(feature = "fs"))]
    async fn listed_locally(&self, _: Option<&Path>, _: &str) -> Result<Option<Vec<BlobMeta>>> {
        Ok(None)
    }

    async fn listed_by_object_store(
        &self,
        dir: Option<&Path>,
        prefix: &str,
        after: Option<&str>,
    ) -> Result<Vec<BlobMeta>> {
        let stream = match after {
            Some(a) => self.inner.list_with_offset(dir, &Self::path(a)?),
            None => self.inner.list(dir),
        };
        stream
            .try_filter(|m| futures::future::ready(m.location.as_ref().starts_with(prefix)))
            .map_ok(|m| BlobMeta {
                key: m.location.to_string(),
                size: m.size,
                last_modified: timestamp(&m),
            })
            .try_collect()
            .await
            .map_err(|e| self.map(e, "list", prefix))
    }

    /// Marks this store as bucket `bucket` of spaces connection `connection`, so a missing
    /// bucket is reported as such (not as a missing blob).
    pub fn in_bucket(mut self, connection: &str, bucket: &str) -> Self {
        self.bucket = Some((connection.to_string(), bucket.to_string()));
        self
    }

    /// The error for a bucket or container that does not exist, if `e` says so.
    fn missing_bucket(&self, e: &object_store::Error) -> Option<Error> {
        let (conn, bucket) = self.bucket.as_ref()?;
        let text = e.to_string();
        // The services' own codes (S3 `NoSuchBucket`, Azure `ContainerNotFound`): a missing
        // object is `NoSuchKey` / `BlobNotFound`, never these.
        if !(text.contains("NoSuchBucket") || text.contains("ContainerNotFound")) {
            return None;
        }
        Some(
            Error::invalid_config(format!(
                "bucket '{bucket}' of spaces connection '{conn}' does not exist: create it \
                 (`chronos init`, Chronos::ensure_buckets, or the provider's console or CLI)"
            ))
            .with("connection", conn)
            .with("bucket", bucket),
        )
    }

    /// What a failed `op` on `key` says (the store by its label, never credentials).
    fn failed_message(&self, op: &str, key: &str, e: &dyn fmt::Display) -> String {
        format!("blob {op} of '{key}' failed in {}: {e}", self.label)
    }

    /// A local file operation that failed for another reason than a missing file.
    #[cfg(feature = "fs")]
    fn io_failed(&self, op: &str, key: &str, e: std::io::Error) -> Error {
        Error::unavailable(self.failed_message(op, key, &e)).with("key", key)
    }

    fn map(&self, e: object_store::Error, op: &str, key: &str) -> Error {
        if let Some(missing) = self.missing_bucket(&e) {
            return missing.with("key", key);
        }
        let kind = match &e {
            object_store::Error::NotFound { .. } => ErrorKind::NotFound,
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => ErrorKind::AlreadyExists,
            object_store::Error::NotImplemented { .. }
            | object_store::Error::NotSupported { .. } => ErrorKind::Unsupported,
            object_store::Error::InvalidPath { .. } => ErrorKind::Validation,
            _ => ErrorKind::Unavailable,
        };
        let msg = match kind {
            ErrorKind::NotFound => absent(key),
            ErrorKind::AlreadyExists => format!("blob '{key}' already exists"),
            _ => self.failed_message(op, key, &e),
        };
        Error::new(kind, msg).with("key", key).with_source(e)
    }
}

/// The message of a blob that does not exist (one wording, whichever path found it).
fn absent(key: &str) -> String {
    format!("blob '{key}' does not exist")
}

/// `f` on tokio's blocking pool; `what` names the task if it panics.
#[cfg(feature = "fs")]
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("{what} task failed: {e}")))
}

fn timestamp(t: &object_store::ObjectMeta) -> Timestamp {
    Timestamp::from_millisecond(t.last_modified.timestamp_millis()).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    fn capabilities(&self) -> BlobCapabilities {
        #[cfg(feature = "spaces")]
        let presign = self.signer.is_some();
        #[cfg(not(feature = "spaces"))]
        let presign = false;
        BlobCapabilities::new(presign)
    }

    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<()> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.inner
            .put_opts(&Self::path(key)?, PutPayload::from_bytes(bytes), opts)
            .await
            .map_err(|e| self.map(e, "put", key))?;
        match &self.sync_root {
            #[cfg(feature = "fs")]
            Some(root) => self.sync(root, key).await,
            _ => Ok(()),
        }
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        #[cfg(feature = "fs")]
        if let Some(path) = self
            .local_root
            .as_deref()
            .and_then(|r| local::path_of(r, key))
        {
            return self.read_local(path, key).await;
        }
        let r = self
            .inner
            .get(&Self::path(key)?)
            .await
            .map_err(|e| self.map(e, "get", key))?;
        r.bytes().await.map_err(|e| self.map(e, "read", key))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.inner.delete(&Self::path(key)?).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.map(e, "delete", key)),
        }
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<BlobMeta>> {
        let mut found = self.listed(prefix, after).await?;
        found.truncate(limit);
        Ok(found)
    }

    /// One listing (a paged one re-walks a local directory tree per page).
    async fn list_all(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        self.listed(prefix, None).await
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String> {
        if ttl.is_zero() || ttl > Duration::from_secs(7 * 24 * 3600) {
            return Err(Error::validation(format!(
                "presign TTL must be between 1 second and 7 days, got {} s",
                ttl.as_secs()
            ))
            .with("key", key));
        }
        #[cfg(feature = "spaces")]
        if let Some(signer) = &self.signer {
            return signer
                .signed_url(object_store::signer::Method::GET, &Self::path(key)?, ttl)
                .await
                .map(|u| u.to_string())
                .map_err(|e| self.map(e, "presign", key));
        }
        Err(Error::unsupported(format!(
            "{} cannot issue presigned URLs (only S3 and Azure stores can)",
            self.label
        ))
        .with("key", key))
    }
}
