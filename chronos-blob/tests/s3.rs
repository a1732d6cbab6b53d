//! The whole engine conformance suite on SQLite + SeaweedFS (S3), the blob contract with a
//! memory index on S3, and presigned URLs checked with a plain HTTP client.

#![cfg(chronos_services)]

mod common;
mod presign;

use chronos_store_sqlite::SqliteBackend;
use chronos_testkit::conformance::{self, Harness};

/// SQLite (a file in a temporary directory) for the index, SeaweedFS for blobs.
async fn sqlite_s3() -> Harness {
    let Some(blob) = common::s3_store() else {
        return chronos_testkit::memory_harness().await;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let uri = format!("sqlite://{}", dir.path().join("index.db").display());
    // The file must outlive the case.
    std::mem::forget(dir);
    let db = SqliteBackend::open(&uri).await.expect("open SQLite");
    common::harness(db.index(), db.lock(), db.docs(), blob)
}

chronos_testkit::conformance_suite!(sqlite_s3);

async fn memory_s3() -> Harness {
    common::memory_index_over(common::s3_store()).await
}

#[test]
fn s3_blob_contract_with_memory_index() {
    conformance::run(memory_s3, conformance::blob_store_contract);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_presigned_urls() {
    let Some(store) = common::s3_store() else {
        return;
    };
    presign::check(store).await;
}
