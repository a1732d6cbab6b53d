//! Counts per day, ISO week and month, kept as long as `retention.counters` says.
//!
//! With `retention.counters` configured, every fold adds each version it folds to the
//! bucket of its commit day (UTC), its ISO week (starting Monday) and its month — for the
//! granularities configured — in the same conditional update that moves the totals, so a
//! bucket counts each committed version exactly once, as the totals do (see
//! [`crate::counters`]). Readers add the deltas not folded yet, as for the totals.
//!
//! Buckets live in the totals document, under `periods.<day|week|month>.<first date>`, with
//! `created`, `updated`, `deleted` and `rules.<name>.{created,updated,deleted}`. Only the
//! latest `days` days, `weeks` weeks and `months` months are kept, the current one
//! included: an older bucket is never returned, never added to, and removed by
//! [`crate::Counters::prune_periods`] (the worker's `counters-retention` job) — so the
//! document holds at most `days + weeks + months` buckets.
//!
//! Distinct-value counts are lifetime only: they have no buckets.

use std::collections::BTreeMap;

use chronos_core::{Error, Result, Timestamp};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Span;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::rules::{Contribution, OpCounts};

/// The field of the totals document that holds the buckets.
pub(crate) const PERIODS: &str = "periods";

/// `retention.counters`: how many of the latest buckets of each granularity are kept (the
/// current one included); a granularity left out keeps no buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CounterRetention {
    /// Daily buckets kept (1 to 3,660).
    #[serde(default)]
    pub days: Option<u32>,
    /// Weekly buckets kept (1 to 520).
    #[serde(default)]
    pub weeks: Option<u32>,
    /// Monthly buckets kept (1 to 120).
    #[serde(default)]
    pub months: Option<u32>,
}

impl CounterRetention {
    /// How many buckets of `g` are kept, if any.
    pub fn keep(&self, g: Granularity) -> Option<u32> {
        match g {
            Granularity::Day => self.days,
            Granularity::Week => self.weeks,
            Granularity::Month => self.months,
        }
    }

    /// The configured granularities with their counts.
    pub fn kept(&self) -> impl Iterator<Item = (Granularity, u32)> + '_ {
        Granularity::ALL
            .into_iter()
            .filter_map(|g| self.keep(g).map(|n| (g, n)))
    }

    /// Whether no bucket is kept at all.
    pub fn is_empty(&self) -> bool {
        self.kept().next().is_none()
    }

    /// Checks the counts; `path` is where the section sits (`retention.counters`).
    pub fn validate(&self, path: &str) -> Result<()> {
        for (g, n) in self.kept() {
            let max = g.max_kept();
            if n == 0 || n > max {
                let field = format!("{path}.{}", g.config_name());
                return Err(Error::invalid_config(format!(
                    "{field}: {n} is out of range: keep 1 to {max} {} (leave it out to keep none)",
                    g.config_name()
                ))
                .with("field", field));
            }
        }
        Ok(())
    }
}

/// The length of a counter bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// A UTC day.
    Day,
    /// An ISO week: Monday to Sunday, UTC.
    Week,
    /// A calendar month, UTC.
    Month,
}

impl Granularity {
    /// Every granularity, shortest first.
    pub const ALL: [Granularity; 3] = [Granularity::Day, Granularity::Week, Granularity::Month];

    /// The name used in the stored document (`day`, `week`, `month`).
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }

    fn config_name(self) -> &'static str {
        match self {
            Granularity::Day => "days",
            Granularity::Week => "weeks",
            Granularity::Month => "months",
        }
    }

    fn max_kept(self) -> u32 {
        match self {
            Granularity::Day => 3_660,
            Granularity::Week => 520,
            Granularity::Month => 120,
        }
    }

    /// The first day of the bucket holding `at`.
    pub fn start(self, at: Timestamp) -> Date {
        let d = at.to_zoned(TimeZone::UTC).date();
        match self {
            Granularity::Day => d,
            Granularity::Week => d
                .checked_sub(Span::new().days(i64::from(d.weekday().to_monday_zero_offset())))
                .unwrap_or(d),
            Granularity::Month => d.first_of_month(),
        }
    }

    /// The first day of the oldest of the `keep` latest buckets at `now` (its own included).
    pub fn oldest_kept(self, now: Timestamp, keep: u32) -> Date {
        let back = i64::from(keep.saturating_sub(1));
        let span = match self {
            Granularity::Day => Span::new().days(back),
            Granularity::Week => Span::new().weeks(back),
            Granularity::Month => Span::new().months(back),
        };
        self.start(now).checked_sub(span).unwrap_or(Date::MIN)
    }
}

/// One bucket's counts, as [`crate::Counters::get_periods`] returns them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeriodCounts {
    /// The bucket's length.
    pub granularity: Granularity,
    /// Its first day (UTC).
    pub start: Date,
    /// Created / updated / deleted writes committed in it.
    #[serde(flatten)]
    pub counts: OpCounts,
    /// Per rule (when asked for; rules with no match in the bucket are left out).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, OpCounts>,
}

/// Created / updated / deleted, signed: a reset stores the negation of what was pending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Signed([i64; 3]);

const OPS: [&str; 3] = ["created", "updated", "deleted"];

impl Signed {
    fn of(c: &OpCounts, sign: i64) -> Self {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX) * sign;
        Signed([n(c.created), n(c.updated), n(c.deleted)])
    }
    fn parse(m: &Map<String, Value>) -> Self {
        Signed(OPS.map(|k| m.get(k).and_then(Value::as_i64).unwrap_or(0)))
    }
    fn add(&mut self, o: &Signed) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a = a.saturating_add(b);
        }
    }
    fn counts(&self) -> OpCounts {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        OpCounts {
            created: n(self.0[0]),
            updated: n(self.0[1]),
            deleted: n(self.0[2]),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Bucket {
    counts: Signed,
    rules: BTreeMap<String, Signed>,
}

/// Bucketed counts: parsed from a totals document, or summed from versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Buckets(BTreeMap<(Granularity, Date), Bucket>);

impl Buckets {
    /// Adds `c` (committed at `at`) to its bucket of every granularity `retention` keeps,
    /// unless that bucket is already past its retention at `now`; `sign` -1 subtracts.
    pub(crate) fn add(
        &mut self,
        retention: &CounterRetention,
        now: Timestamp,
        at: Timestamp,
        c: &Contribution,
        sign: i64,
    ) {
        for (g, keep) in retention.kept() {
            let start = g.start(at);
            if start < g.oldest_kept(now, keep) {
                continue;
            }
            let b = self.0.entry((g, start)).or_default();
            b.counts.add(&Signed::of(&c.totals, sign));
            for (name, r) in &c.rules {
                b.rules
                    .entry(name.clone())
                    .or_default()
                    .add(&Signed::of(r, sign));
            }
        }
    }

    /// Adds every bucket of `other`.
    pub(crate) fn merge(&mut self, other: &Buckets) {
        for (k, b) in &other.0 {
            let mine = self.0.entry(*k).or_default();
            mine.counts.add(&b.counts);
            for (name, r) in &b.rules {
                mine.rules.entry(name.clone()).or_default().add(r);
            }
        }
    }

    /// The buckets stored in a totals document (unreadable entries are skipped: they are
    /// never written by this crate).
    pub(crate) fn parse(body: &Map<String, Value>) -> Self {
        let mut out = Buckets::default();
        let Some(Value::Object(periods)) = body.get(PERIODS) else {
            return out;
        };
        for g in Granularity::ALL {
            let Some(Value::Object(days)) = periods.get(g.name()) else {
                continue;
            };
            for (start, b) in days {
                let (Ok(start), Value::Object(b)) = (start.parse::<Date>(), b) else {
                    continue;
                };
                let mut bucket = Bucket {
                    counts: Signed::parse(b),
                    rules: BTreeMap::new(),
                };
                if let Some(Value::Object(rules)) = b.get("rules") {
                    for (name, r) in rules {
                        if let Value::Object(r) = r {
                            bucket.rules.insert(name.clone(), Signed::parse(r));
                        }
                    }
                }
                out.0.insert((g, start), bucket);
            }
        }
        out
    }

    /// The increments that add these buckets to a totals document (`negate`: subtract
    /// them); zero counts are left out.
    pub(crate) fn increments(&self, negate: bool) -> Vec<(String, serde_json::Number)> {
        let sign = if negate { -1 } else { 1 };
        let mut out = Vec::new();
        let mut push = |prefix: String, s: &Signed| {
            for (k, v) in OPS.iter().zip(s.0) {
                if v != 0 {
                    out.push((format!("{prefix}{k}"), serde_json::Number::from(v * sign)));
                }
            }
        };
        for ((g, start), b) in &self.0 {
            let at = format!("{PERIODS}.{}.{start}.", g.name());
            push(at.clone(), &b.counts);
            for (name, r) in &b.rules {
                push(format!("{at}rules.{name}."), r);
            }
        }
        out
    }

    /// The buckets of `g` still kept at `now` that count something, oldest first, with
    /// their rules when asked.
    pub(crate) fn report(
        &self,
        g: Granularity,
        retention: &CounterRetention,
        now: Timestamp,
        include_rules: bool,
    ) -> Vec<PeriodCounts> {
        let Some(keep) = retention.keep(g) else {
            return Vec::new();
        };
        let oldest = g.oldest_kept(now, keep);
        self.0
            .iter()
            .filter(|((bg, start), _)| *bg == g && *start >= oldest)
            .filter(|(_, b)| {
                !b.counts.counts().is_zero() || b.rules.values().any(|r| !r.counts().is_zero())
            })
            .map(|((_, start), b)| PeriodCounts {
                granularity: g,
                start: *start,
                counts: b.counts.counts(),
                rules: if include_rules {
                    b.rules
                        .iter()
                        .map(|(n, r)| (n.clone(), r.counts()))
                        .filter(|(_, c)| !c.is_zero())
                        .collect()
                } else {
                    BTreeMap::new()
                },
            })
            .collect()
    }
}

/// The assignments that drop every bucket past its retention at `now` from a totals
/// document (each granularity's object rewritten without them), and how many are dropped;
/// `None` when nothing is to drop.
pub(crate) fn pruned(
    body: &Map<String, Value>,
    retention: &CounterRetention,
    now: Timestamp,
) -> Option<(Vec<(String, Value)>, usize)> {
    let Some(Value::Object(periods)) = body.get(PERIODS) else {
        return None;
    };
    let mut sets = Vec::new();
    let mut dropped = 0;
    for g in Granularity::ALL {
        let Some(Value::Object(buckets)) = periods.get(g.name()) else {
            continue;
        };
        let oldest = retention.keep(g).map(|n| g.oldest_kept(now, n));
        let kept: Map<String, Value> = buckets
            .iter()
            .filter(|(start, _)| match (oldest, start.parse::<Date>()) {
                (Some(o), Ok(d)) => d >= o,
                _ => false,
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if kept.len() < buckets.len() {
            dropped += buckets.len() - kept.len();
            sets.push((format!("{PERIODS}.{}", g.name()), Value::Object(kept)));
        }
    }
    (dropped > 0).then_some((sets, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn buckets_start_on_utc_days_mondays_and_firsts() {
        let t = at("2024-02-29T23:59:59Z");
        assert_eq!(Granularity::Day.start(t).to_string(), "2024-02-29");
        assert_eq!(Granularity::Week.start(t).to_string(), "2024-02-26");
        assert_eq!(Granularity::Month.start(t).to_string(), "2024-02-01");
        let monday = at("2024-03-04T00:00:00Z");
        assert_eq!(Granularity::Week.start(monday).to_string(), "2024-03-04");
    }

    #[test]
    fn retention_counts_the_current_bucket() {
        let now = at("2024-03-31T12:00:00Z");
        assert_eq!(
            Granularity::Day.oldest_kept(now, 1).to_string(),
            "2024-03-31"
        );
        assert_eq!(
            Granularity::Day.oldest_kept(now, 30).to_string(),
            "2024-03-02"
        );
        assert_eq!(
            Granularity::Week.oldest_kept(now, 2).to_string(),
            "2024-03-18"
        );
        assert_eq!(
            Granularity::Month.oldest_kept(now, 6).to_string(),
            "2023-10-01"
        );
    }

    fn contribution(op: u8, odd: bool) -> Contribution {
        let mut c = Contribution::default();
        let counts = match op % 3 {
            0 => OpCounts {
                created: 1,
                ..Default::default()
            },
            1 => OpCounts {
                updated: 1,
                ..Default::default()
            },
            _ => OpCounts {
                deleted: 1,
                ..Default::default()
            },
        };
        c.totals = counts;
        if odd {
            c.rules.insert("odd".into(), counts);
        }
        c
    }

    proptest::proptest! {
        /// Bucketing, reporting and the stored round trip agree with a brute-force count per
        /// (granularity, first day) over random commit instants, retentions and `now`s.
        #[test]
        fn buckets_match_a_brute_force(
            versions in proptest::collection::vec((0i64..400 * 86_400, 0u8..3, proptest::bool::ANY), 0..60),
            days in proptest::option::of(1u32..40),
            weeks in proptest::option::of(1u32..10),
            months in proptest::option::of(1u32..14),
            now_offset in 0i64..400 * 86_400,
        ) {
            let base = at("2023-11-20T00:00:00Z").as_second();
            let retention = CounterRetention { days, weeks, months };
            let now = Timestamp::from_second(base + now_offset).unwrap();
            let mut b = Buckets::default();
            let dated: Vec<(Timestamp, Contribution)> = versions
                .iter()
                .map(|(s, op, odd)| (Timestamp::from_second(base + s).unwrap(), contribution(*op, *odd)))
                .collect();
            for (t, c) in &dated {
                b.add(&retention, now, *t, c, 1);
            }
            // Stored and read back through the document increments.
            let mut doc = Map::new();
            let u = chronos_core::DocUpdate { set: vec![], inc: b.increments(false) };
            u.apply(&mut doc).unwrap();
            proptest::prop_assert_eq!(&Buckets::parse(&doc), &b);
            for g in Granularity::ALL {
                let mut expect: BTreeMap<Date, (OpCounts, OpCounts)> = BTreeMap::new();
                if let Some(keep) = retention.keep(g) {
                    for (t, c) in &dated {
                        if g.start(*t) >= g.oldest_kept(now, keep) {
                            let e = expect.entry(g.start(*t)).or_default();
                            e.0.add(&c.totals);
                            if let Some(r) = c.rules.get("odd") {
                                e.1.add(r);
                            }
                        }
                    }
                }
                let got = b.report(g, &retention, now, true);
                let got: BTreeMap<Date, (OpCounts, OpCounts)> = got
                    .into_iter()
                    .map(|p| (p.start, (p.counts, p.rules.get("odd").copied().unwrap_or_default())))
                    .collect();
                proptest::prop_assert_eq!(got, expect);
            }
            // Pruning at a later `now` keeps exactly the buckets still in retention.
            let later = Timestamp::from_second(now.as_second() + 45 * 86_400).unwrap();
            let before = Buckets::parse(&doc);
            if let Some((sets, dropped)) = pruned(&doc, &retention, later) {
                chronos_core::DocUpdate { set: sets, inc: vec![] }.apply(&mut doc).unwrap();
                proptest::prop_assert_eq!(before.0.len() - Buckets::parse(&doc).0.len(), dropped);
            }
            for (g, start) in Buckets::parse(&doc).0.keys() {
                let keep = retention.keep(*g).unwrap();
                proptest::prop_assert!(*start >= g.oldest_kept(later, keep));
            }
            for g in Granularity::ALL {
                proptest::prop_assert_eq!(
                    Buckets::parse(&doc).report(g, &retention, later, true),
                    before.report(g, &retention, later, true)
                );
            }
        }
    }

    #[test]
    fn out_of_range_counts_name_their_path() {
        let r = CounterRetention {
            days: Some(30),
            weeks: Some(0),
            months: None,
        };
        let e = r.validate("retention.counters").unwrap_err();
        assert!(e.to_string().contains("retention.counters.weeks"), "{e}");
        let r = CounterRetention {
            months: Some(121),
            ..Default::default()
        };
        assert!(r
            .validate("r")
            .unwrap_err()
            .to_string()
            .contains("r.months"));
    }
}
