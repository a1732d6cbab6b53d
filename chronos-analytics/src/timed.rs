//! Time-based and cross-tenant rules: what one run of a period computes, and the results
//! it stores (`timeBasedResults`, `crossTenantResults` in the analytics database).
//!
//! # What a run computes
//! A run of period `[start, end)` aggregates the records of the rule's collection that are
//! current (latest versions, deleted records excluded), match `query`, and whose instant —
//! the creation instant, or the rule's `timeField` — lies in the *window*:
//! - `[start, end)` by default; `saveMode: global` has no start (everything up to `end`);
//! - `relativeTime.newerThan: D` moves the start to `end − D`, `olderThan: D` the end to
//!   `end − D` (calendar arithmetic in UTC: `P1M` before March 1 is February 1).
//!
//! The aggregate runs in the index store ([`chronos_core::Collection::aggregate`]: SQL in
//! SQLite, an aggregation pipeline in MongoDB), so no collection is loaded into memory.
//!
//! # Results
//! Ids are deterministic per (rule, tenant, period) — `global` rules have one per (rule,
//! tenant) — and a run replaces its document, so two workers running one period write the
//! same document and a re-run never duplicates.

use std::sync::Arc;

use chronos_core::time::{format_instant, now_ms, serde_instant};
use chronos_core::{
    doc_key, AggregateOp, Collection, DocLayout, DocQuery, Document, DocumentStore, Filter, Result,
    SortField, Timestamp, Window,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::timed_config::{
    minus, parse_duration, CrossTenantMode, CrossTenantRule, RelativeTime, SaveMode, TimeBasedRule,
};

/// Results of time-based rules.
pub const TIME_BASED_RESULTS: &str = "timeBasedResults";
/// Results of cross-tenant rules.
pub const CROSS_TENANT_RESULTS: &str = "crossTenantResults";

/// The window of a run of `[start, end)`: `(from, to)`, `from` `None` for no lower bound.
pub fn window(
    start: Timestamp,
    end: Timestamp,
    global: bool,
    relative: Option<&RelativeTime>,
) -> Result<(Option<Timestamp>, Timestamp)> {
    let mut from = (!global).then_some(start);
    let mut to = end;
    if let Some(r) = relative {
        if let Some(d) = &r.newer_than {
            from = Some(minus(end, parse_duration(d)?)?);
        }
        if let Some(d) = &r.older_than {
            to = minus(end, parse_duration(d)?)?;
        }
    }
    Ok((from, to))
}

/// One aggregate over `coll`'s current records matching `query` whose instant lies in
/// `[from, to)`: the creation instant, or `time_field` (UTC text ending in `Z` — compared
/// as text, which orders such instants by time — or epoch milliseconds).
pub async fn evaluate(
    coll: &Collection,
    query: &Value,
    op: AggregateOp,
    field: Option<&str>,
    time_field: Option<&str>,
    (from, to): (Option<Timestamp>, Timestamp),
) -> Result<Option<f64>> {
    if from.is_some_and(|f| f >= to) {
        // An empty window (`olderThan` beyond `newerThan`): the aggregate of nothing.
        let nothing = chronos_core::AggregateQuery {
            filter: Filter::All,
            created: None,
            op,
            field: None,
        };
        return Ok(chronos_core::aggregate::aggregate_heads(&nothing, []));
    }
    match time_field {
        None => {
            let from = from.unwrap_or(Timestamp::MIN);
            coll.aggregate(query, op, field, Some(Window { from, to }))
                .await
        }
        Some(tf) => {
            let bounds = |f: Value, t: Value| match from {
                Some(_) => json!({ tf: {"$gte": f, "$lt": t} }),
                None => json!({ tf: {"$lt": t} }),
            };
            let ms = |t: Option<Timestamp>| t.map_or(Value::Null, |t| t.as_millisecond().into());
            let text = |t: Option<Timestamp>| t.map_or(Value::Null, |t| format_instant(t).into());
            let in_window = json!({"$or": [
                bounds(text(from), text(Some(to))),
                bounds(ms(from), ms(Some(to))),
            ]});
            let q = json!({"$and": [query, in_window]});
            coll.aggregate(&q, op, field, None).await
        }
    }
}

/// A stored result of a time-based rule (the spec's document shape, plus the tenant, the
/// window and when it was computed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeBasedResult {
    /// The rule.
    pub rule_name: String,
    /// Whose records.
    pub tenant_id: String,
    /// The collection.
    pub collection: String,
    /// The operation (`count`, `sum`, `average`, `min`, `max`, `median`).
    pub operation: String,
    /// The aggregated field.
    pub field: Option<String>,
    /// The value (`null` when no record had a number to aggregate).
    pub value: Option<f64>,
    /// The timeframe (`global` results: how often they are recomputed).
    pub timeframe: Option<String>,
    /// `timeframe` or `global`.
    pub save_mode: String,
    /// The period's start (`global`: the instant it was computed up to).
    #[serde(with = "serde_instant")]
    pub timestamp: Timestamp,
    /// The window's start (`None`: unbounded).
    pub window_start: Option<String>,
    /// The window's end (exclusive).
    pub window_end: String,
    /// The rule's arguments.
    pub arguments: Option<Vec<String>>,
    /// When it was computed.
    #[serde(with = "serde_instant")]
    pub computed_at: Timestamp,
}

/// One slave tenant's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlaveResult {
    /// The tenant.
    pub tenant_id: String,
    /// Its value.
    pub value: Option<f64>,
}

/// A stored result of a cross-tenant rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossTenantResult {
    /// The rule.
    pub rule_name: String,
    /// The collection.
    pub collection: String,
    /// The mode.
    pub mode: String,
    /// The aggregated field.
    pub field: Option<String>,
    /// The combined value.
    pub value: Option<f64>,
    /// The period's start.
    #[serde(with = "serde_instant")]
    pub timestamp: Timestamp,
    /// The window's start.
    pub window_start: Option<String>,
    /// The window's end (exclusive).
    pub window_end: String,
    /// Where it is stored.
    pub master_tenant_id: String,
    /// Each tenant's value.
    pub slave_results: Vec<SlaveResult>,
    /// When it was computed.
    #[serde(with = "serde_instant")]
    pub computed_at: Timestamp,
}

fn window_text((from, to): (Option<Timestamp>, Timestamp)) -> (Option<String>, String) {
    (from.map(format_instant), format_instant(to))
}

/// Runs a time-based rule for one tenant and period over `coll` (the rule's collection in
/// that tenant's database), without storing the result.
pub async fn run_time_based(
    rule: &TimeBasedRule,
    tenant: &str,
    coll: &Collection,
    (start, end): (Timestamp, Timestamp),
) -> Result<TimeBasedResult> {
    let global = rule.save_mode == SaveMode::Global;
    let win = window(start, end, global, rule.relative_time.as_ref())?;
    let distinct = rule.arguments.first().map(String::as_str);
    let op = rule.operation.op(distinct.is_some());
    let field = distinct.or(rule.field.as_deref());
    let value = evaluate(
        coll,
        &rule.query,
        op,
        field,
        rule.time_field.as_deref(),
        win,
    )
    .await?;
    let (window_start, window_end) = window_text(win);
    Ok(TimeBasedResult {
        rule_name: rule.name.clone(),
        tenant_id: tenant.to_string(),
        collection: rule.collection.clone(),
        operation: rule.operation.as_str().to_string(),
        field: rule.field.clone(),
        value,
        timeframe: rule.timeframe.map(|t| t.as_str().to_string()),
        save_mode: if global { "global" } else { "timeframe" }.to_string(),
        timestamp: if global { end } else { start },
        window_start,
        window_end,
        arguments: (!rule.arguments.is_empty()).then(|| rule.arguments.clone()),
        computed_at: now_ms(),
    })
}

/// Runs a cross-tenant rule for one period over each slave tenant's collection (`colls`, in
/// `slaveTenantIds` order), without storing the result.
pub async fn run_cross_tenant(
    rule: &CrossTenantRule,
    colls: &[(String, Collection)],
    (start, end): (Timestamp, Timestamp),
) -> Result<CrossTenantResult> {
    let win = window(start, end, false, rule.relative_time.as_ref())?;
    let (op, field) = match (rule.mode, rule.field.as_deref()) {
        (CrossTenantMode::Sum, Some(f)) => (AggregateOp::Sum, Some(f)),
        (CrossTenantMode::Max, Some(f)) => (AggregateOp::Max, Some(f)),
        (CrossTenantMode::Min, Some(f)) => (AggregateOp::Min, Some(f)),
        (CrossTenantMode::Average, Some(f)) => (AggregateOp::Avg, Some(f)),
        _ => (AggregateOp::Count, None),
    };
    let mut slaves = Vec::with_capacity(colls.len());
    for (tenant, coll) in colls {
        let v = evaluate(
            coll,
            &rule.query,
            op,
            field,
            rule.time_field.as_deref(),
            win,
        )
        .await?;
        let v = match rule.mode {
            CrossTenantMode::Boolean => v.map(|n| if n > 0.0 { 1.0 } else { 0.0 }),
            _ => v,
        };
        slaves.push(SlaveResult {
            tenant_id: tenant.clone(),
            value: v,
        });
    }
    let values: Vec<f64> = slaves.iter().filter_map(|s| s.value).collect();
    let value = match rule.mode {
        CrossTenantMode::Boolean | CrossTenantMode::Count | CrossTenantMode::Sum => {
            Some(values.iter().sum())
        }
        CrossTenantMode::Max => values.iter().copied().reduce(f64::max),
        CrossTenantMode::Min => values.iter().copied().reduce(f64::min),
        CrossTenantMode::Average => {
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        }
    };
    let (window_start, window_end) = window_text(win);
    Ok(CrossTenantResult {
        rule_name: rule.name.clone(),
        collection: rule.collection.clone(),
        mode: rule.mode.as_str().to_string(),
        field: rule.field.clone(),
        value,
        timestamp: start,
        window_start,
        window_end,
        master_tenant_id: rule.master_tenant_id.clone(),
        slave_results: slaves,
        computed_at: now_ms(),
    })
}

/// Which results [`Results::time_based`] / [`Results::cross_tenant`] return: newest first.
#[derive(Debug, Clone, Default)]
pub struct ResultsQuery {
    /// Only this rule.
    pub rule_name: Option<String>,
    /// Only this timeframe (time-based results).
    pub timeframe: Option<String>,
    /// Only this tenant (time-based: `tenantId`; cross-tenant: `masterTenantId`).
    pub tenant_id: Option<String>,
    /// At most this many (1–10,000).
    pub limit: usize,
}

/// The results collections of one analytics database.
#[derive(Debug, Clone)]
pub struct Results {
    docs: Arc<dyn DocumentStore>,
    /// Both collections' layouts declared (once per handle, not per call: on MongoDB a
    /// declaration is a `createIndexes` round trip).
    prepared: Arc<tokio::sync::OnceCell<()>>,
}

fn to_doc<T: Serialize>(id: String, v: &T) -> Result<Document> {
    let Value::Object(body) =
        serde_json::to_value(v).map_err(|e| chronos_core::Error::internal(e.to_string()))?
    else {
        unreachable!("results serialise as objects")
    };
    Ok(Document { id, body })
}

impl Results {
    /// Over `docs` (the analytics database).
    pub fn new(docs: Arc<dyn DocumentStore>) -> Self {
        Self {
            docs,
            prepared: Arc::default(),
        }
    }

    /// The store, both results collections' layouts declared.
    async fn docs(&self) -> Result<&dyn DocumentStore> {
        let docs = &*self.docs;
        self.prepared
            .get_or_try_init(|| async {
                for (coll, tenant_key) in [
                    (TIME_BASED_RESULTS, "tenantId"),
                    (CROSS_TENANT_RESULTS, "masterTenantId"),
                ] {
                    let layout = DocLayout::new(
                        [vec!["ruleName", tenant_key, "timestamp"]],
                        &["timestamp", "computedAt"],
                    );
                    docs.prepare(coll, &layout).await?;
                }
                Ok::<(), chronos_core::Error>(())
            })
            .await?;
        Ok(docs)
    }

    /// Stores (replaces) a time-based result: one document per (rule, tenant, period).
    pub async fn save_time_based(&self, r: &TimeBasedResult) -> Result<String> {
        let period = if r.save_mode == "global" {
            "global".to_string()
        } else {
            r.timestamp.as_millisecond().to_string()
        };
        let id = doc_key("T", &[&r.rule_name, &r.tenant_id, &period]);
        self.docs()
            .await?
            .replace(TIME_BASED_RESULTS, to_doc(id.clone(), r)?, true)
            .await?;
        Ok(id)
    }

    /// Stores (replaces) a cross-tenant result: one document per (rule, period).
    pub async fn save_cross_tenant(&self, r: &CrossTenantResult) -> Result<String> {
        let start = r.timestamp.as_millisecond().to_string();
        let id = doc_key("X", &[&r.rule_name, &start]);
        self.docs()
            .await?
            .replace(CROSS_TENANT_RESULTS, to_doc(id.clone(), r)?, true)
            .await?;
        Ok(id)
    }

    async fn find<T: serde::de::DeserializeOwned>(
        &self,
        coll: &str,
        tenant_key: &str,
        q: &ResultsQuery,
    ) -> Result<Vec<T>> {
        if q.limit == 0 || q.limit > 10_000 {
            return Err(chronos_core::Error::validation(format!(
                "results limit {} is outside 1-10000",
                q.limit
            )));
        }
        let mut filter = serde_json::Map::new();
        if let Some(r) = &q.rule_name {
            filter.insert("ruleName".into(), r.clone().into());
        }
        if let Some(t) = &q.timeframe {
            filter.insert("timeframe".into(), t.clone().into());
        }
        if let Some(t) = &q.tenant_id {
            filter.insert(tenant_key.into(), t.clone().into());
        }
        let query = DocQuery {
            filter: Filter::parse(&Value::Object(filter))?,
            sort: Some((SortField::Meta("timestamp".into()), true)),
            skip: 0,
            limit: q.limit,
        };
        let docs = self.docs().await?.find(coll, &query).await?;
        docs.into_iter()
            .map(|d| chronos_core::docs::decode_body(coll, d))
            .collect()
    }

    /// Time-based results, newest period first (`getTimeBasedResults`).
    pub async fn time_based(&self, q: &ResultsQuery) -> Result<Vec<TimeBasedResult>> {
        self.find(TIME_BASED_RESULTS, "tenantId", q).await
    }

    /// Cross-tenant results, newest period first (`getCrossTenantResults`).
    pub async fn cross_tenant(&self, q: &ResultsQuery) -> Result<Vec<CrossTenantResult>> {
        self.find(CROSS_TENANT_RESULTS, "masterTenantId", q).await
    }

    /// Deletes results whose `timestamp` is before `before` (the results TTL); returns how
    /// many.
    pub async fn delete_before(&self, before: Timestamp) -> Result<u64> {
        let filter = Filter::parse(&json!({"timestamp": {"$lt": format_instant(before)}}))?;
        let docs = self.docs().await?;
        let mut n = 0;
        for coll in [TIME_BASED_RESULTS, CROSS_TENANT_RESULTS] {
            n += docs.delete_where(coll, &filter).await?;
        }
        Ok(n)
    }
}
