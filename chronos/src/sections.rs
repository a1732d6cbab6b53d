//! Typed configuration sections whose features are built by later work (analytics, retention,
//! fallback, messaging, identities, …). They are parsed strictly — unknown keys and bad values
//! are errors naming their path — and reported by `ChronosConfig::unsupported_options` until
//! implemented, so nothing configured is silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `routing`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoutingConfig {
    /// How a key picks among several connections.
    #[serde(default)]
    pub hash_algo: Option<HashAlgo>,
    /// Which route field is the key (`tenantId`, `domain`, `collection`, …).
    #[serde(default)]
    pub choose_key: Option<String>,
}

/// `routing.hashAlgo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgo {
    /// Highest-random-weight hashing.
    #[default]
    Rendezvous,
    /// Jump consistent hashing.
    Jump,
}

/// `retention`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionConfig {
    /// Version retention.
    #[serde(default)]
    pub ver: Option<VersionRetention>,
    /// Counter retention.
    #[serde(default)]
    pub counters: Option<CounterRetention>,
}

/// `retention.ver`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VersionRetention {
    /// Keep versions this many days.
    #[serde(default)]
    pub days: Option<u32>,
    /// Keep at most this many versions per record.
    #[serde(default)]
    pub max_per_item: Option<u32>,
}

/// `retention.counters`: owned by the analytics crate (its counter buckets).
pub use chronos_analytics::CounterRetention;

pub use chronos_analytics::config::{CounterRule, CounterRulesConfig, RuleOp, RuleScope};

/// `analytics`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// Real-time counter rules (with the top-level `counterRules.rules`).
    #[serde(default)]
    pub counter_rules: Vec<CounterRule>,
    /// Worker-driven rules.
    #[serde(default)]
    pub time_based_rules: Vec<TimeBasedRule>,
    /// Rules across tenants.
    #[serde(default)]
    pub cross_tenant_rules: Vec<CrossTenantRule>,
    /// Every tenant, for cross-tenant rules; also the tenants time-based rules run for
    /// (default: every runtime tenant with an `analyticsDbName`).
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Results of time-based and cross-tenant rules older than this many days are deleted
    /// by the worker (default: kept).
    #[serde(default)]
    pub results_ttl_days: Option<u32>,
}

pub use chronos_analytics::timed_config::{
    Aggregation, CrossTenantMode, CrossTenantRule, RelativeTime, SaveMode, TimeBasedRule, Timeframe,
};

/// `devShadow`: payloads up to `maxBytesPerDoc` (default 1 MiB) are also kept inline in the
/// head for `ttlHours` after each write, and reads of the latest version use that copy.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevShadowConfig {
    /// On or off.
    pub enabled: bool,
    /// How long a shadow copy is kept.
    pub ttl_hours: f64,
    /// Largest document shadowed.
    #[serde(default)]
    pub max_bytes_per_doc: Option<u64>,
}

/// `writeOptimization`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WriteOptimizationConfig {
    /// The most items `create_many` / `update_many` commit in one index call (default
    /// 100; 1 to 10,000); longer batches run in chunks of this size.
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Debounce of counter updates.
    #[serde(default)]
    pub debounce_ms: Option<u64>,
    /// Compress payloads.
    #[serde(default)]
    pub compression_enabled: Option<bool>,
}

/// `fallback`: owned by `chronos-fallback`.
pub use chronos_fallback::FallbackConfig;

/// `databases.messaging`: owned by `chronos-messaging`.
pub use chronos_messaging::MessagingDatabase;

/// `databases.identities`: owned by `chronos-identities`.
pub use chronos_identities::IdentitiesDatabase;

/// One `collectionMaps.*.base64Props` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Base64Prop {
    /// MIME type of the decoded content.
    pub content_type: String,
    /// Also store a text rendition.
    #[serde(default)]
    pub preferred_text: Option<bool>,
    /// Charset of the text rendition.
    #[serde(default)]
    pub text_charset: Option<String>,
}

/// `collectionMaps.*.base64Props`.
pub type Base64Props = BTreeMap<String, Base64Prop>;
