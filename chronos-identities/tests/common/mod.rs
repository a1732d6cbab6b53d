//! The backends the identities tests run on: memory and SQLite always, MongoDB when the
//! suites that need servers are compiled (`cfg(chronos_services)`; a missing server then
//! fails).

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use chronos_core::DocumentStore;
use chronos_identities::{HashParams, Identities, Settings};

/// Cheap Argon2 parameters for tests that are not about hashing cost.
pub const FAST: HashParams = HashParams {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};

/// A document store per backend, with its name, and the MongoDB database name (for raw
/// scans). Keep the returned guard alive while using them.
pub async fn stores() -> (
    Vec<(&'static str, Arc<dyn DocumentStore>)>,
    tempfile::TempDir,
    Option<String>,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut out: Vec<(&'static str, Arc<dyn DocumentStore>)> = vec![(
        "memory",
        Arc::new(chronos_testkit::MemoryDocumentStore::new()),
    )];
    let uri = format!("sqlite://{}", dir.path().join("identities.db").display());
    let sqlite = chronos_store_sqlite::SqliteBackend::open(&uri)
        .await
        .unwrap();
    out.push(("sqlite", sqlite.docs()));
    #[cfg(chronos_services)]
    let mongo_db = {
        let uri = chronos_testkit::service_var("CHRONOS_TEST_MONGODB_URI").unwrap();
        let conn = chronos_store_mongo::MongoConnection::connect(&uri, Default::default())
            .await
            .unwrap();
        let name = format!(
            "idn_t_{}",
            &chronos_core::ItemId::generate().to_string()[12..]
        );
        out.push(("mongodb", conn.database(&name).await.unwrap().docs()));
        Some(name)
    };
    #[cfg(not(chronos_services))]
    let mongo_db = {
        eprintln!(
            "SKIPPED on MongoDB: the server suites are not compiled (run `cargo xtask test`)"
        );
        None
    };
    (out, dir, mongo_db)
}

/// `tenant`'s handle with cheap hashing.
pub fn handle(docs: &Arc<dyn DocumentStore>, tenant: &str) -> Identities {
    let settings = Settings {
        hash: FAST,
        ..Settings::default()
    };
    Identities::new(docs.clone(), settings, tenant).unwrap()
}
