//! Chronos analytics: exact counters per `(tenant, dbName, collection)` — created, updated,
//! deleted, `lastAt` — and counter rules (`counterRules`) with exact distinct counts; and the
//! worker-driven time-based and cross-tenant rules ([`timed`]), whose results it stores.
//!
//! Built on core only: the commit observer ([`chronos_core::CommitObserver`]) records each
//! committed version as it happens, the change feed ([`chronos_core::Collection::changes`])
//! recovers whatever the observer missed, and everything is stored through
//! [`chronos_core::DocumentStore`] — so it works on every backend. See [`counters`] for why
//! every committed version is counted exactly once, and [`layout`] for what is stored.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use chronos_analytics::{Counters, Rules, TotalsKey};
//! use chronos_core::{CollectionConfig, CreateOptions, Engine};
//! use chronos_testkit::{memory_stores, MemoryDocumentStore};
//!
//! let counters = Counters::new(Arc::new(MemoryDocumentStore::new()), Rules::default(), None);
//! let key = TotalsKey::new("t1", "runtime_t1", "users");
//! let observer = counters.observer(key.clone());
//! let engine = Engine::new(memory_stores()).observe(observer.clone());
//! let users = engine.collection(CollectionConfig::new("users")).await.unwrap();
//! observer.attach(&users);
//! users.create(&serde_json::json!({"name": "ada"}), CreateOptions::new()).await.unwrap();
//! let totals = counters.get_totals(&key, false).await.unwrap();
//! assert_eq!(totals.counts.created, 1);
//! # });
//! ```

pub mod config;
pub mod counters;
pub mod layout;
pub mod periods;
pub mod rules;
pub mod timed;
pub mod timed_config;

pub use config::{CounterRule, CounterRulesConfig, RuleOp, RuleScope};
pub use counters::{CounterObserver, Counters, FoldReport, UniqueCount, FOLD_EVERY};
pub use layout::{RuleTotals, Totals, TotalsKey};
pub use periods::{CounterRetention, Granularity, PeriodCounts};
pub use rules::{Contribution, OpCounts, Rules};
pub use timed::{
    run_cross_tenant, run_time_based, CrossTenantResult, Results, ResultsQuery, SlaveResult,
    TimeBasedResult, CROSS_TENANT_RESULTS, TIME_BASED_RESULTS,
};
pub use timed_config::{
    validate_timed, Aggregation, CrossTenantMode, CrossTenantRule, RelativeTime, SaveMode,
    TimeBasedRule, Timeframe,
};
