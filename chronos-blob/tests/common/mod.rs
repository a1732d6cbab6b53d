//! Shared helpers of the S3 and Azure tests: the servers come from the `CHRONOS_TEST_S3_*`,
//! `CHRONOS_TEST_AZURE_*` and `CHRONOS_TEST_MONGODB_URI` variables (`cargo xtask test` starts
//! SeaweedFS, Azurite and SecantusDB and sets them). Under `CI=true` a missing server fails
//! the test; elsewhere the tests print SKIPPED and fall back to memory.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use chronos_blob::{ObjectBlobStore, SpaceConnection, SpaceKind, SpaceOptions};
use chronos_core::{DocumentStore, IndexStore, Lock, Stores};
use chronos_testkit::conformance::Harness;

pub use chronos_testkit::service_var as var;

/// The SeaweedFS connection and its test bucket.
pub fn s3() -> Option<(SpaceConnection, String)> {
    let endpoint = var("CHRONOS_TEST_S3_ENDPOINT")?;
    let conn = SpaceConnection::new(
        "s3-test",
        SpaceOptions {
            endpoint,
            region: Some("us-east-1".into()),
            access_key: var("CHRONOS_TEST_S3_ACCESS_KEY"),
            secret_key: var("CHRONOS_TEST_S3_SECRET_KEY"),
            force_path_style: Some(true),
            kind: None,
        },
    )
    .expect("S3 test connection");
    Some((conn, var("CHRONOS_TEST_S3_BUCKET")?))
}

/// The Azurite connection and its test container.
pub fn azure() -> Option<(SpaceConnection, String)> {
    let endpoint = var("CHRONOS_TEST_AZURE_ENDPOINT")?;
    let conn = SpaceConnection::new(
        "azure-test",
        SpaceOptions {
            endpoint,
            region: None,
            access_key: var("CHRONOS_TEST_AZURE_ACCOUNT"),
            secret_key: var("CHRONOS_TEST_AZURE_KEY"),
            force_path_style: None,
            kind: Some(SpaceKind::Azure),
        },
    )
    .expect("Azure test connection");
    Some((conn, var("CHRONOS_TEST_AZURE_CONTAINER")?))
}

pub fn s3_store() -> Option<ObjectBlobStore> {
    let (c, b) = s3()?;
    Some(c.bucket(&b).expect("S3 test bucket"))
}

pub fn azure_store() -> Option<ObjectBlobStore> {
    let (c, b) = azure()?;
    Some(c.bucket(&b).expect("Azure test container"))
}

/// A harness of an index backend's stores over `blob`.
pub fn harness(
    index: Arc<dyn IndexStore>,
    lock: Arc<dyn Lock>,
    docs: Arc<dyn DocumentStore>,
    blob: ObjectBlobStore,
) -> Harness {
    Harness {
        stores: Stores {
            index,
            blob: Arc::new(blob),
            lock,
        },
        docs,
    }
}

/// Memory index, lock and documents over the given blob store; plain memory when the service
/// is not there (outside CI).
pub async fn memory_index_over(blob: Option<ObjectBlobStore>) -> Harness {
    let Some(blob) = blob else {
        return chronos_testkit::memory_harness().await;
    };
    let mem = chronos_testkit::memory_stores();
    let docs = Arc::new(chronos_testkit::MemoryDocumentStore::new());
    harness(mem.index, mem.lock, docs, blob)
}
