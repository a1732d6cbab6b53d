//! The facade on real blob services (SeaweedFS for S3, Azurite for Azure — started by
//! `cargo xtask test`): `spacesConnections` wired from configuration, one client per
//! connection, the spec's shared-bucket setup kept apart by blob prefixes, compression.

#![cfg(chronos_services)]

use chronos::{Chronos, Route};
use chronos_core::{CreateOptions, ItemId, ReadOptions};
use chronos_testkit::service_var;
use serde_json::{json, Value};

/// Tenants `a` and `b` share one S3 bucket (distinct dbNames), tenant `c` is on Azure; the
/// index is SQLite in `dir`.
fn config(dir: &str) -> Option<Value> {
    let s3 = service_var("CHRONOS_TEST_S3_ENDPOINT")?;
    let azure = service_var("CHRONOS_TEST_AZURE_ENDPOINT")?;
    let suffix = &ItemId::generate().to_string()[14..];
    Some(json!({
        "dbConnections": { "local": { "mongoUri": format!("sqlite://{dir}") } },
        "spacesConnections": {
            "s3-shared": {
                "endpoint": s3, "region": "us-east-1", "forcePathStyle": true,
                "accessKey": service_var("CHRONOS_TEST_S3_ACCESS_KEY")?,
                "secretKey": service_var("CHRONOS_TEST_S3_SECRET_KEY")?
            },
            "azure-main": {
                "endpoint": azure, "kind": "azure",
                "accessKey": service_var("CHRONOS_TEST_AZURE_ACCOUNT")?,
                "secretKey": service_var("CHRONOS_TEST_AZURE_KEY")?
            }
        },
        "databases": { "runtime": { "tenantDatabases": [
            { "tenantId": "a", "dbConnRef": "local", "spaceConnRef": "s3-shared",
              "bucket": service_var("CHRONOS_TEST_S3_BUCKET")?, "dbName": format!("rt_a_{suffix}") },
            { "tenantId": "b", "dbConnRef": "local", "spaceConnRef": "s3-shared",
              "bucket": service_var("CHRONOS_TEST_S3_BUCKET")?, "dbName": format!("rt_b_{suffix}") },
            { "tenantId": "c", "dbConnRef": "local", "spaceConnRef": "azure-main",
              "bucket": service_var("CHRONOS_TEST_AZURE_CONTAINER")?, "dbName": format!("rt_c_{suffix}") }
        ] } },
        "writeOptimization": { "compressionEnabled": true }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_and_azure_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let Some(cfg) = config(&dir.path().display().to_string()) else {
        return;
    };
    let chronos = Chronos::from_json(&cfg.to_string()).unwrap();
    assert!(
        chronos.unsupported_options().is_empty(),
        "{:?}",
        chronos.unsupported_options()
    );

    let a = chronos.with(&Route::runtime("a", "users")).await.unwrap();
    let b = chronos.with(&Route::runtime("b", "users")).await.unwrap();
    let c = chronos.with(&Route::runtime("c", "users")).await.unwrap();
    assert_eq!(
        chronos.open_space_clients().await,
        2,
        "one client per spaces connection"
    );

    let big = json!({"text": "0123456789abcdef".repeat(200)});
    let wa = a
        .create(&json!({"who": "a"}), CreateOptions::new())
        .await
        .unwrap();
    let wb = b.create(&big, CreateOptions::new()).await.unwrap();
    let wc = c.create(&big, CreateOptions::new()).await.unwrap();
    let db = |route: &Route| {
        let t = route.resolve(chronos.config()).unwrap();
        t.db_name
    };
    // a and b share the bucket: their keys carry their dbName; c is alone in its container.
    let a_keys = a.history(wa.id, Default::default()).await.unwrap().versions;
    let a_key = &a_keys[0].blob_key;
    assert!(
        a_key.starts_with(&format!("{}/users/", db(&Route::runtime("a", "users")))),
        "{a_key}"
    );
    let b_key = b.history(wb.id, Default::default()).await.unwrap().versions[0]
        .blob_key
        .clone();
    assert!(
        b_key.starts_with(&format!("{}/users/", db(&Route::runtime("b", "users")))),
        "{b_key}"
    );
    assert!(b_key.ends_with(".json.gz"), "compressed: {b_key}");
    let c_key = c.history(wc.id, Default::default()).await.unwrap().versions[0]
        .blob_key
        .clone();
    assert!(
        c_key.starts_with("users/") && c_key.ends_with(".json.gz"),
        "{c_key}"
    );

    // a's sweep removes a's orphan and never b's payloads.
    let orphan = format!(
        "{}/users/{}/v0/item-{}-1-0011223344556677.json",
        db(&Route::runtime("a", "users")),
        ItemId::generate(),
        a.database_id()
    );
    a.stores()
        .blob
        .put_if_absent(&orphan, bytes::Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let r = a.sweep(a.config().min_sweep_grace()).await.unwrap();
    assert_eq!(r.removed, vec![orphan]);
    for (coll, id, expected) in [
        (&a, wa.id, json!({"who": "a"})),
        (&b, wb.id, big.clone()),
        (&c, wc.id, big.clone()),
    ] {
        let got = coll
            .get_latest(id, ReadOptions::new())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(serde_json::to_value(&got.data).unwrap(), expected);
    }
    // Tenants do not see each other's records.
    assert!(b
        .get_latest(wa.id, ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    chronos.shutdown().await;
    assert_eq!(chronos.open_space_clients().await, 0);
}

/// `ensure_buckets` (`chronos init`) creates the configured buckets that are missing, once;
/// before it, a write into a missing Azure container names the bucket and how to create it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_buckets_creates_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut cfg) = config(&dir.path().display().to_string()) else {
        return;
    };
    let suffix = &ItemId::generate().to_string()[14..];
    let (s3_bucket, container) = (format!("init-s3-{suffix}"), format!("init-az-{suffix}"));
    let tenants = cfg["databases"]["runtime"]["tenantDatabases"]
        .as_array_mut()
        .unwrap();
    tenants[1]["bucket"] = s3_bucket.clone().into();
    tenants[2]["bucket"] = container.clone().into();
    let chronos = Chronos::from_json(&cfg.to_string()).unwrap();

    let c = chronos.with(&Route::runtime("c", "users")).await.unwrap();
    let e = c
        .create(&json!({"n": 1}), CreateOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), chronos::ErrorKind::InvalidConfig, "{e}");
    assert!(
        e.to_string().contains(&format!(
            "bucket '{container}' of spaces connection 'azure-main' does not exist"
        )),
        "{e}"
    );

    let made = chronos.ensure_buckets().await.unwrap();
    let created: Vec<(&str, bool)> = made
        .iter()
        .map(|b| (b.bucket.as_str(), b.created))
        .collect();
    let shared = service_var("CHRONOS_TEST_S3_BUCKET").unwrap();
    assert_eq!(
        created,
        [
            (shared.as_str(), false),
            (s3_bucket.as_str(), true),
            (container.as_str(), true)
        ]
    );
    assert!(chronos
        .ensure_buckets()
        .await
        .unwrap()
        .iter()
        .all(|b| !b.created));
    let w = c
        .create(&json!({"n": 1}), CreateOptions::new())
        .await
        .unwrap();
    assert!(c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .is_some());
    chronos.shutdown().await;
}
