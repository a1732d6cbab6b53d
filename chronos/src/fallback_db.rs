//! Wiring of `chronos-fallback`: with `fallback.enabled` the spool in `fallback.spoolDir` is
//! opened with the facade ([`Chronos::from_config`]), [`Chronos::spooled`] writes through
//! it, its replayer runs as a background task of the facade (started by the first
//! [`Chronos::spooled`] call inside a Tokio runtime — a process that writes through the
//! spool replays it — and stopped by [`Chronos::shutdown`]) and as the worker job
//! `fallback-replay:<spool id>` (every minute). [`Chronos::fallback`] alone starts nothing:
//! an operator's `chronos fallback stats` only looks.
//!
//! A queued operation names its collection by its [`Route`] (as JSON), resolved again when
//! it is replayed — in this process or, after a restart, the next one.

use std::sync::{Arc, OnceLock, Weak};

use chronos_core::{Collection, Error, Result};
use chronos_fallback::{Resolve, Spool, SpooledCollection};
use chronos_worker::{Every, Job, Period};
use serde_json::{json, Value};

use crate::route::{Route, Tier};
use crate::{Chronos, Inner};

/// Resolves queued operations' routes through the facade that owns the spool.
pub(crate) struct Routes(pub(crate) Arc<OnceLock<Weak<Inner>>>);

#[async_trait::async_trait]
impl Resolve for Routes {
    async fn collection(&self, target: &str) -> Result<Collection> {
        let inner = self
            .0
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| Error::unavailable("Chronos has been shut down"))?;
        Chronos { inner }.with(&parse_target(target)?).await
    }
}

/// A route as the spool keeps it.
pub(crate) fn target(route: &Route) -> String {
    json!({
        "databaseType": route.database_type.to_string(),
        "tier": match route.tier { Tier::Generic => "generic", Tier::Domain => "domain", Tier::Tenant => "tenant" },
        "tenantId": route.tenant_id,
        "domain": route.domain,
        "collection": route.collection,
    })
    .to_string()
}

fn parse_target(target: &str) -> Result<Route> {
    let bad = || Error::validation(format!("queued operation names no valid route: {target}"));
    let v: Value = serde_json::from_str(target).map_err(|_| bad())?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(Route {
        database_type: text("databaseType").ok_or_else(bad)?.parse()?,
        tier: text("tier").ok_or_else(bad)?.parse()?,
        tenant_id: text("tenantId"),
        domain: text("domain"),
        collection: text("collection").ok_or_else(bad)?,
    })
}

impl Chronos {
    /// The fallback spool (stats, pending operations, dead letters, retry, cancel, replay).
    /// `InvalidConfig` unless `fallback.enabled` with a `fallback.spoolDir`.
    pub fn fallback(&self) -> Result<&Spool> {
        let spool =
            self.inner
                .fallback
                .as_ref()
                .ok_or_else(|| match &self.inner.config.fallback {
                    Some(f) if f.enabled => Error::invalid_config(
                        "the fallback queue is enabled but has no fallback.spoolDir (a local \
                     directory): nothing can be queued",
                    )
                    .with("field", "fallback.spoolDir"),
                    _ => Error::invalid_config(
                        "the fallback queue is not enabled (fallback.enabled, fallback.spoolDir)",
                    )
                    .with("field", "fallback.enabled"),
                })?;
        Ok(spool)
    }

    /// The collection `route` names, written through the fallback spool: a write that fails
    /// because a store is unavailable (or because the collection cannot be opened) is queued
    /// and replayed exactly once later, and the caller gets
    /// [`Outcome::Queued`](chronos_fallback::Outcome::Queued) — never a fake commit.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use chronos::{Chronos, Route};
    /// use chronos::fallback::Outcome;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut config = chronos::ChronosConfig::embedded(dir.path())?;
    /// config.fallback = Some(serde_json::from_value(serde_json::json!({
    ///     "enabled": true, "spoolDir": dir.path().join("spool"), "retryDelayMs": 100
    /// })).unwrap());
    /// let chronos = Chronos::from_config(config)?;
    /// let users = chronos.spooled(&Route::runtime("default", "users"))?;
    /// match users.create(&serde_json::json!({"name": "Ada"}), Default::default()).await? {
    ///     Outcome::Committed(r) => assert_eq!(r.ov, 0),
    ///     Outcome::Queued(q) => println!("queued as {} (record {})", q.op_id, q.id),
    /// }
    /// println!("{:?}", chronos.fallback()?.stats());
    /// chronos.shutdown().await;
    /// # Ok::<(), chronos::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn spooled(&self, route: &Route) -> Result<SpooledCollection> {
        // A route that names no configured database is an error now, not a dead letter later.
        route.resolve(&self.inner.config)?;
        let spool = self.fallback()?;
        self.start_replayer(spool);
        Ok(spool.collection(target(route), route.collection.clone()))
    }

    /// Starts the background replayer once, if a Tokio runtime is running here.
    fn start_replayer(&self, spool: &Spool) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.inner.replayer.get_or_init(|| {
            let spool = spool.clone();
            let mut stop = self.inner.stop.subscribe();
            rt.spawn(async move {
                spool
                    .run_replayer(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await
            });
        });
    }
}

/// The worker job `fallback-replay:<spool id>`: one replay pass per minute. Named after the
/// spool, since each process replays its own spool (the worker runs a job name once per
/// period across processes).
#[derive(Debug)]
pub(crate) struct ReplayJob {
    spool: Spool,
    name: String,
    every: Every,
}

impl ReplayJob {
    pub(crate) fn job(spool: &Spool) -> Arc<dyn Job> {
        Arc::new(Self {
            spool: spool.clone(),
            name: format!("fallback-replay:{}", spool.id()),
            every: Every::parse("PT1M").expect("a valid duration"),
        })
    }
}

#[async_trait::async_trait]
impl Job for ReplayJob {
    fn name(&self) -> &str {
        &self.name
    }
    fn every(&self) -> &Every {
        &self.every
    }
    async fn run(&self, _period: &Period) -> Result<Value> {
        let r = self.spool.replay_due().await?;
        Ok(serde_json::to_value(r).unwrap_or(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::DatabaseType;

    #[test]
    fn targets_round_trip() {
        for r in [
            Route::runtime("t1", "users"),
            Route::domain(DatabaseType::Knowledge, "eu", "docs"),
            Route::logs("audit"),
        ] {
            assert_eq!(parse_target(&target(&r)).unwrap(), r);
        }
        assert!(parse_target("{}").is_err());
        assert!(parse_target("nope").is_err());
    }
}
