//! Shared helpers of the MongoDB tests: the server comes from `CHRONOS_TEST_MONGODB_URI`
//! (`cargo xtask test` starts one). Under `CI=true` a missing server fails the test.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use chronos_core::{ItemId, Stores};
use chronos_store_mongo::{MongoConnection, Transactions};
use chronos_testkit::conformance::Harness;

pub fn uri() -> Option<String> {
    chronos_testkit::service_var("CHRONOS_TEST_MONGODB_URI")
}

pub fn db_name() -> String {
    format!("chronos_t_{}", &ItemId::generate().to_string()[12..])
}

pub async fn stores(
    uri: &str,
    mode: Transactions,
) -> (Stores, Arc<dyn chronos_core::DocumentStore>) {
    let conn = MongoConnection::connect(uri, mode)
        .await
        .expect("connect to the test server");
    let db = conn.database(&db_name()).await.expect("open database");
    let blob = Arc::new(chronos_testkit::MemoryBlobStore::new());
    (
        Stores {
            index: db.index(),
            blob,
            lock: db.lock(),
        },
        db.docs(),
    )
}

pub async fn harness(mode: Transactions) -> Option<Harness> {
    let uri = uri()?;
    let (stores, docs) = stores(&uri, mode).await;
    Some(Harness { stores, docs })
}
