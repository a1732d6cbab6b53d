//! The versioning engine bound to one collection: writes, reads, time travel and restore.
//!
//! # Write path
//! `write.rs` (the public operations) → `commit.rs` (the pipeline, stage by stage): validate
//! → compute the new document → put its payload under a key unique to this write
//! attempt (`<coll>/<id>/v<ov>/item-<database id>-<start>-<random>.json`, create-only) → commit the index entry with
//! [`IndexStore::commit`], whose `(id, ov)` check is the linearisation point. A losing or
//! failing writer therefore never touches a committed payload; what it leaves behind is an
//! unreferenced blob that [`Collection::sweep`] removes.
//!
//! # Read path
//! Heads and versions come from the index store (point lookups by `(id, ov)` / `(id, at)`);
//! payloads from the blob store, checked against the stored SHA-256.

mod attempt;
mod batch;
mod blobs;
mod commit;
mod conflict;
mod diff;
mod erase;
mod externals;
mod feed;
mod idempotency;
mod observer;
mod options;
mod payload;
mod read;
mod repair;
mod restore;
mod retention;
mod state;
mod sweep;
mod turns;
mod verify;
mod write;

use std::fmt;
use std::sync::Arc;

pub use attempt::new_database_id;
pub(crate) use attempt::random_hex;
pub use erase::EraseReceipt;
pub use externals::{validate_base64_prop_name, Base64Prop};
pub use feed::{ChangeCursor, ChangePage, MAX_FEED_PAGE};
pub use idempotency::IdempotencyKey;
pub use observer::{CommitEvent, CommitObserver};
pub use options::{
    CollectionConfig, CollectionRestoreOptions, CollectionTarget, CreateOptions, EnrichOptions,
    Externals, HistoryOptions, ListOptions, ReadOptions, RestoreTarget, ShadowPolicy, WriteOptions,
    COMPRESS_MIN_BYTES, DEFAULT_BATCH_SIZE, DEFAULT_CLOCK_SKEW, DEFAULT_MAX_META_BYTES,
    DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_WRITE_RETRIES, DEFAULT_WRITE_DEADLINE,
};
pub(crate) use payload::sha256_hex;
pub use read::{HistoryPage, Page, Unreadable};
pub use restore::{PlannedChange, RestoreAction, RestoreReport, RESTORE_LEASE};
pub use retention::{PruneReport, VersionRetention};
pub use sweep::SweepReport;
pub use verify::{Problem, ProblemKind, VerifyReport};

use crate::blob::BlobStore;
use crate::error::{Error, Result};
use crate::index::IndexStore;
use crate::lock::Lock;

/// The backends an engine writes to. Held as trait objects: the backend is chosen at run time.
#[derive(Clone)]
pub struct Stores {
    /// Heads, versions, counters.
    pub index: Arc<dyn IndexStore>,
    /// Payloads.
    pub blob: Arc<dyn BlobStore>,
    /// Leases.
    pub lock: Arc<dyn Lock>,
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores")
            .field("index", &self.index)
            .field("blob", &self.blob)
            .field("lock", &self.lock)
            .finish()
    }
}

/// Entry point: binds [`Stores`] and hands out [`Collection`]s.
#[derive(Debug, Clone)]
pub struct Engine {
    stores: Stores,
    observers: Vec<Arc<dyn CommitObserver>>,
}

impl Engine {
    /// An engine over the given stores.
    pub fn new(stores: Stores) -> Self {
        Self {
            stores,
            observers: Vec::new(),
        }
    }

    /// Adds a [`CommitObserver`], called after every version committed through collections
    /// this engine hands out from now on (see its contract).
    pub fn observe(mut self, observer: Arc<dyn CommitObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// A handle on one collection. Validates the config and prepares the index store
    /// (indexes are created here once, never per write).
    pub async fn collection(&self, config: CollectionConfig) -> Result<Collection> {
        validate_collection_name(&config.name)?;
        validate_blob_prefix(&config.name, &config.blob_prefix)?;
        for prop in config.base64_props.keys() {
            validate_base64_prop_name(&config.name, prop)?;
        }
        for p in config.indexed_props.iter().chain(&config.required_indexed) {
            validate_prop_path(&config.name, p)?;
        }
        if !config.indexed_props.is_empty() {
            if let Some(missing) = config
                .required_indexed
                .iter()
                .find(|r| !config.indexed_props.contains(r))
            {
                return Err(Error::invalid_config(format!(
                    "requiredIndexed '{missing}' is not in indexedProps {:?}",
                    config.indexed_props
                ))
                .with("collection", &config.name));
            }
        }
        let index = &self.stores.index;
        index.prepare(&config.name, &config.indexed_props).await?;
        let owner = index.database_id().await?;
        if !attempt::is_database_id(&owner) {
            return Err(Error::internal(format!(
                "the index store returned a malformed database id ({} characters; expected 1-64 of 0-9 a-z)",
                owner.len()
            ))
            .with("collection", &config.name));
        }
        Ok(Collection {
            inner: Arc::new(Inner {
                stores: self.stores.clone(),
                config,
                owner,
                observers: self.observers.clone(),
                turns: turns::Turns::default(),
            }),
        })
    }
}

/// Checks a collection name: 1–64 chars of `A-Za-z0-9_.-`, starting with a letter, digit or
/// `_`. Names become table names and blob key prefixes, so nothing else is allowed.
pub fn validate_collection_name(name: &str) -> Result<()> {
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok_first || !ok_rest || name.len() > 64 {
        return Err(Error::validation(format!(
            "invalid collection name '{name}': use 1-64 characters of A-Z a-z 0-9 _ . - starting \
             with a letter, digit or _"
        ))
        .with("collection", name));
    }
    Ok(())
}

fn validate_blob_prefix(collection: &str, prefix: &str) -> Result<()> {
    let ok = prefix.is_empty()
        || (prefix.ends_with('/')
            && prefix[..prefix.len() - 1].split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            }));
    if !ok {
        return Err(Error::invalid_config(format!(
            "invalid blob prefix '{prefix}': empty, or segments of A-Z a-z 0-9 _ . - each followed by /"
        ))
        .with("collection", collection));
    }
    Ok(())
}

fn validate_prop_path(collection: &str, p: &str) -> Result<()> {
    if let Err(e) = crate::filter::check_path(p) {
        return Err(
            Error::invalid_config(format!("indexed property: {}", e.message()))
                .with("collection", collection),
        );
    }
    if p.is_empty()
        || p.split('.').any(|s| s.is_empty() || s.starts_with('$'))
        || p.starts_with('_')
    {
        return Err(Error::invalid_config(format!(
            "invalid indexed property '{p}': dotted path of non-empty segments, not starting with _ or $"
        ))
        .with("collection", collection));
    }
    Ok(())
}

/// A handle on one collection. Cheap to clone; safe to share between tasks.
#[derive(Debug, Clone)]
pub struct Collection {
    inner: Arc<Inner>,
}

/// A [`Collection`] handle that does not keep it alive ([`Collection::downgrade`]).
#[derive(Debug, Clone)]
pub struct WeakCollection(std::sync::Weak<Inner>);

impl WeakCollection {
    /// The collection, while some strong handle still exists.
    pub fn upgrade(&self) -> Option<Collection> {
        self.0.upgrade().map(|inner| Collection { inner })
    }
}

#[derive(Debug)]
struct Inner {
    stores: Stores,
    config: CollectionConfig,
    /// The index database's id ([`IndexStore::database_id`]), written into every blob key.
    owner: String,
    /// Called after every commit (`commit.rs`, the after-commit stage).
    observers: Vec<Arc<dyn CommitObserver>>,
    /// Writers of one record in this process take turns (`turns.rs`).
    turns: turns::Turns,
}

impl Collection {
    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }
    /// The collection's configuration.
    pub fn config(&self) -> &CollectionConfig {
        &self.inner.config
    }
    /// The id of the index database this collection lives in
    /// ([`IndexStore::database_id`]): every blob it writes carries it, and its sweep deletes
    /// nothing that does not.
    pub fn database_id(&self) -> &str {
        &self.inner.owner
    }
    /// A handle that does not keep the collection alive: for observers that need the
    /// collection they observe (a strong handle there would be a reference cycle).
    pub fn downgrade(&self) -> WeakCollection {
        WeakCollection(Arc::downgrade(&self.inner))
    }
    /// The stores this collection uses — for tooling and tests: writing to them directly
    /// bypasses every guarantee of the engine.
    pub fn stores(&self) -> &Stores {
        &self.inner.stores
    }
}
