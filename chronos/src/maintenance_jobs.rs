//! The worker's maintenance jobs ([`Chronos::maintenance_jobs`]), each registered when its
//! section is configured:
//!
//! - `counters-retention` (daily, with `retention.counters`): drops counter buckets past
//!   their retention from every counted collection;
//! - `versions-retention` (daily, with `retention.ver`): prunes old versions
//!   ([`Chronos::prune_versions`]);
//! - `messaging-retention` (hourly, with `databases.messaging`): applies the configured
//!   messaging retention to every tenant that has messaging documents;
//! - `sessions-purge` (hourly, with `databases.identities`): removes expired sessions of
//!   every tenant that has sessions;
//! - `fallback-replay:<spool id>` (every minute, with `fallback.enabled`): a replay pass
//!   over this process's spool (see `fallback_db`).
//!
//! Each job finds its tenants in the database itself (one indexed query per tenant), so a
//! tenant that only ever used messaging is cleaned up as well as a configured one. All of
//! them are idempotent: a repeated run of a period removes nothing more than the first.

use std::sync::Arc;

use async_trait::async_trait;
use chronos_core::{Result, Timestamp};
use chronos_worker::{Every, Job, Period};
use serde_json::{json, Value};

use crate::Chronos;

/// Tenants one maintenance run covers at most (per database).
const MAX_TENANTS: usize = 100_000;

type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value>> + Send>>;
type Work = fn(Chronos, Timestamp) -> BoxFuture;

/// A maintenance job: a name, a period and the work, given the period's end as "now".
struct Maintenance {
    name: &'static str,
    every: Every,
    chronos: Chronos,
    work: Work,
}

impl std::fmt::Debug for Maintenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maintenance")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Job for Maintenance {
    fn name(&self) -> &str {
        self.name
    }
    fn every(&self) -> &Every {
        &self.every
    }
    async fn run(&self, period: &Period) -> Result<Value> {
        (self.work)(self.chronos.clone(), period.end).await
    }
}

fn prune_counters(chronos: Chronos, now: Timestamp) -> BoxFuture {
    Box::pin(async move {
        let dropped = chronos.counters().prune_periods(None, now).await?;
        Ok(json!({ "bucketsDropped": dropped }))
    })
}

fn prune_versions(chronos: Chronos, now: Timestamp) -> BoxFuture {
    Box::pin(async move {
        let s = chronos.prune_versions(None, now).await?;
        Ok(json!({ "collections": s.collections, "versionsRemoved": s.versions_removed() }))
    })
}

fn messaging_retention(chronos: Chronos, now: Timestamp) -> BoxFuture {
    Box::pin(async move {
        let any = chronos.messaging("default").await?;
        let policy = any.settings().retention.clone();
        let mut removed = serde_json::Map::new();
        let tenants = any.tenants(MAX_TENANTS).await?;
        for t in &tenants {
            let r = any.for_tenant(t)?.apply_retention(&policy, now).await?;
            removed.insert(t.clone(), serde_json::to_value(r).unwrap_or(Value::Null));
        }
        tracing::debug!(tenants = tenants.len(), "messaging retention ran");
        Ok(json!({ "tenants": removed }))
    })
}

fn purge_sessions(chronos: Chronos, now: Timestamp) -> BoxFuture {
    Box::pin(async move {
        let any = chronos.identities("default").await?;
        let mut purged = 0;
        let tenants = any.session_tenants(MAX_TENANTS).await?;
        for t in &tenants {
            purged += any.for_tenant(t)?.sessions().purge_expired(now).await?;
        }
        tracing::debug!(tenants = tenants.len(), purged, "expired sessions purged");
        Ok(json!({ "tenants": tenants.len(), "purged": purged }))
    })
}

impl Chronos {
    /// The maintenance jobs of this configuration (see the module docs); [`Chronos::worker`]
    /// registers them with the analytics jobs.
    pub fn maintenance_jobs(&self) -> Vec<Arc<dyn Job>> {
        let cfg = &self.inner.config;
        let hourly = || Every::parse("PT1H").expect("a valid duration");
        let mut jobs: Vec<Arc<dyn Job>> = Vec::new();
        let mut add = |name, every, work| {
            jobs.push(Arc::new(Maintenance {
                name,
                every,
                chronos: self.clone(),
                work,
            }));
        };
        let counters = cfg.retention.as_ref().and_then(|r| r.counters);
        if counters.is_some_and(|c| !c.is_empty()) {
            let daily = Every::parse("P1D").expect("a valid duration");
            add("counters-retention", daily, prune_counters as Work);
        }
        if cfg.retention.as_ref().is_some_and(|r| r.ver.is_some()) {
            let daily = Every::parse("P1D").expect("a valid duration");
            add("versions-retention", daily, prune_versions as Work);
        }
        if cfg.databases.messaging.is_some() {
            add("messaging-retention", hourly(), messaging_retention as Work);
        }
        if cfg.databases.identities.is_some() {
            add("sessions-purge", hourly(), purge_sessions as Work);
        }
        if let Some(spool) = &self.inner.fallback {
            jobs.push(crate::fallback_db::ReplayJob::job(spool));
        }
        jobs
    }
}
