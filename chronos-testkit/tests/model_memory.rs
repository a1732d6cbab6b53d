//! The model-based property test on the in-memory backend (256 cases unless PROPTEST_CASES
//! says otherwise).

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_model(steps in chronos_testkit::model::steps(24)) {
        chronos_testkit::model::run(chronos_testkit::memory_stores(), steps);
    }
}
