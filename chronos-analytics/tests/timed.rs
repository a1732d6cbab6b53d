//! Time-based and cross-tenant rules against a brute force over the same records (a property
//! test with random records, instants, operations and timeframes on memory, SQLite and
//! MongoDB), the calendar-correct windows of `P1M` and leap days, and stored results.

use chronos_analytics::{
    run_cross_tenant, run_time_based, Aggregation, CrossTenantMode, CrossTenantRule, Results,
    ResultsQuery, SaveMode, TimeBasedRule, Timeframe,
};
use chronos_core::time::format_instant;
use chronos_core::{Collection, CollectionConfig, CreateOptions, Timestamp, WriteOptions};
use chronos_testkit::conformance::Harness;
use proptest::prelude::*;
use serde_json::{json, Value};

mod common;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A random record: kind, amount (int, float, string or missing), customer, event instant
/// (as text or epoch millis), and whether it is later updated or deleted.
#[derive(Debug, Clone)]
struct Rec {
    kind: u8,
    amount: Option<Value>,
    customer: u8,
    offset_min: i64,
    as_millis: bool,
    fate: u8,
}

fn rec() -> impl Strategy<Value = Rec> {
    let amount = prop_oneof![
        (-50i64..500).prop_map(|n| Some(json!(n))),
        (-50.0f64..500.0).prop_map(|x| Some(json!((x * 4.0).round() / 4.0))),
        Just(Some(json!("12"))),
        Just(None),
    ];
    (
        0u8..3,
        amount,
        0u8..6,
        0i64..(3 * 24 * 60),
        any::<bool>(),
        0u8..10,
    )
        .prop_map(
            |(kind, amount, customer, offset_min, as_millis, fate)| Rec {
                kind,
                amount,
                customer,
                offset_min,
                as_millis,
                fate,
            },
        )
}

const BASE: &str = "2024-02-28T00:00:00Z";

fn instant(r: &Rec) -> Timestamp {
    t(BASE)
        .checked_add(jiff::SignedDuration::from_mins(r.offset_min))
        .unwrap()
}

fn body(r: &Rec) -> Value {
    let at = instant(r);
    let mut d = json!({
        "kind": format!("k{}", r.kind),
        "customer": format!("c{}", r.customer),
        "at": if r.as_millis { json!(at.as_millisecond()) } else { json!(format_instant(at)) },
    });
    if let Some(a) = &r.amount {
        d["amount"] = a.clone();
    }
    d
}

/// Writes the records; returns the live ones as they are now (an update doubles a numeric
/// amount; a delete removes the record).
async fn load(c: &Collection, recs: &[Rec]) -> Vec<Rec> {
    let mut live = Vec::new();
    for r in recs {
        let w = c.create(&body(r), CreateOptions::new()).await.unwrap();
        match r.fate {
            0 => {
                c.delete(w.id, WriteOptions::new()).await.unwrap();
            }
            1 => {
                let mut r2 = r.clone();
                if let Some(a) = r.amount.as_ref().and_then(Value::as_f64) {
                    r2.amount = Some(json!(a * 2.0));
                }
                c.update(w.id, &body(&r2), WriteOptions::new())
                    .await
                    .unwrap();
                live.push(r2);
            }
            _ => live.push(r.clone()),
        }
    }
    live
}

/// The brute force of one rule over one window.
fn brute(
    op: Aggregation,
    distinct: bool,
    kind: Option<u8>,
    recs: &[Rec],
    from: Timestamp,
    to: Timestamp,
) -> Option<f64> {
    let sel: Vec<&Rec> = recs
        .iter()
        .filter(|r| kind.is_none_or(|k| r.kind == k))
        .filter(|r| from <= instant(r) && instant(r) < to)
        .collect();
    if op == Aggregation::Count {
        if distinct {
            let mut cs: Vec<u8> = sel.iter().map(|r| r.customer).collect();
            cs.sort();
            cs.dedup();
            return Some(cs.len() as f64);
        }
        return Some(sel.len() as f64);
    }
    let mut xs: Vec<f64> = sel
        .iter()
        .filter_map(|r| {
            r.amount
                .as_ref()
                .filter(|a| a.is_number())
                .and_then(Value::as_f64)
        })
        .collect();
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match op {
        Aggregation::Sum => Some(xs.iter().sum()),
        _ if n == 0 => None,
        Aggregation::Average => Some(xs.iter().sum::<f64>() / n as f64),
        Aggregation::Min => Some(xs[0]),
        Aggregation::Max => Some(xs[n - 1]),
        Aggregation::Median => Some((xs[(n - 1) / 2] + xs[n / 2]) / 2.0),
        Aggregation::Count => unreachable!(),
    }
}

fn same(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        (x, y) => x == y,
    }
}

fn rule(op: Aggregation, distinct: bool, kind: Option<u8>, tf: Timeframe) -> TimeBasedRule {
    serde_json::from_value(json!({
        "name": "r",
        "collection": "events",
        "query": kind.map_or(json!({}), |k| json!({"kind": format!("k{k}")})),
        "operation": op.as_str(),
        "field": (op != Aggregation::Count).then_some("amount"),
        "arguments": if distinct { vec!["customer"] } else { vec![] },
        "saveMode": "timeframe",
        "timeframe": tf.as_str(),
        "timeField": "at",
    }))
    .unwrap()
}

async fn events(h: &Harness) -> Collection {
    h.collection(
        CollectionConfig::new("events").indexed_props(["kind", "amount", "customer", "at"]),
    )
    .await
}

/// Runs every (operation, timeframe) over one random data set and compares each period's
/// value with the brute force; the periods span the leap day of 2024 and a month boundary.
async fn check_case(h: &Harness, recs: &[Rec]) {
    let c = events(h).await;
    let live = load(&c, recs).await;
    let ops = [
        (Aggregation::Count, false),
        (Aggregation::Count, true),
        (Aggregation::Sum, false),
        (Aggregation::Average, false),
        (Aggregation::Min, false),
        (Aggregation::Max, false),
        (Aggregation::Median, false),
    ];
    let periods = [
        (
            Timeframe::Hourly,
            t("2024-02-29T13:00:00Z"),
            t("2024-02-29T14:00:00Z"),
        ),
        (
            Timeframe::Daily,
            t("2024-02-28T00:00:00Z"),
            t("2024-02-29T00:00:00Z"),
        ),
        (
            Timeframe::Daily,
            t("2024-02-29T00:00:00Z"),
            t("2024-03-01T00:00:00Z"),
        ),
        (
            Timeframe::Monthly,
            t("2024-02-01T00:00:00Z"),
            t("2024-03-01T00:00:00Z"),
        ),
        (
            Timeframe::Monthly,
            t("2024-03-01T00:00:00Z"),
            t("2024-04-01T00:00:00Z"),
        ),
    ];
    for (op, distinct) in ops {
        for kind in [None, Some(1)] {
            for (tf, start, end) in periods {
                let r = rule(op, distinct, kind, tf);
                let got = run_time_based(&r, "t1", &c, (start, end)).await.unwrap();
                let want = brute(op, distinct, kind, &live, start, end);
                assert!(
                    same(got.value, want),
                    "{op:?} distinct={distinct} kind={kind:?} {tf:?} {start}: got {:?}, want {want:?}",
                    got.value
                );
            }
        }
    }
}

fn cases() -> u32 {
    if cfg!(chronos_services) {
        6
    } else {
        12
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn every_operation_and_timeframe_equals_the_brute_force(recs in proptest::collection::vec(rec(), 0..40)) {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let (hs, _dir) = common::harnesses().await;
            for (_, h) in &hs {
                check_case(h, &recs).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_follow_the_calendar() {
    use chronos_analytics::timed::window;
    use chronos_analytics::RelativeTime;
    let rel = |n: Option<&str>, o: Option<&str>| RelativeTime {
        newer_than: n.map(str::to_string),
        older_than: o.map(str::to_string),
    };
    // P1M back from March 31 is the last day of February: 29 in 2024, 28 in 2025.
    let (from, to) = window(
        t("2024-03-01T00:00:00Z"),
        t("2024-03-31T00:00:00Z"),
        false,
        Some(&rel(Some("P1M"), None)),
    )
    .unwrap();
    assert_eq!(
        (from, to),
        (Some(t("2024-02-29T00:00:00Z")), t("2024-03-31T00:00:00Z"))
    );
    let (from, _) = window(
        t("2025-03-01T00:00:00Z"),
        t("2025-03-31T00:00:00Z"),
        false,
        Some(&rel(Some("P1M"), None)),
    )
    .unwrap();
    assert_eq!(from, Some(t("2025-02-28T00:00:00Z")));
    // olderThan moves the end; global has no start.
    let (from, to) = window(
        t("2024-01-01T00:00:00Z"),
        t("2024-01-02T00:00:00Z"),
        true,
        Some(&rel(None, Some("PT6H"))),
    )
    .unwrap();
    assert_eq!((from, to), (None, t("2024-01-01T18:00:00Z")));
    let (from, to) = window(
        t("2024-01-01T00:00:00Z"),
        t("2024-01-02T00:00:00Z"),
        false,
        Some(&rel(Some("P1Y2M3DT4H"), None)),
    )
    .unwrap();
    assert_eq!(
        (from, to),
        (Some(t("2022-10-29T20:00:00Z")), t("2024-01-02T00:00:00Z"))
    );

    // End to end: records on Feb 29 belong to February, March 1 to March.
    let h = chronos_testkit::memory_harness().await;
    let c = events(&h).await;
    for at in [
        "2024-02-29T00:00:00.000Z",
        "2024-02-29T23:59:59.999Z",
        "2024-03-01T00:00:00.000Z",
    ] {
        c.create(
            &json!({"kind": "k0", "at": at, "amount": 1}),
            CreateOptions::new(),
        )
        .await
        .unwrap();
    }
    let r = rule(Aggregation::Count, false, None, Timeframe::Monthly);
    let feb = run_time_based(
        &r,
        "t",
        &c,
        (t("2024-02-01T00:00:00Z"), t("2024-03-01T00:00:00Z")),
    )
    .await
    .unwrap();
    let mar = run_time_based(
        &r,
        "t",
        &c,
        (t("2024-03-01T00:00:00Z"), t("2024-04-01T00:00:00Z")),
    )
    .await
    .unwrap();
    assert_eq!((feb.value, mar.value), (Some(2.0), Some(1.0)));
    // olderThan beyond newerThan leaves an empty window: the aggregate of nothing.
    let empty = |op| TimeBasedRule {
        relative_time: Some(rel(Some("PT1H"), Some("PT2H"))),
        ..rule(op, false, None, Timeframe::Monthly)
    };
    let feb_period = (t("2024-02-01T00:00:00Z"), t("2024-03-01T00:00:00Z"));
    for (op, want) in [
        (Aggregation::Count, Some(0.0)),
        (Aggregation::Sum, Some(0.0)),
        (Aggregation::Median, None),
    ] {
        let r = run_time_based(&empty(op), "t", &c, feb_period)
            .await
            .unwrap();
        assert_eq!(r.value, want, "{op:?}");
    }
}

/// Results are stored once per (rule, tenant, period): a re-run replaces; queries filter
/// by rule, timeframe and tenant, newest first; cross-tenant modes combine tenant values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_replaced_per_period_and_cross_tenant_modes_combine() {
    let (hs, _dir) = common::harnesses().await;
    for (name, h) in &hs {
        let results = Results::new(h.docs.clone());
        let a = events(h).await;
        let b = events(h).await;
        for (c, amounts) in [(&a, vec![5, 7]), (&b, vec![])] {
            for n in amounts {
                c.create(
                    &json!({"kind": "k0", "amount": n, "at": "2024-01-01T10:00:00.000Z"}),
                    CreateOptions::new(),
                )
                .await
                .unwrap();
            }
        }
        let r = rule(Aggregation::Sum, false, None, Timeframe::Daily);
        let day = |d: u32| {
            (
                t(&format!("2024-01-{d:02}T00:00:00Z")),
                t(&format!("2024-01-{:02}T00:00:00Z", d + 1)),
            )
        };
        for d in [1, 2, 1] {
            let res = run_time_based(&r, "ta", &a, day(d)).await.unwrap();
            results.save_time_based(&res).await.unwrap();
        }
        let other = TimeBasedRule {
            name: "other".into(),
            ..r.clone()
        };
        results
            .save_time_based(&run_time_based(&other, "tb", &b, day(1)).await.unwrap())
            .await
            .unwrap();
        let q = ResultsQuery {
            rule_name: Some("r".into()),
            timeframe: Some("daily".into()),
            tenant_id: Some("ta".into()),
            limit: 10,
        };
        let got = results.time_based(&q).await.unwrap();
        assert_eq!(got.len(), 2, "{name}: one document per period");
        assert_eq!(
            (got[0].timestamp, got[0].value),
            (day(2).0, Some(0.0)),
            "{name}: newest first"
        );
        assert_eq!(
            (got[1].timestamp, got[1].value),
            (day(1).0, Some(12.0)),
            "{name}"
        );
        let global = TimeBasedRule {
            save_mode: SaveMode::Global,
            name: "g".into(),
            ..r.clone()
        };
        for d in [1, 2] {
            results
                .save_time_based(&run_time_based(&global, "ta", &a, day(d)).await.unwrap())
                .await
                .unwrap();
        }
        let g = results
            .time_based(&ResultsQuery {
                rule_name: Some("g".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(g.len(), 1, "{name}: a global rule keeps one document");
        assert_eq!((g[0].value, g[0].timestamp), (Some(12.0), day(2).1));

        let colls = vec![("ta".to_string(), a.clone()), ("tb".to_string(), b.clone())];
        let mut combined = Vec::new();
        for mode in ["boolean", "count", "sum", "max", "min", "average"] {
            let field = matches!(mode, "sum" | "max" | "min" | "average").then_some("amount");
            let rule: CrossTenantRule = serde_json::from_value(json!({
                "name": format!("x_{mode}"), "collection": "events", "query": {}, "mode": mode, "field": field,
                "masterTenantId": "ta", "slaveTenantIds": ["ta", "tb"], "timeField": "at"
            }))
            .unwrap();
            let res = run_cross_tenant(&rule, &colls, day(1)).await.unwrap();
            results.save_cross_tenant(&res).await.unwrap();
            combined.push((
                rule.mode,
                res.value,
                res.slave_results
                    .iter()
                    .map(|s| s.value)
                    .collect::<Vec<_>>(),
            ));
        }
        use CrossTenantMode::*;
        assert_eq!(
            combined,
            vec![
                (Boolean, Some(1.0), vec![Some(1.0), Some(0.0)]),
                (Count, Some(2.0), vec![Some(2.0), Some(0.0)]),
                (Sum, Some(12.0), vec![Some(12.0), Some(0.0)]),
                (Max, Some(7.0), vec![Some(7.0), None]),
                (Min, Some(5.0), vec![Some(5.0), None]),
                (Average, Some(6.0), vec![Some(6.0), None]),
            ],
            "{name}"
        );
        let x = results
            .cross_tenant(&ResultsQuery {
                tenant_id: Some("ta".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(x.len(), 6, "{name}");
        // The TTL clean-up deletes by period.
        assert_eq!(
            results.delete_before(day(2).0).await.unwrap(),
            1 + 1 + 6,
            "{name}"
        );
        assert_eq!(
            results
                .time_based(&ResultsQuery {
                    limit: 10,
                    ..Default::default()
                })
                .await
                .unwrap()
                .len(),
            2,
            "{name}"
        );
    }
}
