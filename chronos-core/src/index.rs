//! The index store: head pointers, the version log and the collection-version counter.
//!
//! An [`IndexStore`] holds, per collection `C`, what MongoDB keeps in `C_head`, `C_ver` and
//! `C_counter`. Payloads are not here: entries carry the blob key of their version's JSON.

use std::fmt::Debug;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::aggregate::AggregateQuery;
use crate::chain::{ChainLink, Seal};
use crate::error::Result;
use crate::filter::{canonical_cmp, get_path, Filter};
use crate::id::ItemId;
use crate::model::{Lineage, Op};
use crate::time::Timestamp;

/// One entry of the version log (`C_ver`).
#[derive(Debug, Clone, PartialEq)]
pub struct VersionEntry {
    /// The record.
    pub item_id: ItemId,
    /// Object version, dense from 0 per record.
    pub ov: u64,
    /// Collection version assigned at commit.
    pub cv: u64,
    /// What the version records.
    pub op: Op,
    /// Commit instant (ms precision); strictly increasing with `ov` per record.
    pub at: Timestamp,
    /// Who made the change.
    pub actor: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Blob key of the version's JSON (a tombstone points at its predecessor's).
    pub blob_key: String,
    /// Indexed metadata of the version.
    pub meta: Map<String, Value>,
    /// Payload size in bytes.
    pub size: u64,
    /// SHA-256 of the payload bytes, lower-case hex.
    pub checksum: String,
    /// The previous ov, for every version but the first.
    pub prev_ov: Option<u64>,
    /// The version's link in its record's hash chain ([`crate::chain`]); `None` for versions
    /// written without one (upstream data).
    pub seal: Option<Seal>,
}

impl VersionEntry {
    /// Whether this version is a tombstone (a delete, or an erase).
    pub fn is_tombstone(&self) -> bool {
        matches!(self.op, Op::Delete | Op::Erase)
    }

    /// Whether this version's content was erased ([`IndexStore::scrub_versions`], or the
    /// ERASE version itself): no payload, no metadata, [`ERASED_CHECKSUM`] as checksum.
    pub fn is_erased(&self) -> bool {
        self.checksum == ERASED_CHECKSUM
    }
}

/// The checksum of a content-free version entry (an erased version, an ERASE tombstone):
/// never a SHA-256 in hex, so it cannot be mistaken for one, and it reveals nothing about
/// the content that was there.
pub const ERASED_CHECKSUM: &str = "erased";

/// A version about to be committed: a [`VersionEntry`] without its `cv`, which the store
/// assigns.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    /// See [`VersionEntry::item_id`].
    pub item_id: ItemId,
    /// See [`VersionEntry::ov`].
    pub ov: u64,
    /// See [`VersionEntry::op`].
    pub op: Op,
    /// See [`VersionEntry::at`].
    pub at: Timestamp,
    /// See [`VersionEntry::actor`].
    pub actor: Option<String>,
    /// See [`VersionEntry::reason`].
    pub reason: Option<String>,
    /// See [`VersionEntry::blob_key`].
    pub blob_key: String,
    /// See [`VersionEntry::meta`].
    pub meta: Map<String, Value>,
    /// See [`VersionEntry::size`].
    pub size: u64,
    /// See [`VersionEntry::checksum`].
    pub checksum: String,
    /// See [`VersionEntry::prev_ov`].
    pub prev_ov: Option<u64>,
    /// What the store seals the version with when it assigns the cv (`None`: unsealed, as
    /// upstream writes).
    pub chain: Option<ChainLink>,
}

impl NewVersion {
    /// Whether this version is a tombstone (a delete, or an erase).
    pub fn is_tombstone(&self) -> bool {
        matches!(self.op, Op::Delete | Op::Erase)
    }

    /// The committed entry with the cv the store assigned, sealed ([`crate::chain`]) when
    /// the version came with a [`ChainLink`]. Every store builds its entries here, so every
    /// backend writes the same hashes.
    pub fn into_entry(self, cv: u64) -> VersionEntry {
        let seal = self.seal(cv);
        VersionEntry {
            item_id: self.item_id,
            ov: self.ov,
            cv,
            op: self.op,
            at: self.at,
            actor: self.actor,
            reason: self.reason,
            blob_key: self.blob_key,
            meta: self.meta,
            size: self.size,
            checksum: self.checksum,
            prev_ov: self.prev_ov,
            seal,
        }
    }

    /// The seal [`NewVersion::into_entry`] gives the version at `cv`, for stores that write
    /// the entry's fields themselves.
    pub fn seal(&self, cv: u64) -> Option<Seal> {
        let l = self.chain.clone()?;
        let f = crate::chain::Linked {
            id: self.item_id,
            ov: self.ov,
            cv,
            op: self.op,
            at: self.at,
            actor: self.actor.as_deref(),
            reason: self.reason.as_deref(),
        };
        Some(Seal::new(l, &f, &self.checksum, self.size, &self.meta))
    }
}

/// The head of a record (`C_head`): a copy of its latest version's index data.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadEntry {
    /// The record.
    pub item_id: ItemId,
    /// Latest ov.
    pub ov: u64,
    /// cv of the latest version.
    pub cv: u64,
    /// Blob key of the latest version.
    pub blob_key: String,
    /// Indexed metadata of the latest version (what filters run on).
    pub meta: Map<String, Value>,
    /// Payload size.
    pub size: u64,
    /// Payload checksum.
    pub checksum: String,
    /// When the record was created (the `at` of ov 0).
    pub created_at: Timestamp,
    /// The `at` of the latest version.
    pub updated_at: Timestamp,
    /// Set when the latest version is a tombstone.
    pub deleted_at: Option<Timestamp>,
    /// An inline copy of the latest payload (devShadow), if one was kept and stored.
    pub shadow: Option<Shadow>,
    /// A copy of the latest version's lineage (as in its payload's `_system`), so an update
    /// need not read the payload to carry it on. `None` for heads written without it
    /// (upstream data, heads rebuilt from the version log): readers then use the payload.
    pub lineage: Option<Lineage>,
    /// The latest version's chain hash ([`Seal::hash`]), which the next version links to;
    /// `None` when that version is unsealed.
    pub chain: Option<String>,
}

/// An inline copy of a head's payload (devShadow): exactly the payload's bytes, so the head's
/// checksum verifies it, kept until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadow {
    /// The payload JSON text.
    pub json: String,
    /// After this instant readers ignore it and read the blob.
    pub expires_at: Timestamp,
}

impl HeadEntry {
    /// The head that a committed version produces.
    pub fn from_version(v: &VersionEntry, created_at: Timestamp) -> HeadEntry {
        HeadEntry {
            item_id: v.item_id,
            ov: v.ov,
            cv: v.cv,
            blob_key: v.blob_key.clone(),
            meta: v.meta.clone(),
            size: v.size,
            checksum: v.checksum.clone(),
            created_at,
            updated_at: v.at,
            deleted_at: v.is_tombstone().then_some(v.at),
            shadow: None,
            lineage: None,
            chain: v.seal.as_ref().map(|s| s.hash.clone()),
        }
    }

    /// The value this head sorts by for `field` (ids as strings, instants as epoch millis).
    pub fn sort_value(&self, field: &SortField) -> Value {
        match field {
            SortField::Id => Value::String(self.item_id.to_string()),
            SortField::CreatedAt => Value::from(self.created_at.as_millisecond()),
            SortField::UpdatedAt => Value::from(self.updated_at.as_millisecond()),
            SortField::Meta(path) => get_path(&self.meta, path).cloned().unwrap_or(Value::Null),
        }
    }
}

/// What a commit does to the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadAction {
    /// The head becomes the new version.
    Upsert,
    /// The head is removed (a hard delete; the version log keeps the tombstone).
    Remove,
}

/// An atomic index commit of one version.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The version to append.
    pub version: NewVersion,
    /// The record's creation instant, copied into the head.
    pub created_at: Timestamp,
    /// What happens to the head.
    pub head: HeadAction,
    /// When set, version entries of this record with `ov` below it are removed in the same
    /// commit (versioning disabled keeps only the latest entry).
    pub prune_below_ov: Option<u64>,
    /// An inline copy of the payload to keep in the head (devShadow).
    pub shadow: Option<Shadow>,
    /// The version's lineage, kept in the head ([`HeadEntry::lineage`]).
    pub lineage: Lineage,
    /// The write attempt's deadline: a store that can read a clock at its linearisation point
    /// refuses the commit after this instant (`Unavailable`, changing nothing), so a commit
    /// delayed in flight can never land after a sweep gave up on its payload. Stores that
    /// cannot (MongoDB) rely on the engine's own check before sending plus the collection's
    /// clock-skew margin.
    pub not_after: Option<Timestamp>,
}

impl Commit {
    /// A commit of `version` doing `head` with nothing else: created when the version is
    /// (`created_at = version.at`), no pruning, no devShadow copy, no lineage, no deadline.
    /// Set the public fields for the rest.
    pub fn new(version: NewVersion, head: HeadAction) -> Self {
        Commit {
            created_at: version.at,
            version,
            head,
            prune_below_ov: None,
            shadow: None,
            lineage: Lineage::default(),
            not_after: None,
        }
    }

    /// For stores checking [`Commit::not_after`] at their linearisation point: `Unavailable`
    /// when `now` is past it, the one error every store returns for a late commit.
    pub fn check_deadline(&self, collection: &str, now: Timestamp) -> crate::Result<()> {
        match self.not_after {
            Some(limit) if now > limit => Err(crate::Error::unavailable(format!(
                "commit of ov {} refused: the write attempt's deadline ({limit}) passed before \
                 it reached the index store; nothing was committed, retry it",
                self.version.ov
            ))
            .with("collection", collection)
            .with("id", self.version.item_id)),
            _ => Ok(()),
        }
    }
}

/// What [`IndexStore::precommit`] prepared for one commit; handed back to
/// [`IndexStore::commit_prepared`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Precommit {
    /// A cv the store reserved for the commit (stores that hand out cvs at commit time leave
    /// this empty).
    pub reserved_cv: Option<u64>,
    /// When the reservation was handed out (stores whose reservations expire refuse, or
    /// replace, one older than their bound).
    pub reserved_at: Option<std::time::Instant>,
}

impl Precommit {
    /// Nothing prepared: [`IndexStore::commit_prepared`] does the whole commit.
    pub fn none() -> Self {
        Self::default()
    }

    /// A cv reserved for the commit.
    pub fn with_cv(cv: u64) -> Self {
        Self {
            reserved_cv: Some(cv),
            reserved_at: Some(std::time::Instant::now()),
        }
    }
}

/// One page of a collection's version log in cv order ([`IndexStore::feed`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    /// Committed versions with cv above the requested one, ascending cv.
    pub versions: Vec<VersionEntry>,
    /// Where the next page starts: every version with a cv up to and including `next` that
    /// will ever be committed is in this page or an earlier one. At least the requested cv;
    /// beyond the last version returned when the log has nothing more to hand out yet, so an
    /// empty page still moves a consumer on.
    pub next: u64,
}

impl FeedPage {
    /// The page of a store whose every committed version up to `settled` can be handed out
    /// (`versions`: the first up-to-`limit` of them after `after_cv`): a full page resumes
    /// after its last version, a short one at `settled`.
    pub fn up_to(versions: Vec<VersionEntry>, limit: usize, after_cv: u64, settled: u64) -> Self {
        let next = match versions.last() {
            Some(last) if versions.len() == limit => last.cv,
            _ => settled.max(after_cv),
        };
        Self { versions, next }
    }

    /// `Gone` for a feed read after `after_cv` when versions up to `pruned_cv` were pruned
    /// (`Ok` when none above the cursor were): the one check and message of every store.
    pub fn check_pruned(collection: &str, after_cv: u64, pruned_cv: u64) -> Result<()> {
        if pruned_cv <= after_cv {
            return Ok(());
        }
        Err(crate::Error::gone(format!(
            "change cursor at cv {after_cv} is older than the versions the collection keeps \
             (versions up to cv {pruned_cv} were pruned); rebuild what the consumer derives \
             from the current state"
        ))
        .with("collection", collection))
    }
}

/// A point in a collection's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// An instant: versions with `at <= t`.
    At(Timestamp),
    /// A collection version: versions with `cv <= n`.
    Cv(u64),
}

/// What heads can be sorted by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortField {
    /// The record id.
    Id,
    /// Creation instant.
    CreatedAt,
    /// Instant of the latest version.
    UpdatedAt,
    /// An indexed metadata path.
    Meta(String),
}

/// A sort order; ties are always broken by id in the same direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    /// The field.
    pub field: SortField,
    /// Descending when true.
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            field: SortField::Id,
            descending: false,
        }
    }
}

/// A keyset position: the sort value and id of the last item of the previous page.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// The sort value ([`HeadEntry::sort_value`]).
    pub value: Value,
    /// The id.
    pub id: ItemId,
}

impl Sort {
    /// Compares two heads in this order (the reference every backend must reproduce).
    pub fn compare(&self, a: &HeadEntry, b: &HeadEntry) -> std::cmp::Ordering {
        let (va, vb) = (a.sort_value(&self.field), b.sort_value(&self.field));
        let o = canonical_cmp(Some(&va), Some(&vb)).then(a.item_id.cmp(&b.item_id));
        if self.descending {
            o.reverse()
        } else {
            o
        }
    }
    /// Whether `head` comes strictly after the keyset position `key`.
    pub fn is_after(&self, head: &HeadEntry, key: &SortKey) -> bool {
        let v = head.sort_value(&self.field);
        let o = canonical_cmp(Some(&v), Some(&key.value)).then(head.item_id.cmp(&key.id));
        if self.descending {
            o.is_lt()
        } else {
            o.is_gt()
        }
    }
}

/// A query over heads.
#[derive(Debug, Clone)]
pub struct HeadQuery {
    /// Filter over each head's indexed metadata.
    pub filter: Filter,
    /// Include heads whose latest version is a tombstone.
    pub include_deleted: bool,
    /// Order.
    pub sort: Sort,
    /// Return only heads strictly after this position.
    pub after: Option<SortKey>,
    /// At most this many heads.
    pub limit: usize,
}

/// How many commits the default [`IndexStore::commit_many`] sends at once.
pub const COMMIT_MANY_CONCURRENCY: usize = 16;

/// What an index store can do; the engine adapts to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexCapabilities {
    /// `commit` is one atomic transaction (otherwise an ordered, idempotent sequence whose
    /// linearisation point is the insert of the unique `(item_id, ov)` version entry).
    pub atomic_commit: bool,
}

impl IndexCapabilities {
    /// Capabilities with the given atomicity.
    pub fn new(atomic_commit: bool) -> Self {
        Self { atomic_commit }
    }
}

/// Storage for heads, versions and collection-version counters.
///
/// # Contract (checked by the conformance suite on every backend)
/// - Collections are independent namespaces; names are validated by the engine.
/// - [`IndexStore::commit`] appends version `(item_id, ov)` iff the record's greatest
///   committed ov is exactly `ov - 1` (no version at all when `ov == 0`); otherwise it returns
///   [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) and changes nothing. On success the
///   version is visible to every reader, the head reflects it (or is removed), and the
///   assigned cv is returned.
/// - cvs are unique per collection and strictly greater than every cv whose commit completed
///   before this commit started; consequently a record's cv increases with its ov.
/// - A commit's `shadow`, when given, is stored with the head and returned by `head` and
///   `query_heads` until the head changes (stores may drop it, never alter it).
/// - A commit's `lineage` is returned as the head's [`HeadEntry::lineage`] (a head rebuilt
///   from the version log may have none, never a wrong one).
/// - Reads see only committed state; [`IndexStore::head`] reflects the greatest committed
///   version even on stores without atomic commits (they repair the head before answering).
/// - A commit past its [`Commit::not_after`] is refused with `Unavailable` where the store
///   can tell (see there).
/// - Errors: driver failures map to `Unavailable` (retryable) or `Internal`; nothing else.
#[async_trait]
pub trait IndexStore: Send + Sync + Debug {
    /// What this store can do.
    fn capabilities(&self) -> IndexCapabilities;

    /// The id of this index database: created at random (see
    /// [`new_database_id`](crate::new_database_id)) by the first call on a new database and
    /// the same for every later call — from any handle, in any process, after a restart.
    /// Different databases have different ids.
    ///
    /// Every blob the engine writes carries it in its key, and a sweep deletes only blobs that
    /// carry its own: that is what keeps databases sharing one bucket (under any prefix, from
    /// any configuration) from deleting each other's payloads. It must therefore never change
    /// once handed out: 1–64 characters of `0-9a-z`, stored durably in the database itself.
    async fn database_id(&self) -> Result<String>;

    /// One cheap round trip to the store that creates and changes nothing (health checks):
    /// `Ok` when the store answers, `Unavailable` (or the backend's mapped error) when not.
    async fn ping(&self) -> Result<()>;

    /// Creates what `collection` needs (tables, indexes; one per indexed prop). Idempotent;
    /// called once per collection handle, never per write.
    async fn prepare(&self, collection: &str, indexed_props: &[String]) -> Result<()>;

    /// Atomically commits one version; returns its cv. See the trait contract.
    async fn commit(&self, collection: &str, commit: Commit) -> Result<u64>;

    /// Commits several versions, each of a different record, and returns one result per
    /// commit, in order. Each commit is judged exactly as [`IndexStore::commit`] would judge
    /// it alone: a conflict, a deadline or any failure of one never undoes, blocks or hides
    /// another's outcome. cvs follow the contract of `commit` (unique, increasing with
    /// completion order); within one call they increase in the order of `commits` where the
    /// store assigns them in one go. An error for the whole call (the store unreachable) is
    /// reported for every commit whose outcome it leaves unknown.
    ///
    /// Stores that can should do the batch in one transaction or one bulk request (SQLite:
    /// one write transaction with a savepoint per commit). Default: the commits one by one
    /// on up to [`COMMIT_MANY_CONCURRENCY`] at once.
    async fn commit_many(&self, collection: &str, commits: Vec<Commit>) -> Vec<Result<u64>> {
        use futures::stream::{self, StreamExt};
        stream::iter(commits)
            .map(|c| self.commit(collection, c))
            .buffered(COMMIT_MANY_CONCURRENCY)
            .collect()
            .await
    }

    /// The part of a commit that may run *while its payload is still being stored*: checks
    /// and reservations that no reader can observe (the ov check, a cv reservation). The
    /// engine runs it concurrently with the payload put and, if both succeed, calls
    /// [`IndexStore::commit_prepared`]; so on a networked index the round trips it saves
    /// overlap the blob store's.
    ///
    /// Contract: it changes nothing a reader can see. `Conflict` means `commit` would
    /// certainly fail with `Conflict` now (and, since a record's latest ov never goes down,
    /// always will). A reserved cv that is never committed is simply skipped: cvs are unique
    /// and increasing, not dense. Default: nothing to prepare.
    async fn precommit(&self, collection: &str, commit: &Commit) -> Result<Precommit> {
        let _ = (collection, commit);
        Ok(Precommit::none())
    }

    /// [`IndexStore::commit`] with what [`IndexStore::precommit`] prepared for this very
    /// commit. Same contract as `commit`: the store still refuses an ov someone committed
    /// since the precommit. Default: `commit`.
    async fn commit_prepared(
        &self,
        collection: &str,
        commit: Commit,
        prepared: Precommit,
    ) -> Result<u64> {
        let _ = prepared;
        self.commit(collection, commit).await
    }

    /// Gives up what [`IndexStore::precommit`] prepared, for a commit that will never be
    /// sent (its payload put failed, or its deadline passed first). Best effort: a store that
    /// reserved a cv records that it will never commit, so the change feed need not wait
    /// for it to expire. Default: nothing.
    async fn abandon(&self, collection: &str, prepared: Precommit) {
        let _ = (collection, prepared);
    }

    /// The head of a record, if any.
    async fn head(&self, collection: &str, id: ItemId) -> Result<Option<HeadEntry>>;

    /// The head as the starting point of a write that is not pinned by `expected_ov`: it may
    /// lag the version log (a store whose commit writes the version and the head in separate
    /// steps, after a crash between them) but never lead it, so a write built on a lagging
    /// head fails its commit as a lost race and the engine's retry reads [`IndexStore::head`].
    /// Lets such a store skip the log check `head` makes on every read. Default: `head`.
    async fn head_for_write(&self, collection: &str, id: ItemId) -> Result<Option<HeadEntry>> {
        self.head(collection, id).await
    }

    /// Version `ov` of a record.
    async fn version(&self, collection: &str, id: ItemId, ov: u64) -> Result<Option<VersionEntry>>;

    /// The record's latest version at `point`: greatest `at <= t` or greatest `cv <= n`.
    /// Must stay O(log n) in the record's history length.
    async fn version_at(
        &self,
        collection: &str,
        id: ItemId,
        point: Point,
    ) -> Result<Option<VersionEntry>>;

    /// The record's versions in ascending ov, starting after `after_ov`, at most `limit`.
    async fn versions(
        &self,
        collection: &str,
        id: ItemId,
        after_ov: Option<u64>,
        limit: usize,
    ) -> Result<Vec<VersionEntry>>;

    /// The collection's whole version log in ascending `(item id, ov)` — ids in the order
    /// [`IndexStore::changed_items`] gives them — starting after the position `after`
    /// (`(id, ov)`: later versions of `id`, then later records), at most `limit` (≥ 1). One ranged
    /// read per page, so reading every version of many small records costs pages, not a
    /// query per record (verify reads the log this way).
    async fn scan_versions(
        &self,
        collection: &str,
        after: Option<(ItemId, u64)>,
        limit: usize,
    ) -> Result<Vec<VersionEntry>>;

    /// Heads matching the query, in its order, filtered, sorted and limited by the store.
    async fn query_heads(&self, collection: &str, query: &HeadQuery) -> Result<Vec<HeadEntry>>;

    /// Distinct ids of records with a version strictly after `since`, ascending, starting
    /// after `after_id`, at most `limit`.
    async fn changed_items(
        &self,
        collection: &str,
        since: Point,
        after_id: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<ItemId>>;

    /// The greatest cv assigned in the collection so far (0 when none).
    async fn current_cv(&self, collection: &str) -> Result<u64>;

    /// The change feed's source: committed versions with cv strictly above `after_cv`, in
    /// ascending cv, at most `limit` (≥ 1), and the position to resume from.
    ///
    /// Contract: gap-free and duplicate-free across pages. A version is handed out only once
    /// no version with a lower cv can still commit — on a store whose cvs become visible in
    /// cv order (one transaction assigns and commits them) that is every committed version;
    /// on one that reserves cvs before committing (MongoDB) the store waits out reservations
    /// that may still land (see its docs). [`FeedPage::next`] obeys the same rule.
    /// `Gone` when versions with a cv above `after_cv` were pruned (`prune_below_ov`), so
    /// the page could not be complete.
    async fn feed(&self, collection: &str, after_cv: u64, limit: usize) -> Result<FeedPage>;

    /// Retention: removes record `id`'s version entries with `ov < below_ov`, never its
    /// latest (a `below_ov` past it is capped there), and returns how many went.
    ///
    /// Contract: the change feed's pruned watermark is raised to the greatest removed cv
    /// before (or atomically with) the removal, so a feed cursor below it is `Gone`, never
    /// silently incomplete; the head, the kept versions and every other record are
    /// untouched; pruning again what is gone removes nothing. Afterwards `version` of a
    /// removed ov is `None` and `versions` / `version_at` / `feed` never return it.
    async fn prune_versions(&self, collection: &str, id: ItemId, below_ov: u64) -> Result<u64>;

    /// Erase: makes record `id`'s version entries with `ov < below_ov` content-free — `meta`
    /// empty, `blob_key` empty, `size` 0, `checksum` [`ERASED_CHECKSUM`] — keeping `ov`,
    /// `cv`, `op`, `at`, `actor`, `reason` and `prev_ov`, never touching the latest version
    /// (a `below_ov` past it is capped there), and returns how many entries changed.
    ///
    /// Contract: idempotent (scrubbing again changes nothing and returns 0); the head and
    /// every other record are untouched; afterwards `version`, `versions`, `version_at` and
    /// `feed` return the scrubbed entries. The erased bytes must not survive in the store's
    /// own files where the store controls them: a store that keeps freed pages or a
    /// write-ahead log (SQLite) overwrites or truncates them before returning `Ok`, and
    /// returns `Unavailable` when it could not yet (the scrub itself stays done; calling
    /// again finishes the purge).
    async fn scrub_versions(&self, collection: &str, id: ItemId, below_ov: u64) -> Result<u64>;

    /// Repair: replaces record `id`'s head with `head` (`None`: removes it) — only if the
    /// head is still what the caller saw (`seen`: its `(ov, cv)`, or `None` for no head) and
    /// the record's latest version is still `latest_ov`, checked atomically with the write
    /// (or, where the store cannot, undone when a commit raced it). Returns whether it
    /// wrote; `false` changes nothing. `head`, when given, is for version `latest_ov`.
    ///
    /// Contract: versions and other records are untouched; a commit that lands between
    /// the caller's read and this call makes it return `false`.
    async fn repair_head(
        &self,
        collection: &str,
        id: ItemId,
        seen: Option<(u64, u64)>,
        latest_ov: u64,
        head: Option<HeadEntry>,
    ) -> Result<bool>;

    /// One aggregate over the collection's current (not deleted) heads that match the
    /// query; see [`crate::aggregate`] for the exact semantics every store must reproduce.
    /// Computed in the store (nothing but the answer leaves it), over every matching head.
    async fn aggregate(&self, collection: &str, query: &AggregateQuery) -> Result<Option<f64>>;
}
