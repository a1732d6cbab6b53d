//! The backends the messaging tests run on: memory and SQLite always, MongoDB when the suites
//! that need servers are compiled (`cfg(chronos_services)`; a missing server then fails).

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use chronos_core::DocumentStore;
use chronos_messaging::{Messaging, Settings};

/// A document store per backend, with its name. Keep the returned guard alive while using
/// them.
pub async fn stores() -> (
    Vec<(&'static str, Arc<dyn DocumentStore>)>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut out: Vec<(&'static str, Arc<dyn DocumentStore>)> = vec![(
        "memory",
        Arc::new(chronos_testkit::MemoryDocumentStore::new()),
    )];
    let uri = format!("sqlite://{}", dir.path().join("messaging.db").display());
    let sqlite = chronos_store_sqlite::SqliteBackend::open(&uri)
        .await
        .unwrap();
    out.push(("sqlite", sqlite.docs()));
    #[cfg(chronos_services)]
    out.push(("mongodb", mongo().await));
    #[cfg(not(chronos_services))]
    eprintln!("SKIPPED on MongoDB: the server suites are not compiled (run `cargo xtask test`)");
    (out, dir)
}

/// A fresh MongoDB database's document store.
#[cfg(chronos_services)]
pub async fn mongo() -> Arc<dyn DocumentStore> {
    let uri = chronos_testkit::service_var("CHRONOS_TEST_MONGODB_URI").unwrap();
    let conn = chronos_store_mongo::MongoConnection::connect(&uri, Default::default())
        .await
        .unwrap();
    let name = format!(
        "msg_t_{}",
        &chronos_core::ItemId::generate().to_string()[12..]
    );
    conn.database(&name).await.unwrap().docs()
}

/// `tenant`'s handle with deliveries captured.
pub fn handle(docs: &Arc<dyn DocumentStore>, tenant: &str) -> Messaging {
    let settings = Settings {
        capture_deliveries: true,
        ..Settings::default()
    };
    Messaging::new(docs.clone(), settings, tenant).unwrap()
}
