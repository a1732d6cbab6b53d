//! Version retention across the configuration (`retention.ver`): [`Chronos::prune_versions`]
//! applies the policy to the collections of every runtime tenant database, and the worker's
//! daily `versions-retention` job runs it. One collection at a time, anywhere, is
//! `chronos.with(&route).await?.prune_now(&policy)` (see [`chronos_core::Collection::prune_now`]).
//!
//! GDPR erase of one record is [`Chronos::erase`]: [`chronos_core::Collection::erase`] with
//! the record's counters folded first, so they count the record before its content goes.

use chronos_core::{
    EraseReceipt, Error, ErrorKind, ItemId, PruneReport, Result, Timestamp, VersionRetention,
};

use crate::route::Route;
use crate::Chronos;

/// What [`Chronos::prune_versions`] did, per (tenant, collection) that lost versions.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PruneSummary {
    /// Collections pruned (including those where nothing was old enough).
    pub collections: usize,
    /// Per tenant and collection, the report of each that removed something.
    pub pruned: Vec<(String, String, PruneReport)>,
}

impl PruneSummary {
    /// Version entries removed in all.
    pub fn versions_removed(&self) -> u64 {
        self.pruned.iter().map(|(_, _, r)| r.versions_removed).sum()
    }
}

impl Chronos {
    /// `retention.ver` as configured; `Validation` naming `retention.ver` when absent.
    pub fn version_retention(&self) -> Result<VersionRetention> {
        self.inner
            .config
            .retention
            .as_ref()
            .and_then(|r| r.ver.as_ref())
            .map(|v| VersionRetention {
                days: v.days,
                max_per_item: v.max_per_item,
            })
            .ok_or_else(|| {
                Error::validation(
                    "retention.ver is not configured: set days and/or maxPerItem to prune versions",
                )
            })
    }

    /// Applies `retention.ver` at `now` to the collections named in `collectionMaps` and
    /// the counted ones, in every runtime tenant database (`tenant`: only that one).
    /// Counters are folded first, so pruning never leaves them behind a pruned cursor.
    /// Collections used without being named anywhere are pruned through
    /// [`chronos_core::Collection::prune_now`].
    pub async fn prune_versions(
        &self,
        tenant: Option<&str>,
        now: Timestamp,
    ) -> Result<PruneSummary> {
        let policy = self.version_retention()?;
        let cfg = &self.inner.config;
        let dbs: Vec<_> = cfg
            .databases
            .runtime
            .as_ref()
            .map(|r| r.tenant_databases.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|d| tenant.is_none_or(|t| d.tenant_id == t))
            .collect();
        if let (Some(t), true) = (tenant, dbs.is_empty()) {
            return Err(Error::new(
                ErrorKind::TenantNotConfigured,
                format!("no runtime database is configured for tenant '{t}'"),
            ));
        }
        let mut summary = PruneSummary::default();
        for db in dbs {
            let counters = self.counters_of(&db).await?;
            let mut names: Vec<String> = cfg.collection_maps.keys().cloned().collect();
            if let Some(c) = &counters {
                names.extend(c.collections(&db.tenant_id, &db.db_name).await?);
            }
            names.sort();
            names.dedup();
            for name in names {
                let report = self
                    .prune_one(&db.tenant_id, &name, counters.is_some(), &policy, now)
                    .await?;
                summary.collections += 1;
                if report.versions_removed > 0 {
                    summary.pruned.push((db.tenant_id.clone(), name, report));
                }
            }
        }
        Ok(summary)
    }

    /// Applies `policy` at `now` to one runtime collection of `tenant`, folding its counters
    /// first when the tenant has them (so they are never left behind a pruned cursor).
    pub async fn prune_collection(
        &self,
        tenant: &str,
        collection: &str,
        policy: &VersionRetention,
        now: Timestamp,
    ) -> Result<PruneReport> {
        let counted = match crate::counters::tenant_db(&self.inner.config, tenant) {
            Some(db) => db.analytics_db_name.is_some(),
            None => false,
        };
        self.prune_one(tenant, collection, counted, policy, now)
            .await
    }

    /// Erases record `id` of `route`'s collection (see [`chronos_core::Collection::erase`]:
    /// every payload of every version deleted, an ERASE version recording `actor` and
    /// `reason`, a receipt that is `complete` once every store confirmed). A counted runtime
    /// collection's counters are folded first: they count what the record's versions were
    /// before the versions lose their content.
    pub async fn erase(
        &self,
        route: &Route,
        id: ItemId,
        actor: &str,
        reason: &str,
    ) -> Result<EraseReceipt> {
        let coll = self.with(route).await?;
        if let (crate::DatabaseType::Runtime, Some(tenant)) =
            (route.database_type, route.tenant_id.as_deref())
        {
            let counted = crate::counters::tenant_db(&self.inner.config, tenant)
                .is_some_and(|db| db.analytics_db_name.is_some());
            if counted {
                self.counters().catch_up(tenant, &route.collection).await?;
            }
        }
        coll.erase(id, actor, reason).await
    }

    async fn prune_one(
        &self,
        tenant: &str,
        collection: &str,
        counted: bool,
        policy: &VersionRetention,
        now: Timestamp,
    ) -> Result<PruneReport> {
        let coll = self.with(&Route::runtime(tenant, collection)).await?;
        if counted {
            self.counters().catch_up(tenant, collection).await?;
        }
        coll.prune_at(policy, now).await
    }
}
