//! The conformance suite and the model-based property test on SQLite (a fresh database file
//! per case, memory blobs).

use std::sync::Arc;

use chronos_core::Stores;
use chronos_store_sqlite::SqliteBackend;
use chronos_testkit::conformance::Harness;
use proptest::prelude::*;

async fn backend() -> (SqliteBackend, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let uri = format!("sqlite://{}", dir.path().join("chronos.db").display());
    (SqliteBackend::open(&uri).await.expect("open sqlite"), dir)
}

async fn harness() -> Harness {
    let (db, dir) = backend().await;
    // The directory must outlive the case; leaking it is fine for a test process.
    std::mem::forget(dir);
    Harness {
        stores: Stores {
            index: db.index(),
            blob: Arc::new(chronos_testkit::MemoryBlobStore::new()),
            lock: db.lock(),
        },
        docs: db.docs(),
    }
}

chronos_testkit::conformance_suite!(harness);

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_model_on_sqlite(steps in chronos_testkit::model::steps(24)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let h = rt.block_on(harness());
        drop(rt);
        chronos_testkit::model::run(h.stores, steps);
    }
}
