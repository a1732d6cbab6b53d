//! Chronos worker: the scheduler every periodic job registers with — time-based analytics,
//! retention, messaging clean-up, fallback replay.
//!
//! A [`Job`] names a duration ([`Every`], full ISO-8601: `PT1H`, `P1D`, `P1M`,
//! `P1Y2M3DT4H`); its periods are UTC-aligned ([`schedule`]). A [`Worker`] runs each ended
//! period of each job once, under a lease, recording the run, so several worker processes on
//! one database share the work without doing any period twice; after downtime it catches up
//! the missed periods within its horizon. Built on core only (`Lock`, `DocumentStore`), so it
//! runs on every backend.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use chronos_worker::{Every, Job, Period, Worker, WorkerConfig};
//!
//! #[derive(Debug)]
//! struct Hourly(Every);
//!
//! #[async_trait::async_trait]
//! impl Job for Hourly {
//!     fn name(&self) -> &str { "hourly-report" }
//!     fn every(&self) -> &Every { &self.0 }
//!     async fn run(&self, period: &Period) -> chronos_core::Result<serde_json::Value> {
//!         Ok(serde_json::json!({"from": period.start.to_string()}))
//!     }
//! }
//!
//! let (lock, docs) = (Arc::new(chronos_testkit::MemoryLock::new()), Arc::new(chronos_testkit::MemoryDocumentStore::new()));
//! let mut worker = Worker::new(lock, docs, WorkerConfig { horizon: std::time::Duration::from_secs(3 * 3600), ..Default::default() });
//! worker.register(Arc::new(Hourly(Every::parse("PT1H")?)))?;
//! let now = "2026-12-02T14:30:00Z".parse().unwrap();
//! assert_eq!(worker.run_due(now).await?.ran.len(), 3, "the last three ended hours");
//! assert!(worker.run_due(now).await?.ran.is_empty(), "never twice");
//! # Ok::<(), chronos_core::Error>(())
//! # }).unwrap();
//! ```

pub mod job;
pub mod schedule;
pub mod worker;

pub use job::Job;
pub use schedule::{Every, Period};
pub use worker::{PassReport, RunRecord, Worker, WorkerConfig, RUNS};
