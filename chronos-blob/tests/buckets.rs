//! Missing buckets, on SeaweedFS (S3) and Azurite (Azure): a write or list into one is an
//! `InvalidConfig` error naming the bucket and the connection and saying how to create it;
//! `ensure_bucket` creates it (once: a second call reports it exists) and writes then work.

#![cfg(chronos_services)]

mod common;

use bytes::Bytes;
use chronos_blob::SpaceConnection;
use chronos_core::{BlobStore, ErrorKind, ItemId};

async fn missing_then_created(conn: SpaceConnection) {
    let name = format!("new-{}", &ItemId::generate().to_string()[14..]);
    let store = conn.bucket(&name).unwrap();
    // SeaweedFS creates buckets on a first put (Azure never does): the listing is refused
    // on both.
    let e = store.list("a/", None, 10).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("bucket '{name}'")), "{msg}");
    assert!(
        msg.contains(&format!("spaces connection '{}'", conn.name())),
        "{msg}"
    );
    assert!(msg.contains("chronos init"), "{msg}");

    assert!(
        conn.ensure_bucket(&name).await.unwrap(),
        "first call creates"
    );
    assert!(
        !conn.ensure_bucket(&name).await.unwrap(),
        "second call finds it"
    );
    store
        .put_if_absent("a/b.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(store.list("a/", None, 10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_missing_bucket_is_named_and_created() {
    let (conn, _) = common::s3().unwrap();
    missing_then_created(conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_missing_container_is_named_and_created() {
    let (conn, _) = common::azure().unwrap();
    missing_then_created(conn).await;
    // A put into a missing container is the same error (not "blob does not exist").
    let (conn, _) = common::azure().unwrap();
    let store = conn.bucket("never-created-here").unwrap();
    let e = store
        .put_if_absent("k.json", Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert!(e.to_string().contains("bucket 'never-created-here'"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_cannot_create_buckets() {
    let (conn, _) = common::azure().unwrap();
    let mut o = chronos_blob::SpaceOptions {
        endpoint: std::env::var("CHRONOS_TEST_AZURE_ENDPOINT").unwrap(),
        access_key: std::env::var("CHRONOS_TEST_AZURE_ACCOUNT").ok(),
        secret_key: Some("d3JvbmcK".into()),
        kind: Some(chronos_blob::SpaceKind::Azure),
        ..Default::default()
    };
    let bad = SpaceConnection::new(conn.name(), o.clone()).unwrap();
    let e = bad.ensure_bucket("not-mine").await.unwrap_err();
    assert!(e.to_string().contains("HTTP 403"), "{e}");
    assert!(!e.to_string().contains("d3JvbmcK"), "{e}");
    o.secret_key = Some("not base64!".into());
    let e = SpaceConnection::new(conn.name(), o)
        .unwrap()
        .ensure_bucket("x")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
}
