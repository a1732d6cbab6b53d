//! Shared by the counters tests: a configuration with one tenant counted (`a`, with an
//! analytics database) and one not (`b`), and the backends to run on.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use serde_json::json;

pub fn config(uri: &str, dir: &Path, suffix: &str) -> String {
    json!({
        "dbConnections": { "c": { "mongoUri": uri } },
        "spacesConnections": {},
        "databases": { "runtime": { "tenantDatabases": [
            { "tenantId": "a", "dbConnRef": "c", "dbName": format!("rt_a_{suffix}"),
              "analyticsDbName": format!("an_a_{suffix}") },
            { "tenantId": "b", "dbConnRef": "c", "dbName": format!("rt_b_{suffix}") }
        ]}},
        "localStorage": { "enabled": true, "basePath": dir.join("blobs").display().to_string() },
        "counterRules": { "rules": [
            { "name": "big", "on": ["CREATE"], "when": { "n": { "$gte": 10 } }, "countUnique": ["k"] }
        ]}
    })
    .to_string()
}

/// The backends: memory and SQLite, MongoDB with the server suites.
pub fn uris(dir: &Path) -> Vec<String> {
    #[allow(unused_mut)]
    let mut out = vec![
        "memory://".to_string(),
        format!("sqlite://{}", dir.join("db").display()),
    ];
    #[cfg(all(chronos_services, feature = "mongodb"))]
    out.push(chronos_testkit::service_var("CHRONOS_TEST_MONGODB_URI").unwrap());
    #[cfg(not(all(chronos_services, feature = "mongodb")))]
    eprintln!("SKIPPED on MongoDB: the server suites are not compiled (run `cargo xtask test`)");
    out
}

/// `days` days after today's midnight (UTC), plus half an hour: with a two-hour worker
/// horizon, the day that ended then is due (and the last two hours).
pub fn half_past_midnight(days: i64) -> chronos_core::Timestamp {
    chronos::Granularity::Day
        .start(chronos_core::Timestamp::now())
        .checked_add(jiff::Span::new().days(days))
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .checked_add(jiff::SignedDuration::from_mins(30))
        .unwrap()
}

/// A worker as the maintenance tests run it: a two-hour horizon.
pub async fn worker(chronos: &chronos::Chronos) -> chronos::worker::Worker {
    chronos
        .worker(chronos::worker::WorkerConfig {
            horizon: std::time::Duration::from_secs(2 * 3600),
            worker_id: "w".into(),
            ..Default::default()
        })
        .await
        .unwrap()
}

pub fn suffix() -> String {
    chronos_core::ItemId::generate().to_string()[14..].to_string()
}
