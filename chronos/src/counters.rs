//! Wiring of `chronos-analytics`: the counters of every runtime tenant database that has an
//! `analyticsDbName`, kept in that analytics database (same connection), and
//! [`Chronos::counters`], the API over them.

use std::time::Duration;

use chronos_analytics::{
    CounterRetention, Counters, FoldReport, Granularity, PeriodCounts, Rules, Totals, TotalsKey,
    UniqueCount,
};
use chronos_core::{Collection, Engine, Error, Result};

use crate::config::{ChronosConfig, TenantDatabase};
use crate::route::Route;
use crate::Chronos;

/// The counter rules of a configuration: `counterRules.rules` then `analytics.counterRules`.
pub(crate) fn rules(cfg: &ChronosConfig) -> Result<Rules> {
    let mut all = Vec::new();
    if let Some(c) = &cfg.counter_rules {
        all.extend(c.rules.iter().cloned());
    }
    if let Some(a) = &cfg.analytics {
        all.extend(a.counter_rules.iter().cloned());
    }
    chronos_analytics::config::validate_rules("counterRules", &all)?;
    Rules::compile(&all)
}

/// `writeOptimization.debounceMs`.
fn debounce(cfg: &ChronosConfig) -> Option<Duration> {
    cfg.write_optimization
        .as_ref()
        .and_then(|w| w.debounce_ms)
        .map(Duration::from_millis)
}

/// `retention.counters` (none: lifetime totals only).
fn counter_retention(cfg: &ChronosConfig) -> CounterRetention {
    cfg.retention
        .as_ref()
        .and_then(|r| r.counters)
        .unwrap_or_default()
}

/// The runtime database of `tenant` with its analytics database, if it has one.
pub(crate) fn tenant_db<'a>(cfg: &'a ChronosConfig, tenant: &str) -> Option<&'a TenantDatabase> {
    cfg.databases
        .runtime
        .as_ref()?
        .tenant_databases
        .iter()
        .find(|d| d.tenant_id == tenant)
}

impl Chronos {
    /// The counters kept in `db`'s analytics database.
    pub(crate) async fn counters_of(&self, db: &TenantDatabase) -> Result<Option<Counters>> {
        if db.analytics_db_name.is_none() {
            return Ok(None);
        }
        Ok(Some(
            Counters::new(
                analytics_docs(self, db).await?,
                self.inner.rules.clone(),
                debounce(&self.inner.config),
            )
            .with_retention(counter_retention(&self.inner.config)),
        ))
    }

    /// Opens `route`'s collection through `engine`, with the counters' observer when its
    /// database has an analytics database; then folds in the background whatever an earlier
    /// process committed without counting (recovery on open).
    pub(crate) async fn open_counted(
        &self,
        route: &Route,
        engine: Engine,
        config: chronos_core::CollectionConfig,
    ) -> Result<Collection> {
        let db = match (&route.tenant_id, route.database_type) {
            (Some(t), crate::DatabaseType::Runtime) => tenant_db(&self.inner.config, t),
            _ => None,
        };
        let counters = match db {
            Some(db) => self.counters_of(db).await?.map(|c| (c, db)),
            None => None,
        };
        let Some((counters, db)) = counters else {
            return engine.collection(config).await;
        };
        let key = TotalsKey::new(&db.tenant_id, &db.db_name, &config.name);
        let observer = counters.observer(key.clone());
        let c = engine.observe(observer.clone()).collection(config).await?;
        observer.attach(&c);
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            let weak = c.downgrade();
            let chronos = std::sync::Arc::downgrade(&self.inner);
            h.spawn(async move {
                let Some(c) = weak.upgrade() else { return };
                if let Err(e) = counters.catch_up(&key, &c).await {
                    // A process that shuts down right after its writes ends this early: the
                    // next open catches up.
                    let closing = chronos.upgrade().is_none_or(|i| i.closed.load(std::sync::atomic::Ordering::Acquire));
                    if closing {
                        tracing::debug!(collection = %key.collection, error = %e, "counter catch-up on open stopped by shutdown");
                    } else {
                        tracing::warn!(collection = %key.collection, tenant = %key.tenant, error = %e,
                            "counter catch-up on open failed; Counters::catch_up retries it");
                    }
                }
            });
        }
        Ok(c)
    }

    /// The counters API (`chronos.counters` in the original).
    pub fn counters(&self) -> CountersApi<'_> {
        CountersApi { chronos: self }
    }
}

/// Which counters [`CountersApi::get_totals`] returns.
#[derive(Debug, Clone, Default)]
pub struct TotalsQuery {
    /// Only this tenant.
    pub tenant: Option<String>,
    /// Only this runtime database.
    pub db_name: Option<String>,
    /// Only this collection.
    pub collection: Option<String>,
    /// Add each rule's counts and distinct-value counts.
    pub include_rules: bool,
}

impl TotalsQuery {
    /// Every collection's totals.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only `tenant`.
    pub fn tenant(mut self, t: impl Into<String>) -> Self {
        self.tenant = Some(t.into());
        self
    }
    /// Only database `db`.
    pub fn db_name(mut self, db: impl Into<String>) -> Self {
        self.db_name = Some(db.into());
        self
    }
    /// Only collection `c`.
    pub fn collection(mut self, c: impl Into<String>) -> Self {
        self.collection = Some(c.into());
        self
    }
    /// With rules.
    pub fn include_rules(mut self, on: bool) -> Self {
        self.include_rules = on;
        self
    }
}

/// Exact counters of runtime collections ([`Chronos::counters`]).
#[derive(Debug, Clone, Copy)]
pub struct CountersApi<'a> {
    chronos: &'a Chronos,
}

impl CountersApi<'_> {
    /// The tenant databases the query selects that have an analytics database.
    fn databases(
        &self,
        tenant: Option<&str>,
        db_name: Option<&str>,
    ) -> Result<Vec<TenantDatabase>> {
        let cfg = &self.chronos.inner.config;
        let all = cfg
            .databases
            .runtime
            .as_ref()
            .map(|r| r.tenant_databases.clone())
            .unwrap_or_default();
        let picked: Vec<TenantDatabase> = all
            .into_iter()
            .filter(|d| tenant.is_none_or(|t| d.tenant_id == t))
            .filter(|d| db_name.is_none_or(|n| d.db_name == n))
            .collect();
        if picked.is_empty() {
            let what = match (tenant, db_name) {
                (Some(t), _) => format!("tenant '{t}'"),
                (None, Some(n)) => format!("database '{n}'"),
                _ => "any tenant".into(),
            };
            return Err(Error::new(
                chronos_core::ErrorKind::TenantNotConfigured,
                format!("no runtime database is configured for {what}"),
            ));
        }
        Ok(picked)
    }

    /// The counters of `tenant`'s collection `collection`, and its key.
    async fn one(&self, tenant: &str, collection: &str) -> Result<(Counters, TotalsKey)> {
        let db = self.databases(Some(tenant), None)?.remove(0);
        match self.chronos.counters_of(&db).await? {
            Some(c) => Ok((c, TotalsKey::new(&db.tenant_id, &db.db_name, collection))),
            None => Err(Error::invalid_config(format!(
                "the runtime database of tenant '{tenant}' has no analyticsDbName, so it keeps no counters"
            ))
            .with("tenant", tenant)),
        }
    }

    /// Totals per collection (exact: every committed write once, including writes that
    /// just returned in this process), filtered by tenant, database and collection.
    pub async fn get_totals(&self, q: &TotalsQuery) -> Result<Vec<Totals>> {
        let mut out = Vec::new();
        for db in self.databases(q.tenant.as_deref(), q.db_name.as_deref())? {
            let Some(counters) = self.chronos.counters_of(&db).await? else {
                continue;
            };
            let collections = match &q.collection {
                Some(c) => vec![c.clone()],
                None => counters.collections(&db.tenant_id, &db.db_name).await?,
            };
            for c in collections {
                let key = TotalsKey::new(&db.tenant_id, &db.db_name, c);
                out.push(counters.get_totals(&key, q.include_rules).await?);
            }
        }
        Ok(out)
    }

    /// The distinct values a rule counted for `property` in a tenant's collection: the
    /// exact count and up to `values` of them.
    pub async fn get_unique_analytics(
        &self,
        tenant: &str,
        collection: &str,
        rule: &str,
        property: &str,
        values: usize,
    ) -> Result<UniqueCount> {
        let (c, key) = self.one(tenant, collection).await?;
        c.get_unique_analytics(&key, rule, property, values).await
    }

    /// A collection's counts per day, week or month, oldest first: the buckets
    /// `retention.counters` keeps that count something (exact, as [`Self::get_totals`]).
    /// Empty when that granularity is not configured.
    pub async fn get_periods(
        &self,
        tenant: &str,
        collection: &str,
        granularity: Granularity,
        include_rules: bool,
    ) -> Result<Vec<PeriodCounts>> {
        let (c, key) = self.one(tenant, collection).await?;
        c.get_periods(&key, granularity, include_rules).await
    }

    /// Drops the buckets past `retention.counters` at `now` from every counted collection
    /// of the tenant databases selected (`None`: all); returns how many. The worker's
    /// `counters-retention` job runs this daily; readers never see expired buckets anyway.
    pub async fn prune_periods(
        &self,
        tenant: Option<&str>,
        now: chronos_core::Timestamp,
    ) -> Result<usize> {
        let mut dropped = 0;
        let dbs = match self.databases(tenant, None) {
            // No runtime database at all: nothing is counted, so nothing to prune.
            Err(e)
                if tenant.is_none() && e.kind() == chronos_core::ErrorKind::TenantNotConfigured =>
            {
                return Ok(0)
            }
            other => other?,
        };
        for db in dbs {
            let Some(counters) = self.chronos.counters_of(&db).await? else {
                continue;
            };
            for c in counters.collections(&db.tenant_id, &db.db_name).await? {
                let key = TotalsKey::new(&db.tenant_id, &db.db_name, c);
                dropped += counters.prune_periods(&key, now).await?;
            }
        }
        Ok(dropped)
    }

    /// Folds in every committed write not counted yet (what a crash between commit and
    /// counter update left); opening a collection does this in the background too.
    pub async fn catch_up(&self, tenant: &str, collection: &str) -> Result<FoldReport> {
        let (c, key) = self.one(tenant, collection).await?;
        let coll = self
            .chronos
            .with(&Route::runtime(tenant, collection))
            .await?;
        c.catch_up(&key, &coll).await
    }

    /// Rebuilds a collection's counters from its version log.
    pub async fn recount(&self, tenant: &str, collection: &str) -> Result<FoldReport> {
        let (c, key) = self.one(tenant, collection).await?;
        let coll = self
            .chronos
            .with(&Route::runtime(tenant, collection))
            .await?;
        c.recount(&key, &coll).await
    }

    /// Zeroes a collection's counters from now on.
    pub async fn reset_totals(&self, tenant: &str, collection: &str) -> Result<()> {
        let (c, key) = self.one(tenant, collection).await?;
        c.reset_totals(&key).await
    }
}

/// The document store of `db`'s analytics database (callers check it has one).
pub(crate) async fn analytics_docs(
    chronos: &Chronos,
    db: &TenantDatabase,
) -> Result<std::sync::Arc<dyn chronos_core::DocumentStore>> {
    chronos
        .document_store(
            &db.db_conn_ref,
            db.analytics_db_name.as_deref().unwrap_or_default(),
        )
        .await
}
