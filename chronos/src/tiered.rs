//! Tiered reads: `get_knowledge` / `get_metadata` look a record up in the tenant, domain and
//! generic tiers (in that priority) and return the first found or a deep merge of all.

use std::collections::BTreeMap;

use chronos_core::merge::deep_merge;
use chronos_core::{ErrorKind, ListOptions, Record, Result, SortField};
use serde_json::{Map, Value};

use crate::{Chronos, DatabaseType, Route, Tier};

/// Options of a tiered read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierOptions {
    /// Look in this tenant's tier.
    pub tenant_id: Option<String>,
    /// Look in this domain's tier.
    pub domain: Option<String>,
    /// Merge every tier found (generic ← domain ← tenant) instead of returning the first.
    pub merge: bool,
    /// When merging, arrays are unioned without duplicates (default) or concatenated.
    pub keep_duplicates: bool,
    /// Skip a tenant or domain that has no database configured (reported in
    /// [`TieredResult::tiers_not_configured`]) instead of failing with
    /// `TenantNotConfigured`. Off by default: a mistyped tenant must not silently read the
    /// generic tier.
    pub skip_unconfigured: bool,
}

impl TierOptions {
    /// Defaults: no tenant, no domain, first found.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the tenant.
    pub fn tenant(mut self, t: impl Into<String>) -> Self {
        self.tenant_id = Some(t.into());
        self
    }
    /// Sets the domain.
    pub fn domain(mut self, d: impl Into<String>) -> Self {
        self.domain = Some(d.into());
        self
    }
    /// Merges all tiers.
    pub fn merge(mut self, on: bool) -> Self {
        self.merge = on;
        self
    }
    /// Sets [`TierOptions::skip_unconfigured`].
    pub fn skip_unconfigured(mut self, on: bool) -> Self {
        self.skip_unconfigured = on;
        self
    }
}

/// The outcome of a tiered read.
#[derive(Debug, Clone, PartialEq)]
pub struct TieredResult {
    /// The first record found (tenant → domain → generic) or the merge of all; `None` if no
    /// tier has one.
    pub data: Option<Map<String, Value>>,
    /// Tiers that had a matching record: in the order they were merged (generic, domain,
    /// tenant — the spec's order) when merging; otherwise the one tier whose record was
    /// returned.
    pub tiers_found: Vec<Tier>,
    /// The record each tier had.
    pub tier_records: BTreeMap<Tier, Record>,
    /// Tiers that were asked for but have no database configured: a tier section absent from
    /// the configuration, or (with [`TierOptions::skip_unconfigured`]) a tenant or domain
    /// not listed in it.
    pub tiers_not_configured: Vec<Tier>,
}

fn merge_concat(base: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(p)) => merge_concat(b, p),
            (Some(Value::Array(b)), Value::Array(p)) => b.extend(p.iter().cloned()),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

impl Chronos {
    /// Tiered read of the knowledge database. See [`TierOptions`] and [`TieredResult`].
    pub async fn get_knowledge(
        &self,
        collection: &str,
        filter: Value,
        opts: &TierOptions,
    ) -> Result<TieredResult> {
        self.tiered(DatabaseType::Knowledge, collection, filter, opts)
            .await
    }

    /// Tiered read of the metadata database.
    pub async fn get_metadata(
        &self,
        collection: &str,
        filter: Value,
        opts: &TierOptions,
    ) -> Result<TieredResult> {
        self.tiered(DatabaseType::Metadata, collection, filter, opts)
            .await
    }

    async fn tiered(
        &self,
        db: DatabaseType,
        collection: &str,
        filter: Value,
        opts: &TierOptions,
    ) -> Result<TieredResult> {
        let mut routes = Vec::new();
        if let Some(t) = &opts.tenant_id {
            routes.push((Tier::Tenant, Route::tenant(db, t.clone(), collection)));
        }
        if let Some(d) = &opts.domain {
            routes.push((Tier::Domain, Route::domain(db, d.clone(), collection)));
        }
        routes.push((Tier::Generic, Route::generic(db, collection)));
        let mut result = TieredResult {
            data: None,
            tiers_found: Vec::new(),
            tier_records: BTreeMap::new(),
            tiers_not_configured: Vec::new(),
        };
        for (tier, route) in routes {
            let coll = match self.with(&route).await {
                Ok(c) => c,
                Err(e)
                    if e.kind() == ErrorKind::InvalidConfig
                        || (e.kind() == ErrorKind::TenantNotConfigured
                            && opts.skip_unconfigured) =>
                {
                    result.tiers_not_configured.push(tier);
                    continue;
                }
                Err(e) => return Err(e),
            };
            // The most recently updated match represents the tier.
            let page = coll
                .list_by_meta(
                    ListOptions::new()
                        .filter(filter.clone())
                        .sort(SortField::UpdatedAt, true)
                        .limit(1),
                )
                .await?;
            if let Some(r) = page.items.into_iter().next() {
                result.tiers_found.push(tier);
                result.tier_records.insert(tier, r);
                if !opts.merge {
                    break;
                }
            }
        }
        if opts.merge {
            result.tiers_found.reverse();
        }
        result.data = if opts.merge {
            // Lowest priority first, so the tenant overrides the domain and the domain the generic tier.
            let mut merged: Option<Map<String, Value>> = None;
            for tier in [Tier::Generic, Tier::Domain, Tier::Tenant] {
                if let Some(r) = result.tier_records.get(&tier) {
                    match &mut merged {
                        None => merged = Some(r.data.clone()),
                        Some(m) if opts.keep_duplicates => merge_concat(m, &r.data),
                        Some(m) => deep_merge(m, &r.data),
                    }
                }
            }
            merged
        } else {
            result
                .tiers_found
                .first()
                .and_then(|t| result.tier_records.get(t))
                .map(|r| r.data.clone())
        };
        Ok(result)
    }
}
