//! Wiring of `chronos-worker` and the worker-driven analytics: one job per time-based rule
//! and per cross-tenant rule, the results clean-up, and [`Chronos::worker`], which builds a
//! [`Worker`] with them registered.
//!
//! Jobs resolve every collection through the routes (`Route::runtime(tenant, collection)`),
//! so a rule reads the tenant's configured database, never a database picked by name; each
//! tenant's results go to its runtime database's `analyticsDbName`. The worker's own state
//! (leases and run records) lives in the analytics database of the first runtime tenant that
//! has one (config order), so every worker process of one configuration shares it.

use std::sync::Arc;

use async_trait::async_trait;
use chronos_analytics::{
    run_cross_tenant, run_time_based, CrossTenantRule, Results, ResultsQuery, SaveMode,
    TimeBasedRule, Timeframe,
};
use chronos_core::{Error, Result};
use chronos_worker::{Every, Job, Period, Worker, WorkerConfig};
use serde_json::{json, Value};

use crate::route::Route;
use crate::Chronos;

fn every(tf: Option<Timeframe>) -> Every {
    Every::parse(tf.unwrap_or(Timeframe::Daily).duration()).expect("timeframes are valid")
}

impl Chronos {
    /// The analytics results of `tenant` (its runtime database's `analyticsDbName`).
    pub async fn analytics_results(&self, tenant: &str) -> Result<Results> {
        let db = crate::counters::tenant_db(&self.inner.config, tenant).ok_or_else(|| {
            Error::new(
                chronos_core::ErrorKind::TenantNotConfigured,
                format!("no runtime database is configured for tenant '{tenant}'"),
            )
        })?;
        if db.analytics_db_name.is_none() {
            return Err(Error::invalid_config(format!(
                "the runtime database of tenant '{tenant}' has no analyticsDbName"
            )));
        }
        Ok(Results::new(
            crate::counters::analytics_docs(self, db).await?,
        ))
    }

    /// Time-based results of `tenant`, newest first (`getTimeBasedResults`).
    pub async fn get_time_based_results(
        &self,
        tenant: &str,
        q: &ResultsQuery,
    ) -> Result<Vec<chronos_analytics::TimeBasedResult>> {
        let q = ResultsQuery {
            tenant_id: Some(tenant.to_string()),
            ..q.clone()
        };
        self.analytics_results(tenant).await?.time_based(&q).await
    }

    /// Cross-tenant results stored for master tenant `master`, newest first
    /// (`getCrossTenantResults`).
    pub async fn get_cross_tenant_results(
        &self,
        master: &str,
        q: &ResultsQuery,
    ) -> Result<Vec<chronos_analytics::CrossTenantResult>> {
        let q = ResultsQuery {
            tenant_id: Some(master.to_string()),
            ..q.clone()
        };
        self.analytics_results(master).await?.cross_tenant(&q).await
    }

    /// The tenants time-based rules run for: `analytics.tenants`, or every runtime tenant
    /// with an `analyticsDbName`.
    fn rule_tenants(&self) -> Vec<String> {
        let cfg = &self.inner.config;
        let listed = cfg
            .analytics
            .as_ref()
            .map(|a| a.tenants.clone())
            .unwrap_or_default();
        if !listed.is_empty() {
            return listed;
        }
        cfg.databases
            .runtime
            .as_ref()
            .map(|r| {
                r.tenant_databases
                    .iter()
                    .filter(|d| d.analytics_db_name.is_some())
                    .map(|d| d.tenant_id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The jobs of this configuration: one per time-based rule (named `time:<rule>`), one per
    /// cross-tenant rule (`cross:<rule>`), and with `analytics.resultsTtlDays` a daily
    /// `analytics-results-ttl`.
    pub fn analytics_jobs(&self) -> Vec<Arc<dyn Job>> {
        let Some(a) = &self.inner.config.analytics else {
            return Vec::new();
        };
        let mut jobs: Vec<Arc<dyn Job>> = Vec::new();
        let tenants = self.rule_tenants();
        for rule in &a.time_based_rules {
            jobs.push(Arc::new(TimeBasedJob {
                name: format!("time:{}", rule.name),
                every: every(rule.timeframe),
                chronos: self.clone(),
                rule: rule.clone(),
                tenants: tenants.clone(),
            }));
        }
        for rule in &a.cross_tenant_rules {
            jobs.push(Arc::new(CrossTenantJob {
                name: format!("cross:{}", rule.name),
                every: every(rule.timeframe),
                chronos: self.clone(),
                rule: rule.clone(),
            }));
        }
        if let Some(days) = a.results_ttl_days {
            jobs.push(Arc::new(ResultsTtlJob {
                every: every(Some(Timeframe::Daily)),
                chronos: self.clone(),
                days,
                tenants,
            }));
        }
        jobs
    }

    /// A worker over this configuration's worker database, with
    /// [`Chronos::analytics_jobs`] and [`Chronos::maintenance_jobs`] registered; call [`Worker::run_until`] (or
    /// [`Worker::run_due`]) to run it. More jobs may be registered before it runs.
    pub async fn worker(&self, config: WorkerConfig) -> Result<Worker> {
        let cfg = &self.inner.config;
        let db = cfg
            .databases
            .runtime
            .as_ref()
            .and_then(|r| {
                r.tenant_databases
                    .iter()
                    .find(|d| d.analytics_db_name.is_some())
            })
            .ok_or_else(|| {
                Error::invalid_config(
                    "the worker keeps its leases and run records in an analytics database: \
                     give a runtime tenant database an analyticsDbName",
                )
            })?;
        let backend = self
            .index_backend(
                &db.db_conn_ref,
                db.analytics_db_name.as_deref().unwrap_or_default(),
            )
            .await?;
        let mut worker = Worker::new(backend.lock(), backend.docs(), config);
        for job in self
            .analytics_jobs()
            .into_iter()
            .chain(self.maintenance_jobs())
        {
            worker.register(job)?;
        }
        Ok(worker)
    }
}

/// A time-based rule for every tenant it runs for.
struct TimeBasedJob {
    name: String,
    every: Every,
    chronos: Chronos,
    rule: TimeBasedRule,
    tenants: Vec<String>,
}

impl std::fmt::Debug for TimeBasedJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeBasedJob")
            .field("name", &self.name)
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Job for TimeBasedJob {
    fn name(&self) -> &str {
        &self.name
    }
    fn every(&self) -> &Every {
        &self.every
    }
    async fn run(&self, period: &Period) -> Result<Value> {
        let mut values = serde_json::Map::new();
        for tenant in &self.tenants {
            let coll = self
                .chronos
                .with(&Route::runtime(tenant, &self.rule.collection))
                .await?;
            let r = run_time_based(&self.rule, tenant, &coll, (period.start, period.end)).await?;
            self.chronos
                .analytics_results(tenant)
                .await?
                .save_time_based(&r)
                .await?;
            tracing::debug!(rule = %self.rule.name, %tenant, start = %period.start,
                global = (self.rule.save_mode == SaveMode::Global), value = ?r.value, "time-based rule ran");
            values.insert(tenant.clone(), json!(r.value));
        }
        Ok(json!({ "values": values }))
    }
}

/// A cross-tenant rule.
struct CrossTenantJob {
    name: String,
    every: Every,
    chronos: Chronos,
    rule: CrossTenantRule,
}

impl std::fmt::Debug for CrossTenantJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossTenantJob")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Job for CrossTenantJob {
    fn name(&self) -> &str {
        &self.name
    }
    fn every(&self) -> &Every {
        &self.every
    }
    async fn run(&self, period: &Period) -> Result<Value> {
        let mut colls = Vec::new();
        for t in &self.rule.slave_tenant_ids {
            let c = self
                .chronos
                .with(&Route::runtime(t, &self.rule.collection))
                .await?;
            colls.push((t.clone(), c));
        }
        let r = run_cross_tenant(&self.rule, &colls, (period.start, period.end)).await?;
        self.chronos
            .analytics_results(&self.rule.master_tenant_id)
            .await?
            .save_cross_tenant(&r)
            .await?;
        tracing::debug!(rule = %self.rule.name, start = %period.start, value = ?r.value, "cross-tenant rule ran");
        Ok(json!({ "value": r.value }))
    }
}

/// Deletes results older than `analytics.resultsTtlDays`.
struct ResultsTtlJob {
    every: Every,
    chronos: Chronos,
    days: u32,
    tenants: Vec<String>,
}

impl std::fmt::Debug for ResultsTtlJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultsTtlJob")
            .field("days", &self.days)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Job for ResultsTtlJob {
    fn name(&self) -> &str {
        "analytics-results-ttl"
    }
    fn every(&self) -> &Every {
        &self.every
    }
    async fn run(&self, period: &Period) -> Result<Value> {
        let cutoff = period
            .end
            .checked_sub(jiff::SignedDuration::from_hours(24 * i64::from(self.days)))
            .map_err(|e| Error::internal(format!("results TTL cutoff: {e}")))?;
        let mut masters: Vec<String> = self.tenants.clone();
        if let Some(a) = &self.chronos.inner.config.analytics {
            masters.extend(
                a.cross_tenant_rules
                    .iter()
                    .map(|r| r.master_tenant_id.clone()),
            );
        }
        masters.sort();
        masters.dedup();
        let mut deleted = 0;
        for t in &masters {
            deleted += self
                .chronos
                .analytics_results(t)
                .await?
                .delete_before(cutoff)
                .await?;
        }
        Ok(json!({ "deleted": deleted, "before": cutoff.to_string() }))
    }
}
