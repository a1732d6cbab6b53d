//! Where counters live in the analytics database, and the documents' shapes.
//!
//! - `cnt_total`: one document per `(tenant, dbName, collection)`, upstream's shape —
//!   `_id = "tenant:<t>|db:<db>|coll:<c>"`, `tenant`, `dbName`, `collection`, `created`,
//!   `updated`, `deleted`, `rules.<name>.{created,updated,deleted}`, `lastAt` (ISO-8601) —
//!   plus `feedCv`: every version of the collection up to that cv is folded in, `rev`
//!   (bumped by resets and prunes) and, with `retention.counters`, the per-period buckets
//!   under `periods` ([`crate::periods`]). Counts are negative while a reset's subtraction
//!   waits for the deltas it subtracted to fold.
//! - `cnt_delta`: one small document per committed version not folded yet
//!   (`_id = "<totals id>|cv:<cv>"`): what the commit observer recorded when the write
//!   returned. Folding moves them into `cnt_total` and deletes them.
//! - `cnt_unique_<digest>`: one collection per `(totals, rule, property)`, one document per
//!   distinct value (`_id` = the value's digest, `value` kept when at most 1 KiB): the count
//!   is the collection's size, so no document ever grows with the number of values.

use std::collections::BTreeMap;

use chronos_core::{Error, Result, Timestamp};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::periods::Buckets;
use crate::rules::{Contribution, OpCounts};

/// The totals collection.
pub const TOTALS: &str = "cnt_total";
/// The deltas collection.
pub const DELTAS: &str = "cnt_delta";
/// Distinct values longer than this (canonical JSON) are kept by digest only.
pub const MAX_KEPT_VALUE: usize = 1024;

/// Which collection's counters: tenant, database name, collection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TotalsKey {
    /// The tenant.
    pub tenant: String,
    /// The runtime database's name (`dbName`).
    pub db_name: String,
    /// The collection.
    pub collection: String,
}

impl TotalsKey {
    /// A key.
    pub fn new(
        tenant: impl Into<String>,
        db_name: impl Into<String>,
        collection: impl Into<String>,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            db_name: db_name.into(),
            collection: collection.into(),
        }
    }
    /// Upstream's `_id`: `tenant:<t>|db:<db>|coll:<c>`.
    pub fn id(&self) -> String {
        format!(
            "tenant:{}|db:{}|coll:{}",
            self.tenant, self.db_name, self.collection
        )
    }
    /// The id of the delta of version `cv`.
    pub(crate) fn delta_id(&self, cv: u64) -> String {
        format!("{}|cv:{cv:020}", self.id())
    }
    /// The collection holding the distinct values of `rule.property`.
    pub fn unique_collection(&self, rule: &str, property: &str) -> String {
        let d = Sha256::digest(format!("{}|rule:{rule}|prop:{property}", self.id()));
        format!("cnt_unique_{}", &hex(&d)[..24])
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The document of one distinct value: its id (digest) and body.
pub(crate) fn unique_doc(
    key: &TotalsKey,
    rule: &str,
    property: &str,
    value: &Value,
) -> (String, Map<String, Value>) {
    let text = chronos_core::filter::canonical_text(value);
    let id = hex(&Sha256::digest(text.as_bytes()))[..32].to_string();
    let mut body = Map::new();
    body.insert("key".into(), json!(key.id()));
    body.insert("rule".into(), json!(rule));
    body.insert("property".into(), json!(property));
    if text.len() <= MAX_KEPT_VALUE {
        body.insert("value".into(), value.clone());
    } else {
        body.insert("valueTooLarge".into(), json!(true));
    }
    (id, body)
}

/// A rule's counters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleTotals {
    /// Created / updated / deleted writes that matched.
    #[serde(flatten)]
    pub counts: OpCounts,
    /// Distinct values per `countUnique` property (filled when asked for).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unique: BTreeMap<String, u64>,
}

/// A collection's counters, as `get_totals` returns them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Upstream's `_id`.
    #[serde(rename = "_id")]
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Database name.
    pub db_name: String,
    /// Collection.
    pub collection: String,
    /// Created / updated / deleted.
    #[serde(flatten)]
    pub counts: OpCounts,
    /// Per rule (when asked for).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, RuleTotals>,
    /// The latest counted write.
    pub last_at: Option<Timestamp>,
}

fn num(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_u64).unwrap_or(0)
}

fn counts_of(m: &Map<String, Value>) -> OpCounts {
    OpCounts {
        created: num(m.get("created")),
        updated: num(m.get("updated")),
        deleted: num(m.get("deleted")),
    }
}

/// Created / updated / deleted split by sign: what is counted, and what a reset subtracted
/// ahead of deltas not folded yet (stored as negative counts until they fold).
fn signed_counts_of(m: &Map<String, Value>) -> (OpCounts, OpCounts) {
    let part = |k: &str, neg: bool| {
        let v = m.get(k).and_then(Value::as_i64).unwrap_or(0);
        if neg {
            v.min(0).unsigned_abs()
        } else {
            v.max(0).unsigned_abs()
        }
    };
    let of = |neg: bool| OpCounts {
        created: part("created", neg),
        updated: part("updated", neg),
        deleted: part("deleted", neg),
    };
    (of(false), of(true))
}

/// A stored totals document.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stored {
    pub(crate) feed_cv: u64,
    /// The positive counts.
    pub(crate) sums: Contribution,
    /// The negative counts, negated: a reset's subtraction of deltas not folded yet.
    pub(crate) debt: Contribution,
    /// The per-period buckets ([`crate::periods`]).
    pub(crate) buckets: Buckets,
    /// Bumped by every reset and prune (absent in documents older than periods).
    pub(crate) rev: Option<i64>,
}

impl Stored {
    /// What is counted: the stored sums plus `deltas`, less the debt.
    pub(crate) fn counted<'a>(
        &self,
        deltas: impl Iterator<Item = &'a Contribution>,
    ) -> Contribution {
        let mut sums = self.sums.clone();
        for d in deltas {
            sums.add(d);
        }
        sums.totals.sub(&self.debt.totals);
        for (name, debt) in &self.debt.rules {
            if let Some(r) = sums.rules.get_mut(name) {
                r.sub(debt);
            }
        }
        sums
    }
}

pub(crate) fn parse_totals(body: &Map<String, Value>) -> Result<Stored> {
    let (totals, debt_totals) = signed_counts_of(body);
    let mut sums = Contribution {
        totals,
        ..Default::default()
    };
    let mut debt = Contribution {
        totals: debt_totals,
        ..Default::default()
    };
    if let Some(Value::Object(rules)) = body.get("rules") {
        for (name, r) in rules {
            if let Value::Object(r) = r {
                let (plus, minus) = signed_counts_of(r);
                sums.rules.insert(name.clone(), plus);
                if !minus.is_zero() {
                    debt.rules.insert(name.clone(), minus);
                }
            }
        }
    }
    sums.at =
        match body.get("lastAt") {
            Some(Value::String(s)) => Some(s.parse().map_err(|_| {
                Error::internal(format!("{TOTALS}: lastAt '{s}' is not an instant"))
            })?),
            _ => None,
        };
    Ok(Stored {
        feed_cv: num(body.get("feedCv")),
        sums,
        debt,
        buckets: Buckets::parse(body),
        rev: body.get("rev").and_then(Value::as_i64),
    })
}

/// A new totals document: zeros, nothing folded.
pub(crate) fn empty_totals(key: &TotalsKey) -> Map<String, Value> {
    let v = json!({
        "tenant": key.tenant,
        "dbName": key.db_name,
        "collection": key.collection,
        "created": 0, "updated": 0, "deleted": 0,
        "rules": {},
        "lastAt": null,
        "feedCv": 0,
        "rev": 0,
    });
    v.as_object().cloned().unwrap_or_default()
}

/// The delta document of one version.
pub(crate) fn delta_body(key: &TotalsKey, cv: u64, c: &Contribution) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("key".into(), json!(key.id()));
    m.insert("cv".into(), json!(cv));
    put_counts(&mut m, &c.totals);
    let rules: Map<String, Value> = c
        .rules
        .iter()
        .map(|(k, v)| {
            let mut r = Map::new();
            put_counts(&mut r, v);
            (k.clone(), Value::Object(r))
        })
        .collect();
    m.insert("rules".into(), Value::Object(rules));
    m.insert("at".into(), json!(c.at.map(|t| t.as_millisecond())));
    m
}

fn put_counts(m: &mut Map<String, Value>, c: &OpCounts) {
    m.insert("created".into(), json!(c.created));
    m.insert("updated".into(), json!(c.updated));
    m.insert("deleted".into(), json!(c.deleted));
}

/// A stored delta: its cv and contribution.
pub(crate) fn parse_delta(body: &Map<String, Value>) -> (u64, Contribution) {
    let mut c = Contribution {
        totals: counts_of(body),
        ..Default::default()
    };
    if let Some(Value::Object(rules)) = body.get("rules") {
        for (name, r) in rules {
            if let Value::Object(r) = r {
                c.rules.insert(name.clone(), counts_of(r));
            }
        }
    }
    c.at = body
        .get("at")
        .and_then(Value::as_i64)
        .and_then(|ms| Timestamp::from_millisecond(ms).ok());
    (num(body.get("cv")), c)
}
