//! Chronos fallback queue: writes that fail because a store is unavailable are kept in a
//! durable local spool and replayed, exactly once, when it is back.
//!
//! The spec's `fallback` option ("fallback queues for guaranteed durability"). Upstream
//! never constructs its queue and would keep it in MongoDB — the store whose outage it is
//! meant to survive. Here:
//! - the spool is a local append-only log (`spool.log` in `fallback.spoolDir`): every entry
//!   framed with a CRC-32, appended and `fdatasync`ed before the call returns (appends
//!   waiting at the same moment share one sync);
//! - a write through a [`SpooledCollection`] is tried on the store first. Only a retryable
//!   failure (`UNAVAILABLE`) queues it, and the caller gets [`Outcome::Queued`] with its
//!   operation id — never a fake commit. Any other error is returned as it is;
//! - every write is given its record id and an idempotency key before its first attempt;
//!   every version it commits names the key (see
//!   [`Collection::find_committed`](chronos_core::Collection::find_committed)), so a replay
//!   recognises an earlier attempt that did commit, and an operation is never applied twice
//!   (see [`replay`]);
//! - replays run in spool order per record, with exponential backoff and jitter, up to
//!   `maxRetries`; then the operation becomes a dead letter with its last error;
//! - a torn or corrupted log never stops the spool from opening: damaged ranges are
//!   quarantined (see [`Spool::open`]); a full spool (`maxSpoolBytes`) fails the write with
//!   an error, never drops it.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use chronos_core::{Collection, CreateOptions, Result};
//! use chronos_fallback::{Outcome, Resolve, Settings, Spool};
//!
//! /// Finds collections by target; here one in-memory collection.
//! struct One(Collection);
//! #[async_trait::async_trait]
//! impl Resolve for One {
//!     async fn collection(&self, _target: &str) -> Result<Collection> {
//!         Ok(self.0.clone())
//!     }
//! }
//!
//! let dir = tempfile::tempdir().unwrap();
//! let users = chronos_testkit::memory_engine().collection(chronos_core::CollectionConfig::new("users")).await?;
//! let spool = Spool::open(Settings::new(dir.path()), Arc::new(One(users)))?;
//! let out = spool.collection("main", "users").create(&serde_json::json!({"name": "Ada"}), CreateOptions::new()).await?;
//! assert!(matches!(out, Outcome::Committed(_)), "the store is up: committed now");
//! assert_eq!(spool.stats().pending, 0);
//! # Ok::<(), chronos_core::Error>(())
//! # }).unwrap();
//! ```

pub mod config;
mod frame;
mod log;
pub mod op;
pub mod replay;
mod spool;
mod writes;

use std::time::Duration;

use chronos_core::{Collection, Result};

pub use config::{FallbackConfig, Settings};
pub use op::{OpKind, Progress, QueuedOp};
pub use replay::ReplayReport;
pub use spool::{DeadLetter, PendingOp, Spool, SpoolStats};
pub use writes::{Outcome, Queued, SpooledCollection};

/// Turns a queued operation's target (a string the application chose when it wrote through
/// [`Spool::collection`]) into its collection, when the operation is tried or replayed.
/// A store that cannot be reached is `Unavailable` (the operation waits); any other error
/// makes it a dead letter.
#[async_trait::async_trait]
pub trait Resolve: Send + Sync {
    /// The collection `target` names.
    async fn collection(&self, target: &str) -> Result<Collection>;
}

/// The longest a background replayer sleeps between passes when nothing wakes it.
const IDLE_PASS: Duration = Duration::from_secs(1);

impl Spool {
    /// Replays until `stop` resolves: a pass whenever an operation is queued or retried, and
    /// at least every second. Errors of a pass (the log could not be written) are logged and
    /// the next pass tries again.
    pub async fn run_replayer(&self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            match self.replay_due().await {
                Ok(r) if r.applied + r.found_committed + r.dead_lettered > 0 => {
                    tracing::info!(
                        applied = r.applied,
                        found_committed = r.found_committed,
                        retrying = r.retrying,
                        dead_lettered = r.dead_lettered,
                        waiting = r.waiting,
                        "fallback replay pass"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "fallback replay pass failed"),
            }
            let pause = self.next_due_in().unwrap_or(IDLE_PASS).min(IDLE_PASS);
            tokio::select! {
                _ = &mut stop => return,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// How long until the earliest pending operation is due (`None` when none is pending).
    pub fn next_due_in(&self) -> Option<Duration> {
        let now = chronos_core::time::now_ms().as_millisecond();
        let st = self.lock();
        st.pending
            .values()
            .map(|p| p.progress.next_at_ms)
            .min()
            .map(|t| Duration::from_millis(t.saturating_sub(now).max(0) as u64))
    }
}
