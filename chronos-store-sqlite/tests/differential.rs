//! Invariant 8 on SQLite: the differential filter test of `chronos_testkit::differential`.

use std::sync::Arc;

use chronos_core::Stores;
use chronos_store_sqlite::SqliteBackend;
use chronos_testkit::differential::{
    check, check_equality_edges, check_number_edges, doc, filter, PATHS,
};
use proptest::prelude::*;

async fn stores() -> Stores {
    let db = SqliteBackend::open("sqlite::memory:").await.unwrap();
    Stores {
        index: db.index(),
        blob: Arc::new(chronos_testkit::MemoryBlobStore::new()),
        lock: db.lock(),
    }
}

#[tokio::test]
async fn sqlite_numbers_compare_like_the_reference() {
    check_number_edges(stores().await).await;
}

#[tokio::test]
async fn sqlite_equalities_on_indexes_match_the_reference() {
    check_equality_edges(stores().await).await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn sqlite_filters_match_the_reference(
        docs in prop::collection::vec(doc(), 0..12),
        filters in prop::collection::vec(filter(), 1..5),
        sort_path in prop::sample::select(PATHS.to_vec()),
        desc in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            check(stores().await, docs, filters, sort_path, desc).await;
        });
    }
}
