//! Databases that keep their blobs in one place never lose payloads to each other's sweeps:
//! one directory spelled several ways in one configuration, and two configurations (two
//! applications, which no config check can see) sharing one directory and one `dbName`.
//! Reads come from a fresh `Chronos` (no write cache), as another process would make them.

use std::path::Path;

use chronos::{Chronos, Route};
use chronos_core::{Collection, CreateOptions, ItemId, ReadOptions, WriteOptions};
use serde_json::{json, Value};

fn config(index_dir: &Path, blobs: &Path, tenants: &[(&str, &str, &str)]) -> String {
    let tenant_dbs: Vec<Value> = tenants
        .iter()
        .map(|(t, db, bucket)| json!({"tenantId": t, "dbConnRef": "c", "dbName": db, "bucket": bucket}))
        .collect();
    json!({
        "dbConnections": { "c": { "mongoUri": format!("sqlite://{}", index_dir.display()) } },
        "spacesConnections": {},
        "databases": { "runtime": { "tenantDatabases": tenant_dbs } },
        "localStorage": { "enabled": true, "basePath": blobs.display().to_string() }
    })
    .to_string()
}

/// Writes three records (each updated once) and plants one orphan of the collection's own
/// database written long ago; returns the records' ids and expected latest data.
async fn fill(c: &Collection, who: &str) -> (Vec<(ItemId, Value)>, String) {
    let mut out = Vec::new();
    for n in 0..3 {
        let w = c
            .create(&json!({"who": who, "n": n}), CreateOptions::new())
            .await
            .unwrap();
        let latest = json!({"who": who, "n": n + 10});
        c.update(w.id, &latest, WriteOptions::new()).await.unwrap();
        out.push((w.id, latest));
    }
    let orphan = format!(
        "{}{}/{}/v0/item-{}-1-00112233.json",
        c.config().blob_prefix,
        c.name(),
        ItemId::generate(),
        c.database_id()
    );
    c.stores()
        .blob
        .put_if_absent(&orphan, bytes::Bytes::from_static(b"{}"))
        .await
        .unwrap();
    (out, orphan)
}

async fn sweep(c: &Collection) -> chronos_core::SweepReport {
    c.sweep(c.config().min_sweep_grace()).await.unwrap()
}

async fn read_all(chronos: &Chronos, tenant: &str, expected: &[(ItemId, Value)]) {
    let c = chronos
        .with(&Route::runtime(tenant, "users"))
        .await
        .unwrap();
    for (id, data) in expected {
        let got = c
            .get_latest(*id, ReadOptions::new())
            .await
            .unwrap_or_else(|e| panic!("{tenant}'s record {id}: {e}"))
            .unwrap();
        assert_eq!(&serde_json::to_value(&got.data).unwrap(), data);
        assert!(c
            .get_version(*id, 0, ReadOptions::new())
            .await
            .unwrap()
            .is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_directory_spelled_differently() {
    for (spell_a, spell_b) in [
        ("shared", "shared/"),
        ("shared", "./shared"),
        ("./shared/", "shared"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(
            &dir.path().join("idx"),
            &dir.path().join("blobs"),
            &[("a", "db_a", spell_a), ("b", "db_b", spell_b)],
        );
        let chronos = Chronos::from_json(&cfg).unwrap();
        let a = chronos.with(&Route::runtime("a", "users")).await.unwrap();
        let b = chronos.with(&Route::runtime("b", "users")).await.unwrap();
        // The spellings are recognised as one place: each database writes under its name.
        assert_eq!(a.config().blob_prefix, "db_a/", "{spell_a} / {spell_b}");
        assert_eq!(b.config().blob_prefix, "db_b/", "{spell_a} / {spell_b}");
        let (ra, orphan_a) = fill(&a, "a").await;
        let (rb, orphan_b) = fill(&b, "b").await;
        assert_eq!(sweep(&a).await.removed, vec![orphan_a]);
        assert_eq!(sweep(&b).await.removed, vec![orphan_b]);
        chronos.shutdown().await;
        let fresh = Chronos::from_json(&cfg).unwrap();
        read_all(&fresh, "a", &ra).await;
        read_all(&fresh, "b", &rb).await;
        fresh.shutdown().await;
    }
}

/// Two applications: separate index databases with the same `dbName` and tenant, one blob
/// directory. Neither configuration can know of the other, so both write unprefixed keys in
/// the same place; the blob keys' database ids keep the sweeps apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_configurations_share_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs");
    let cfg1 = config(&dir.path().join("app1"), &blobs, &[("t", "app", "shared")]);
    let cfg2 = config(
        &dir.path().join("app2"),
        &blobs,
        &[("t", "app", "./shared/")],
    );
    let (one, two) = (
        Chronos::from_json(&cfg1).unwrap(),
        Chronos::from_json(&cfg2).unwrap(),
    );
    let c1 = one.with(&Route::runtime("t", "users")).await.unwrap();
    let c2 = two.with(&Route::runtime("t", "users")).await.unwrap();
    assert_eq!(
        (
            c1.config().blob_prefix.as_str(),
            c2.config().blob_prefix.as_str()
        ),
        ("", "")
    );
    assert_ne!(c1.database_id(), c2.database_id());
    let (r1, orphan1) = fill(&c1, "one").await;
    let (r2, orphan2) = fill(&c2, "two").await;
    let s1 = sweep(&c1).await;
    assert_eq!(s1.removed, vec![orphan1]);
    assert_eq!(
        s1.not_owned, 7,
        "the other application's six payloads and orphan"
    );
    assert_eq!(sweep(&c2).await.removed, vec![orphan2]);
    one.shutdown().await;
    two.shutdown().await;
    let (one, two) = (
        Chronos::from_json(&cfg1).unwrap(),
        Chronos::from_json(&cfg2).unwrap(),
    );
    read_all(&one, "t", &r1).await;
    read_all(&two, "t", &r2).await;
}

/// Two `spacesConnections` entries naming one endpoint and bucket are one place: each
/// database there writes under its own `dbName/` prefix (and the sweep checks database ids
/// whatever the prefixes, see the conformance case `sweeps_spare_other_databases_in_one_bucket`
/// on S3 and Azure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_space_connections_to_one_bucket_are_one_place() {
    let dir = tempfile::tempdir().unwrap();
    let conn = |endpoint: &str| json!({ "endpoint": endpoint, "accessKey": "k", "secretKey": "s", "forcePathStyle": true });
    let cfg = json!({
        "dbConnections": { "c": { "mongoUri": format!("sqlite://{}", dir.path().display()) } },
        "spacesConnections": {
            "one": conn("http://127.0.0.1:9/"),
            "two": conn("HTTP://127.0.0.1:9")
        },
        "databases": { "runtime": { "tenantDatabases": [
            { "tenantId": "a", "dbConnRef": "c", "dbName": "db_a", "spaceConnRef": "one", "bucket": "shared" },
            { "tenantId": "b", "dbConnRef": "c", "dbName": "db_b", "spaceConnRef": "two", "bucket": "shared" }
        ]}}
    })
    .to_string();
    let chronos = Chronos::from_json(&cfg).unwrap();
    let a = chronos.with(&Route::runtime("a", "users")).await.unwrap();
    let b = chronos.with(&Route::runtime("b", "users")).await.unwrap();
    assert_eq!(a.config().blob_prefix, "db_a/");
    assert_eq!(b.config().blob_prefix, "db_b/");
    chronos.shutdown().await;
}
