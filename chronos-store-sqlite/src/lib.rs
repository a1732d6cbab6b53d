//! # chronos-store-sqlite
//!
//! The embedded default backend: Chronos's [`IndexStore`](chronos_core::IndexStore),
//! [`Lock`](chronos_core::Lock) and [`DocumentStore`](chronos_core::DocumentStore) on one
//! SQLite file (WAL mode), via sqlx. Filters, sorts and keyset pagination are translated to
//! SQL over JSON columns; nothing is filtered in memory. Several processes may share a file:
//! commits and leases are immediate transactions.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use chronos_core::{CollectionConfig, CreateOptions, Engine, ReadOptions, Stores};
//! use std::sync::Arc;
//!
//! let db = chronos_store_sqlite::SqliteBackend::open("sqlite::memory:").await?;
//! let stores = Stores {
//!     index: db.index(),
//!     blob: Arc::new(chronos_testkit::MemoryBlobStore::new()),
//!     lock: db.lock(),
//! };
//! let notes = Engine::new(stores).collection(CollectionConfig::new("notes")).await?;
//! let w = notes.create(&serde_json::json!({"text": "hello"}), CreateOptions::new()).await?;
//! assert_eq!(notes.get_latest(w.id, ReadOptions::new()).await?.unwrap().data["text"], "hello");
//! # Ok::<(), chronos_core::Error>(())
//! # }).unwrap();
//! ```

mod aggregate;
mod commit;
mod conn;
mod docs;
mod index;
mod lock;
mod prune;
mod repair;
mod rows;
mod sql_filter;

use std::sync::Arc;

pub use docs::SqliteDocumentStore;
pub use index::SqliteIndexStore;
pub use lock::SqliteLock;

use chronos_core::{DocumentStore, IndexStore, Lock, Result};
use sqlx::SqlitePool;

/// How long [`SqliteBackend::open`] keeps retrying a database that another process holds.
pub const OPEN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(15);

/// One SQLite database and the stores on it (sharing one connection pool).
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    pool: SqlitePool,
    index: Arc<SqliteIndexStore>,
    lock: Arc<SqliteLock>,
    docs: Arc<SqliteDocumentStore>,
}

impl SqliteBackend {
    /// Opens (creating if needed) the database at `uri` (`sqlite://path.db`,
    /// `sqlite::memory:`) and its shared tables.
    ///
    /// Opening races with other processes (switching a new file to WAL needs an exclusive
    /// lock that SQLite does not wait for), so a busy database is retried for up to
    /// [`OPEN_PATIENCE`] before the error is returned.
    ///
    /// Commits survive a crash of the process (WAL with `synchronous=NORMAL`); see
    /// [`SqliteBackend::open_durable`] for power loss.
    pub async fn open(uri: &str) -> Result<Self> {
        Self::open_with(uri, false).await
    }

    /// [`SqliteBackend::open`] with `synchronous=FULL`: every commit is synced to disk
    /// before it returns, so commits also survive a power loss or an operating-system crash.
    pub async fn open_durable(uri: &str) -> Result<Self> {
        Self::open_with(uri, true).await
    }

    async fn open_with(uri: &str, durable: bool) -> Result<Self> {
        let deadline = std::time::Instant::now() + OPEN_PATIENCE;
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            match Self::open_once(uri, durable).await {
                Err(e) if e.is_retryable() && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    async fn open_once(uri: &str, durable: bool) -> Result<Self> {
        let pool = conn::open_pool(uri, durable).await?;
        Ok(Self {
            index: Arc::new(SqliteIndexStore::new(pool.clone())),
            lock: Arc::new(SqliteLock::new(pool.clone()).await?),
            docs: Arc::new(SqliteDocumentStore::new(pool.clone()).await?),
            pool,
        })
    }
    /// The index store.
    pub fn index(&self) -> Arc<dyn IndexStore> {
        self.index.clone()
    }
    /// The lock store.
    pub fn lock(&self) -> Arc<dyn Lock> {
        self.lock.clone()
    }
    /// The document store.
    pub fn docs(&self) -> Arc<dyn DocumentStore> {
        self.docs.clone()
    }
    /// Closes every connection; later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
