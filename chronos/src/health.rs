//! `Chronos::health`: is every configured backend reachable, and how fast does it answer.
//!
//! One entry per distinct index database (connection + database name) and per distinct blob
//! location (bucket or directory) of the configuration. Backends that nothing has used yet
//! are reported as [`HealthState::NotOpened`] unless the caller asks to open them, so a
//! health probe never connects to a tenant's server on its own initiative.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::DatabaseTarget;
use crate::Chronos;

/// What a backend stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Heads and versions (`dbConnections`).
    Index,
    /// Payloads (`spacesConnections`, `localStorage`, memory).
    Blob,
}

/// The outcome of probing one backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum HealthState {
    /// Nothing has used it yet in this process and the caller did not ask to open it.
    NotOpened,
    /// It answered one round trip (an index `ping`, a one-key blob listing).
    Reachable {
        /// How long the round trip took.
        #[serde(rename = "latencyMs", serialize_with = "millis")]
        latency: Duration,
    },
    /// It could not be opened or did not answer.
    Unreachable {
        /// The error (its kind and message; never a secret).
        error: String,
    },
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// One backend's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendHealth {
    /// Index or blob.
    pub role: Role,
    /// What it is, as the configuration names it: `connection 'x', database 'y'`, `spaces
    /// connection 's', bucket 'b'`, `localStorage directory`, `memory (database 'y')`.
    pub name: String,
    /// The JSON path of the first database target that uses it.
    pub used_by: String,
    /// The probe's outcome.
    #[serde(flatten)]
    pub state: HealthState,
}

/// Every backend's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// In configuration order.
    pub backends: Vec<BackendHealth>,
}

impl Health {
    /// No probed backend is unreachable (not-opened ones do not count).
    pub fn ok(&self) -> bool {
        !self
            .backends
            .iter()
            .any(|b| matches!(b.state, HealthState::Unreachable { .. }))
    }
}

impl Chronos {
    /// Probes every configured index and blob backend with one round trip each. Backends
    /// no `with()` has opened yet are [`HealthState::NotOpened`] unless `open_unused`, in
    /// which case they are opened (and stay open) first. Never fails: problems are reported
    /// per backend.
    pub async fn health(&self, open_unused: bool) -> Health {
        let cfg = &self.inner.config;
        let registry = &self.inner.registry;
        let mut seen_index = BTreeSet::new();
        let mut seen_blob = BTreeSet::new();
        let mut backends = Vec::new();
        for (path, t) in cfg.targets() {
            let uri = cfg
                .db_connections
                .get(&t.db_conn_ref)
                .map(|c| c.mongo_uri.clone())
                .unwrap_or_default();
            if seen_index.insert((uri, t.db_name.clone())) {
                let state = match registry.opened_index(cfg, &t).await {
                    Some(b) => probe(|| async { b.index().ping().await }).await,
                    None if open_unused => match registry.index(cfg, &t).await {
                        Ok(b) => probe(|| async { b.index().ping().await }).await,
                        Err(e) => unreachable(&e),
                    },
                    None => HealthState::NotOpened,
                };
                backends.push(BackendHealth {
                    role: Role::Index,
                    name: format!("connection '{}', database '{}'", t.db_conn_ref, t.db_name),
                    used_by: path.clone(),
                    state,
                });
            }
            if seen_blob.insert(cfg.blob_location(&t)) {
                let list = |b: std::sync::Arc<dyn chronos_core::BlobStore>| async move {
                    b.list("chronos-health/", None, 1).await.map(|_| ())
                };
                let state = match registry.opened_blob(cfg, &t).await {
                    Some(b) => probe(|| list(b)).await,
                    None if open_unused => match registry.blob(cfg, &t).await {
                        Ok(b) => probe(|| list(b)).await,
                        Err(e) => unreachable(&e),
                    },
                    None => HealthState::NotOpened,
                };
                backends.push(BackendHealth {
                    role: Role::Blob,
                    name: blob_name(cfg, &t),
                    used_by: path,
                    state,
                });
            }
        }
        Health { backends }
    }
}

fn blob_name(cfg: &crate::ChronosConfig, t: &DatabaseTarget) -> String {
    match &t.space_conn_ref {
        Some(s) => format!(
            "spaces connection '{s}', bucket '{}'",
            t.bucket.as_deref().unwrap_or_default()
        ),
        None if cfg.local_storage.as_ref().is_some_and(|l| l.enabled) => {
            format!("localStorage directory '{}'", cfg.local_dir(t).display())
        }
        None => format!("memory (database '{}')", t.db_name),
    }
}

async fn probe<F, Fut>(call: F) -> HealthState
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = chronos_core::Result<()>>,
{
    let start = Instant::now();
    match call().await {
        Ok(()) => HealthState::Reachable {
            latency: start.elapsed(),
        },
        Err(e) => unreachable(&e),
    }
}

fn unreachable(e: &chronos_core::Error) -> HealthState {
    HealthState::Unreachable {
        error: e.to_string(),
    }
}
