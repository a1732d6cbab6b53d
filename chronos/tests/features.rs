//! Cargo features: a configuration naming a backend this build lacks is `Unsupported`, with
//! the JSON path and the feature to enable; what is compiled in works.
//!
//! The workspace build has every feature (through `chronos-cli`); `cargo xtask test` also
//! runs this file on the embedded-only build (`--no-default-features --features sqlite,fs`),
//! where the other half of each test runs.

use chronos::{Chronos, ErrorKind, Scheme};
use serde_json::json;

fn config(uri: &str, spaces: serde_json::Value, local: bool) -> String {
    let dir = std::env::temp_dir();
    let mut tenant = json!({ "tenantId": "t", "dbConnRef": "c", "dbName": "db_t" });
    if spaces.as_object().is_some_and(|m| !m.is_empty()) {
        tenant["spaceConnRef"] = "s".into();
        tenant["bucket"] = "b".into();
    }
    json!({
        "dbConnections": { "c": { "mongoUri": uri } },
        "spacesConnections": spaces,
        "databases": { "runtime": { "tenantDatabases": [tenant] } },
        "localStorage": { "enabled": local, "basePath": dir.join("chronos-features").display().to_string() }
    })
    .to_string()
}

fn spaces(endpoint: &str) -> serde_json::Value {
    json!({ "s": { "endpoint": endpoint, "accessKey": "AK", "secretKey": "SK" } })
}

/// `Ok` when the feature is on; otherwise the error names the path and the feature.
fn check(result: chronos::Result<Chronos>, compiled: bool, path: &str, feature: &str) {
    match result {
        Ok(_) => assert!(compiled, "{path} accepted without feature {feature}"),
        Err(e) => {
            assert!(!compiled, "{path} rejected with feature {feature} on: {e}");
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
            let msg = e.to_string();
            assert!(msg.contains(path), "{msg}");
            assert!(msg.contains(&format!("`{feature}`")), "{msg}");
        }
    }
}

/// An index configuration whose blobs go wherever this build can put them.
fn index_config(uri: &str) -> String {
    if cfg!(feature = "fs") {
        config(uri, json!({}), true)
    } else {
        config(uri, spaces("https://s3.example.com"), false)
    }
}

#[test]
fn index_schemes_follow_the_features() {
    if !cfg!(any(feature = "fs", feature = "s3")) {
        eprintln!("SKIPPED: no blob backend besides memory in this build");
        return;
    }
    check(
        Chronos::from_json(&index_config("mongodb://127.0.0.1:1")),
        Scheme::Mongodb.compiled(),
        "dbConnections.c.mongoUri",
        "mongodb",
    );
    check(
        Chronos::from_json(&index_config("sqlite://x")),
        Scheme::Sqlite.compiled(),
        "dbConnections.c.mongoUri",
        "sqlite",
    );
    assert_eq!(Scheme::Mongodb.compiled(), cfg!(feature = "mongodb"));
    assert_eq!(Scheme::Sqlite.compiled(), cfg!(feature = "sqlite"));
}

#[test]
fn blob_kinds_follow_the_features() {
    check(
        Chronos::from_json(&config(
            "memory://",
            spaces("https://s3.example.com"),
            false,
        )),
        cfg!(feature = "s3"),
        "spacesConnections.s",
        "s3",
    );
    check(
        Chronos::from_json(&config(
            "memory://",
            spaces("https://acct.blob.core.windows.net"),
            false,
        )),
        cfg!(feature = "azure"),
        "spacesConnections.s",
        "azure",
    );
    check(
        Chronos::from_json(&config("memory://", json!({}), true)),
        cfg!(feature = "fs"),
        "localStorage",
        "fs",
    );
}

/// `memory://` is always there and needs no disk: without `localStorage` or a spaces
/// connection its payloads stay in memory too, one store per database.
#[tokio::test]
async fn memory_needs_no_feature_and_no_disk() {
    let c = Chronos::from_json(
        &json!({
            "dbConnections": { "c": { "mongoUri": "memory://" } },
            "databases": { "runtime": { "tenantDatabases": [
                { "tenantId": "t", "dbConnRef": "c", "dbName": "db_t" },
                { "tenantId": "u", "dbConnRef": "c", "dbName": "db_u" }
            ] } }
        })
        .to_string(),
    )
    .unwrap();
    let t = c
        .with(&chronos::Route::runtime("t", "users"))
        .await
        .unwrap();
    let u = c
        .with(&chronos::Route::runtime("u", "users"))
        .await
        .unwrap();
    let w = t
        .create(&json!({"name": "Ada"}), chronos::CreateOptions::new())
        .await
        .unwrap();
    let read = |coll: chronos::Collection| async move {
        coll.get_latest(w.id, chronos::ReadOptions::new())
            .await
            .unwrap()
    };
    assert_eq!(read(t.clone()).await.unwrap().data["name"], "Ada");
    assert!(
        read(u.clone()).await.is_none(),
        "tenant u sees tenant t's record"
    );
    // Sweeping u's payloads (its own in-memory store) cannot touch t's.
    u.sweep(std::time::Duration::from_secs(3600)).await.unwrap();
    assert_eq!(read(t).await.unwrap().data["name"], "Ada");
    c.shutdown().await;
}
