//! The `fallback` section: strict serde types and their validation, errors naming the JSON
//! path.

use std::path::PathBuf;
use std::time::Duration;

use chronos_core::{Error, Result};
use serde::Deserialize;

/// Default `maxRetries`: replay attempts before an operation becomes a dead letter.
pub const DEFAULT_MAX_RETRIES: u32 = 10;
/// Default `retryDelayMs`: the first backoff.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Default `maxDelayMs`: the longest backoff.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(60);
/// Default `maxSpoolBytes`: the spool log's size limit.
pub const DEFAULT_MAX_SPOOL_BYTES: u64 = 256 * 1024 * 1024;
/// The smallest `maxSpoolBytes` accepted.
pub const MIN_SPOOL_BYTES: u64 = 64 * 1024;

/// `fallback`: the spec's fallback queue, kept in a local spool (never in the store whose
/// outage it survives).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FallbackConfig {
    /// On or off.
    pub enabled: bool,
    /// Replay attempts before an operation becomes a dead letter (default 10, at most 1,000).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// The first backoff, in milliseconds (default 1,000).
    #[serde(default)]
    pub retry_delay_ms: Option<u64>,
    /// The longest backoff, in milliseconds (default 60,000, at most one day).
    #[serde(default)]
    pub max_delay_ms: Option<u64>,
    /// The spec's dead-letter collection. Dead letters stay in the spool (the store they
    /// would go to is the one that failed); the option is accepted and reported by
    /// `Chronos::unsupported_options`.
    #[serde(default)]
    pub dead_letter_collection: Option<String>,
    /// The spool's directory (required when enabled). One process per directory.
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// The spool log's size limit in bytes (default 256 MiB, at least 64 KiB): a write that
    /// would pass it fails instead of being queued.
    #[serde(default)]
    pub max_spool_bytes: Option<u64>,
}

/// Validated spool settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The spool's directory.
    pub dir: PathBuf,
    /// Replay attempts before dead-lettering.
    pub max_retries: u32,
    /// The first backoff.
    pub retry_delay: Duration,
    /// The longest backoff.
    pub max_delay: Duration,
    /// The spool log's size limit.
    pub max_bytes: u64,
}

impl Settings {
    /// Defaults for a spool in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_retries: DEFAULT_MAX_RETRIES,
            retry_delay: DEFAULT_RETRY_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            max_bytes: DEFAULT_MAX_SPOOL_BYTES,
        }
    }
}

fn at(path: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid_config(format!("fallback.{path}: {msg}"))
        .with("field", format!("fallback.{path}"))
}

impl FallbackConfig {
    /// Whether the queue can run: enabled, with a spool directory. Upstream's configurations
    /// enable it without one (its queue was never built); they load, and
    /// `Chronos::unsupported_options` reports `fallback` until `spoolDir` is set.
    pub fn usable(&self) -> bool {
        self.enabled && self.spool_dir().is_some()
    }

    /// The spool directory, if one is set (an empty path is none).
    fn spool_dir(&self) -> Option<&PathBuf> {
        self.spool_dir
            .as_ref()
            .filter(|d| !d.as_os_str().is_empty())
    }

    /// Checks every value except the spool directory's presence: `InvalidConfig` naming the
    /// bad field.
    pub fn validate(&self) -> Result<()> {
        self.checked().map(drop)
    }

    /// The settings, or `InvalidConfig` naming the bad field (`fallback.spoolDir` when
    /// enabled without one). `None` when disabled.
    pub fn settings(&self) -> Result<Option<Settings>> {
        let s = self.checked()?;
        if !self.enabled {
            return Ok(None);
        }
        let dir = self.spool_dir().cloned().ok_or_else(|| {
            at(
                "spoolDir",
                "is required when the fallback queue is enabled (a local directory)",
            )
        })?;
        Ok(Some(Settings { dir, ..s }))
    }

    /// The values checked, with an empty directory.
    fn checked(&self) -> Result<Settings> {
        let delay = self
            .retry_delay_ms
            .unwrap_or(DEFAULT_RETRY_DELAY.as_millis() as u64);
        let max_delay = self
            .max_delay_ms
            .unwrap_or(DEFAULT_MAX_DELAY.as_millis() as u64);
        if delay == 0 {
            return Err(at("retryDelayMs", "must be at least 1"));
        }
        if max_delay > 86_400_000 {
            return Err(at(
                "maxDelayMs",
                format!("{max_delay} is more than one day (86400000)"),
            ));
        }
        if delay > max_delay {
            return Err(at(
                "retryDelayMs",
                format!("{delay} is more than maxDelayMs ({max_delay})"),
            ));
        }
        let max_retries = self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
        if max_retries > 1000 {
            return Err(at("maxRetries", format!("{max_retries} is more than 1000")));
        }
        let max_bytes = self.max_spool_bytes.unwrap_or(DEFAULT_MAX_SPOOL_BYTES);
        if max_bytes < MIN_SPOOL_BYTES {
            return Err(at(
                "maxSpoolBytes",
                format!("{max_bytes} is less than {MIN_SPOOL_BYTES}"),
            ));
        }
        if let Some(c) = &self.dead_letter_collection {
            if c.trim().is_empty() {
                return Err(at("deadLetterCollection", "must not be empty"));
            }
        }
        Ok(Settings {
            dir: PathBuf::new(),
            max_retries,
            retry_delay: Duration::from_millis(delay),
            max_delay: Duration::from_millis(max_delay),
            max_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<Option<Settings>> {
        serde_json::from_value::<FallbackConfig>(v)
            .map_err(|e| Error::invalid_config(e.to_string()))?
            .settings()
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (serde_json::json!({"enabled": true}), "fallback.spoolDir"),
            (
                serde_json::json!({"enabled": true, "spoolDir": "s", "retryDelayMs": 0}),
                "retryDelayMs",
            ),
            (
                serde_json::json!({"enabled": true, "spoolDir": "s", "retryDelayMs": 5000, "maxDelayMs": 10}),
                "retryDelayMs",
            ),
            (
                serde_json::json!({"enabled": true, "spoolDir": "s", "maxDelayMs": 90_000_000u64}),
                "maxDelayMs",
            ),
            (
                serde_json::json!({"enabled": true, "spoolDir": "s", "maxRetries": 5000}),
                "maxRetries",
            ),
            (
                serde_json::json!({"enabled": true, "spoolDir": "s", "maxSpoolBytes": 10}),
                "maxSpoolBytes",
            ),
            (
                serde_json::json!({"enabled": false, "deadLetterCollection": " "}),
                "deadLetterCollection",
            ),
            (
                serde_json::json!({"enabled": true, "spoolDir": "s", "bogus": 1}),
                "bogus",
            ),
        ];
        for (v, field) in cases {
            let e = parse(v.clone()).unwrap_err();
            assert!(e.to_string().contains(field), "{v}: {e}");
        }
    }

    #[test]
    fn upstream_configs_validate_without_a_spool_dir() {
        let c: FallbackConfig = serde_json::from_value(serde_json::json!({
            "enabled": true, "maxRetries": 3, "retryDelayMs": 1000, "maxDelayMs": 60000,
            "deadLetterCollection": "chronos_fallback_dead"
        }))
        .unwrap();
        c.validate().unwrap();
        assert!(!c.usable());
        assert!(c
            .settings()
            .unwrap_err()
            .to_string()
            .contains("fallback.spoolDir"));
    }

    #[test]
    fn defaults_and_disabled() {
        assert_eq!(parse(serde_json::json!({"enabled": false})).unwrap(), None);
        let s = parse(serde_json::json!({"enabled": true, "spoolDir": "/tmp/s"}))
            .unwrap()
            .unwrap();
        assert_eq!(s, Settings::new("/tmp/s"));
    }
}
