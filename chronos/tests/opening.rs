//! Opening backends: a tenant whose server is slow to answer never delays another tenant's
//! `with()` (no lock is held across a network open), and concurrent first uses of one
//! collection open it once.

use std::time::Duration;

use chronos::{Chronos, Route};
use serde_json::json;

/// A "server" that accepts connections and never answers: every open against it hangs until
/// the driver's timeout.
fn silent_server() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tenant_does_not_block_others() {
    let (_server, port) = silent_server();
    let dir = tempfile::tempdir().unwrap();
    let chronos = Chronos::from_json(
        &json!({
            "dbConnections": {
                "far": { "mongoUri": format!("mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=20000&directConnection=true") },
                "near": { "mongoUri": format!("sqlite://{}", dir.path().join("db").display()) }
            },
            "databases": { "runtime": { "tenantDatabases": [
                { "tenantId": "slow", "dbConnRef": "far", "dbName": "slow_db" },
                { "tenantId": "fast", "dbConnRef": "near", "dbName": "fast_db" }
            ] } },
            "localStorage": { "enabled": true, "basePath": dir.path().join("blobs").display().to_string() }
        })
        .to_string(),
    )
    .unwrap();
    let slow = {
        let c = chronos.clone();
        tokio::spawn(async move { c.with(&Route::runtime("slow", "users")).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!slow.is_finished(), "the silent server answered?");
    let started = std::time::Instant::now();
    let fast = tokio::time::timeout(
        Duration::from_secs(10),
        chronos.with(&Route::runtime("fast", "users")),
    )
    .await
    .expect("tenant 'fast' waited for tenant 'slow' to open")
    .unwrap();
    fast.create(&json!({"n": 1}), chronos::CreateOptions::new())
        .await
        .unwrap();
    assert!(
        !slow.is_finished(),
        "slow tenant finished first: nothing was shown"
    );
    eprintln!(
        "fast tenant opened in {:?} while the slow one hung",
        started.elapsed()
    );
    slow.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_uses_open_once() {
    let dir = tempfile::tempdir().unwrap();
    let chronos = Chronos::embedded(dir.path()).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let c = chronos.clone();
            tokio::spawn(async move { c.with(&Route::runtime("default", "users")).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        let coll = t.await.unwrap().unwrap();
        ids.push(coll.database_id().to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    // The runtime database and its analytics database (the embedded default keeps
    // counters), each opened once.
    assert_eq!(chronos.open_backends().await, 2);
    chronos.shutdown().await;
}

/// `health` probes what is open, leaves the rest alone unless asked, and reports an
/// unreachable server per backend, without its password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_each_backend() {
    use chronos::{HealthState, Role};
    // A port nothing listens on: connections are refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let chronos = Chronos::from_json(
        &json!({
            "dbConnections": {
                "down": { "mongoUri": format!("mongodb://ops:S3cretPw@127.0.0.1:{closed}/?serverSelectionTimeoutMS=300&directConnection=true") },
                "near": { "mongoUri": format!("sqlite://{}", dir.path().join("db").display()) }
            },
            "databases": { "runtime": { "tenantDatabases": [
                { "tenantId": "a", "dbConnRef": "near", "dbName": "a_db" },
                { "tenantId": "b", "dbConnRef": "down", "dbName": "b_db" }
            ] } },
            "localStorage": { "enabled": true, "basePath": dir.path().join("blobs").display().to_string() }
        })
        .to_string(),
    )
    .unwrap();
    let before = chronos.health(false).await;
    assert_eq!(before.backends.len(), 4, "{before:?}");
    assert!(before
        .backends
        .iter()
        .all(|b| b.state == HealthState::NotOpened));
    assert!(before.ok());
    assert_eq!(chronos.open_backends().await, 0, "health opened something");

    chronos.with(&Route::runtime("a", "users")).await.unwrap();
    let used = chronos.health(false).await;
    let a: Vec<_> = used
        .backends
        .iter()
        .filter(|b| b.used_by.contains("tenantDatabases[0]"))
        .collect();
    assert_eq!(a.len(), 2);
    assert!(
        a.iter()
            .all(|b| matches!(b.state, HealthState::Reachable { .. })),
        "{a:?}"
    );
    assert!(used.ok());

    let all = chronos.health(true).await;
    let b = all
        .backends
        .iter()
        .find(|b| b.role == Role::Index && b.name.contains("'down'"))
        .unwrap();
    match &b.state {
        HealthState::Unreachable { error } => {
            assert!(error.contains("UNAVAILABLE"), "{error}");
            assert!(!error.contains("S3cretPw"), "{error}");
        }
        other => panic!("a refused connection is reachable? {other:?}"),
    }
    assert!(!all.ok());
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("S3cretPw"), "{text}");
    assert!(text.contains("\"state\":\"unreachable\""), "{text}");
    chronos.shutdown().await;
}
