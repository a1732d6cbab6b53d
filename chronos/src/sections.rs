//! Typed configuration sections whose features are built by later work (analytics, retention,
//! fallback, messaging, identities, …). They are parsed strictly — unknown keys and bad values
//! are errors naming their path — and reported by `ChronosConfig::unsupported_options` until
//! implemented, so nothing configured is silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

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

/// `retention.counters`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CounterRetention {
    /// Daily buckets kept.
    #[serde(default)]
    pub days: Option<u32>,
    /// Weekly buckets kept.
    #[serde(default)]
    pub weeks: Option<u32>,
    /// Monthly buckets kept.
    #[serde(default)]
    pub months: Option<u32>,
}

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
    /// Every tenant, for cross-tenant rules.
    #[serde(default)]
    pub tenants: Vec<String>,
}

/// A time-based analytics rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeBasedRule {
    /// Name.
    pub name: String,
    /// Collection.
    pub collection: String,
    /// Filter.
    pub query: Value,
    /// Aggregation.
    pub operation: Aggregation,
    /// Aggregated field.
    #[serde(default)]
    pub field: Option<String>,
    /// Where results go.
    pub save_mode: SaveMode,
    /// Bucket size for `timeframe` saves.
    #[serde(default)]
    pub timeframe: Option<Timeframe>,
    /// Window relative to now.
    #[serde(default)]
    pub relative_time: Option<RelativeTime>,
    /// Foreign-key arguments.
    #[serde(default)]
    pub arguments: Vec<String>,
}

/// A cross-tenant analytics rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrossTenantRule {
    /// Name.
    pub name: String,
    /// Collection.
    pub collection: String,
    /// Filter.
    pub query: Value,
    /// Combination mode.
    pub mode: CrossTenantMode,
    /// Aggregated field.
    #[serde(default)]
    pub field: Option<String>,
    /// Where results are written.
    pub master_tenant_id: String,
    /// Tenants read.
    pub slave_tenant_ids: Vec<String>,
    /// Window relative to now.
    #[serde(default)]
    pub relative_time: Option<RelativeTime>,
}

/// Aggregations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// Count.
    Count,
    /// Sum.
    Sum,
    /// Average.
    Average,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
}

/// Cross-tenant combination modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrossTenantMode {
    /// Whether each tenant has any match.
    Boolean,
    /// Sum over tenants.
    Sum,
    /// Maximum over tenants.
    Max,
    /// Minimum over tenants.
    Min,
    /// Average over tenants.
    Average,
}

/// Save modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaveMode {
    /// One bucket per timeframe.
    Timeframe,
    /// One global value.
    Global,
}

/// Timeframes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Timeframe {
    /// Hourly.
    Hourly,
    /// Daily.
    Daily,
    /// Weekly.
    Weekly,
    /// Monthly.
    Monthly,
}

/// A window relative to now (ISO-8601 durations such as `PT1H`, `P1D`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelativeTime {
    /// Only newer than now minus this.
    #[serde(default)]
    pub newer_than: Option<String>,
    /// Only older than now minus this.
    #[serde(default)]
    pub older_than: Option<String>,
}

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
    /// Batch size of blob writes.
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Debounce of counter updates.
    #[serde(default)]
    pub debounce_ms: Option<u64>,
    /// Compress payloads.
    #[serde(default)]
    pub compression_enabled: Option<bool>,
}

/// `fallback`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FallbackConfig {
    /// On or off.
    pub enabled: bool,
    /// Attempts before dead-lettering.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Base backoff.
    #[serde(default)]
    pub retry_delay_ms: Option<u64>,
    /// Backoff cap.
    #[serde(default)]
    pub max_delay_ms: Option<u64>,
    /// Dead-letter collection.
    #[serde(default)]
    pub dead_letter_collection: Option<String>,
}

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
