//! The whole conformance suite with blobs on the local filesystem (and SQLite-free memory
//! index), plus the blob cases on object_store's in-memory backend.

mod common;

use chronos_blob::ObjectBlobStore;
use chronos_testkit::conformance::{self, Harness};

async fn local_harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let blob = ObjectBlobStore::local(dir.path().join("blobs")).expect("local store");
    // The directory must outlive the case.
    std::mem::forget(dir);
    common::memory_index_over(Some(blob)).await
}

chronos_testkit::conformance_suite!(local_harness);

async fn object_memory_harness() -> Harness {
    common::memory_index_over(Some(ObjectBlobStore::memory())).await
}

#[test]
fn object_memory_blob_contract() {
    conformance::run(object_memory_harness, conformance::blob_store_contract);
}

#[test]
fn object_memory_engine_with_faults() {
    conformance::run(
        object_memory_harness,
        conformance::injected_faults_never_lose_or_expose_writes,
    );
}
