//! Aggregates over a collection's current records: `count`, distinct count, `sum`, `avg`,
//! `min`, `max` and the exact `median` of one indexed field, over the records whose latest
//! version is not a tombstone, whose indexed metadata matches a filter, and (optionally)
//! whose creation instant lies in a window.
//!
//! Stores answer [`IndexStore::aggregate`](crate::IndexStore::aggregate) in the store
//! (MongoDB aggregation, SQL in SQLite); the in-memory store folds its heads in one pass
//! ([`aggregate_heads`], the reference).
//!
//! # Semantics (the same on every backend; the conformance suite checks it)
//! - The field's value is the value at the dotted path (no traversal into arrays).
//! - `Count` counts matching records; `CountDistinct` counts the distinct non-null values of
//!   the field among them (by canonical JSON equality: `1` and `1.0` are one value).
//! - `Sum`, `Avg`, `Min`, `Max`, `Median` use the field's values that are JSON numbers and
//!   ignore records where it is missing or not a number. `Sum` of nothing is `0`; the others
//!   of nothing are `None`. `Median` of an even number of values is the mean of the middle
//!   two. Arithmetic is `f64`.

use std::collections::HashSet;

use crate::filter::{canonical_text, get_path, Filter};
use crate::index::HeadEntry;
use crate::Timestamp;

/// What to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    /// Number of matching records.
    Count,
    /// Number of distinct non-null values of the field.
    CountDistinct,
    /// Sum of the numeric values.
    Sum,
    /// Mean of the numeric values.
    Avg,
    /// Least numeric value.
    Min,
    /// Greatest numeric value.
    Max,
    /// Exact median of the numeric values.
    Median,
}

impl AggregateOp {
    /// Whether the operation reads a field (all but `Count`).
    pub fn needs_field(self) -> bool {
        self != AggregateOp::Count
    }
}

/// A half-open window of creation instants `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Inclusive start.
    pub from: Timestamp,
    /// Exclusive end.
    pub to: Timestamp,
}

/// An aggregate query (see the module docs for its semantics).
#[derive(Debug, Clone)]
pub struct AggregateQuery {
    /// Over each current head's indexed metadata.
    pub filter: Filter,
    /// Only records created in this window.
    pub created: Option<Window>,
    /// What to compute.
    pub op: AggregateOp,
    /// The field (a dotted path); required by every operation but `Count`.
    pub field: Option<String>,
}

/// Folds values into every operation's result at once.
#[derive(Debug, Default)]
struct Acc {
    count: u64,
    distinct: HashSet<String>,
    sum: f64,
    numbers: u64,
    min: Option<f64>,
    max: Option<f64>,
    values: Vec<f64>,
}

impl Acc {
    fn add(&mut self, op: AggregateOp, v: Option<&serde_json::Value>) {
        self.count += 1;
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return;
        };
        if op == AggregateOp::CountDistinct {
            self.distinct.insert(canonical_text(v));
            return;
        }
        let Some(x) = v.as_f64().filter(|_| v.is_number()) else {
            return;
        };
        self.numbers += 1;
        self.sum += x;
        self.min = Some(self.min.map_or(x, |m| m.min(x)));
        self.max = Some(self.max.map_or(x, |m| m.max(x)));
        if op == AggregateOp::Median {
            self.values.push(x);
        }
    }

    fn finish(mut self, op: AggregateOp) -> Option<f64> {
        match op {
            AggregateOp::Count => Some(self.count as f64),
            AggregateOp::CountDistinct => Some(self.distinct.len() as f64),
            AggregateOp::Sum => Some(self.sum),
            AggregateOp::Avg => (self.numbers > 0).then(|| self.sum / self.numbers as f64),
            AggregateOp::Min => self.min,
            AggregateOp::Max => self.max,
            AggregateOp::Median => {
                self.values.sort_by(f64::total_cmp);
                median_of_sorted(&self.values)
            }
        }
    }
}

/// The median of ascending values: the middle one, or the mean of the middle two.
pub fn median_of_sorted(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    Some((values[(n - 1) / 2] + values[n / 2]) / 2.0)
}

/// The aggregate over heads held in memory: each head is checked against the query (live,
/// filter, window) and folded in one pass (what the in-memory store uses).
pub fn aggregate_heads<'a>(
    q: &AggregateQuery,
    heads: impl IntoIterator<Item = &'a HeadEntry>,
) -> Option<f64> {
    let mut acc = Acc::default();
    for h in heads {
        let in_window = q
            .created
            .is_none_or(|w| w.from <= h.created_at && h.created_at < w.to);
        if h.deleted_at.is_none() && in_window && q.filter.matches(&h.meta) {
            acc.add(q.op, q.field.as_deref().and_then(|f| get_path(&h.meta, f)));
        }
    }
    acc.finish(q.op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_the_middle_or_the_mean_of_the_middle_two() {
        assert_eq!(median_of_sorted(&[]), None);
        assert_eq!(median_of_sorted(&[3.0]), Some(3.0));
        assert_eq!(median_of_sorted(&[1.0, 2.0, 10.0]), Some(2.0));
        assert_eq!(median_of_sorted(&[1.0, 2.0, 4.0, 10.0]), Some(3.0));
    }

    #[test]
    fn numeric_operations_ignore_what_is_not_a_number() {
        let vals = [
            serde_json::json!(2),
            serde_json::json!("9"),
            serde_json::json!(null),
            serde_json::json!(4.5),
        ];
        let run = |op| {
            let mut acc = Acc::default();
            for v in &vals {
                acc.add(op, Some(v));
            }
            acc.add(op, None);
            acc.finish(op)
        };
        assert_eq!(run(AggregateOp::Count), Some(5.0));
        assert_eq!(run(AggregateOp::CountDistinct), Some(3.0));
        assert_eq!(run(AggregateOp::Sum), Some(6.5));
        assert_eq!(run(AggregateOp::Avg), Some(3.25));
        assert_eq!(run(AggregateOp::Min), Some(2.0));
        assert_eq!(run(AggregateOp::Max), Some(4.5));
        assert_eq!(run(AggregateOp::Median), Some(3.25));
    }
}
