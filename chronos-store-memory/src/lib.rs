//! # chronos-store-memory
//!
//! In-memory backends: the reference implementation of every store trait of `chronos-core`.
//!
//! These are products, not mocks: they honour the full trait contracts (checked by the same
//! conformance suite as every other backend), so users can unit-test their own code against
//! them, and the `chronos` facade serves `memory://` with them. Everything lives behind one
//! mutex per store; clone the `Arc` to let several engines share a store the way several
//! processes share a database. Nothing touches the disk.
//!
//! ```
//! use chronos_core::{CollectionConfig, CreateOptions, ReadOptions};
//! use serde_json::json;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let engine = chronos_store_memory::memory_engine();
//! let users = engine.collection(CollectionConfig::new("users")).await?;
//! let w = users.create(&json!({"name": "Ada"}), CreateOptions::new()).await?;
//! assert_eq!(users.get_latest(w.id, ReadOptions::new()).await?.unwrap().data["name"], "Ada");
//! # Ok::<(), chronos_core::Error>(())
//! # }).unwrap();
//! ```

mod blob;
mod docs;
mod index;
mod lock;

use std::sync::{Arc, Mutex, MutexGuard};

pub use blob::MemoryBlobStore;
pub use docs::MemoryDocumentStore;
pub use index::MemoryIndexStore;
pub use lock::MemoryLock;

/// A fresh set of in-memory stores.
pub fn memory_stores() -> chronos_core::Stores {
    chronos_core::Stores {
        index: Arc::new(MemoryIndexStore::new()),
        blob: Arc::new(MemoryBlobStore::new()),
        lock: Arc::new(MemoryLock::new()),
    }
}

/// An engine over fresh in-memory stores.
pub fn memory_engine() -> chronos_core::Engine {
    chronos_core::Engine::new(memory_stores())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a half-applied commit (each mutation
    // completes before anything can panic), so a poisoned lock is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
