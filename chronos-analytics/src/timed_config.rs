//! The worker-driven rules of the `analytics` section — `timeBasedRules`,
//! `crossTenantRules`, `tenants`, `resultsTtlDays` — as strict serde types, and their
//! validation (errors name the JSON path).
//!
//! What a rule computes, and over which records, is documented in [`crate::timed`].

use std::collections::HashSet;

use chronos_core::{AggregateOp, Error, Filter, Result, Timestamp};
use jiff::tz::TimeZone;
use jiff::Span;
use serde::Deserialize;
use serde_json::Value;

/// A time-based rule: one aggregate per period of its timeframe (or one global value).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeBasedRule {
    /// Name: a key of results and worker jobs (`[A-Za-z0-9_-]`).
    pub name: String,
    /// The collection, in each tenant's runtime database.
    pub collection: String,
    /// Which records: a filter in the filter language over indexed metadata.
    pub query: Value,
    /// The aggregate.
    pub operation: Aggregation,
    /// The aggregated field (an indexed property); required by all but `count`.
    #[serde(default)]
    pub field: Option<String>,
    /// `timeframe`: one result per period; `global`: one result, replaced every period.
    pub save_mode: SaveMode,
    /// The period (and, for `global`, how often the value is recomputed; default daily).
    #[serde(default)]
    pub timeframe: Option<Timeframe>,
    /// Moves the window's bounds relative to the period's end.
    #[serde(default)]
    pub relative_time: Option<RelativeTime>,
    /// With `count`: one field whose distinct values are counted.
    #[serde(default)]
    pub arguments: Vec<String>,
    /// An indexed property holding each record's event instant (UTC text ending in `Z`, or
    /// epoch milliseconds); default: the record's creation instant.
    #[serde(default)]
    pub time_field: Option<String>,
}

/// A cross-tenant rule: a value per slave tenant, combined into one for the master tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrossTenantRule {
    /// Name (as for [`TimeBasedRule::name`]).
    pub name: String,
    /// The collection, in each slave tenant's runtime database.
    pub collection: String,
    /// Which records.
    pub query: Value,
    /// How tenant values combine.
    pub mode: CrossTenantMode,
    /// The aggregated field; without it each tenant's value is its count of matches.
    #[serde(default)]
    pub field: Option<String>,
    /// Whose analytics database receives the results.
    pub master_tenant_id: String,
    /// The tenants read.
    pub slave_tenant_ids: Vec<String>,
    /// Moves the window's bounds relative to the period's end.
    #[serde(default)]
    pub relative_time: Option<RelativeTime>,
    /// How often (default daily).
    #[serde(default)]
    pub timeframe: Option<Timeframe>,
    /// As [`TimeBasedRule::time_field`].
    #[serde(default)]
    pub time_field: Option<String>,
}

/// Aggregations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// Count (of records; of distinct values with `arguments`).
    Count,
    /// Sum.
    Sum,
    /// Mean.
    #[serde(alias = "avg")]
    Average,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Exact median.
    Median,
}

/// How cross-tenant values combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrossTenantMode {
    /// The number of tenants with at least one match (each tenant's value is 0 or 1).
    Boolean,
    /// Sum of the tenants' values (each the sum of `field`, or the count).
    Sum,
    /// Greatest tenant value (each the max of `field`, or the count).
    Max,
    /// Least tenant value (each the min of `field`, or the count).
    Min,
    /// Mean of the tenants' values (each the mean of `field`, or the count).
    #[serde(alias = "avg")]
    Average,
    /// Total count of matches (each tenant's value its count).
    Count,
}

/// Save modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaveMode {
    /// One result per period.
    Timeframe,
    /// One result per rule and tenant, over every record up to the period's end.
    Global,
}

/// Timeframes: UTC-aligned periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Timeframe {
    /// `PT1H`, on the hour.
    Hourly,
    /// `P1D`, from midnight.
    Daily,
    /// `P1W`, from Monday midnight.
    Weekly,
    /// `P1M`, from the first of the month.
    Monthly,
}

impl Timeframe {
    /// The ISO-8601 duration of one period.
    pub fn duration(self) -> &'static str {
        match self {
            Timeframe::Hourly => "PT1H",
            Timeframe::Daily => "P1D",
            Timeframe::Weekly => "P1W",
            Timeframe::Monthly => "P1M",
        }
    }
    /// The name in configs and results.
    pub fn as_str(self) -> &'static str {
        match self {
            Timeframe::Hourly => "hourly",
            Timeframe::Daily => "daily",
            Timeframe::Weekly => "weekly",
            Timeframe::Monthly => "monthly",
        }
    }
}

/// Window bounds relative to a period's end (ISO-8601 durations: `PT1H`, `P1D`, `P1M` …).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelativeTime {
    /// The window starts this long before the period's end.
    #[serde(default)]
    pub newer_than: Option<String>,
    /// The window ends this long before the period's end.
    #[serde(default)]
    pub older_than: Option<String>,
}

pub use chronos_core::time::parse_duration;

/// `t` minus `span` in UTC civil time (so `P1M` before March 31 is February 28 or 29).
pub fn minus(t: Timestamp, span: Span) -> Result<Timestamp> {
    t.to_zoned(TimeZone::UTC)
        .checked_sub(span)
        .map(|z| z.timestamp())
        .map_err(|e| Error::validation(format!("{t} minus {span} is out of range: {e}")))
}

impl Aggregation {
    /// The store aggregate this computes (`count` with an argument counts distinct values).
    pub fn op(self, distinct: bool) -> AggregateOp {
        match self {
            Aggregation::Count if distinct => AggregateOp::CountDistinct,
            Aggregation::Count => AggregateOp::Count,
            Aggregation::Sum => AggregateOp::Sum,
            Aggregation::Average => AggregateOp::Avg,
            Aggregation::Max => AggregateOp::Max,
            Aggregation::Min => AggregateOp::Min,
            Aggregation::Median => AggregateOp::Median,
        }
    }
    /// The name in configs and results.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Count => "count",
            Aggregation::Sum => "sum",
            Aggregation::Average => "average",
            Aggregation::Max => "max",
            Aggregation::Min => "min",
            Aggregation::Median => "median",
        }
    }
}

impl CrossTenantMode {
    /// The name in configs and results.
    pub fn as_str(self) -> &'static str {
        match self {
            CrossTenantMode::Boolean => "boolean",
            CrossTenantMode::Sum => "sum",
            CrossTenantMode::Max => "max",
            CrossTenantMode::Min => "min",
            CrossTenantMode::Average => "average",
            CrossTenantMode::Count => "count",
        }
    }
}

fn at(path: String, msg: impl std::fmt::Display) -> Error {
    Error::invalid_config(format!("{path}: {msg}"))
}

fn check_name(path: &str, name: &str, seen: &mut HashSet<String>) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return Err(at(
            format!("{path}.name"),
            format!("'{name}' must be 1-100 characters of A-Z, a-z, 0-9, '_' and '-'"),
        ));
    }
    if !seen.insert(name.to_string()) {
        return Err(at(
            format!("{path}.name"),
            format!("'{name}' is used twice"),
        ));
    }
    Ok(())
}

fn check_field(path: String, f: &str) -> Result<()> {
    chronos_core::filter::check_path(f).map_err(|e| at(path.clone(), e.message()))?;
    if f.contains(['$', '|']) {
        return Err(at(path, format!("'{f}' is not a property path")));
    }
    Ok(())
}

fn check_common(
    path: &str,
    collection: &str,
    query: &Value,
    relative: Option<&RelativeTime>,
    time_field: Option<&str>,
) -> Result<()> {
    chronos_core::engine::validate_collection_name(collection)
        .map_err(|e| at(format!("{path}.collection"), e.message()))?;
    Filter::parse(query).map_err(|e| at(format!("{path}.query"), e.message()))?;
    if let Some(r) = relative {
        for (key, v) in [("newerThan", &r.newer_than), ("olderThan", &r.older_than)] {
            if let Some(v) = v {
                parse_duration(v)
                    .map_err(|e| at(format!("{path}.relativeTime.{key}"), e.message()))?;
            }
        }
    }
    if let Some(f) = time_field {
        check_field(format!("{path}.timeField"), f)?;
    }
    Ok(())
}

/// Checks `analytics.timeBasedRules`, `analytics.crossTenantRules` and `analytics.tenants`:
/// names, collections, queries, fields per operation, durations, and that every tenant a
/// cross-tenant rule names is listed in `tenants` (when that list is given).
pub fn validate_timed(
    time_based: &[TimeBasedRule],
    cross_tenant: &[CrossTenantRule],
    tenants: &[String],
) -> Result<()> {
    let mut names = HashSet::new();
    for (i, r) in time_based.iter().enumerate() {
        let path = format!("analytics.timeBasedRules[{i}]");
        check_name(&path, &r.name, &mut names)?;
        check_common(
            &path,
            &r.collection,
            &r.query,
            r.relative_time.as_ref(),
            r.time_field.as_deref(),
        )?;
        match (r.operation, &r.field) {
            (Aggregation::Count, Some(_)) => {
                return Err(at(
                    format!("{path}.field"),
                    "count takes no field (arguments: [field] counts its distinct values)",
                ))
            }
            (Aggregation::Count, None) => {}
            (op, None) => {
                return Err(at(
                    format!("{path}.field"),
                    format!("operation '{}' needs a field", op.as_str()),
                ))
            }
            (_, Some(f)) => check_field(format!("{path}.field"), f)?,
        }
        match (r.operation, r.arguments.as_slice()) {
            (_, []) => {}
            (Aggregation::Count, [f]) => check_field(format!("{path}.arguments[0]"), f)?,
            (Aggregation::Count, _) => {
                return Err(at(
                    format!("{path}.arguments"),
                    "count takes one argument: the field whose distinct values it counts",
                ))
            }
            (op, _) => {
                return Err(at(
                    format!("{path}.arguments"),
                    format!("only count takes arguments, not '{}'", op.as_str()),
                ))
            }
        }
        if r.save_mode == SaveMode::Timeframe && r.timeframe.is_none() {
            return Err(at(
                format!("{path}.timeframe"),
                "saveMode 'timeframe' needs a timeframe (hourly, daily, weekly, monthly)",
            ));
        }
    }
    let listed: HashSet<&str> = tenants.iter().map(String::as_str).collect();
    for (i, t) in tenants.iter().enumerate() {
        chronos_core::check_key_part(&format!("analytics.tenants[{i}]"), t)
            .map_err(|e| at(format!("analytics.tenants[{i}]"), e.message()))?;
    }
    for (i, r) in cross_tenant.iter().enumerate() {
        let path = format!("analytics.crossTenantRules[{i}]");
        check_name(&path, &r.name, &mut names)?;
        check_common(
            &path,
            &r.collection,
            &r.query,
            r.relative_time.as_ref(),
            r.time_field.as_deref(),
        )?;
        if let Some(f) = &r.field {
            if r.mode == CrossTenantMode::Boolean || r.mode == CrossTenantMode::Count {
                return Err(at(
                    format!("{path}.field"),
                    format!(
                        "mode '{}' counts matches and takes no field",
                        r.mode.as_str()
                    ),
                ));
            }
            check_field(format!("{path}.field"), f)?;
        }
        if r.slave_tenant_ids.is_empty() {
            return Err(at(
                format!("{path}.slaveTenantIds"),
                "at least one tenant is needed",
            ));
        }
        let named = std::iter::once(("masterTenantId".to_string(), &r.master_tenant_id)).chain(
            r.slave_tenant_ids
                .iter()
                .enumerate()
                .map(|(j, t)| (format!("slaveTenantIds[{j}]"), t)),
        );
        for (key, t) in named {
            if !listed.is_empty() && !listed.contains(t.as_str()) {
                return Err(at(
                    format!("{path}.{key}"),
                    format!("tenant '{t}' is not in analytics.tenants"),
                ));
            }
        }
    }
    Ok(())
}
