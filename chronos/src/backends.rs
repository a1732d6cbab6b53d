//! The backend registry: one index backend per distinct connection URI and database, one
//! client per `spacesConnections` entry, one blob store per distinct location (bucket or
//! directory), created on first use (concurrent first uses create one) and closed by
//! `shutdown`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chronos_blob::{ObjectBlobStore, SpaceConnection};
use chronos_core::blob_cache::DEFAULT_WRITE_CACHE_BYTES;
use chronos_core::{BlobStore, Error, IndexStore, Lock, RecentWrites, Result, WriteCache};
use chronos_store_mongo::{MongoConnection, MongoStores, Transactions};
use chronos_store_sqlite::SqliteBackend;
use tokio::sync::Mutex;

use crate::config::{redact_uri, ChronosConfig, DatabaseTarget, Durability};

/// The index side of one database.
#[derive(Debug, Clone)]
pub(crate) enum IndexBackend {
    Sqlite(SqliteBackend),
    Memory {
        index: Arc<dyn IndexStore>,
        lock: Arc<dyn Lock>,
    },
    Mongo(MongoStores),
}

impl IndexBackend {
    pub(crate) fn index(&self) -> Arc<dyn IndexStore> {
        match self {
            Self::Sqlite(b) => b.index(),
            Self::Memory { index, .. } => index.clone(),
            Self::Mongo(m) => m.index(),
        }
    }
    pub(crate) fn lock(&self) -> Arc<dyn Lock> {
        match self {
            Self::Sqlite(b) => b.lock(),
            Self::Memory { lock, .. } => lock.clone(),
            Self::Mongo(m) => m.lock(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Registry {
    /// Recently written payloads of every blob store (one budget for the process's stores):
    /// the next write of a record and reads right after a write skip the blob store.
    write_cache: Arc<WriteCache>,
    indexes: Mutex<HashMap<(String, String), IndexBackend>>,
    /// One driver client per distinct MongoDB URI.
    mongo: Mutex<HashMap<String, MongoConnection>>,
    /// One HTTP client per spaces connection, shared by all its buckets.
    spaces: Mutex<HashMap<String, SpaceConnection>>,
    blobs: Mutex<HashMap<String, Arc<dyn BlobStore>>>,
}

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
        Path::new(dir).join(format!("{db}.db")).display()
    ))
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            write_cache: WriteCache::new(DEFAULT_WRITE_CACHE_BYTES),
            indexes: Default::default(),
            mongo: Default::default(),
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
        // Held across the open so that concurrent first uses create one backend.
        let mut map = self.indexes.lock().await;
        if let Some(b) = map.get(&key) {
            return Ok(b.clone());
        }
        let backend = if uri.starts_with("sqlite:") {
            let uri = sqlite_uri(&uri, &t.db_name)?;
            IndexBackend::Sqlite(match cfg.durability {
                Durability::Process => SqliteBackend::open(&uri).await?,
                Durability::PowerLoss => SqliteBackend::open_durable(&uri).await?,
            })
        } else if uri.starts_with("memory://") {
            IndexBackend::Memory {
                index: Arc::new(chronos_store_memory::MemoryIndexStore::new()),
                lock: Arc::new(chronos_store_memory::MemoryLock::new()),
            }
        } else {
            let conn = self
                .mongo_client(cfg, &uri)
                .await
                .map_err(|e| e.with("connection", &t.db_conn_ref))?;
            IndexBackend::Mongo(conn.database(&t.db_name).await?)
        };
        map.insert(key, backend.clone());
        Ok(backend)
    }

    pub(crate) async fn blob(
        &self,
        cfg: &ChronosConfig,
        t: &DatabaseTarget,
    ) -> Result<Arc<dyn BlobStore>> {
        let key = cfg.blob_location(t);
        let mut map = self.blobs.lock().await;
        if let Some(b) = map.get(&key) {
            return Ok(b.clone());
        }
        let bare: Arc<dyn BlobStore> = if let Some(space) = &t.space_conn_ref {
            let bucket = t.bucket.as_deref().unwrap_or_default();
            Arc::new(self.space(cfg, space).await?.bucket(bucket)?)
        } else {
            cfg.local_storage
                .as_ref()
                .filter(|l| l.enabled)
                .ok_or_else(|| {
                    Error::invalid_config(
                        "no blob storage: set spaceConnRef or enable localStorage",
                    )
                })?;
            Arc::new(match cfg.durability {
                Durability::Process => ObjectBlobStore::local(cfg.local_dir(t))?,
                Durability::PowerLoss => ObjectBlobStore::local_durable(cfg.local_dir(t))?,
            })
        };
        let store: Arc<dyn BlobStore> = Arc::new(RecentWrites::new(
            bare,
            self.write_cache.clone(),
            key.clone(),
        ));
        map.insert(key, store.clone());
        Ok(store)
    }

    /// The connection of a `spacesConnections` entry (created once).
    async fn space(&self, cfg: &ChronosConfig, name: &str) -> Result<SpaceConnection> {
        let mut map = self.spaces.lock().await;
        if let Some(c) = map.get(name) {
            return Ok(c.clone());
        }
        let conn = SpaceConnection::new(name, cfg.spaces_connections[name].options())?;
        tracing::info!(connection = name, kind = ?conn.kind(), "blob storage client created");
        map.insert(name.to_string(), conn.clone());
        Ok(conn)
    }

    /// How many spaces clients exist (one per `spacesConnections` entry in use).
    pub(crate) async fn space_client_count(&self) -> usize {
        self.spaces.lock().await.len()
    }

    async fn mongo_client(&self, cfg: &ChronosConfig, uri: &str) -> Result<MongoConnection> {
        let mut map = self.mongo.lock().await;
        if let Some(c) = map.get(uri) {
            return Ok(c.clone());
        }
        let t = cfg.transactions.unwrap_or_default();
        let mode = match (t.enabled, t.auto_detect) {
            (Some(false), _) => Transactions::Off,
            (_, Some(false)) => Transactions::Required,
            _ => Transactions::Auto,
        };
        let conn = MongoConnection::connect(uri, mode).await?;
        tracing::info!(uri = %redact_uri(uri), transactions = conn.uses_transactions(), "MongoDB client created");
        map.insert(uri.to_string(), conn.clone());
        Ok(conn)
    }

    /// How many MongoDB driver clients exist (one per distinct URI).
    pub(crate) async fn mongo_client_count(&self) -> usize {
        self.mongo.lock().await.len()
    }

    /// How many index backends exist (one per distinct URI and database).
    pub(crate) async fn index_count(&self) -> usize {
        self.indexes.lock().await.len()
    }

    pub(crate) async fn close(&self) {
        let mut map = self.indexes.lock().await;
        for (_, b) in map.drain() {
            if let IndexBackend::Sqlite(s) = b {
                s.close().await;
            }
        }
        for (_, c) in self.mongo.lock().await.drain() {
            c.shutdown().await;
        }
        self.blobs.lock().await.clear();
        self.spaces.lock().await.clear();
    }
}
