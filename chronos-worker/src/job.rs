//! The job trait: what the worker schedules. Time-based analytics, retention, messaging
//! clean-up and fallback replay each register as one.

use std::fmt::Debug;

use async_trait::async_trait;
use chronos_core::Result;
use serde_json::Value;

use crate::schedule::{Every, Period};

/// A unit of scheduled work.
///
/// # Contract
/// - [`Job::run`] computes what belongs to one period and writes it *idempotently*
///   (deterministic ids, replace not append): the worker runs each `(job, period)` once when
///   all goes well, and again only when a run did not finish (its process died, its lease
///   was lost, shutdown abandoned it) — a repeated run must leave the same result.
/// - A run may be dropped at any `.await` (abandoned); it must leave nothing half-visible
///   that a repeated run would not replace.
#[async_trait]
pub trait Job: Send + Sync + Debug {
    /// A stable name: it keys leases and run records (`[A-Za-z0-9_.:-]`, at most 128 bytes).
    fn name(&self) -> &str;
    /// How often it runs: once per period of this duration, after the period ends.
    fn every(&self) -> &Every;
    /// Does the work of `period`; returns a report stored with the run record.
    async fn run(&self, period: &Period) -> Result<Value>;
}
