//! Options of engine operations: plain structs with builder methods and sensible defaults.

use serde_json::Value;

use super::IdempotencyKey;
use crate::id::ItemId;
use crate::index::{Point, Sort, SortField};
use crate::model::{Origin, RecordRef};
use crate::time::Timestamp;

/// How one collection behaves (the spec's `collectionMaps` entry plus global switches).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectionConfig {
    /// Collection name: 1–64 chars of `A-Za-z0-9_.-`, starting with a letter, digit or `_`.
    pub name: String,
    /// Properties copied into indexed metadata (dotted paths allowed). Empty: all fields.
    pub indexed_props: Vec<String>,
    /// Indexed properties every create/update must carry (non-null).
    pub required_indexed: Vec<String>,
    /// Keep every version (default). When off, only the latest version is kept.
    pub versioning: bool,
    /// Deletes are logical (default): the head stays as a tombstone and restore undeletes.
    /// When off, delete removes the head; the version log keeps every version and the
    /// tombstone, so history, time travel and restore still work.
    pub logical_delete: bool,
    /// devShadow: keep an inline copy of payloads up to `max_bytes` in the head for `ttl`, so
    /// reads of the latest version (and list pages) skip the blob store.
    pub shadow: Option<ShadowPolicy>,
    /// Prefix of every blob key this collection writes (`""` or `seg/…/`), so databases that
    /// share one bucket never see — or sweep — each other's payloads.
    pub blob_prefix: String,
    /// gzip payloads of at least [`COMPRESS_MIN_BYTES`] when that makes them smaller
    /// (`writeOptimization.compressionEnabled`). The key records the encoding (`.json.gz`),
    /// so compressed and plain versions read alike.
    pub compression: bool,
    /// Properties stored as their own blobs (`base64Props`), by top-level field name.
    pub base64_props: std::collections::BTreeMap<String, super::Base64Prop>,
    /// How long a write attempt may take from its first blob put to sending its commit; an
    /// attempt past it is refused (`Unavailable`, nothing committed). Default
    /// [`DEFAULT_WRITE_DEADLINE`]. With [`CollectionConfig::clock_skew`] it bounds how long an
    /// unreferenced blob may still become referenced, which is what makes the sweep safe.
    pub write_deadline: std::time::Duration,
    /// The largest difference between the clocks of any two processes writing or sweeping
    /// this collection, plus the longest time one commit request may spend in flight. Default
    /// [`DEFAULT_CLOCK_SKEW`]. [`Collection::sweep`](super::Collection::sweep) refuses a grace
    /// period shorter than `write_deadline + clock_skew`.
    pub clock_skew: std::time::Duration,
    /// The largest payload (its JSON, before compression) a write may store; larger writes
    /// are a validation error naming the limit. Default [`DEFAULT_MAX_PAYLOAD_BYTES`].
    pub max_payload_bytes: u64,
    /// The largest indexed metadata (the `indexedProps` of a document, or all of it without
    /// them) a write may copy into the index; larger is a validation error naming the limit.
    /// Default [`DEFAULT_MAX_META_BYTES`].
    pub max_meta_bytes: u64,
    /// How often a write without `expected_ov` retries after losing a race to another writer
    /// before it fails with [`ConflictCause::RetriesExhausted`](crate::ConflictCause). Each
    /// lost race means another write committed, so the collection always progresses; the
    /// default [`DEFAULT_MAX_WRITE_RETRIES`] (with jittered backoff, about a minute on one
    /// hot record at worst) makes giving up exceptional.
    pub max_write_retries: usize,
    /// The most items [`Collection::create_many`](super::Collection::create_many) and
    /// `update_many` commit in one index call (`writeOptimization.batchSize`); longer
    /// batches run in chunks of this size. Default [`DEFAULT_BATCH_SIZE`].
    pub batch_size: usize,
}

/// Default [`CollectionConfig::batch_size`].
pub const DEFAULT_BATCH_SIZE: usize = 100;

/// Default [`CollectionConfig::max_write_retries`].
pub const DEFAULT_MAX_WRITE_RETRIES: usize = 1_000;

/// Default [`CollectionConfig::max_payload_bytes`]: 16 MiB, MongoDB's document limit.
pub const DEFAULT_MAX_PAYLOAD_BYTES: u64 = 16 * 1024 * 1024;
/// Default [`CollectionConfig::max_meta_bytes`]: 1 MiB (heads and version entries each carry
/// a copy; MongoDB documents are limited to 16 MiB).
pub const DEFAULT_MAX_META_BYTES: u64 = 1024 * 1024;

/// Default [`CollectionConfig::write_deadline`]: two minutes.
pub const DEFAULT_WRITE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);
/// Default [`CollectionConfig::clock_skew`]: three minutes.
pub const DEFAULT_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(180);

/// Payloads below this size are stored as they are even with compression on: gzip's framing
/// would outweigh the gain.
pub const COMPRESS_MIN_BYTES: usize = 512;

/// The devShadow policy of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowPolicy {
    /// Largest payload shadowed, in bytes.
    pub max_bytes: u64,
    /// How long a shadow copy is used after its write.
    pub ttl: std::time::Duration,
}

impl CollectionConfig {
    /// A collection with default behaviour and every field indexed.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            indexed_props: Vec::new(),
            required_indexed: Vec::new(),
            versioning: true,
            logical_delete: true,
            shadow: None,
            blob_prefix: String::new(),
            compression: false,
            base64_props: Default::default(),
            write_deadline: DEFAULT_WRITE_DEADLINE,
            clock_skew: DEFAULT_CLOCK_SKEW,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            max_meta_bytes: DEFAULT_MAX_META_BYTES,
            max_write_retries: DEFAULT_MAX_WRITE_RETRIES,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
    /// Sets [`CollectionConfig::batch_size`] (at least 1).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }
    /// Sets [`CollectionConfig::max_write_retries`].
    pub fn max_write_retries(mut self, n: usize) -> Self {
        self.max_write_retries = n;
        self
    }
    /// Sets [`CollectionConfig::max_meta_bytes`].
    pub fn max_meta_bytes(mut self, max: u64) -> Self {
        self.max_meta_bytes = max;
        self
    }
    /// Sets [`CollectionConfig::max_payload_bytes`].
    pub fn max_payload_bytes(mut self, max: u64) -> Self {
        self.max_payload_bytes = max;
        self
    }
    /// Sets [`CollectionConfig::write_deadline`].
    pub fn write_deadline(mut self, deadline: std::time::Duration) -> Self {
        self.write_deadline = deadline;
        self
    }
    /// Sets [`CollectionConfig::clock_skew`] (zero is right only when every writer and
    /// sweeper shares one clock, as in tests).
    pub fn clock_skew(mut self, skew: std::time::Duration) -> Self {
        self.clock_skew = skew;
        self
    }
    /// The shortest grace period [`Collection::sweep`](super::Collection::sweep) accepts:
    /// `write_deadline + clock_skew`.
    pub fn min_sweep_grace(&self) -> std::time::Duration {
        self.write_deadline.saturating_add(self.clock_skew)
    }
    /// Puts this collection's blobs under `prefix` (`""`, or segments of `A-Za-z0-9_.-`
    /// each followed by `/`, e.g. `"tenant_a/"`).
    pub fn blob_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.blob_prefix = prefix.into();
        self
    }
    /// Externalises property `prop` (a base64 string on write) as its own blob.
    pub fn base64_prop(mut self, prop: impl Into<String>, spec: super::Base64Prop) -> Self {
        self.base64_props.insert(prop.into(), spec);
        self
    }
    /// Turns payload compression on or off.
    pub fn compression(mut self, on: bool) -> Self {
        self.compression = on;
        self
    }
    /// Turns devShadow on.
    pub fn dev_shadow(mut self, max_bytes: u64, ttl: std::time::Duration) -> Self {
        self.shadow = Some(ShadowPolicy { max_bytes, ttl });
        self
    }
    /// Sets `indexedProps`.
    pub fn indexed_props<I: IntoIterator<Item = S>, S: Into<String>>(mut self, props: I) -> Self {
        self.indexed_props = props.into_iter().map(Into::into).collect();
        self
    }
    /// Sets `validation.requiredIndexed`.
    pub fn required_indexed<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        props: I,
    ) -> Self {
        self.required_indexed = props.into_iter().map(Into::into).collect();
        self
    }
    /// Turns versioning on or off.
    pub fn versioning(mut self, on: bool) -> Self {
        self.versioning = on;
        self
    }
    /// Turns logical delete on or off.
    pub fn logical_delete(mut self, on: bool) -> Self {
        self.logical_delete = on;
        self
    }
}

macro_rules! key_builder {
    () => {
        /// Sets the idempotency key.
        pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
            self.idempotency_key = Some(key);
            self
        }
    };
}

macro_rules! audit_builders {
    () => {
        /// Sets who makes the change.
        pub fn actor(mut self, actor: impl Into<String>) -> Self {
            self.actor = Some(actor.into());
            self
        }
        /// Sets why.
        pub fn reason(mut self, reason: impl Into<String>) -> Self {
            self.reason = Some(reason.into());
            self
        }
    };
}

macro_rules! read_builders {
    () => {
        /// Attaches presigned URLs valid for `ttl` (see [`ReadOptions::presign`]).
        pub fn presign(mut self, ttl: std::time::Duration) -> Self {
            self.presign = Some(ttl);
            self
        }
        /// Sets how externalised properties come back.
        pub fn externals(mut self, how: Externals) -> Self {
            self.externals = how;
            self
        }
    };
}

macro_rules! expected_ov_builder {
    () => {
        /// Fails with `Conflict` unless the record is at this ov.
        pub fn expected_ov(mut self, ov: u64) -> Self {
            self.expected_ov = Some(ov);
            self
        }
    };
}

/// Options of `create`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateOptions {
    /// Who.
    pub actor: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Use this id instead of a generated one (`AlreadyExists` if taken).
    pub id: Option<ItemId>,
    /// Parent record: sets `parentId`/`parentCollection` and, without `origin`, the origin.
    pub parent: Option<RecordRef>,
    /// Explicit origin; `system` prefixes the stored collection (`stripe:customers`).
    pub origin: Option<Origin>,
    /// The write's idempotency key: its blobs name it, so
    /// [`Collection::find_committed`](crate::Collection::find_committed) can tell whether it
    /// committed (the fallback queue gives every queued write one).
    pub idempotency_key: Option<IdempotencyKey>,
}

impl CreateOptions {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
    audit_builders!();
    key_builder!();
    /// Sets the id.
    pub fn id(mut self, id: ItemId) -> Self {
        self.id = Some(id);
        self
    }
    /// Sets the parent record.
    pub fn parent(mut self, id: impl Into<String>, collection: impl Into<String>) -> Self {
        self.parent = Some(RecordRef {
            id: id.into(),
            collection: collection.into(),
        });
        self
    }
    /// Sets an explicit origin.
    pub fn origin(
        mut self,
        id: impl Into<String>,
        collection: impl Into<String>,
        system: Option<&str>,
    ) -> Self {
        self.origin = Some(Origin {
            id: id.into(),
            collection: collection.into(),
            system: system.map(Into::into),
        });
        self
    }
}

/// Options of `update`, `delete` and `restore_object`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Optimistic-concurrency check. Without it the write applies to whatever version is
    /// current, retrying internally if another writer commits in between.
    pub expected_ov: Option<u64>,
    /// Who.
    pub actor: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The write's idempotency key: its blobs name it, so
    /// [`Collection::find_committed`](crate::Collection::find_committed) can tell whether it
    /// committed (the fallback queue gives every queued write one).
    pub idempotency_key: Option<IdempotencyKey>,
}

impl WriteOptions {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
    audit_builders!();
    key_builder!();
    expected_ov_builder!();
}

/// Options of `enrich`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrichOptions {
    /// Optimistic-concurrency check (see [`WriteOptions::expected_ov`]).
    pub expected_ov: Option<u64>,
    /// Provenance: added to `functionIds`.
    pub function_id: Option<String>,
    /// Who.
    pub actor: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The write's idempotency key: its blobs name it, so
    /// [`Collection::find_committed`](crate::Collection::find_committed) can tell whether it
    /// committed (the fallback queue gives every queued write one).
    pub idempotency_key: Option<IdempotencyKey>,
}

impl EnrichOptions {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
    audit_builders!();
    key_builder!();
    expected_ov_builder!();
    /// Sets the enrichment function id.
    pub fn function_id(mut self, id: impl Into<String>) -> Self {
        self.function_id = Some(id.into());
        self
    }
}

/// Options of point reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Return tombstones instead of `None`.
    pub include_deleted: bool,
    /// Keep only these (dotted) fields of the user data.
    pub projection: Option<Vec<String>>,
    /// Attach presigned GET URLs valid this long: for the version's JSON
    /// ([`Record::presigned`](crate::Record::presigned)) and inside the refs of externalised
    /// properties. `Unsupported` on stores that cannot presign (filesystem, memory).
    pub presign: Option<std::time::Duration>,
    /// How externalised (`base64Props`) properties come back.
    pub externals: Externals,
}

/// How externalised (`base64Props`) properties are returned by reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Externals {
    /// The stored ref object (`{"ref": {blobKey, …}}`), with `url`/`textUrl`/`expiresAt`
    /// added when the read presigns.
    #[default]
    Ref,
    /// The content itself, base64-encoded as it was written (verified against its size and
    /// SHA-256).
    Inline,
}

impl ReadOptions {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Returns tombstones too.
    pub fn include_deleted(mut self, on: bool) -> Self {
        self.include_deleted = on;
        self
    }
    /// Sets the projection.
    pub fn projection<I: IntoIterator<Item = S>, S: Into<String>>(mut self, fields: I) -> Self {
        self.projection = Some(fields.into_iter().map(Into::into).collect());
        self
    }
    read_builders!();
}

/// Options of `list_by_meta` / `query`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListOptions {
    /// Mongo-style filter over indexed metadata (`{}` for all).
    pub filter: Value,
    /// Order (ties broken by id). Default: by id ascending.
    pub sort: Sort,
    /// Page size, 1..=1000. Default 50.
    pub limit: usize,
    /// Continue after the page that returned this cursor.
    pub cursor: Option<String>,
    /// Include tombstones.
    pub include_deleted: bool,
    /// Keep only these fields of each record's user data.
    pub projection: Option<Vec<String>>,
    /// See [`ReadOptions::presign`].
    pub presign: Option<std::time::Duration>,
    /// See [`ReadOptions::externals`].
    pub externals: Externals,
}

impl Default for ListOptions {
    fn default() -> Self {
        Self {
            filter: Value::Object(Default::default()),
            sort: Sort::default(),
            limit: 50,
            cursor: None,
            include_deleted: false,
            projection: None,
            presign: None,
            externals: Externals::Ref,
        }
    }
}

impl ListOptions {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the filter.
    pub fn filter(mut self, filter: Value) -> Self {
        self.filter = filter;
        self
    }
    /// Sorts by an indexed metadata path.
    pub fn sort_by_meta(mut self, path: impl Into<String>, descending: bool) -> Self {
        self.sort = Sort {
            field: SortField::Meta(path.into()),
            descending,
        };
        self
    }
    /// Sorts by a built-in field.
    pub fn sort(mut self, field: SortField, descending: bool) -> Self {
        self.sort = Sort { field, descending };
        self
    }
    /// Sets the page size.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }
    /// Continues after a previous page.
    pub fn cursor(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
    /// Includes tombstones.
    pub fn include_deleted(mut self, on: bool) -> Self {
        self.include_deleted = on;
        self
    }
    /// Sets the projection.
    pub fn projection<I: IntoIterator<Item = S>, S: Into<String>>(mut self, fields: I) -> Self {
        self.projection = Some(fields.into_iter().map(Into::into).collect());
        self
    }
    read_builders!();
}

/// Options of `history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryOptions {
    /// Start after this ov.
    pub after_ov: Option<u64>,
    /// Page size, 1..=1000. Default 100.
    pub limit: usize,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        Self {
            after_ov: None,
            limit: 100,
        }
    }
}

/// Where `restore_object` goes back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreTarget {
    /// A specific object version.
    Ov(u64),
    /// The version current at an instant.
    At(Timestamp),
}

/// Options of `restore_collection`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionRestoreOptions {
    /// Only compute and return the plan.
    pub dry_run: bool,
    /// Who.
    pub actor: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The lease that makes the restore exclusive lapses this long after its holder stops
    /// renewing it (it is renewed every third of it while the restore runs); `None`: 30 s.
    pub lease_ttl: Option<std::time::Duration>,
}

impl CollectionRestoreOptions {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }
    audit_builders!();
    /// Plans without writing.
    pub fn dry_run(mut self, on: bool) -> Self {
        self.dry_run = on;
        self
    }
    /// Sets [`CollectionRestoreOptions::lease_ttl`].
    pub fn lease_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.lease_ttl = Some(ttl);
        self
    }
}

/// Where `restore_collection` goes back to.
pub type CollectionTarget = Point;
