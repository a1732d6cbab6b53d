//! The `databases.messaging` section: strict serde types and their validation, errors naming
//! the JSON path.

use chronos_core::{Error, Result};
use serde::Deserialize;

/// The spec's advice for message size ("keep < 256KB"), enforced: the default of
/// [`MessagingDatabase::max_message_bytes`].
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 256 * 1024;
/// The largest `maxMessageBytes` accepted: MongoDB refuses documents above 16 MiB, and a
/// message is stored inside one.
pub const MAX_MESSAGE_BYTES_LIMIT: u64 = 15 * 1024 * 1024;
/// Append-mode versions kept per key by retention unless `retention.maxVersions` says
/// otherwise.
pub const DEFAULT_MAX_VERSIONS: u64 = 64;

/// `databases.messaging`: one database shared by every tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessagingDatabase {
    /// Connection name (in `dbConnections`).
    pub db_conn_ref: String,
    /// Database name.
    pub db_name: String,
    /// Record delivery attempts (`deliveries`); off by default, as in the spec.
    #[serde(default)]
    pub capture_deliveries: Option<bool>,
    /// The largest message, dead letter or shared value accepted, in bytes of JSON
    /// (default 256 KiB).
    #[serde(default)]
    pub max_message_bytes: Option<u64>,
    /// What [`crate::Messaging::apply_retention`] removes by default.
    #[serde(default)]
    pub retention: Option<RetentionConfig>,
}

/// `databases.messaging.retention`: ages in days (absent: kept forever) and the append-mode
/// versions kept per key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionConfig {
    /// Closed deliveries older than this many days are removed.
    #[serde(default)]
    pub deliveries_days: Option<f64>,
    /// Dead letters older than this many days are removed.
    #[serde(default)]
    pub dead_letters_days: Option<f64>,
    /// Messages older than this many days are removed (unless still needed, see
    /// [`crate::retention`]).
    #[serde(default)]
    pub messages_days: Option<f64>,
    /// Append-mode versions kept per key (default 64, at least 1).
    #[serde(default)]
    pub max_versions: Option<u64>,
}

fn at(path: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid_config(format!("databases.messaging.{path}: {msg}"))
}

impl MessagingDatabase {
    /// Checks every value, naming the path of the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.db_name.trim().is_empty() {
            return Err(at("dbName", "must not be empty"));
        }
        if let Some(n) = self.max_message_bytes {
            if n == 0 || n > MAX_MESSAGE_BYTES_LIMIT {
                return Err(at(
                    "maxMessageBytes",
                    format!("{n} is outside 1..={MAX_MESSAGE_BYTES_LIMIT}"),
                ));
            }
        }
        if let Some(r) = &self.retention {
            for (name, days) in [
                ("deliveriesDays", r.deliveries_days),
                ("deadLettersDays", r.dead_letters_days),
                ("messagesDays", r.messages_days),
            ] {
                if let Some(d) = days {
                    if !d.is_finite() || d <= 0.0 || d > 36_500.0 {
                        return Err(at(
                            &format!("retention.{name}"),
                            format!("{d} must be above 0 and at most 36500 (100 years)"),
                        ));
                    }
                }
            }
            if r.max_versions == Some(0) {
                return Err(at(
                    "retention.maxVersions",
                    "must be at least 1 (the latest version is always kept)",
                ));
            }
        }
        Ok(())
    }

    /// The handle settings this section gives.
    pub fn settings(&self) -> Settings {
        Settings {
            capture_deliveries: self.capture_deliveries.unwrap_or(false),
            max_message_bytes: self.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES),
            retention: crate::RetentionPolicy::from_config(self.retention.as_ref()),
        }
    }
}

/// What a [`crate::Messaging`] handle needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Whether `deliveries` is available.
    pub capture_deliveries: bool,
    /// The size limit of messages, dead letters and shared values.
    pub max_message_bytes: u64,
    /// The default retention policy.
    pub retention: crate::RetentionPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            capture_deliveries: false,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            retention: crate::RetentionPolicy::default(),
        }
    }
}
