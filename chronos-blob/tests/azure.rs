//! The whole engine conformance suite on MongoDB (SecantusDB) + Azurite, the blob contract with
//! a memory index on Azurite, and SAS URLs checked with a plain HTTP client.

#![cfg(chronos_services)]

mod common;
mod presign;

use chronos_store_mongo::{MongoConnection, Transactions};
use chronos_testkit::conformance::{self, Harness};

/// MongoDB (a fresh database on the test server) for the index, Azurite for blobs.
async fn mongo_azure() -> Harness {
    let (Some(blob), Some(uri)) = (
        common::azure_store(),
        common::var("CHRONOS_TEST_MONGODB_URI"),
    ) else {
        return chronos_testkit::memory_harness().await;
    };
    let conn = MongoConnection::connect(&uri, Transactions::Auto)
        .await
        .expect("connect to the MongoDB test server");
    let name = format!(
        "chronos_az_{}",
        &chronos_core::ItemId::generate().to_string()[12..]
    );
    let db = conn.database(&name).await.expect("open database");
    common::harness(db.index(), db.lock(), db.docs(), blob)
}

chronos_testkit::conformance_suite!(mongo_azure);

async fn memory_azure() -> Harness {
    common::memory_index_over(common::azure_store()).await
}

#[test]
fn azure_blob_contract_with_memory_index() {
    conformance::run(memory_azure, conformance::blob_store_contract);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sas_urls() {
    let Some(store) = common::azure_store() else {
        return;
    };
    presign::check(store).await;
}
