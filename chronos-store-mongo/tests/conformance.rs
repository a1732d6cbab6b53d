//! The conformance suite and the model-based property test against a real MongoDB-wire
//! server, with transactions (the server presents a replica set) and with the ordered,
//! non-transactional path forced.

#![cfg(chronos_services)]

mod common;

use chronos_store_mongo::Transactions;
use chronos_testkit::conformance::Harness;
use proptest::prelude::*;

/// Without a server (and outside CI) every case is a no-op on an in-memory harness replaced
/// by this marker; see `common::uri`.
macro_rules! suite {
    ($module:ident, $mode:expr) => {
        mod $module {
            use super::*;

            async fn harness() -> Harness {
                match common::harness($mode).await {
                    Some(h) => h,
                    None => chronos_testkit::memory_harness().await,
                }
            }

            chronos_testkit::conformance_suite!(harness);

            #[test]
            fn transaction_mode_is_as_requested() {
                let Some(uri) = common::uri() else { return };
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    let c = chronos_store_mongo::MongoConnection::connect(&uri, $mode).await.unwrap();
                    if $mode == Transactions::Off {
                        assert!(!c.uses_transactions());
                    }
                    assert!(!c.index_capabilities_atomic() || c.uses_transactions());
                });
            }

            proptest! {
                #![proptest_config(ProptestConfig {
                    cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
                    ..ProptestConfig::default()
                })]

                #[test]
                fn engine_matches_model_on_mongo(steps in chronos_testkit::model::steps(16)) {
                    let Some(uri) = common::uri() else { return Ok(()) };
                    chronos_testkit::model::run_on(|| async move { common::stores(&uri, $mode).await.0 }, steps);
                }
            }
        }
    };
}

suite!(transactions, Transactions::Auto);
suite!(ordered, Transactions::Off);
