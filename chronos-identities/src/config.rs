//! The `databases.identities` section: strict serde types and their validation, errors naming
//! the JSON path.

use std::time::Duration;

use chronos_core::{Error, Result};
use serde::Deserialize;

use crate::password::HashParams;

/// Sessions last this long unless the caller or `sessionTtlHours` says otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

/// `databases.identities`: one database shared by every tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentitiesDatabase {
    /// Connection name (in `dbConnections`).
    pub db_conn_ref: String,
    /// Database name.
    pub db_name: String,
    /// Default session lifetime in hours (default 24; at most one year).
    #[serde(default)]
    pub session_ttl_hours: Option<f64>,
}

impl IdentitiesDatabase {
    /// Checks every value, naming the path of the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.db_name.trim().is_empty() {
            return Err(Error::invalid_config(
                "databases.identities.dbName: must not be empty",
            ));
        }
        if let Some(h) = self.session_ttl_hours {
            if !h.is_finite() || h <= 0.0 || h > 8_760.0 {
                return Err(Error::invalid_config(format!(
                    "databases.identities.sessionTtlHours: {h} must be above 0 and at most 8760 (one year)"
                )));
            }
        }
        Ok(())
    }

    /// The handle settings this section gives.
    pub fn settings(&self) -> Settings {
        Settings {
            session_ttl: self
                .session_ttl_hours
                .map_or(DEFAULT_SESSION_TTL, |h| Duration::from_secs_f64(h * 3600.0)),
            ..Settings::default()
        }
    }
}

/// What an [`crate::Identities`] handle needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Default session lifetime.
    pub session_ttl: Duration,
    /// Argon2id parameters for new password hashes (default: OWASP's 19 MiB, t=2, p=1).
    /// Stored hashes with weaker parameters are rehashed on the next successful login.
    pub hash: HashParams,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            session_ttl: DEFAULT_SESSION_TTL,
            hash: HashParams::OWASP,
        }
    }
}
