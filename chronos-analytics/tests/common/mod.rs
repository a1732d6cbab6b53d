//! The backends the counters tests run on: memory and SQLite always, MongoDB when the suites
//! that need servers are compiled (`cfg(chronos_services)`; a missing server then fails).

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use chronos_core::{DocumentStore, Stores};
use chronos_testkit::conformance::Harness;

/// A harness per backend, with its name. Keep the returned guard alive while using them.
pub async fn harnesses() -> (Vec<(&'static str, Harness)>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![("memory", chronos_testkit::memory_harness().await)];
    let uri = format!("sqlite://{}", dir.path().join("counters.db").display());
    let sqlite = chronos_store_sqlite::SqliteBackend::open(&uri)
        .await
        .unwrap();
    out.push((
        "sqlite",
        harness(sqlite.index(), sqlite.lock(), sqlite.docs()),
    ));
    #[cfg(chronos_services)]
    {
        let uri = chronos_testkit::service_var("CHRONOS_TEST_MONGODB_URI").unwrap();
        let conn = chronos_store_mongo::MongoConnection::connect(&uri, Default::default())
            .await
            .unwrap();
        let name = format!(
            "cnt_t_{}",
            &chronos_core::ItemId::generate().to_string()[12..]
        );
        let db = conn.database(&name).await.unwrap();
        out.push(("mongodb", harness(db.index(), db.lock(), db.docs())));
    }
    #[cfg(not(chronos_services))]
    eprintln!("SKIPPED on MongoDB: the server suites are not compiled (run `cargo xtask test`)");
    (out, dir)
}

fn harness(
    index: Arc<dyn chronos_core::IndexStore>,
    lock: Arc<dyn chronos_core::Lock>,
    docs: Arc<dyn DocumentStore>,
) -> Harness {
    Harness {
        stores: Stores {
            index,
            blob: Arc::new(chronos_testkit::MemoryBlobStore::new()),
            lock,
        },
        docs,
    }
}

/// A collection counted by `counters` (observer registered and attached) under the key of
/// tenant-a's runtime database.
pub async fn counted(
    engine: chronos_core::Engine,
    counters: &chronos_analytics::Counters,
    name: &str,
) -> (chronos_core::Collection, chronos_analytics::TotalsKey) {
    let key = chronos_analytics::TotalsKey::new("tenant-a", "chronos_runtime_tenant_a", name);
    let obs = counters.observer(key.clone());
    let c = engine
        .observe(obs.clone())
        .collection(chronos_core::CollectionConfig::new(name))
        .await
        .unwrap();
    obs.attach(&c);
    (c, key)
}
