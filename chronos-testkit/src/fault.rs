//! Fault injection: wrappers that make a store fail on the Nth call or on a named operation.
//!
//! A [`FaultPlan`] is shared by any number of wrapped stores, so "the 3rd store call of this
//! write" counts index and blob calls together. A fault either happens *before* the call
//! (nothing reaches the store), *after* it (the store did the work but the caller sees an
//! error: a lost acknowledgement), or makes the store receive the call *twice* (a client
//! retry after a lost acknowledgement: the caller sees the second outcome). Injected errors
//! have kind `Unavailable`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chronos_core::{
    BlobCapabilities, BlobMeta, BlobStore, Commit, Error, FeedPage, HeadEntry, HeadQuery,
    IndexCapabilities, IndexStore, ItemId, Lease, Lock, Point, Precommit, Result, Stores,
    VersionEntry,
};

/// When an injected fault strikes relative to the real call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// Fail without calling the store.
    Before,
    /// Call the store, then report failure (the work is done; the acknowledgement is lost).
    After,
    /// Call the store twice and report the second outcome (the first acknowledgement was
    /// lost and a client retried): a create-only put then sees `AlreadyExists`, a commit
    /// sees its own ov taken.
    Twice,
}

#[derive(Debug, Clone)]
enum Trigger {
    Nth(u64),
    Op(&'static str),
    /// Every call of the operation, until cleared.
    Every(&'static str),
}

/// Work to run just before a named operation reaches the store.
struct Interleave(&'static str, futures::future::BoxFuture<'static, ()>);

impl std::fmt::Debug for Interleave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Interleave({})", self.0)
    }
}

#[derive(Debug, Default)]
struct PlanState {
    calls: u64,
    armed: Option<(Trigger, FaultMode)>,
    log: Vec<&'static str>,
    fired: Option<&'static str>,
    interleave: Option<Interleave>,
    /// Added before every call of the named operation (a slow store).
    latency: Option<(&'static str, Duration)>,
    /// A random delay up to this before every call of the named operation (calls then
    /// overtake each other: commits landing out of order).
    jitter: Option<(&'static str, Duration)>,
}

/// Which calls fail. Cheap to clone (shared state).
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    state: Arc<Mutex<PlanState>>,
}

impl FaultPlan {
    /// A plan that fails nothing.
    pub fn new() -> Self {
        Self::default()
    }
    /// Fails the `n`th call (0-based) counted from now, across every wrapped store.
    pub fn fail_nth(&self, n: u64, mode: FaultMode) {
        let mut s = self.lock();
        s.armed = Some((Trigger::Nth(s.calls + n), mode));
        s.fired = None;
    }
    /// Fails the next call of the named operation (`commit`, `put_if_absent`, `head`, …).
    pub fn fail_op(&self, op: &'static str, mode: FaultMode) {
        let mut s = self.lock();
        s.armed = Some((Trigger::Op(op), mode));
        s.fired = None;
    }
    /// Fails *every* later call of the named operation, until [`FaultPlan::clear`]: with
    /// [`FaultMode::After`] on `commit_prepared`, every write's commit acknowledgement is lost
    /// once (the engine then settles each by reading its version back).
    pub fn fail_every(&self, op: &'static str, mode: FaultMode) {
        let mut s = self.lock();
        s.armed = Some((Trigger::Every(op), mode));
        s.fired = None;
    }
    /// Runs `work` just before the next call of the named operation reaches the store — a
    /// competing writer slipping in at exactly that step (races made deterministic).
    pub fn interleave_before(
        &self,
        op: &'static str,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        self.lock().interleave = Some(Interleave(op, Box::pin(work)));
    }
    /// Delays every later call of the named operation by `by` (a slow store), until
    /// [`FaultPlan::clear_latency`].
    pub fn add_latency(&self, op: &'static str, by: Duration) {
        self.lock().latency = Some((op, by));
    }
    /// Delays every later call of the named operation by a random time up to `max`, until
    /// [`FaultPlan::clear_latency`]: concurrent calls reach the store in shuffled order.
    pub fn add_jitter(&self, op: &'static str, max: Duration) {
        self.lock().jitter = Some((op, max));
    }
    /// Removes the latency of [`FaultPlan::add_latency`] and [`FaultPlan::add_jitter`].
    pub fn clear_latency(&self) {
        let mut s = self.lock();
        s.latency = None;
        s.jitter = None;
    }
    /// Disarms any pending fault.
    pub fn clear(&self) {
        self.lock().armed = None;
    }
    /// The operation an armed fault struck, if it did.
    pub fn fired(&self) -> Option<&'static str> {
        self.lock().fired
    }
    /// Operation names called so far, in order.
    pub fn log(&self) -> Vec<&'static str> {
        self.lock().log.clone()
    }
    /// Calls counted so far.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, PlanState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// The work registered to run before `op`, if any (taken: it runs once).
    fn take_interleave(&self, op: &'static str) -> Option<futures::future::BoxFuture<'static, ()>> {
        let mut s = self.lock();
        match s.interleave.take() {
            Some(Interleave(o, work)) if o == op => Some(work),
            other => {
                s.interleave = other;
                None
            }
        }
    }
    /// Registers a call; returns the fault to apply to it, if any.
    fn hit(&self, op: &'static str) -> Option<FaultMode> {
        let mut s = self.lock();
        let n = s.calls;
        s.calls += 1;
        s.log.push(op);
        let strike = match &s.armed {
            Some((Trigger::Nth(k), _)) => *k == n,
            Some((Trigger::Op(o), _)) => *o == op,
            Some((Trigger::Every(o), mode)) if *o == op => {
                let mode = *mode;
                s.fired = Some(op);
                return Some(mode);
            }
            Some((Trigger::Every(_), _)) | None => false,
        };
        if !strike {
            return None;
        }
        let (_, mode) = s.armed.take().expect("armed");
        s.fired = Some(op);
        Some(mode)
    }
}

/// A pseudo-random number in [0, 1): the std hasher's per-process random keys over a
/// counter (no dependency for test delays).
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn injected(op: &str) -> Error {
    Error::unavailable(format!("injected fault in {op}"))
}

/// Runs `call` under the plan's fault for `op`.
async fn guarded<T, F, Fut>(plan: &FaultPlan, op: &'static str, call: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    if let Some(work) = plan.take_interleave(op) {
        work.await;
    }
    let (fixed, jitter) = {
        let s = plan.lock();
        (
            s.latency.filter(|(o, _)| *o == op).map(|(_, d)| d),
            s.jitter.filter(|(o, _)| *o == op).map(|(_, d)| d),
        )
    };
    let delay = match jitter {
        Some(max) => Some(max.mul_f64(random_unit())),
        None => fixed,
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    match plan.hit(op) {
        None => call().await,
        Some(FaultMode::Before) => Err(injected(op)),
        Some(FaultMode::After) => {
            let _ = call().await;
            Err(injected(op))
        }
        Some(FaultMode::Twice) => {
            let _ = call().await;
            call().await
        }
    }
}

/// An [`IndexStore`] that fails where its [`FaultPlan`] says.
#[derive(Debug)]
pub struct FaultyIndexStore {
    inner: Arc<dyn IndexStore>,
    plan: FaultPlan,
}

impl FaultyIndexStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn IndexStore>, plan: FaultPlan) -> Self {
        Self { inner, plan }
    }
}

#[async_trait]
impl IndexStore for FaultyIndexStore {
    fn capabilities(&self) -> IndexCapabilities {
        self.inner.capabilities()
    }
    async fn database_id(&self) -> Result<String> {
        guarded(&self.plan, "database_id", || self.inner.database_id()).await
    }
    async fn ping(&self) -> Result<()> {
        guarded(&self.plan, "ping", || self.inner.ping()).await
    }
    async fn prepare(&self, c: &str, p: &[String]) -> Result<()> {
        guarded(&self.plan, "prepare", || self.inner.prepare(c, p)).await
    }
    async fn commit(&self, c: &str, commit: Commit) -> Result<u64> {
        guarded(&self.plan, "commit", || {
            self.inner.commit(c, commit.clone())
        })
        .await
    }
    async fn precommit(&self, c: &str, commit: &Commit) -> Result<Precommit> {
        guarded(&self.plan, "precommit", || self.inner.precommit(c, commit)).await
    }
    async fn commit_prepared(&self, c: &str, commit: Commit, p: Precommit) -> Result<u64> {
        guarded(&self.plan, "commit_prepared", || {
            self.inner.commit_prepared(c, commit.clone(), p.clone())
        })
        .await
    }
    async fn abandon(&self, c: &str, p: Precommit) {
        self.inner.abandon(c, p).await
    }
    async fn head(&self, c: &str, id: ItemId) -> Result<Option<HeadEntry>> {
        guarded(&self.plan, "head", || self.inner.head(c, id)).await
    }
    // The same step name: a plan that fails head reads fails a write's read too.
    async fn head_for_write(&self, c: &str, id: ItemId) -> Result<Option<HeadEntry>> {
        guarded(&self.plan, "head", || self.inner.head_for_write(c, id)).await
    }
    async fn version(&self, c: &str, id: ItemId, ov: u64) -> Result<Option<VersionEntry>> {
        guarded(&self.plan, "version", || self.inner.version(c, id, ov)).await
    }
    async fn version_at(&self, c: &str, id: ItemId, p: Point) -> Result<Option<VersionEntry>> {
        guarded(&self.plan, "version_at", || self.inner.version_at(c, id, p)).await
    }
    async fn versions(
        &self,
        c: &str,
        id: ItemId,
        a: Option<u64>,
        l: usize,
    ) -> Result<Vec<VersionEntry>> {
        guarded(&self.plan, "versions", || self.inner.versions(c, id, a, l)).await
    }
    async fn scan_versions(
        &self,
        c: &str,
        a: Option<(ItemId, u64)>,
        l: usize,
    ) -> Result<Vec<VersionEntry>> {
        guarded(&self.plan, "scan_versions", || {
            self.inner.scan_versions(c, a, l)
        })
        .await
    }
    async fn query_heads(&self, c: &str, q: &HeadQuery) -> Result<Vec<HeadEntry>> {
        guarded(&self.plan, "query_heads", || self.inner.query_heads(c, q)).await
    }
    async fn changed_items(
        &self,
        c: &str,
        s: Point,
        a: Option<ItemId>,
        l: usize,
    ) -> Result<Vec<ItemId>> {
        guarded(&self.plan, "changed_items", || {
            self.inner.changed_items(c, s, a, l)
        })
        .await
    }
    async fn current_cv(&self, c: &str) -> Result<u64> {
        guarded(&self.plan, "current_cv", || self.inner.current_cv(c)).await
    }
    async fn feed(&self, c: &str, after: u64, limit: usize) -> Result<FeedPage> {
        guarded(&self.plan, "feed", || self.inner.feed(c, after, limit)).await
    }
    async fn prune_versions(&self, c: &str, id: ItemId, below: u64) -> Result<u64> {
        guarded(&self.plan, "prune_versions", || {
            self.inner.prune_versions(c, id, below)
        })
        .await
    }
    async fn repair_head(
        &self,
        c: &str,
        id: ItemId,
        seen: Option<(u64, u64)>,
        latest_ov: u64,
        head: Option<HeadEntry>,
    ) -> Result<bool> {
        guarded(&self.plan, "repair_head", || {
            self.inner.repair_head(c, id, seen, latest_ov, head.clone())
        })
        .await
    }
    async fn scrub_versions(&self, c: &str, id: ItemId, below: u64) -> Result<u64> {
        guarded(&self.plan, "scrub_versions", || {
            self.inner.scrub_versions(c, id, below)
        })
        .await
    }
    async fn aggregate(&self, c: &str, q: &chronos_core::AggregateQuery) -> Result<Option<f64>> {
        guarded(&self.plan, "aggregate", || self.inner.aggregate(c, q)).await
    }
}

/// A [`BlobStore`] that fails where its [`FaultPlan`] says.
#[derive(Debug)]
pub struct FaultyBlobStore {
    inner: Arc<dyn BlobStore>,
    plan: FaultPlan,
}

impl FaultyBlobStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn BlobStore>, plan: FaultPlan) -> Self {
        Self { inner, plan }
    }
}

#[async_trait]
impl BlobStore for FaultyBlobStore {
    fn capabilities(&self) -> BlobCapabilities {
        self.inner.capabilities()
    }
    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<()> {
        guarded(&self.plan, "put_if_absent", || {
            self.inner.put_if_absent(key, bytes.clone())
        })
        .await
    }
    async fn get(&self, key: &str) -> Result<Bytes> {
        guarded(&self.plan, "get", || self.inner.get(key)).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        guarded(&self.plan, "delete", || self.inner.delete(key)).await
    }
    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<BlobMeta>> {
        guarded(&self.plan, "list", || self.inner.list(prefix, after, limit)).await
    }
    async fn list_all(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        guarded(&self.plan, "list", || self.inner.list_all(prefix)).await
    }
}

/// A [`Lock`] that fails where its [`FaultPlan`] says.
#[derive(Debug)]
pub struct FaultyLock {
    inner: Arc<dyn Lock>,
    plan: FaultPlan,
}

impl FaultyLock {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Lock>, plan: FaultPlan) -> Self {
        Self { inner, plan }
    }
}

#[async_trait]
impl Lock for FaultyLock {
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>> {
        guarded(&self.plan, "try_acquire", || {
            self.inner.try_acquire(key, ttl)
        })
        .await
    }
    async fn release(&self, lease: &Lease) -> Result<bool> {
        guarded(&self.plan, "release", || self.inner.release(lease)).await
    }
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>> {
        guarded(&self.plan, "renew", || self.inner.renew(lease, ttl)).await
    }
}

/// Wraps every store of `stores` with one shared plan.
pub fn faulty(stores: &Stores, plan: &FaultPlan) -> Stores {
    Stores {
        index: Arc::new(FaultyIndexStore::new(stores.index.clone(), plan.clone())),
        blob: Arc::new(FaultyBlobStore::new(stores.blob.clone(), plan.clone())),
        lock: Arc::new(FaultyLock::new(stores.lock.clone(), plan.clone())),
    }
}
