//! Shared setup: a memory collection behind a fault plan, and a spool over it.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chronos_core::{Collection, CollectionConfig, Engine, Result};
use chronos_fallback::{Resolve, Settings, Spool};
use chronos_testkit::fault::{faulty, FaultPlan};
use chronos_testkit::memory_stores;

/// Resolves every target to one collection.
pub struct One(pub Collection);

#[async_trait::async_trait]
impl Resolve for One {
    async fn collection(&self, _target: &str) -> Result<Collection> {
        Ok(self.0.clone())
    }
}

/// A memory collection whose stores fail where `plan` says. Its write deadline is short
/// and its clock skew zero (one process), so failed attempts settle in 100 ms.
pub async fn collection(plan: &FaultPlan) -> Collection {
    let engine = Engine::new(faulty(&memory_stores(), plan));
    engine
        .collection(
            CollectionConfig::new("users")
                .write_deadline(Duration::from_millis(100))
                .clock_skew(Duration::ZERO),
        )
        .await
        .unwrap()
}

/// Fast settings: 5 ms first backoff, 50 ms at most.
pub fn settings(dir: &Path) -> Settings {
    Settings {
        retry_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        ..Settings::new(dir)
    }
}

pub fn spool(dir: &Path, c: &Collection) -> Spool {
    Spool::open(settings(dir), Arc::new(One(c.clone()))).unwrap()
}

/// Replay passes until nothing is pending (or 10 s pass).
pub async fn drain(spool: &Spool) {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while spool.stats().pending > 0 {
        assert!(
            std::time::Instant::now() < until,
            "still pending: {:?}",
            spool.pending(None, 10)
        );
        spool.replay_due().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A spool over a fresh faulty memory collection.
pub struct Fixture {
    pub plan: FaultPlan,
    pub c: Collection,
    pub dir: tempfile::TempDir,
    pub spool: Spool,
}

pub async fn fixture() -> Fixture {
    let plan = FaultPlan::new();
    let c = collection(&plan).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = spool(dir.path(), &c);
    Fixture {
        plan,
        c,
        dir,
        spool,
    }
}
