//! The facade on a real MongoDB-wire server (`CHRONOS_TEST_MONGODB_URI`, started by
//! `cargo xtask test`): one driver client per distinct URI even under concurrent first use,
//! tenants isolated in their own databases, `shutdown` closes every client.

#![cfg(chronos_services)]

use chronos::{Chronos, Route};
use chronos_core::{CreateOptions, ErrorKind, ListOptions, ReadOptions};
use serde_json::json;

fn uri() -> Option<String> {
    chronos_testkit::service_var("CHRONOS_TEST_MONGODB_URI")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_per_uri_and_isolated_tenants() {
    let Some(uri) = uri() else { return };
    let dir = tempfile::tempdir().unwrap();
    let suffix = &chronos_core::ItemId::generate().to_string()[14..];
    // Two connection names, one URI; a third name with a different URI string.
    let other = if uri.contains('?') {
        format!("{uri}&appName=chronos-b")
    } else {
        format!("{uri}?appName=chronos-b")
    };
    let cfg = json!({
        "dbConnections": { "m1": { "mongoUri": uri }, "m2": { "mongoUri": uri }, "m3": { "mongoUri": other } },
        "spacesConnections": {},
        "databases": { "runtime": { "tenantDatabases": [
            { "tenantId": "a", "dbConnRef": "m1", "dbName": format!("rt_a_{suffix}") },
            { "tenantId": "b", "dbConnRef": "m2", "dbName": format!("rt_b_{suffix}") },
            { "tenantId": "c", "dbConnRef": "m3", "dbName": format!("rt_c_{suffix}") }
        ] } },
        "localStorage": { "enabled": true, "basePath": dir.path().display().to_string() }
    });
    let chronos = Chronos::from_json(&cfg.to_string()).unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let c = chronos.clone();
            let tenant = if i % 2 == 0 { "a" } else { "b" };
            tokio::spawn(async move { c.with(&Route::runtime(tenant, "users")).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        chronos.open_clients().await,
        1,
        "m1 and m2 share one client"
    );
    let a = chronos.with(&Route::runtime("a", "users")).await.unwrap();
    let b = chronos.with(&Route::runtime("b", "users")).await.unwrap();
    let c = chronos.with(&Route::runtime("c", "users")).await.unwrap();
    assert_eq!(chronos.open_clients().await, 2);
    let w = a
        .create(&json!({"email": "x@a"}), CreateOptions::new())
        .await
        .unwrap();
    assert!(b
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    assert!(c
        .list_by_meta(ListOptions::new())
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        a.get_latest(w.id, ReadOptions::new())
            .await
            .unwrap()
            .unwrap()
            .data["email"],
        "x@a"
    );
    assert_eq!(
        chronos
            .with(&Route::runtime("zz", "users"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::TenantNotConfigured
    );
    chronos.shutdown().await;
    assert_eq!(chronos.open_clients().await, 0);
    assert_eq!(
        chronos
            .with(&Route::runtime("a", "users"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unavailable
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_can_be_switched_off() {
    let Some(uri) = uri() else { return };
    let dir = tempfile::tempdir().unwrap();
    let suffix = &chronos_core::ItemId::generate().to_string()[14..];
    let cfg = json!({
        "dbConnections": { "m": { "mongoUri": uri } },
        "spacesConnections": {},
        "databases": { "logs": { "dbConnRef": "m", "dbName": format!("logs_{suffix}") } },
        "localStorage": { "enabled": true, "basePath": dir.path().display().to_string() },
        "transactions": { "enabled": false }
    });
    let chronos = Chronos::from_json(&cfg.to_string()).unwrap();
    assert!(chronos.unsupported_options().is_empty());
    let logs = chronos.with(&Route::logs("audit")).await.unwrap();
    let w = logs
        .create(&json!({"event": "login"}), CreateOptions::new())
        .await
        .unwrap();
    assert_eq!(
        logs.get_latest(w.id, ReadOptions::new())
            .await
            .unwrap()
            .unwrap()
            .data["event"],
        "login"
    );
    chronos.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_without_s3_example_runs_on_mongodb() {
    let Some(uri) = uri() else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/without-s3.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["dbConnections"]["local"]["mongoUri"] = json!(uri);
    v["localStorage"]["basePath"] = json!(dir.path().join("data").display().to_string());
    let suffix = &chronos_core::ItemId::generate().to_string()[14..];
    v["databases"]["runtime"]["tenantDatabases"][0]["dbName"] =
        json!(format!("chronos_runtime_tenant_a_{suffix}"));
    let chronos = Chronos::from_json(&v.to_string()).unwrap();
    let users = chronos
        .with(&Route::runtime("tenant-a", "users"))
        .await
        .unwrap();
    let w = users
        .create(
            &json!({"email": "user@tenant-a.com", "name": "User A"}),
            CreateOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        users
            .get_latest(w.id, ReadOptions::new())
            .await
            .unwrap()
            .unwrap()
            .data["name"],
        "User A"
    );
    chronos.shutdown().await;
}
