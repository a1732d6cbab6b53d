//! Validation of a [`ChronosConfig`]: references, duplicates and required combinations,
//! each error naming its JSON path. Every section checks itself (`validate` on the section's
//! type); [`ChronosConfig::validate`] checks what spans sections (connections, targets,
//! shared places) and calls them.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use chronos_core::Result;

use crate::config::{
    at, uri_scheme, ChronosConfig, CollectionMap, DatabaseTarget, SweepSafetyConfig,
    TenantDatabase, TieredDatabases, MAX_SHADOW_TTL_HOURS,
};
use crate::scheme::{not_compiled, Scheme};
use crate::sections::{AnalyticsConfig, DevShadowConfig, RoutingConfig};

impl ChronosConfig {
    /// Checks references, duplicates and required combinations.
    pub fn validate(&self) -> Result<()> {
        if let Some(f) = &self.fallback {
            f.validate()?;
        }
        let local = self.local_storage.as_ref().is_some_and(|l| l.enabled);
        if let Some(l) = &self.local_storage {
            if l.enabled && l.base_path.trim().is_empty() {
                return Err(at("localStorage.basePath", "must not be empty"));
            }
        }
        if local && !cfg!(feature = "fs") {
            return Err(not_compiled(
                "localStorage",
                "local-file blob storage",
                "fs",
            ));
        }
        for (name, c) in &self.db_connections {
            let path = format!("dbConnections.{name}.mongoUri");
            let Some(scheme) = Scheme::parse(&c.mongo_uri) else {
                return Err(at(
                    path,
                    // Only the scheme: a string that is not a URI may be anything, a pasted
                    // password included.
                    format!(
                        "unsupported URI scheme '{}': use {}",
                        uri_scheme(&c.mongo_uri),
                        Scheme::spelled_out()
                    ),
                ));
            };
            if let (false, Some(feature)) = (scheme.compiled(), scheme.feature()) {
                return Err(not_compiled(
                    &path,
                    format!("the {scheme} backend"),
                    feature,
                ));
            }
        }
        for (name, s) in &self.spaces_connections {
            if s.endpoint.trim().is_empty() {
                return Err(at(
                    format!("spacesConnections.{name}.endpoint"),
                    "must not be empty",
                ));
            }
            let kind = s.space_kind();
            if !kind.compiled() {
                return Err(not_compiled(
                    &format!("spacesConnections.{name}"),
                    format!("{kind:?} blob storage"),
                    kind.feature(),
                ));
            }
        }
        let check = |path: String, t: &DatabaseTarget| -> Result<()> {
            if !self.db_connections.contains_key(&t.db_conn_ref) {
                return Err(at(
                    format!("{path}.dbConnRef"),
                    format!("no connection named '{}'", t.db_conn_ref),
                ));
            }
            match &t.space_conn_ref {
                Some(s) if !self.spaces_connections.contains_key(s) => {
                    return Err(at(
                        format!("{path}.spaceConnRef"),
                        format!("no spaces connection named '{s}'"),
                    ));
                }
                Some(_) if t.bucket.as_deref().is_none_or(|b| b.trim().is_empty()) => {
                    return Err(at(format!("{path}.bucket"), "required with spaceConnRef"));
                }
                None if !local && self.scheme_of(t) != Some(Scheme::Memory) => {
                    return Err(at(
                        format!("{path}.spaceConnRef"),
                        "required unless localStorage is enabled (or the database is memory://)",
                    ));
                }
                _ => {}
            }
            if t.db_name.trim().is_empty() {
                return Err(at(format!("{path}.dbName"), "must not be empty"));
            }
            // It names a directory (local blobs, SQLite files): `.` and `..` would be the
            // base directory itself or its parent.
            if t.db_name.chars().all(|c| c == '.') {
                return Err(at(
                    format!("{path}.dbName"),
                    format!(
                        "'{}' is not a usable name (it is a path to a directory)",
                        t.db_name
                    ),
                ));
            }
            if !t
                .db_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(at(
                    format!("{path}.dbName"),
                    format!("'{}' may only use A-Z a-z 0-9 _ - .", t.db_name),
                ));
            }
            if let Some(b) = &t.bucket {
                if b.is_empty() || b.contains("..") || b.starts_with('/') {
                    return Err(at(
                        format!("{path}.bucket"),
                        format!("'{b}' is not a valid bucket name"),
                    ));
                }
            }
            Ok(())
        };
        let tiered = |name: &str, t: &TieredDatabases| -> Result<()> {
            if let Some(g) = &t.generic_database {
                check(format!("databases.{name}.genericDatabase"), g)?;
            }
            let mut seen = std::collections::HashSet::new();
            for (i, d) in t.domains_databases.iter().enumerate() {
                let p = format!("databases.{name}.domainsDatabases[{i}]");
                if d.domain.trim().is_empty() || !seen.insert(&d.domain) {
                    return Err(at(
                        format!("{p}.domain"),
                        format!("'{}' is empty or listed twice", d.domain),
                    ));
                }
                check(p, &d.target())?;
            }
            tenants(name, &t.tenant_databases, &check)
        };
        if let Some(m) = &self.databases.metadata {
            tiered("metadata", m)?;
        }
        if let Some(k) = &self.databases.knowledge {
            tiered("knowledge", k)?;
        }
        if let Some(r) = &self.databases.runtime {
            tenants("runtime", &r.tenant_databases, &check)?;
        }
        if let Some(l) = &self.databases.logs {
            check("databases.logs".into(), l)?;
        }
        for (name, db) in [
            (
                "messaging",
                self.databases.messaging.as_ref().map(|m| &m.db_conn_ref),
            ),
            (
                "identities",
                self.databases.identities.as_ref().map(|m| &m.db_conn_ref),
            ),
        ] {
            if let Some(r) = db {
                if !self.db_connections.contains_key(r) {
                    return Err(at(
                        format!("databases.{name}.dbConnRef"),
                        format!("no connection named '{r}'"),
                    ));
                }
            }
        }
        if let Some(m) = &self.databases.messaging {
            m.validate()?;
        }
        if let Some(i) = &self.databases.identities {
            i.validate()?;
        }
        if let Some(c) = &self.counter_rules {
            c.validate()?;
        }
        if let Some(a) = &self.analytics {
            a.validate()?;
            self.check_analytics_tenants(a)?;
        }
        if let Some(r) = &self.routing {
            r.validate()?;
        }
        if let Some(c) = self.retention.as_ref().and_then(|r| r.counters.as_ref()) {
            c.validate("retention.counters")?;
        }
        if let Some(v) = self.retention.as_ref().and_then(|r| r.ver.as_ref()) {
            chronos_core::VersionRetention {
                days: v.days,
                max_per_item: v.max_per_item,
            }
            .validate("retention.ver")
            .map_err(|e| {
                let field = e.context("field").unwrap_or("retention.ver").to_string();
                chronos_core::Error::invalid_config(e.message()).with("field", field)
            })?;
        }
        for (name, m) in &self.collection_maps {
            m.validate(name)?;
        }
        if let Some(d) = &self.dev_shadow {
            d.validate()?;
        }
        if let Some(s) = &self.sweep_safety {
            s.validate()?;
        }
        if let Some(n) = self.write_optimization.as_ref().and_then(|w| w.batch_size) {
            if !(1..=MAX_BATCH_SIZE).contains(&n) {
                return Err(at(
                    "writeOptimization.batchSize",
                    format!("{n} is not between 1 and {MAX_BATCH_SIZE}"),
                ));
            }
        }
        self.check_distinct_databases()?;
        self.check_shared_blob_locations()
    }

    /// Two routes on one index database would read and write each other's records (the same
    /// collection names in the same database): each target needs its own.
    fn check_distinct_databases(&self) -> Result<()> {
        let mut first: HashMap<(String, String), String> = HashMap::new();
        for (path, t) in self.targets() {
            match first.entry(self.index_identity(&t)) {
                Entry::Occupied(o) => {
                    return Err(at(
                        format!("{path}.dbName"),
                        format!(
                            "'{}' on connection '{}' is already the database of {}; two routes \
                             on one database would see each other's records: give each its own dbName",
                            t.db_name,
                            t.db_conn_ref,
                            o.get()
                        ),
                    ));
                }
                Entry::Vacant(v) => {
                    v.insert(path);
                }
            }
        }
        Ok(())
    }

    /// Databases sharing a bucket (or local directory) are told apart by `dbName`, so two
    /// different index databases there must not have the same one.
    fn check_shared_blob_locations(&self) -> Result<()> {
        // The first target seen per (place, dbName): any later one there with the same
        // dbName must be the same index database. One pass, however many tenants.
        let mut first: HashMap<(String, String), (String, (String, String))> = HashMap::new();
        for (path, t) in self.targets() {
            let me = self.index_identity(&t);
            match first.entry((self.blob_place(&t), t.db_name.clone())) {
                Entry::Occupied(o) if o.get().1 != me => {
                    return Err(at(
                        format!("{path}.dbName"),
                        format!(
                            "'{}' stores blobs in the same place as {}, which has the same \
                             dbName on another connection; their payloads could not be told \
                             apart: use a different dbName or bucket",
                            t.db_name,
                            o.get().0
                        ),
                    ));
                }
                Entry::Occupied(_) => {}
                Entry::Vacant(v) => {
                    v.insert((path, me));
                }
            }
        }
        Ok(())
    }
}

impl ChronosConfig {
    /// Every tenant the worker's rules read or write has a runtime database, and those it
    /// writes results for have an `analyticsDbName`.
    fn check_analytics_tenants(&self, a: &AnalyticsConfig) -> Result<()> {
        let dbs = self
            .databases
            .runtime
            .as_ref()
            .map(|r| r.tenant_databases.as_slice())
            .unwrap_or_default();
        let check = |path: String, t: &str, writes: bool| -> Result<()> {
            match dbs.iter().find(|d| d.tenant_id == t) {
                None => Err(at(
                    path,
                    format!(
                        "tenant '{t}' has no runtime database (databases.runtime.tenantDatabases)"
                    ),
                )),
                Some(d) if writes && d.analytics_db_name.is_none() => Err(at(
                    path,
                    format!("tenant '{t}' has no analyticsDbName, so results have nowhere to go"),
                )),
                Some(_) => Ok(()),
            }
        };
        if !a.time_based_rules.is_empty() {
            for (i, t) in a.tenants.iter().enumerate() {
                check(format!("analytics.tenants[{i}]"), t, true)?;
            }
        }
        for (i, r) in a.cross_tenant_rules.iter().enumerate() {
            let path = format!("analytics.crossTenantRules[{i}]");
            check(format!("{path}.masterTenantId"), &r.master_tenant_id, true)?;
            for (j, t) in r.slave_tenant_ids.iter().enumerate() {
                check(format!("{path}.slaveTenantIds[{j}]"), t, false)?;
            }
        }
        Ok(())
    }
}

impl AnalyticsConfig {
    /// `analytics`: its counter rules, and every rule's query in the filter language.
    pub fn validate(&self) -> Result<()> {
        chronos_analytics::config::validate_rules("analytics.counterRules", &self.counter_rules)?;
        chronos_analytics::validate_timed(
            &self.time_based_rules,
            &self.cross_tenant_rules,
            &self.tenants,
        )?;
        if self.results_ttl_days == Some(0) {
            return Err(at("analytics.resultsTtlDays", "must be at least 1"));
        }
        Ok(())
    }
}

impl RoutingConfig {
    /// `routing`: `chooseKey` is one of the keys a route has.
    pub fn validate(&self) -> Result<()> {
        if let Some(k) = &self.choose_key {
            if !["tenantId", "domain", "collection", "dbName"].contains(&k.as_str()) {
                return Err(at(
                    "routing.chooseKey",
                    format!("'{k}' is not one of tenantId, domain, collection, dbName"),
                ));
            }
        }
        Ok(())
    }
}

impl CollectionMap {
    /// `collectionMaps.<name>`: a valid collection name, base64 properties, and required
    /// fields that are indexed.
    pub fn validate(&self, name: &str) -> Result<()> {
        let p = format!("collectionMaps.{name}");
        chronos_core::engine::validate_collection_name(name).map_err(|e| at(&p, e.message()))?;
        for (prop, spec) in self.base64_props.iter().flatten() {
            chronos_core::engine::validate_base64_prop_name(name, prop)
                .map_err(|e| at(format!("{p}.base64Props.{prop}"), e.message()))?;
            if spec.content_type.trim().is_empty() {
                return Err(at(
                    format!("{p}.base64Props.{prop}.contentType"),
                    "must not be empty",
                ));
            }
        }
        if let Some(v) = &self.validation {
            for (i, r) in v.required_indexed.iter().enumerate() {
                if !self.indexed_props.is_empty() && !self.indexed_props.contains(r) {
                    return Err(at(
                        format!("{p}.validation.requiredIndexed[{i}]"),
                        format!("'{r}' is not in indexedProps"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The largest `writeOptimization.batchSize`: one SQLite transaction or MongoDB request per
/// batch must stay well inside their limits.
const MAX_BATCH_SIZE: u32 = 10_000;

/// The shortest `sweepSafety.writeDeadlineMs`: below it ordinary writes would be refused.
const MIN_WRITE_DEADLINE_MS: u64 = 100;
/// The longest `sweepSafety` value: thirty days (a Duration far beyond it only hides typos).
const MAX_SWEEP_SAFETY_MS: u64 = 30 * 24 * 3600 * 1000;

impl SweepSafetyConfig {
    /// `sweepSafety`: a deadline ordinary writes can meet, and sane magnitudes.
    pub fn validate(&self) -> Result<()> {
        if let Some(d) = self.write_deadline_ms {
            if !(MIN_WRITE_DEADLINE_MS..=MAX_SWEEP_SAFETY_MS).contains(&d) {
                return Err(at(
                    "sweepSafety.writeDeadlineMs",
                    format!("{d} is not between {MIN_WRITE_DEADLINE_MS} and {MAX_SWEEP_SAFETY_MS} milliseconds"),
                ));
            }
        }
        if let Some(s) = self.clock_skew_ms {
            if s > MAX_SWEEP_SAFETY_MS {
                return Err(at(
                    "sweepSafety.clockSkewMs",
                    format!("{s} is more than {MAX_SWEEP_SAFETY_MS} milliseconds"),
                ));
            }
        }
        Ok(())
    }
}

impl DevShadowConfig {
    /// `devShadow`: `ttlHours` is a usable number of hours.
    pub fn validate(&self) -> Result<()> {
        // Hours become a Duration: NaN, infinities, negatives and absurd values must not
        // reach it (they panic or expire at once).
        if !(self.ttl_hours.is_finite()
            && self.ttl_hours > 0.0
            && self.ttl_hours <= MAX_SHADOW_TTL_HOURS)
        {
            return Err(at(
                "devShadow.ttlHours",
                format!(
                    "{} is not a number of hours above 0 and at most {MAX_SHADOW_TTL_HOURS} (ten years)",
                    self.ttl_hours
                ),
            ));
        }
        Ok(())
    }
}

fn tenants(
    name: &str,
    list: &[TenantDatabase],
    check: &dyn Fn(String, &DatabaseTarget) -> Result<()>,
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for (i, t) in list.iter().enumerate() {
        let p = format!("databases.{name}.tenantDatabases[{i}]");
        if t.tenant_id.trim().is_empty() || !seen.insert(&t.tenant_id) {
            return Err(at(
                format!("{p}.tenantId"),
                format!("'{}' is empty or listed twice", t.tenant_id),
            ));
        }
        check(p, &t.target())?;
    }
    Ok(())
}
