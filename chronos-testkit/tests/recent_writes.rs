//! The whole conformance suite with the blob store behind `RecentWrites` (the facade's
//! recently-written-blob cache): the cache must change no observable behaviour.

use std::sync::Arc;

use chronos_core::{RecentWrites, Stores, WriteCache};
use chronos_testkit::conformance::Harness;

async fn cached() -> Harness {
    let mem = chronos_testkit::memory_stores();
    Harness {
        stores: Stores {
            // Small enough that eviction happens during the suite.
            blob: Arc::new(RecentWrites::new(
                mem.blob,
                WriteCache::new(64 << 10),
                "mem",
            )),
            ..mem
        },
        docs: Arc::new(chronos_testkit::MemoryDocumentStore::new()),
    }
}

chronos_testkit::conformance_suite!(cached);
