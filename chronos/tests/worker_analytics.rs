//! The worker through the facade: time-based and cross-tenant rules from the config, run by
//! `Chronos::worker` on memory, SQLite and MongoDB.
//! - Late data: 10,000 records with event instants over the last 90 days (MongoDB: 1,000
//!   over 20), then one catch-up pass;
//!   every daily result equals the brute force.
//! - Two workers (two `Chronos` instances, as two processes would have) on one SQLite file
//!   and one MongoDB database for 3 periods: each (rule, period) runs once, counted from both
//!   workers' reports, and the stored results are those of the brute force.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chronos::analytics::ResultsQuery;
use chronos::worker::WorkerConfig;
use chronos::{Chronos, Route};
use chronos_core::time::format_instant;
use chronos_core::{CreateOptions, Timestamp};
use serde_json::{json, Value};

mod counters_support;
use counters_support::{suffix, uris};

const NOW: &str = "2026-12-02T00:00:00Z";
const DAY_MS: i64 = 86_400_000;

fn config(uri: &str, dir: &std::path::Path, s: &str) -> String {
    let tenant = |t: &str| {
        json!({ "tenantId": t, "dbConnRef": "c", "dbName": format!("rt_{t}_{s}"),
                "analyticsDbName": format!("an_{t}_{s}") })
    };
    json!({
        "dbConnections": { "c": { "mongoUri": uri } },
        "spacesConnections": {},
        "databases": { "runtime": { "tenantDatabases": [tenant("a"), tenant("b")] } },
        "localStorage": { "enabled": true, "basePath": dir.join(format!("blobs_{s}")).display().to_string() },
        "collectionMaps": { "sales": { "indexedProps": ["kind", "amount", "customer", "at"] } },
        "analytics": {
            "tenants": ["a", "b"],
            "timeBasedRules": [
                { "name": "daily_revenue", "collection": "sales", "query": { "kind": "sale" },
                  "operation": "sum", "field": "amount", "saveMode": "timeframe", "timeframe": "daily", "timeField": "at" },
                { "name": "daily_customers", "collection": "sales", "query": {},
                  "operation": "count", "arguments": ["customer"], "saveMode": "timeframe", "timeframe": "daily", "timeField": "at" },
                { "name": "daily_median", "collection": "sales", "query": {},
                  "operation": "median", "field": "amount", "saveMode": "timeframe", "timeframe": "daily", "timeField": "at" }
            ],
            "crossTenantRules": [
                { "name": "revenue_all", "collection": "sales", "query": { "kind": "sale" }, "mode": "sum", "field": "amount",
                  "masterTenantId": "a", "slaveTenantIds": ["a", "b"], "timeField": "at" }
            ]
        }
    })
    .to_string()
}

/// Record `i` of tenant `t`: an event instant within the `days` days before NOW.
fn record(t: usize, i: usize, days: i64) -> (i64, Value) {
    let now = NOW.parse::<Timestamp>().unwrap().as_millisecond();
    let h = (i as i64 * 7919 + t as i64 * 104_729) * 2_654_435_761 % (days * DAY_MS);
    let at = now - 1 - h.abs();
    let at_ts = Timestamp::from_millisecond(at).unwrap();
    let body = json!({
        "kind": if i % 4 == 0 { "refund" } else { "sale" },
        "amount": (i % 97) as f64 + if i % 3 == 0 { 0.5 } else { 0.0 },
        "customer": format!("c{}", i % 37),
        "at": if i % 2 == 0 { json!(format_instant(at_ts)) } else { json!(at) },
    });
    (at, body)
}

/// Per tenant: day start (ms) → the records of that day.
type Days = BTreeMap<i64, Vec<Value>>;

async fn load(chronos: &Chronos, per_tenant: usize, days: i64) -> [Days; 2] {
    let mut out = [Days::new(), Days::new()];
    for (t, name) in ["a", "b"].iter().enumerate() {
        let c = chronos.with(&Route::runtime(*name, "sales")).await.unwrap();
        let mut pending = Vec::new();
        for i in 0..per_tenant {
            let (at, body) = record(t, i, days);
            out[t]
                .entry(at.div_euclid(DAY_MS) * DAY_MS)
                .or_default()
                .push(body.clone());
            pending.push(body);
        }
        // Concurrent creates (bounded), so loading 10,000 records takes seconds.
        use futures::StreamExt;
        let results: Vec<_> = futures::stream::iter(pending)
            .map(|b| {
                let c = c.clone();
                async move { c.create(&b, CreateOptions::new()).await }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        assert!(results.iter().all(|r| r.is_ok()));
    }
    out
}

fn amounts(recs: &[Value], sales_only: bool) -> Vec<f64> {
    recs.iter()
        .filter(|r| !sales_only || r["kind"] == "sale")
        .map(|r| r["amount"].as_f64().unwrap())
        .collect()
}

/// The brute force of each rule for one tenant-day.
fn expected(rule: &str, recs: &[Value]) -> Option<f64> {
    match rule {
        "daily_revenue" => Some(amounts(recs, true).iter().sum()),
        "daily_customers" => Some(
            recs.iter()
                .map(|r| r["customer"].as_str().unwrap())
                .collect::<HashSet<_>>()
                .len() as f64,
        ),
        "daily_median" => {
            let mut xs = amounts(recs, false);
            xs.sort_by(f64::total_cmp);
            let n = xs.len();
            (n > 0).then(|| (xs[(n - 1) / 2] + xs[n / 2]) / 2.0)
        }
        _ => unreachable!(),
    }
}

/// Every daily result of every rule and tenant, and of the cross-tenant rule, equals the
/// brute force for the `days` days before NOW (days without records included).
async fn check_results(chronos: &Chronos, data: &[Days; 2], days: i64, label: &str) {
    let now = NOW.parse::<Timestamp>().unwrap().as_millisecond();
    let empty = Vec::new();
    for rule in ["daily_revenue", "daily_customers", "daily_median"] {
        for (t, name) in ["a", "b"].iter().enumerate() {
            let q = ResultsQuery {
                rule_name: Some(rule.into()),
                timeframe: Some("daily".into()),
                limit: 1000,
                ..Default::default()
            };
            let got = chronos.get_time_based_results(name, &q).await.unwrap();
            assert_eq!(
                got.len() as i64,
                days,
                "{label}: {rule} {name}: one result per day"
            );
            for r in &got {
                let day = r.timestamp.as_millisecond();
                assert!(day < now && day >= now - days * DAY_MS, "{label}: {day}");
                let want = expected(rule, data[t].get(&day).unwrap_or(&empty));
                assert_eq!(r.value, want, "{label}: {rule} {name} day {}", r.timestamp);
            }
        }
    }
    let q = ResultsQuery {
        rule_name: Some("revenue_all".into()),
        limit: 1000,
        ..Default::default()
    };
    let got = chronos.get_cross_tenant_results("a", &q).await.unwrap();
    assert_eq!(got.len() as i64, days, "{label}: cross-tenant");
    for r in &got {
        let day = r.timestamp.as_millisecond();
        let per: Vec<f64> = (0..2)
            .map(|t| {
                amounts(data[t].get(&day).unwrap_or(&empty), true)
                    .iter()
                    .sum()
            })
            .collect();
        assert_eq!(
            r.value,
            Some(per[0] + per[1]),
            "{label}: cross-tenant day {}",
            r.timestamp
        );
        assert_eq!(
            r.slave_results.iter().map(|s| s.value).collect::<Vec<_>>(),
            vec![Some(per[0]), Some(per[1])]
        );
    }
}

fn worker_config(days: i64, id: &str) -> WorkerConfig {
    WorkerConfig {
        horizon: Duration::from_secs(days as u64 * 86_400),
        worker_id: id.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_data_is_caught_up_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for uri in uris(dir.path()) {
        let mongo = uri.starts_with("mongodb");
        // The test server (SecantusDB) answers an aggregation in ~0.1 s: there 1,000 records
        // over 20 days (80 runs), elsewhere 10,000 over 90 (360 runs).
        let (per_tenant, days) = if mongo { (500, 20) } else { (5_000, 90) };
        let s = suffix();
        let chronos = Chronos::from_json(&config(&uri, dir.path(), &s)).unwrap();
        assert!(
            !chronos
                .unsupported_options()
                .iter()
                .any(|o| o.contains("Rules")),
            "{:?}",
            chronos.unsupported_options()
        );
        let data = load(&chronos, per_tenant, days).await;
        let worker = chronos.worker(worker_config(days, "w1")).await.unwrap();
        let now: Timestamp = NOW.parse().unwrap();
        let pass = worker.run_due(now).await.unwrap();
        assert!(pass.failed.is_empty(), "{uri}: {:?}", pass.failed);
        assert_eq!(
            pass.ran.len() as i64,
            4 * days,
            "{uri}: 4 jobs × {days} days"
        );
        check_results(&chronos, &data, days, &uri).await;
        // Nothing is due again; a re-run of a period replaces its results.
        assert!(worker.run_due(now).await.unwrap().ran.is_empty());
        chronos.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_run_each_rule_and_period_once() {
    let dir = tempfile::tempdir().unwrap();
    for uri in uris(dir.path())
        .into_iter()
        .filter(|u| !u.starts_with("memory"))
    {
        let s = suffix();
        let cfg = config(&uri, dir.path(), &s);
        let one = Chronos::from_json(&cfg).unwrap();
        let two = Chronos::from_json(&cfg).unwrap();
        let days = 3;
        let data = load(&one, 300, days).await;
        let w1 = one.worker(worker_config(days, "w1")).await.unwrap();
        let w2 = two.worker(worker_config(days, "w2")).await.unwrap();
        let now: Timestamp = NOW.parse().unwrap();
        let (r1, r2) = tokio::join!(w1.run_due(now), w2.run_due(now));
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        let mut runs: Vec<_> = r1
            .ran
            .iter()
            .chain(&r2.ran)
            .map(|r| (r.job.clone(), r.start))
            .collect();
        let total = runs.len();
        runs.sort();
        runs.dedup();
        assert_eq!(total, runs.len(), "{uri}: a (job, period) ran twice");
        assert_eq!(total as i64, 4 * days, "{uri}: every (job, period) ran");
        assert!(r1.failed.is_empty() && r2.failed.is_empty(), "{uri}");
        check_results(&two, &data, days, &uri).await;
        one.shutdown().await;
        two.shutdown().await;
    }
}
