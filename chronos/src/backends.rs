//! The backend registry: one index backend per distinct connection URI and database, one
//! client per `spacesConnections` entry, one blob store per distinct location (bucket or
//! directory), created on first use and closed by `shutdown`. Concurrent first uses of one
//! backend create one; a slow open of one never delays another ([`Cells`]).

use std::sync::Arc;

#[cfg(feature = "fs")]
use chronos_blob::ObjectBlobStore;
#[cfg(any(feature = "s3", feature = "azure"))]
use chronos_blob::SpaceConnection;
use chronos_core::blob_cache::DEFAULT_WRITE_CACHE_BYTES;
use chronos_core::{
    BlobStore, DocumentStore, Error, IndexStore, Lock, RecentWrites, Result, WriteCache,
};
#[cfg(feature = "mongodb")]
use chronos_store_mongo::{MongoConnection, MongoStores, Transactions};
#[cfg(feature = "sqlite")]
use chronos_store_sqlite::SqliteBackend;

use crate::cells::Cells;

#[cfg(feature = "mongodb")]
use crate::config::redact_uri;
#[cfg(any(feature = "sqlite", feature = "fs"))]
use crate::config::Durability;
use crate::config::{ChronosConfig, DatabaseTarget};
use crate::scheme::{not_compiled, Scheme};

/// The index side of one database.
#[derive(Debug, Clone)]
pub(crate) enum IndexBackend {
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteBackend),
    Memory {
        index: Arc<dyn IndexStore>,
        lock: Arc<dyn Lock>,
        docs: Arc<dyn DocumentStore>,
    },
    #[cfg(feature = "mongodb")]
    Mongo(MongoStores),
}

impl IndexBackend {
    /// The backend's name for logs and health reports.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "sqlite",
            Self::Memory { .. } => "memory",
            #[cfg(feature = "mongodb")]
            Self::Mongo(_) => "mongodb",
        }
    }
    pub(crate) fn index(&self) -> Arc<dyn IndexStore> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(b) => b.index(),
            Self::Memory { index, .. } => index.clone(),
            #[cfg(feature = "mongodb")]
            Self::Mongo(m) => m.index(),
        }
    }
    /// The database's non-versioned document collections (analytics, messaging, …).
    pub(crate) fn docs(&self) -> Arc<dyn DocumentStore> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(b) => b.docs(),
            Self::Memory { docs, .. } => docs.clone(),
            #[cfg(feature = "mongodb")]
            Self::Mongo(m) => m.docs(),
        }
    }
    pub(crate) fn lock(&self) -> Arc<dyn Lock> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(b) => b.lock(),
            Self::Memory { lock, .. } => lock.clone(),
            #[cfg(feature = "mongodb")]
            Self::Mongo(m) => m.lock(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Registry {
    /// Recently written payloads of every blob store (one budget for the process's stores):
    /// the next write of a record and reads right after a write skip the blob store.
    write_cache: Arc<WriteCache>,
    indexes: Cells<(String, String), IndexBackend>,
    /// One driver client per distinct MongoDB URI.
    #[cfg(feature = "mongodb")]
    mongo: Cells<String, MongoConnection>,
    /// One HTTP client per spaces connection, shared by all its buckets.
    #[cfg(any(feature = "s3", feature = "azure"))]
    spaces: Cells<String, SpaceConnection>,
    blobs: Cells<String, Arc<dyn BlobStore>>,
}

#[cfg(feature = "sqlite")]
/// Where a SQLite URI puts database `db`: `sqlite://DIR` holds one file per database.
fn sqlite_uri(uri: &str, db: &str) -> Result<String> {
    if uri == "sqlite::memory:" || uri == "sqlite://:memory:" {
        return Ok("sqlite::memory:".into());
    }
    let dir = uri
        .strip_prefix("sqlite://")
        .or_else(|| uri.strip_prefix("sqlite:"))
        .unwrap_or(uri);
    let dir = if dir.is_empty() { "." } else { dir };
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::invalid_config(format!("cannot create SQLite directory '{dir}': {e}"))
    })?;
    Ok(format!(
        "sqlite://{}",
        std::path::Path::new(dir).join(format!("{db}.db")).display()
    ))
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            write_cache: WriteCache::new(DEFAULT_WRITE_CACHE_BYTES),
            indexes: Default::default(),
            #[cfg(feature = "mongodb")]
            mongo: Default::default(),
            #[cfg(any(feature = "s3", feature = "azure"))]
            spaces: Default::default(),
            blobs: Default::default(),
        }
    }
}

impl Registry {
    pub(crate) async fn index(
        &self,
        cfg: &ChronosConfig,
        t: &DatabaseTarget,
    ) -> Result<IndexBackend> {
        let conn = &cfg.db_connections[&t.db_conn_ref];
        let uri = conn.mongo_uri.clone();
        let key = (uri.clone(), t.db_name.clone());
        self.indexes
            .get_or_try_init(key, || async {
                let b = self.open_index(cfg, t, uri.clone()).await?;
                tracing::info!(connection = %t.db_conn_ref, database = %t.db_name,
                    backend = b.kind(), "index backend opened");
                Ok(b)
            })
            .await
    }

    async fn open_index(
        &self,
        cfg: &ChronosConfig,
        t: &DatabaseTarget,
        uri: String,
    ) -> Result<IndexBackend> {
        #[cfg(not(any(feature = "sqlite", feature = "mongodb")))]
        let _ = cfg;
        let path = format!("dbConnections.{}.mongoUri", t.db_conn_ref);
        let backend = match Scheme::parse(&uri) {
            #[cfg(feature = "sqlite")]
            Some(Scheme::Sqlite) => {
                let uri = sqlite_uri(&uri, &t.db_name)?;
                IndexBackend::Sqlite(match cfg.durability {
                    Durability::Process => SqliteBackend::open(&uri).await?,
                    Durability::PowerLoss => SqliteBackend::open_durable(&uri).await?,
                })
            }
            Some(Scheme::Memory) => IndexBackend::Memory {
                index: Arc::new(chronos_store_memory::MemoryIndexStore::new()),
                lock: Arc::new(chronos_store_memory::MemoryLock::new()),
                docs: Arc::new(chronos_store_memory::MemoryDocumentStore::new()),
            },
            #[cfg(feature = "mongodb")]
            Some(Scheme::Mongodb) => {
                let conn = self
                    .mongo_client(cfg, &uri)
                    .await
                    .map_err(|e| e.with("connection", &t.db_conn_ref))?;
                IndexBackend::Mongo(conn.database(&t.db_name).await?)
            }
            // Validation rejects both; a hand-built registry call must not panic.
            #[allow(unreachable_patterns)]
            Some(other) => {
                return Err(not_compiled(
                    &path,
                    format!("the {other} backend"),
                    other.feature().unwrap_or_default(),
                ))
            }
            None => {
                return Err(Error::invalid_config(format!(
                    "{path}: unsupported URI scheme"
                )))
            }
        };
        Ok(backend)
    }

    /// The index backend of a target if it was opened (never opens).
    pub(crate) async fn opened_index(
        &self,
        cfg: &ChronosConfig,
        t: &DatabaseTarget,
    ) -> Option<IndexBackend> {
        let uri = cfg.db_connections.get(&t.db_conn_ref)?.mongo_uri.clone();
        self.indexes.peek(&(uri, t.db_name.clone())).await
    }

    /// The blob store of a target if it was opened (never opens).
    pub(crate) async fn opened_blob(
        &self,
        cfg: &ChronosConfig,
        t: &DatabaseTarget,
    ) -> Option<Arc<dyn BlobStore>> {
        self.blobs.peek(&cfg.blob_location(t)).await
    }

    pub(crate) async fn blob(
        &self,
        cfg: &ChronosConfig,
        t: &DatabaseTarget,
    ) -> Result<Arc<dyn BlobStore>> {
        let key = cfg.blob_location(t);
        self.blobs
            .get_or_try_init(key.clone(), || self.open_blob(cfg, t, key))
            .await
    }

    async fn open_blob(
        &self,
        cfg: &ChronosConfig,
        t: &DatabaseTarget,
        key: String,
    ) -> Result<Arc<dyn BlobStore>> {
        let bare: Arc<dyn BlobStore> = match &t.space_conn_ref {
            #[cfg(any(feature = "s3", feature = "azure"))]
            Some(space) => {
                let bucket = t.bucket.as_deref().unwrap_or_default();
                Arc::new(self.space(cfg, space).await?.bucket(bucket)?)
            }
            #[cfg(not(any(feature = "s3", feature = "azure")))]
            Some(space) => {
                return Err(not_compiled(
                    &format!("spacesConnections.{space}"),
                    "S3 and Azure blob storage",
                    "s3",
                ))
            }
            None if cfg.local_storage.as_ref().is_some_and(|l| l.enabled) => self.local(cfg, t)?,
            None if cfg.scheme_of(t) == Some(Scheme::Memory) => {
                Arc::new(chronos_store_memory::MemoryBlobStore::new())
            }
            None => {
                return Err(Error::invalid_config(
                    "no blob storage: set spaceConnRef or enable localStorage",
                ))
            }
        };
        Ok(Arc::new(RecentWrites::new(
            bare,
            self.write_cache.clone(),
            key,
        )))
    }

    /// The local directory store of a target.
    #[cfg(feature = "fs")]
    fn local(&self, cfg: &ChronosConfig, t: &DatabaseTarget) -> Result<Arc<dyn BlobStore>> {
        Ok(Arc::new(match cfg.durability {
            Durability::Process => ObjectBlobStore::local(cfg.local_dir(t))?,
            Durability::PowerLoss => ObjectBlobStore::local_durable(cfg.local_dir(t))?,
        }))
    }

    #[cfg(not(feature = "fs"))]
    fn local(&self, _: &ChronosConfig, _: &DatabaseTarget) -> Result<Arc<dyn BlobStore>> {
        Err(not_compiled(
            "localStorage",
            "local-file blob storage",
            "fs",
        ))
    }

    /// The connection of a `spacesConnections` entry (created once).
    #[cfg(any(feature = "s3", feature = "azure"))]
    pub(crate) async fn space_connection(
        &self,
        cfg: &ChronosConfig,
        name: &str,
    ) -> Result<SpaceConnection> {
        self.space(cfg, name).await
    }

    #[cfg(any(feature = "s3", feature = "azure"))]
    async fn space(&self, cfg: &ChronosConfig, name: &str) -> Result<SpaceConnection> {
        self.spaces
            .get_or_try_init(name.to_string(), || async {
                let conn = SpaceConnection::new(name, cfg.spaces_connections[name].options())?;
                tracing::info!(connection = name, kind = ?conn.kind(), "blob storage client created");
                Ok(conn)
            })
            .await
    }

    /// How many spaces clients exist (one per `spacesConnections` entry in use).
    pub(crate) async fn space_client_count(&self) -> usize {
        #[cfg(any(feature = "s3", feature = "azure"))]
        return self.spaces.len().await;
        #[cfg(not(any(feature = "s3", feature = "azure")))]
        0
    }

    #[cfg(feature = "mongodb")]
    async fn mongo_client(&self, cfg: &ChronosConfig, uri: &str) -> Result<MongoConnection> {
        self.mongo
            .get_or_try_init(uri.to_string(), || self.connect_mongo(cfg, uri))
            .await
    }

    #[cfg(feature = "mongodb")]
    async fn connect_mongo(&self, cfg: &ChronosConfig, uri: &str) -> Result<MongoConnection> {
        let t = cfg.transactions.unwrap_or_default();
        let mode = match (t.enabled, t.auto_detect) {
            (Some(false), _) => Transactions::Off,
            (_, Some(false)) => Transactions::Required,
            _ => Transactions::Auto,
        };
        let conn = MongoConnection::connect(uri, mode).await?;
        tracing::info!(uri = %redact_uri(uri), transactions = conn.uses_transactions(), "MongoDB client created");
        Ok(conn)
    }

    /// How many MongoDB driver clients exist (one per distinct URI).
    pub(crate) async fn mongo_client_count(&self) -> usize {
        #[cfg(feature = "mongodb")]
        return self.mongo.len().await;
        #[cfg(not(feature = "mongodb"))]
        0
    }

    /// How many index backends exist (one per distinct URI and database).
    pub(crate) async fn index_count(&self) -> usize {
        self.indexes.len().await
    }

    pub(crate) async fn close(&self) {
        for b in self.indexes.drain().await {
            #[cfg(feature = "sqlite")]
            if let IndexBackend::Sqlite(s) = b {
                s.close().await;
            }
            #[cfg(not(feature = "sqlite"))]
            drop(b);
        }
        #[cfg(feature = "mongodb")]
        for c in self.mongo.drain().await {
            c.shutdown().await;
        }
        self.blobs.drain().await;
        #[cfg(any(feature = "s3", feature = "azure"))]
        self.spaces.drain().await;
    }
}
