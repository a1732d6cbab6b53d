//! `ChronosConfig`: the spec's JSON configuration, typed with serde.
//!
//! Parsing is strict: an unknown key is an error naming its JSON path, and so is a wrong type.
//! [`ChronosConfig::validate`] (in `validate.rs`, with each section's own `validate`) then checks every reference (`dbConnRef`, `spaceConnRef`),
//! required combinations and duplicates, again naming the exact path, e.g.
//! `databases.runtime.tenantDatabases[1].dbConnRef: no connection named 'mongo-x'`.
//! Secrets never appear in errors or `Debug` output.
//!
//! Sections whose features are not built yet (routing, retention, counter rules, analytics,
//! devShadow, writeOptimization, transactions, base64Props) are accepted as JSON and
//! reported by [`ChronosConfig::unsupported_options`], never silently ignored.

use std::collections::BTreeMap;
use std::fmt;

use chronos_core::{Error, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::scheme::Scheme;
pub use crate::sections::*;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChronosConfig {
    /// Index-store connections by name (`mongoUri` holds any supported URI).
    #[serde(default)]
    pub db_connections: BTreeMap<String, DbConnection>,
    /// Blob-store connections by name.
    #[serde(default)]
    pub spaces_connections: BTreeMap<String, SpacesConnection>,
    /// The tiered databases.
    pub databases: Databases,
    /// Local filesystem blobs (development, embedded use).
    #[serde(default)]
    pub local_storage: Option<LocalStorage>,
    /// Per-collection settings.
    #[serde(default)]
    pub collection_maps: BTreeMap<String, CollectionMap>,
    /// Logical delete switch (default on).
    #[serde(default)]
    pub logical_delete: Option<Toggle>,
    /// Versioning switch (default on).
    #[serde(default)]
    pub versioning: Option<Toggle>,
    /// Routing of keys over several connections.
    #[serde(default)]
    pub routing: Option<RoutingConfig>,
    /// Retention: `counters` keeps counter buckets per day / week / month; `ver` prunes old
    /// versions ([`Chronos::prune_versions`](crate::Chronos::prune_versions)).
    #[serde(default)]
    pub retention: Option<RetentionConfig>,
    /// Counter rules (`chronos-analytics`), applied to every collection of databases with an
    /// `analyticsDbName`.
    #[serde(default)]
    pub counter_rules: Option<CounterRulesConfig>,
    /// Analytics: counter rules work; time-based and cross-tenant rules are validated and
    /// reported by `unsupported_options` until the worker exists.
    #[serde(default)]
    pub analytics: Option<AnalyticsConfig>,
    /// devShadow: inline payload copies in heads for `ttlHours` (implemented).
    #[serde(default)]
    pub dev_shadow: Option<DevShadowConfig>,
    /// Write optimisation: `compressionEnabled` gzips payloads, `batchSize` bounds the chunks
    /// of `create_many` / `update_many`, `debounceMs` batches counter updates.
    #[serde(default)]
    pub write_optimization: Option<WriteOptimizationConfig>,
    /// The fallback queue (`chronos-fallback`): a local spool for writes a store could not
    /// take; see [`Chronos::spooled`](crate::Chronos::spooled).
    #[serde(default)]
    pub fallback: Option<FallbackConfig>,
    /// Transaction use on MongoDB.
    #[serde(default)]
    pub transactions: Option<TransactionsConfig>,
    /// What an acknowledged write survives on the embedded backends (SQLite files, local
    /// blob files). Not in the original. MongoDB, S3 and Azure are as durable as their
    /// servers are configured to be.
    #[serde(default)]
    pub durability: Durability,
    /// How long a write attempt may take and how far clocks may drift, which bound how old
    /// an unreferenced blob must be before `sweep` may delete it. Not in the original.
    #[serde(default)]
    pub sweep_safety: Option<SweepSafetyConfig>,
}

/// `sweepSafety`: the write deadline and clock-skew margin of every collection (see
/// [`chronos_core::CollectionConfig::write_deadline`]). `sweep` refuses a grace period below
/// their sum. The defaults (two and three minutes) suit servers on several machines; one host
/// writing and sweeping alone can use much less.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepSafetyConfig {
    /// Milliseconds a write attempt may take from its first blob put to its commit; a slower
    /// attempt is refused (`UNAVAILABLE`, nothing committed). At least 100.
    #[serde(default)]
    pub write_deadline_ms: Option<u64>,
    /// Milliseconds of clock difference between any two writing or sweeping processes, plus
    /// the longest time one commit request may spend in flight.
    #[serde(default)]
    pub clock_skew_ms: Option<u64>,
}

/// `durability`: what an acknowledged write survives on SQLite and local files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Durability {
    /// A crash of the process (the default): SQLite in WAL mode with `synchronous=NORMAL`,
    /// blob files written without fsync. A power loss or an operating-system crash may lose
    /// the last writes (never corrupt earlier ones).
    #[default]
    Process,
    /// Also a power loss: SQLite `synchronous=FULL`, and every blob file and its directories
    /// fsynced before the write is acknowledged. Slower.
    PowerLoss,
}

/// `transactions`: `enabled: false` forces the ordered, non-transactional path; with
/// `autoDetect: false` transactions are required (connecting fails without them); by default
/// they are used when the deployment supports them (detected once per connection).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransactionsConfig {
    /// Use transactions at all (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Detect support per connection (default true).
    #[serde(default)]
    pub auto_detect: Option<bool>,
}

/// An index-store connection. The field keeps the spec's name; its scheme picks the backend.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DbConnection {
    /// `sqlite://DIR`, `sqlite::memory:`, `mongodb://…`, `mongodb+srv://…` or `memory://`
    /// (see [`Scheme`](crate::Scheme)).
    pub mongo_uri: String,
}

impl fmt::Debug for DbConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbConnection")
            .field("uri", &redact_uri(&self.mongo_uri))
            .finish()
    }
}

/// A blob-store connection (S3-compatible or Azure).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpacesConnection {
    /// Service endpoint.
    pub endpoint: String,
    /// Region.
    #[serde(default)]
    pub region: Option<String>,
    /// Access key / account name.
    #[serde(default)]
    pub access_key: Option<String>,
    /// Secret key / account key. Never printed.
    #[serde(default)]
    pub secret_key: Option<String>,
    /// Path-style addressing (S3).
    #[serde(default)]
    pub force_path_style: Option<bool>,
    /// `"s3"` or `"azure"` when the endpoint does not tell (an Azure emulator on
    /// `127.0.0.1`, say); `*.blob.core.windows.net` is Azure, anything else S3. Not in the
    /// original.
    #[serde(default)]
    pub kind: Option<SpaceKindName>,
}

/// The protocol of a spaces connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpaceKindName {
    /// S3-compatible.
    S3,
    /// Azure Blob Storage.
    Azure,
}

impl SpacesConnection {
    /// The protocol: `kind`, else what the endpoint implies.
    pub fn space_kind(&self) -> chronos_blob::SpaceKind {
        self.options()
            .kind
            .unwrap_or_else(|| chronos_blob::SpaceKind::detect(self.endpoint.trim()))
    }

    /// The options `chronos-blob` connects with.
    pub fn options(&self) -> chronos_blob::SpaceOptions {
        chronos_blob::SpaceOptions {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            force_path_style: self.force_path_style,
            kind: self.kind.map(|k| match k {
                SpaceKindName::S3 => chronos_blob::SpaceKind::S3,
                SpaceKindName::Azure => chronos_blob::SpaceKind::Azure,
            }),
        }
    }
}

impl fmt::Debug for SpacesConnection {
    /// As [`chronos_blob::SpaceOptions`] shows it: keys redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.options().fmt(f)
    }
}

pub use chronos_core::error::redact_uri;

/// The longest `devShadow.ttlHours` accepted: ten years.
pub const MAX_SHADOW_TTL_HOURS: f64 = 87_600.0;

/// The scheme of a would-be URI for messages (`(none)` when it has no plausible one).
pub(crate) fn uri_scheme(uri: &str) -> &str {
    match uri.split_once(':') {
        Some((s, _))
            if !s.is_empty()
                && s.len() <= 16
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') =>
        {
            s
        }
        _ => "(none)",
    }
}

/// The database types.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Databases {
    /// Metadata: generic, domain and tenant tiers.
    #[serde(default)]
    pub metadata: Option<TieredDatabases>,
    /// Knowledge: generic, domain and tenant tiers.
    #[serde(default)]
    pub knowledge: Option<TieredDatabases>,
    /// Runtime: tenant tier only.
    #[serde(default)]
    pub runtime: Option<RuntimeDatabases>,
    /// Logs: one database.
    #[serde(default)]
    pub logs: Option<DatabaseTarget>,
    /// The messaging database, shared by every tenant ([`crate::Chronos::messaging`]).
    #[serde(default)]
    pub messaging: Option<MessagingDatabase>,
    /// The identities database, shared by every tenant ([`crate::Chronos::identities`]).
    #[serde(default)]
    pub identities: Option<IdentitiesDatabase>,
}

/// Generic / domain / tenant databases.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TieredDatabases {
    /// Shared by everyone.
    #[serde(default)]
    pub generic_database: Option<DatabaseTarget>,
    /// Per domain.
    #[serde(default)]
    pub domains_databases: Vec<DomainDatabase>,
    /// Per tenant.
    #[serde(default)]
    pub tenant_databases: Vec<TenantDatabase>,
}

/// Runtime databases.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeDatabases {
    /// Per tenant.
    #[serde(default)]
    pub tenant_databases: Vec<TenantDatabase>,
}

/// Where one database lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseTarget {
    /// Name in `dbConnections`.
    pub db_conn_ref: String,
    /// Name in `spacesConnections`; optional when `localStorage` is enabled.
    #[serde(default)]
    pub space_conn_ref: Option<String>,
    /// Bucket (or local sub-directory); defaults to `dbName` with local storage.
    #[serde(default)]
    pub bucket: Option<String>,
    /// Database name.
    pub db_name: String,
}

/// A domain's database.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainDatabase {
    /// The domain.
    pub domain: String,
    /// See [`DatabaseTarget::db_conn_ref`].
    pub db_conn_ref: String,
    /// See [`DatabaseTarget::space_conn_ref`].
    #[serde(default)]
    pub space_conn_ref: Option<String>,
    /// See [`DatabaseTarget::bucket`].
    #[serde(default)]
    pub bucket: Option<String>,
    /// See [`DatabaseTarget::db_name`].
    pub db_name: String,
}

/// A tenant's database.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantDatabase {
    /// The tenant.
    pub tenant_id: String,
    /// See [`DatabaseTarget::db_conn_ref`].
    pub db_conn_ref: String,
    /// See [`DatabaseTarget::space_conn_ref`].
    #[serde(default)]
    pub space_conn_ref: Option<String>,
    /// See [`DatabaseTarget::bucket`].
    #[serde(default)]
    pub bucket: Option<String>,
    /// See [`DatabaseTarget::db_name`].
    pub db_name: String,
    /// Analytics database (runtime tier): counters of this database's collections.
    #[serde(default)]
    pub analytics_db_name: Option<String>,
}

impl DomainDatabase {
    /// As a plain target.
    pub fn target(&self) -> DatabaseTarget {
        DatabaseTarget {
            db_conn_ref: self.db_conn_ref.clone(),
            space_conn_ref: self.space_conn_ref.clone(),
            bucket: self.bucket.clone(),
            db_name: self.db_name.clone(),
        }
    }
}

impl TenantDatabase {
    /// As a plain target.
    pub fn target(&self) -> DatabaseTarget {
        DatabaseTarget {
            db_conn_ref: self.db_conn_ref.clone(),
            space_conn_ref: self.space_conn_ref.clone(),
            bucket: self.bucket.clone(),
            db_name: self.db_name.clone(),
        }
    }
}

/// Local filesystem storage for blobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalStorage {
    /// Root directory.
    pub base_path: String,
    /// Whether it is used.
    pub enabled: bool,
}

/// A collection's settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollectionMap {
    /// Indexed properties (empty: all).
    #[serde(default)]
    pub indexed_props: Vec<String>,
    /// Externalised base64 properties: each listed property's content is stored as its own
    /// blob and the JSON keeps a ref (implemented).
    #[serde(default)]
    pub base64_props: Option<Base64Props>,
    /// Validation.
    #[serde(default)]
    pub validation: Option<CollectionValidation>,
}

/// `collectionMaps.*.validation`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollectionValidation {
    /// Indexed properties every write must carry.
    #[serde(default)]
    pub required_indexed: Vec<String>,
}

/// `{ "enabled": bool }`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    /// On or off.
    pub enabled: bool,
}

/// `devShadow.maxBytesPerDoc` when not given (the spec's example value, 1 MiB).
pub const DEFAULT_SHADOW_BYTES: u64 = 1024 * 1024;

pub(crate) fn at(path: impl fmt::Display, msg: impl fmt::Display) -> Error {
    Error::invalid_config(format!("{path}: {msg}"))
}

impl ChronosConfig {
    /// Parses JSON text. Errors name the JSON path of the problem.
    pub fn from_json(text: &str) -> Result<Self> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let cfg: ChronosConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // serde_json's own message may quote the offending input; keep only its
            // description so a secret in a mistyped field is never echoed.
            let msg = inner.to_string();
            let mut msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            // serde quotes the offending value ("invalid type: integer `4242…`"): never for
            // a field that holds a secret — keep only what was expected.
            let field = path.rsplit('.').next().unwrap_or_default();
            if chronos_core::error::is_secret_name(field) && !msg.starts_with("unknown field") {
                msg = match msg.split_once(", expected ") {
                    Some((_, expected)) => {
                        format!("invalid value (not shown: the field holds a secret), expected {expected}")
                    }
                    None => "invalid value (not shown: the field holds a secret)".to_string(),
                };
            }
            if path == "." {
                at("config", msg)
            } else {
                at(path, msg)
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses an already-built JSON value.
    pub fn from_value(v: &Value) -> Result<Self> {
        Self::from_json(&v.to_string())
    }

    /// The engine's configuration of `collection` in database `t`: its `collectionMaps` entry
    /// plus the global switches (versioning, logical delete, compression, devShadow) and the
    /// blob prefix of the target's place.
    pub fn collection_config(
        &self,
        t: &DatabaseTarget,
        collection: &str,
    ) -> chronos_core::CollectionConfig {
        let map = self
            .collection_maps
            .get(collection)
            .cloned()
            .unwrap_or_default();
        let cc = chronos_core::CollectionConfig::new(collection)
            .indexed_props(map.indexed_props)
            .required_indexed(
                map.validation
                    .map(|v| v.required_indexed)
                    .unwrap_or_default(),
            )
            .versioning(self.versioning.is_none_or(|t| t.enabled))
            .logical_delete(self.logical_delete.is_none_or(|t| t.enabled))
            .blob_prefix(self.blob_prefix(t))
            .compression(
                self.write_optimization
                    .as_ref()
                    .and_then(|w| w.compression_enabled)
                    .unwrap_or(false),
            );
        let cc = map
            .base64_props
            .iter()
            .flatten()
            .fold(cc, |cc, (prop, spec)| {
                let mut p = chronos_core::Base64Prop::new(&spec.content_type)
                    .preferred_text(spec.preferred_text.unwrap_or(false));
                if let Some(c) = &spec.text_charset {
                    p = p.text_charset(c);
                }
                cc.base64_prop(prop, p)
            });
        let cc = match self.write_optimization.as_ref().and_then(|w| w.batch_size) {
            Some(n) => cc.batch_size(n as usize),
            None => cc,
        };
        let cc = match self.sweep_safety {
            Some(SweepSafetyConfig {
                write_deadline_ms,
                clock_skew_ms,
            }) => {
                let ms = std::time::Duration::from_millis;
                let cc = match write_deadline_ms {
                    Some(d) => cc.write_deadline(ms(d)),
                    None => cc,
                };
                match clock_skew_ms {
                    Some(s) => cc.clock_skew(ms(s)),
                    None => cc,
                }
            }
            None => cc,
        };
        match &self.dev_shadow {
            Some(s) if s.enabled => cc.dev_shadow(
                s.max_bytes_per_doc.unwrap_or(DEFAULT_SHADOW_BYTES),
                std::time::Duration::from_secs_f64(s.ttl_hours.max(0.0) * 3600.0),
            ),
            _ => cc,
        }
    }

    /// Every database target with its JSON path.
    pub(crate) fn targets(&self) -> Vec<(String, DatabaseTarget)> {
        let mut out = Vec::new();
        let tiered = |out: &mut Vec<(String, DatabaseTarget)>, name: &str, t: &TieredDatabases| {
            if let Some(g) = &t.generic_database {
                out.push((format!("databases.{name}.genericDatabase"), g.clone()));
            }
            for (i, d) in t.domains_databases.iter().enumerate() {
                out.push((
                    format!("databases.{name}.domainsDatabases[{i}]"),
                    d.target(),
                ));
            }
            for (i, d) in t.tenant_databases.iter().enumerate() {
                out.push((format!("databases.{name}.tenantDatabases[{i}]"), d.target()));
            }
        };
        if let Some(m) = &self.databases.metadata {
            tiered(&mut out, "metadata", m);
        }
        if let Some(k) = &self.databases.knowledge {
            tiered(&mut out, "knowledge", k);
        }
        if let Some(r) = &self.databases.runtime {
            for (i, d) in r.tenant_databases.iter().enumerate() {
                out.push((
                    format!("databases.runtime.tenantDatabases[{i}]"),
                    d.target(),
                ));
            }
        }
        if let Some(l) = &self.databases.logs {
            out.push(("databases.logs".into(), l.clone()));
        }
        out
    }

    /// Where a target's blobs live: one spaces bucket, or one local directory (the blob
    /// store registry's key: one store per connection and bucket).
    pub(crate) fn blob_location(&self, t: &DatabaseTarget) -> String {
        match (&t.space_conn_ref, &self.local_storage) {
            (Some(space), _) => format!("space:{space}:{}", t.bucket.as_deref().unwrap_or("")),
            (None, Some(l)) if l.enabled => format!("local:{}", self.local_dir(t).display()),
            // A memory:// database without blob storage keeps its payloads in memory too,
            // one store per database (as its index).
            (None, _) => {
                let (uri, db) = self.index_identity(t);
                format!("memory:{uri}:{db}")
            }
        }
    }

    /// The backend of a target's connection (`None`: unknown connection or scheme).
    pub(crate) fn scheme_of(&self, t: &DatabaseTarget) -> Option<Scheme> {
        Scheme::parse(&self.db_connections.get(&t.db_conn_ref)?.mongo_uri)
    }

    /// The local directory of a target without `spaceConnRef`, spelled canonically:
    /// `shared`, `shared/` and `./shared` are one directory.
    pub(crate) fn local_dir(&self, t: &DatabaseTarget) -> std::path::PathBuf {
        let base = self
            .local_storage
            .as_ref()
            .map(|l| l.base_path.as_str())
            .unwrap_or_default();
        std::path::Path::new(base)
            .join(t.bucket.as_deref().unwrap_or(&t.db_name))
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect()
    }

    /// The physical place of a target's blobs, however it is spelled or reached: the same
    /// for two spaces connections naming one endpoint and bucket. Used to decide which
    /// databases share a place (and so get `<dbName>/` prefixes); the sweep does not depend
    /// on it (blob keys name their database, see `chronos_core::Collection::sweep`).
    pub(crate) fn blob_place(&self, t: &DatabaseTarget) -> String {
        match &t.space_conn_ref {
            Some(space) => {
                let endpoint = self
                    .spaces_connections
                    .get(space)
                    .map(|c| c.endpoint.trim().trim_end_matches('/').to_ascii_lowercase())
                    .unwrap_or_default();
                format!("space:{endpoint}:{}", t.bucket.as_deref().unwrap_or(""))
            }
            None => self.blob_location(t),
        }
    }

    /// The index database a target names: its connection URI and database name.
    pub(crate) fn index_identity(&self, t: &DatabaseTarget) -> (String, String) {
        let uri = self
            .db_connections
            .get(&t.db_conn_ref)
            .map(|c| c.mongo_uri.clone())
            .unwrap_or_default();
        (uri, t.db_name.clone())
    }

    /// The blob-key prefix of a target's collections: empty when no other index database
    /// stores blobs in the same place, `<dbName>/` when several share it (the spec's "shared
    /// bucket" setup) — so one database's sweep can never take another's payloads.
    pub(crate) fn blob_prefix(&self, t: &DatabaseTarget) -> String {
        let here = self.blob_place(t);
        let me = self.index_identity(t);
        let shared = self
            .targets()
            .iter()
            .any(|(_, o)| self.blob_place(o) == here && self.index_identity(o) != me);
        if shared {
            format!("{}/", t.db_name)
        } else {
            String::new()
        }
    }

    /// Options present in this config that Chronos does not implement yet (each a JSON path).
    pub fn unsupported_options(&self) -> Vec<String> {
        let mut out = Vec::new();
        let top = [
            // The router exists (`crate::router`), but no database maps a key onto several
            // connections yet, so `routing` cannot change anything.
            ("routing", self.routing.is_some()),
            // Enabled without a spool directory: nothing can be queued.
            (
                "fallback",
                self.fallback
                    .as_ref()
                    .is_some_and(|f| f.enabled && !f.usable()),
            ),
            // Dead letters stay in the spool: the store they would go to is the one that
            // failed.
            (
                "fallback.deadLetterCollection",
                self.fallback
                    .as_ref()
                    .is_some_and(|f| f.dead_letter_collection.is_some()),
            ),
        ];
        out.extend(
            top.iter()
                .filter(|(_, set)| *set)
                .map(|(k, _)| k.to_string()),
        );
        out
    }
}
