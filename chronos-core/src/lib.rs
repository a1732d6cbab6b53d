//! # chronos-core
//!
//! The heart of Chronos: the record model, the filter language, the backend traits
//! ([`IndexStore`], [`BlobStore`], [`Lock`], [`DocumentStore`]) and the versioning
//! [`Engine`]. This crate depends on no database driver; backends live in their own crates and
//! the in-memory reference backend lives in `chronos-testkit`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use chronos_core::{CollectionConfig, CreateOptions, ReadOptions, WriteOptions};
//! use serde_json::json;
//!
//! let engine = chronos_testkit::memory_engine();
//! let users = engine.collection(CollectionConfig::new("users").indexed_props(["email"])).await?;
//!
//! let created = users.create(&json!({"email": "a@example.com", "name": "Ada"}), CreateOptions::new()).await?;
//! let updated = users
//!     .update(created.id, &json!({"email": "a@example.com", "name": "Ada L."}), WriteOptions::new().expected_ov(0))
//!     .await?;
//! assert_eq!(updated.ov, 1);
//!
//! // Time travel: the first version is still there, unchanged.
//! let v0 = users.get_version(created.id, 0, ReadOptions::new()).await?.unwrap();
//! assert_eq!(v0.data["name"], "Ada");
//!
//! // A stale expected_ov is a conflict and changes nothing.
//! let err = users.update(created.id, &json!({"email": "x"}), WriteOptions::new().expected_ov(0)).await.unwrap_err();
//! assert_eq!(err.kind(), chronos_core::ErrorKind::Conflict);
//! # Ok::<(), chronos_core::Error>(())
//! # }).unwrap();
//! ```

/// RFC 6902 JSON Patch, the format of [`Collection::diff`] (apply with `json_patch::patch`).
pub use json_patch;

pub mod aggregate;
pub mod blob;
pub mod blob_cache;
pub mod chain;
pub mod docs;
pub mod engine;
pub mod error;
pub mod filter;
pub mod id;
pub mod index;
pub mod lock;
pub mod merge;
pub mod model;
pub mod time;

pub use aggregate::{AggregateOp, AggregateQuery, Window};
pub use blob::{BlobCapabilities, BlobMeta, BlobStore};
pub use blob_cache::{RecentWrites, WriteCache};
pub use chain::{ChainLink, Seal};
pub use docs::{
    check_key_part, distinct_strings, doc_key, escape_key_part, DocLayout, DocQuery, DocUpdate,
    Document, DocumentStore,
};
pub use engine::{
    new_database_id, Base64Prop, ChangeCursor, ChangePage, Collection, CollectionConfig,
    CollectionRestoreOptions, CollectionTarget, CommitEvent, CommitObserver, CreateOptions, Engine,
    EnrichOptions, EraseReceipt, Externals, HistoryOptions, HistoryPage, IdempotencyKey,
    ListOptions, Page, PlannedChange, Problem, ProblemKind, PruneReport, ReadOptions,
    RestoreAction, RestoreReport, RestoreTarget, ShadowPolicy, Stores, SweepReport, Unreadable,
    VerifyReport, VersionRetention, WeakCollection, WriteOptions, COMPRESS_MIN_BYTES,
    DEFAULT_BATCH_SIZE, DEFAULT_CLOCK_SKEW, DEFAULT_MAX_META_BYTES, DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_MAX_WRITE_RETRIES, DEFAULT_WRITE_DEADLINE, MAX_FEED_PAGE, RESTORE_LEASE,
};
pub use error::{ConflictCause, Error, ErrorKind, Result};
pub use filter::Filter;
pub use id::ItemId;
pub use index::{
    Commit, FeedPage, HeadAction, HeadEntry, HeadQuery, IndexCapabilities, IndexStore, NewVersion,
    Point, Precommit, Shadow, Sort, SortField, SortKey, VersionEntry, COMMIT_MANY_CONCURRENCY,
    ERASED_CHECKSUM,
};
pub use lock::{Lease, Lock};
pub use model::{
    check_map_depth, Lineage, Op, Origin, Presigned, Record, RecordRef, SystemFields, WriteResult,
    MAX_PAYLOAD_DEPTH,
};
pub use time::Timestamp;
