//! # chronos
//!
//! Versioned, multi-tenant, tiered persistence. [`Chronos`] is built from the spec's JSON
//! configuration and hands out collections bound to one database (`with`): every write is an
//! immutable version, every read can travel in time.
//!
//! This facade wires the backends chosen by URI scheme: `mongodb://` / `mongodb+srv://`
//! (one driver client per distinct URI), `sqlite://DIR` (the embedded default, one file per
//! database), `memory://`; blobs on S3-compatible services and Azure Blob Storage
//! (`spacesConnections`) or the local filesystem (`localStorage`). Everything a user needs is
//! re-exported here: `chronos::{CreateOptions, ReadOptions, ListOptions, …}`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use chronos::{Chronos, CreateOptions, ErrorKind, ReadOptions, Route};
//! use serde_json::json;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let chronos = Chronos::from_json(&json!({
//!     "dbConnections": { "local": { "mongoUri": format!("sqlite://{}", dir.path().join("db").display()) } },
//!     "spacesConnections": {},
//!     "databases": { "runtime": { "tenantDatabases": [
//!         { "tenantId": "tenant-a", "dbConnRef": "local", "dbName": "runtime_a" }
//!     ] } },
//!     "localStorage": { "enabled": true, "basePath": dir.path().join("blobs").display().to_string() }
//! }).to_string())?;
//!
//! let users = chronos.with(&Route::runtime("tenant-a", "users")).await?;
//! let w = users.create(&json!({"email": "a@example.com"}), CreateOptions::new()).await?;
//! assert_eq!(users.get_latest(w.id, ReadOptions::new()).await?.unwrap().data["email"], "a@example.com");
//!
//! // A tenant that is not configured is an error, never another tenant's database.
//! let err = chronos.with(&Route::runtime("tenant-b", "users")).await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::TenantNotConfigured);
//! chronos.shutdown().await;
//! # Ok::<(), chronos::Error>(())
//! # }).unwrap();
//! ```

/// The README's examples compile (rustdoc checks them as doctests).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

mod backends;
#[cfg(any(feature = "s3", feature = "azure"))]
mod buckets;
mod cells;
pub mod config;
mod counters;
mod entities;
mod fallback_db;
mod health;
mod identities_db;
mod maintenance_jobs;
mod messaging_db;
mod retention;
mod route;
pub mod router;
mod scheme;
mod sections;
mod tiered;
mod validate;
mod worker_jobs;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[cfg(any(feature = "s3", feature = "azure"))]
pub use buckets::BucketStatus;
/// Analytics types: rules, results, queries.
pub use chronos_analytics as analytics;
pub use chronos_analytics::{
    FoldReport, Granularity, PeriodCounts, RuleTotals, Totals, UniqueCount,
};
pub use chronos_core::{
    self as core, json_patch, Collection, CollectionConfig, CollectionRestoreOptions,
    CreateOptions, EnrichOptions, EraseReceipt, Error, ErrorKind, Externals, HistoryOptions,
    HistoryPage, ItemId, ListOptions, Page, Point, Problem, ProblemKind, PruneReport, ReadOptions,
    Record, RestoreReport, RestoreTarget, Result, SortField, SweepReport, Timestamp, Unreadable,
    VerifyReport, VersionRetention, WriteOptions, WriteResult,
};
/// The identities database's types ([`Chronos::identities`]).
pub use chronos_fallback as fallback;
pub use chronos_identities as identities;
/// The messaging database's types ([`Chronos::messaging`]).
pub use chronos_messaging as messaging;
#[cfg(feature = "mongodb")]
pub use chronos_store_mongo::MovedVersion;
/// The scheduler (`chronos worker`): [`Chronos::worker`] builds one with the analytics jobs.
pub use chronos_worker as worker;
pub use config::{ChronosConfig, Durability, SweepSafetyConfig};
pub use counters::{CountersApi, TotalsQuery};
pub use entities::{EntityInsert, EntityMapping, EntityOperation, EntityOutcome, WithEntities};
pub use health::{BackendHealth, Health, HealthState, Role};
pub use retention::PruneSummary;
pub use route::{DatabaseType, Route, Tier};
pub use scheme::Scheme;
pub use tiered::{TierOptions, TieredResult};

use chronos_core::{Engine, Stores};

use cells::Cells;

type CollectionKey = (String, String, String, String);

/// The entry point: configuration plus lazily opened, shared backends.
#[derive(Debug, Clone)]
pub struct Chronos {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ChronosConfig,
    registry: backends::Registry,
    /// Opened collections by (connection, database, blob location, collection).
    collections: Cells<CollectionKey, Collection>,
    /// The counter rules (`counterRules`, `analytics.counterRules`), compiled once.
    rules: chronos_analytics::Rules,
    /// The messaging database, opened on first use.
    messaging: tokio::sync::OnceCell<chronos_messaging::Messaging>,
    /// The identities database, opened on first use.
    identities: tokio::sync::OnceCell<chronos_identities::Identities>,
    /// The fallback spool, with `fallback.enabled`.
    fallback: Option<chronos_fallback::Spool>,
    /// Set once the spool's background replayer is started.
    replayer: std::sync::OnceLock<()>,
    /// Tells background tasks to stop (set by `shutdown`).
    stop: tokio::sync::watch::Sender<bool>,
    closed: AtomicBool,
}

impl Chronos {
    /// Builds from JSON text. Validates everything; opens nothing yet.
    pub fn from_json(text: &str) -> Result<Self> {
        Self::from_config(ChronosConfig::from_json(text)?)
    }

    /// Builds from a configuration, validating it (a `ChronosConfig` deserialised or built
    /// by hand is checked here exactly as [`ChronosConfig::from_json`] checks text). Options
    /// not implemented yet are logged as a warning (see [`Chronos::unsupported_options`]).
    pub fn from_config(config: ChronosConfig) -> Result<Self> {
        config.validate()?;
        let unsupported = config.unsupported_options();
        if !unsupported.is_empty() {
            tracing::warn!(options = ?unsupported, "configuration options not implemented yet are ignored");
        }
        let rules = counters::rules(&config)?;
        // The spool resolves its operations' routes through this facade, which does not
        // exist yet: it gets a weak reference once it does.
        let owner = Arc::new(std::sync::OnceLock::new());
        // Enabled without a spool directory (upstream's configurations) opens nothing: it is
        // reported by `unsupported_options`, and `spooled()` names the missing field.
        let settings = config.fallback.as_ref().filter(|f| f.usable());
        let fallback = match settings.map(|f| f.settings()).transpose()?.flatten() {
            Some(settings) => Some(chronos_fallback::Spool::open(
                settings,
                Arc::new(fallback_db::Routes(owner.clone())),
            )?),
            None => None,
        };
        let inner = Arc::new(Inner {
            config,
            registry: Default::default(),
            collections: Cells::default(),
            rules,
            messaging: tokio::sync::OnceCell::new(),
            identities: tokio::sync::OnceCell::new(),
            fallback,
            replayer: std::sync::OnceLock::new(),
            stop: tokio::sync::watch::channel(false).0,
            closed: AtomicBool::new(false),
        });
        let _ = owner.set(Arc::downgrade(&inner));
        Ok(Self { inner })
    }

    /// The embedded default: SQLite files and blobs under `dir`, one tenant named `default`
    /// for runtime data (with counters in its `analytics` database) plus generic metadata,
    /// knowledge and logs databases, a messaging and an identities database; counter buckets
    /// kept for 30 days, 12 weeks and 6 months (the spec's `retention.counters` example).
    pub fn embedded(dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_config(ChronosConfig::embedded(dir)?)
    }
}

impl ChronosConfig {
    /// The configuration of [`Chronos::embedded`], to adjust before
    /// [`Chronos::from_config`].
    pub fn embedded(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let target = |db: &str| serde_json::json!({ "dbConnRef": "local", "dbName": db });
        let mut tenant = target("runtime_default");
        tenant["tenantId"] = "default".into();
        tenant["analyticsDbName"] = "analytics".into();
        Self::from_json(
            &serde_json::json!({
                "dbConnections": { "local": { "mongoUri": format!("sqlite://{}", dir.join("db").display()) } },
                "spacesConnections": {},
                "databases": {
                    "metadata": { "genericDatabase": target("metadata") },
                    "knowledge": { "genericDatabase": target("knowledge") },
                    "runtime": { "tenantDatabases": [tenant] },
                    "logs": target("logs"),
                    "messaging": target("messaging"),
                    "identities": target("identities")
                },
                "localStorage": { "enabled": true, "basePath": dir.join("blobs").display().to_string() },
                "retention": { "counters": { "days": 30, "weeks": 12, "months": 6 } }
            })
            .to_string(),
        )
    }
}

impl Chronos {
    /// The document store of database `db_name` on connection `db_conn_ref` (the
    /// non-versioned databases: analytics, messaging, identities), opened once.
    pub(crate) async fn document_store(
        &self,
        db_conn_ref: &str,
        db_name: &str,
    ) -> Result<Arc<dyn chronos_core::DocumentStore>> {
        Ok(self.index_backend(db_conn_ref, db_name).await?.docs())
    }

    /// The index backend of database `db_name` on connection `db_conn_ref`, opened once.
    pub(crate) async fn index_backend(
        &self,
        db_conn_ref: &str,
        db_name: &str,
    ) -> Result<backends::IndexBackend> {
        let target = config::DatabaseTarget {
            db_conn_ref: db_conn_ref.to_string(),
            space_conn_ref: None,
            bucket: None,
            db_name: db_name.to_string(),
        };
        self.inner.registry.index(&self.inner.config, &target).await
    }

    /// The configuration.
    pub fn config(&self) -> &ChronosConfig {
        &self.inner.config
    }

    /// Configured options that are not implemented yet, as JSON paths.
    pub fn unsupported_options(&self) -> Vec<String> {
        self.inner.config.unsupported_options()
    }

    /// Resolves duplicate `(itemId, ov)` version entries that the TypeScript library's write
    /// race left in a MongoDB collection (which keep the collection from opening): keeps the
    /// entry the head points at (or the one committed last) and moves every other one to
    /// `<c>_ver_duplicates` — nothing is deleted. Other backends cannot hold duplicates: an
    /// empty list.
    #[cfg(feature = "mongodb")]
    pub async fn repair_duplicate_versions(&self, route: &Route) -> Result<Vec<MovedVersion>> {
        let target = route.resolve(&self.inner.config)?;
        match self
            .inner
            .registry
            .index(&self.inner.config, &target)
            .await?
        {
            backends::IndexBackend::Mongo(m) => {
                m.repair_duplicate_versions(&route.collection).await
            }
            _ => Ok(Vec::new()),
        }
    }

    /// A collection bound to the database the route resolves to. Handles are cached: the
    /// collection's tables and indexes are prepared once per process.
    pub async fn with(&self, route: &Route) -> Result<Collection> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::unavailable("Chronos has been shut down"));
        }
        let cfg = &self.inner.config;
        let target = route.resolve(cfg)?;
        let key = (
            target.db_conn_ref.clone(),
            target.db_name.clone(),
            cfg.blob_location(&target),
            route.collection.clone(),
        );
        // One creation per collection; a slow first open (a tenant's server far away)
        // blocks only the callers of that collection.
        self.inner
            .collections
            .get_or_try_init(key, || async {
                let index = self.inner.registry.index(cfg, &target).await?;
                let blob = self.inner.registry.blob(cfg, &target).await?;
                let engine = Engine::new(Stores {
                    index: index.index(),
                    blob,
                    lock: index.lock(),
                });
                self.open_counted(
                    route,
                    engine,
                    cfg.collection_config(&target, &route.collection),
                )
                .await
                .map_err(|e| e.with("database", &target.db_name))
            })
            .await
    }

    /// How many MongoDB driver clients are open: one per distinct URI, however many connection
    /// names, tenants and tiers reference it.
    pub async fn open_clients(&self) -> usize {
        self.inner.registry.mongo_client_count().await
    }

    /// How many blob-storage clients are open: one per `spacesConnections` entry in use,
    /// however many buckets, tenants and tiers use it.
    pub async fn open_space_clients(&self) -> usize {
        self.inner.registry.space_client_count().await
    }

    /// How many index backends are open (one per distinct connection URI and database).
    pub async fn open_backends(&self) -> usize {
        self.inner.registry.index_count().await
    }

    /// Closes every connection. Later calls to `with` fail with `Unavailable`.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.stop.send_replace(true);
        self.inner.collections.drain().await;
        self.inner.registry.close().await;
    }
}
