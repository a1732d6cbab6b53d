//! Compiled counter rules, and what one committed version contributes to the counters.

use std::collections::BTreeMap;

use chronos_core::filter::get_path;
use chronos_core::{Filter, Op, Result, Timestamp};
use serde_json::{Map, Value};

use crate::config::{CounterRule, RuleOp, RuleScope};

/// One rule, ready to evaluate.
#[derive(Debug, Clone)]
struct Compiled {
    name: String,
    on: Vec<RuleOp>,
    payload: bool,
    when: Filter,
    unique: Vec<String>,
}

/// The counter rules of a deployment.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Compiled>,
}

/// Created / updated / deleted counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpCounts {
    /// Versions that created a record.
    pub created: u64,
    /// Updates, enrichments and restores.
    pub updated: u64,
    /// Deletes.
    pub deleted: u64,
}

impl OpCounts {
    fn one(op: RuleOp) -> Self {
        let mut c = Self::default();
        match op {
            RuleOp::Create => c.created = 1,
            RuleOp::Update => c.updated = 1,
            RuleOp::Delete => c.deleted = 1,
        }
        c
    }
    /// Adds `other`.
    pub fn add(&mut self, other: &OpCounts) {
        self.created += other.created;
        self.updated += other.updated;
        self.deleted += other.deleted;
    }
    /// Subtracts `other` (saturating).
    pub fn sub(&mut self, other: &OpCounts) {
        self.created = self.created.saturating_sub(other.created);
        self.updated = self.updated.saturating_sub(other.updated);
        self.deleted = self.deleted.saturating_sub(other.deleted);
    }
    /// Whether all are zero.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// What one committed version adds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contribution {
    /// Totals of the collection.
    pub totals: OpCounts,
    /// Per matching rule.
    pub rules: BTreeMap<String, OpCounts>,
    /// Distinct-value candidates: (rule, property, value).
    pub uniques: Vec<(String, String, Value)>,
    /// The version's commit instant.
    pub at: Option<Timestamp>,
}

impl Contribution {
    /// Adds `other` (uniques are not summed: they are sets, stored separately).
    pub fn add(&mut self, other: &Contribution) {
        self.totals.add(&other.totals);
        for (k, v) in &other.rules {
            self.rules.entry(k.clone()).or_default().add(v);
        }
        self.at = later(self.at, other.at);
    }
}

/// The later of two optional instants.
pub(crate) fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The rule operation a version counts as: enrichments and restores are updates (an erase
/// counts as nothing, see [`Rules::contribution`]).
pub fn rule_op(op: Op) -> RuleOp {
    match op {
        Op::Create => RuleOp::Create,
        Op::Delete => RuleOp::Delete,
        _ => RuleOp::Update,
    }
}

impl Rules {
    /// Compiles validated rules (see [`crate::config::validate_rules`]).
    pub fn compile(rules: &[CounterRule]) -> Result<Rules> {
        let rules = rules
            .iter()
            .map(|r| {
                Ok(Compiled {
                    name: r.name.clone(),
                    on: r.on.clone(),
                    payload: r.scope == Some(RuleScope::Payload),
                    when: Filter::parse(&r.when)?,
                    unique: r.count_unique.clone(),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Rules { rules })
    }

    /// Whether any rule looks at the payload (recovery then reads payloads).
    pub fn needs_payload(&self) -> bool {
        self.rules.iter().any(|r| r.payload)
    }

    /// Whether there are rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule names and their `countUnique` properties.
    pub fn unique_properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rules
            .iter()
            .flat_map(|r| r.unique.iter().map(move |p| (r.name.as_str(), p.as_str())))
    }

    /// What a version with this op, metadata and data contributes.
    pub fn contribution(
        &self,
        op: Op,
        at: Timestamp,
        meta: &Map<String, Value>,
        data: Option<&Map<String, Value>>,
    ) -> Contribution {
        if op == Op::Erase {
            // The deletion before it was counted; the erase itself changes no count.
            return Contribution {
                at: Some(at),
                ..Default::default()
            };
        }
        let rop = rule_op(op);
        let mut c = Contribution {
            totals: OpCounts::one(rop),
            at: Some(at),
            ..Default::default()
        };
        for r in &self.rules {
            if !r.on.is_empty() && !r.on.contains(&rop) {
                continue;
            }
            let doc = match (r.payload, data) {
                (true, Some(d)) => d,
                // A payload rule without the payload cannot be evaluated: callers always
                // pass it when `needs_payload` says so.
                (true, None) => continue,
                (false, _) => meta,
            };
            if !r.when.matches(doc) {
                continue;
            }
            c.rules.insert(r.name.clone(), OpCounts::one(rop));
            for p in &r.unique {
                match get_path(doc, p) {
                    None | Some(Value::Null) => {}
                    Some(v) => c.uniques.push((r.name.clone(), p.clone(), v.clone())),
                }
            }
        }
        c
    }
}
