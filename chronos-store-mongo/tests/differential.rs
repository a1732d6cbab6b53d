//! Invariant 8 on MongoDB: the differential filter test of `chronos_testkit::differential`
//! against the real server (`CHRONOS_TEST_MONGODB_URI`): random filters and sorts over
//! documents with arrays and nested objects, sorted by paths through arrays and by
//! containers as well (the store's sort keys give them the canonical order), and the
//! number edges where backends once disagreed.

#![cfg(chronos_services)]

mod common;

use chronos_store_mongo::Transactions;
use chronos_testkit::differential::{check, check_number_edges, doc, filter, PATHS};
use proptest::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_numbers_compare_like_the_reference() {
    let Some(uri) = common::uri() else { return };
    let (stores, _) = common::stores(&uri, Transactions::Off).await;
    check_number_edges(stores).await;
}

static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});
static STORES: tokio::sync::OnceCell<chronos_core::Stores> = tokio::sync::OnceCell::const_new();

proptest! {
    #![proptest_config(ProptestConfig {
        // Each case is a round of server requests: fewer than on SQLite.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mongodb_filters_match_the_reference(
        docs in prop::collection::vec(doc(), 0..10),
        filters in prop::collection::vec(filter(), 1..4),
        sort_path in prop::sample::select(PATHS.to_vec()),
        desc in any::<bool>(),
    ) {
        let Some(uri) = common::uri() else { return Ok(()) };
        // One runtime and one client for every case (a client outliving its runtime panics).
        RUNTIME.block_on(async move {
            let stores = STORES
                .get_or_init(|| async { common::stores(&uri, Transactions::Off).await.0 })
                .await
                .clone();
            check(stores, docs, filters, sort_path, desc).await;
        });
    }
}
