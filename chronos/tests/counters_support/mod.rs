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

pub fn suffix() -> String {
    chronos_core::ItemId::generate().to_string()[14..].to_string()
}
