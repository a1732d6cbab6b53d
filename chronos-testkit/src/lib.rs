//! # chronos-testkit
//!
//! Everything needed to test code that uses Chronos, and to test Chronos backends:
//!
//! - [`memory`]: the in-memory [`IndexStore`](chronos_core::IndexStore),
//!   [`BlobStore`](chronos_core::BlobStore), [`Lock`](chronos_core::Lock) and
//!   [`DocumentStore`](chronos_core::DocumentStore), re-exported from the backend crate
//!   `chronos-store-memory` (depend on that crate alone to get them without the suite or
//!   proptest);
//! - [`conformance`]: the suite every backend passes (`conformance_suite!`);
//! - [`fault`]: wrappers that fail the Nth store call or a named operation;
//! - [`model`]: the pure model and operation strategies of the property test.
//! - [`differential`]: the differential filter test every index backend runs.
//!
//! # Unit-testing your own code
//!
//! ```
//! use chronos_core::{Collection, CollectionConfig, CreateOptions, ListOptions, Result};
//! use serde_json::json;
//!
//! // Your application code, written against a `Collection`.
//! async fn register(users: &Collection, email: &str) -> Result<chronos_core::ItemId> {
//!     let taken = users.list_by_meta(ListOptions::new().filter(json!({"email": email})).limit(1)).await?;
//!     if !taken.items.is_empty() {
//!         return Err(chronos_core::Error::already_exists(format!("{email} is registered")));
//!     }
//!     Ok(users.create(&json!({"email": email}), CreateOptions::new().actor("signup")).await?.id)
//! }
//!
//! // Its unit test, against the in-memory engine: no server, no files.
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let engine = chronos_testkit::memory_engine();
//! let users = engine.collection(CollectionConfig::new("users").indexed_props(["email"])).await?;
//! register(&users, "ada@example.com").await?;
//! let again = register(&users, "ada@example.com").await.unwrap_err();
//! assert_eq!(again.kind(), chronos_core::ErrorKind::AlreadyExists);
//! # Ok::<(), chronos_core::Error>(())
//! # }).unwrap();
//! ```

pub mod child;
pub mod conformance;
#[cfg(feature = "proptest")]
pub mod differential;
pub mod fault;
#[cfg(feature = "proptest")]
pub mod model;
pub mod tamper;

/// The in-memory backends (the crate `chronos-store-memory`).
pub use chronos_store_memory as memory;
pub use chronos_store_memory::{
    memory_engine, memory_stores, MemoryBlobStore, MemoryDocumentStore, MemoryIndexStore,
    MemoryLock,
};

/// The value of the environment variable that points tests at a real service
/// (`CHRONOS_TEST_MONGODB_URI`, `CHRONOS_TEST_S3_ENDPOINT`, … — `cargo xtask test` starts the
/// services and sets them). The suites that call it are compiled only when servers are
/// expected (`CHRONOS_TEST_SERVICES` or `CI=true`, see the backend crates' `build.rs`), so a
/// missing variable is a failure (a panic naming it), never a skip or a run on something
/// else. Always `Some`; the `Option` lets callers write `let Some(uri) = … else`.
pub fn service_var(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => panic!(
            "{var} is not set, but the suites that need it were compiled (CHRONOS_TEST_SERVICES \
             or CI=true): start the services with `cargo xtask test`, or set {var}"
        ),
    }
}

/// A conformance harness over fresh in-memory stores.
pub async fn memory_harness() -> conformance::Harness {
    conformance::Harness {
        stores: memory_stores(),
        docs: std::sync::Arc::new(MemoryDocumentStore::new()),
    }
}
