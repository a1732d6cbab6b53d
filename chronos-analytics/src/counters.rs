//! Exact counters: the commit observer records each version's contribution, folding moves
//! contributions into the totals exactly once, and the change feed fills in whatever the
//! observer never recorded.
//!
//! # Why exactly once
//! - The totals document carries `feedCv`: every version up to it is folded in. A fold
//!   reads the change feed after `feedCv` (gap- and duplicate-free, in cv order) and
//!   applies the sum with one conditional update *expecting that `feedCv`* — a fold that
//!   raced another, or is retried after a lost acknowledgement, finds `feedCv` moved and
//!   applies nothing.
//! - The observer writes one create-only delta per version (`_id` from the cv): a retried
//!   insert is `AlreadyExists`, never a second delta. Readers add the deltas above
//!   `feedCv` and ignore the rest, so a delta counts until its version is folded, and
//!   never after.
//! - A version whose observer never ran (a crash between commit and counter update, a
//!   counter store that was down) has no delta: the fold computes its contribution from
//!   the version itself. Distinct values are inserted create-only, so repeating one is
//!   harmless; the observer inserts them before its delta, so a delta proves they exist.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chronos_core::{
    Collection, CommitEvent, CommitObserver, DocQuery, DocUpdate, Document, DocumentStore, Error,
    ErrorKind, Filter, Result, SortField, Timestamp, VersionEntry, WeakCollection,
};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::layout::{self, Stored, Totals, TotalsKey, DELTAS, TOTALS};
use crate::periods::{self, Buckets, CounterRetention, Granularity, PeriodCounts};
use crate::rules::{Contribution, Rules};

/// The observer folds after this many deltas of one collection.
pub const FOLD_EVERY: u64 = 256;
/// Versions read from the feed per fold round.
const FOLD_PAGE: usize = 500;
/// Distinct-value inserts in flight at once.
const PARALLEL: usize = 16;

/// The counters of one analytics database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Counters {
    docs: Arc<dyn DocumentStore>,
    rules: Arc<Rules>,
    debounce: Option<Duration>,
    retention: CounterRetention,
}

/// What is counted at one moment: the totals document and the deltas not folded into it.
struct Snapshot {
    stored: Stored,
    deltas: Vec<(u64, Contribution)>,
}

/// What a fold did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FoldReport {
    /// Versions folded into the totals.
    pub versions: u64,
    /// Of those, versions no delta was recorded for (recovered from the change feed).
    pub recovered: u64,
    /// The totals' `feedCv` afterwards.
    pub feed_cv: u64,
}

/// A rule property's distinct values.
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueCount {
    /// How many distinct values (exact).
    pub count: u64,
    /// Up to the requested number of them (values over 1 KiB are not kept).
    pub values: Vec<Value>,
}

/// Runs `f` once more when it fails with a retryable error.
async fn twice<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    match f().await {
        Err(e) if e.is_retryable() => {
            tracing::debug!(error = %e, "counter store call failed; retrying once");
            f().await
        }
        other => other,
    }
}

/// Create-only insert where `AlreadyExists` means "already done".
async fn insert_once(
    docs: &dyn DocumentStore,
    coll: &str,
    id: String,
    body: serde_json::Map<String, Value>,
) -> Result<()> {
    twice(|| async {
        match docs
            .insert(
                coll,
                Document {
                    id: id.clone(),
                    body: body.clone(),
                },
            )
            .await
        {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    })
    .await
}

/// The increments that add `sum`'s counts (totals and per rule) to a totals document, or
/// subtract them (`negate`); zero counts are left out.
fn count_update(sum: &Contribution, negate: bool) -> DocUpdate {
    let mut u = DocUpdate::default();
    let mut add = |path: String, n: u64| {
        if n > 0 {
            let n = n as i64;
            u.inc
                .push((path, serde_json::Number::from(if negate { -n } else { n })));
        }
    };
    let mut counts = |prefix: &str, c: &crate::rules::OpCounts| {
        add(format!("{prefix}created"), c.created);
        add(format!("{prefix}updated"), c.updated);
        add(format!("{prefix}deleted"), c.deleted);
    };
    counts("", &sum.totals);
    for (name, r) in &sum.rules {
        counts(&format!("rules.{name}."), r);
    }
    u
}

fn filter(v: Value) -> Filter {
    Filter::parse(&v).expect("a filter built by the counters parses")
}

impl Counters {
    /// Counters in `docs` (the analytics database) under `rules`; with `debounce`, writes
    /// record nothing themselves and one fold per window applies them.
    pub fn new(docs: Arc<dyn DocumentStore>, rules: Rules, debounce: Option<Duration>) -> Self {
        Self {
            docs,
            rules: Arc::new(rules),
            debounce: debounce.filter(|d| !d.is_zero()),
            retention: CounterRetention::default(),
        }
    }

    /// Keeps per-day, per-week and per-month buckets as `retention` says
    /// ([`crate::periods`]); without it only lifetime totals are kept.
    pub fn with_retention(mut self, retention: CounterRetention) -> Self {
        self.retention = retention;
        self
    }

    /// The bucketed counts of versions (each committed at its `at`), as of `now`.
    fn bucket<'a>(
        &self,
        now: Timestamp,
        versions: impl Iterator<Item = (Timestamp, &'a Contribution)>,
        sign: i64,
    ) -> Buckets {
        let mut b = Buckets::default();
        if !self.retention.is_empty() {
            for (at, c) in versions {
                b.add(&self.retention, now, at, c, sign);
            }
        }
        b
    }

    /// The rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// An observer for the collection behind `key` (register it on the collection's
    /// engine, then [`CounterObserver::attach`] the collection).
    pub fn observer(&self, key: TotalsKey) -> Arc<CounterObserver> {
        Arc::new(CounterObserver {
            counters: self.clone(),
            key,
            collection: OnceLock::new(),
            since_fold: AtomicU64::new(0),
            folding: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Creates the collection's totals document (zeros, nothing folded) unless it exists.
    async fn ensure_totals(&self, key: &TotalsKey) -> Result<()> {
        insert_once(
            self.docs.as_ref(),
            TOTALS,
            key.id(),
            layout::empty_totals(key),
        )
        .await
    }

    async fn read_totals(&self, key: &TotalsKey) -> Result<Option<Stored>> {
        let id = key.id();
        match twice(|| self.docs.get(TOTALS, &id)).await? {
            Some(d) => layout::parse_totals(&d.body).map(Some),
            None => Ok(None),
        }
    }

    /// Deltas of `key` with cv in `(after, upto]`, ascending.
    async fn deltas(
        &self,
        key: &TotalsKey,
        after: u64,
        upto: Option<u64>,
    ) -> Result<Vec<(u64, Contribution)>> {
        let mut out = Vec::new();
        let mut from = after;
        loop {
            let mut range = serde_json::Map::new();
            range.insert("$gt".into(), json!(from));
            if let Some(u) = upto {
                range.insert("$lte".into(), json!(u));
            }
            let q = DocQuery {
                filter: filter(json!({"key": key.id(), "cv": Value::Object(range)})),
                sort: Some((SortField::Meta("cv".into()), false)),
                skip: 0,
                limit: 1000,
            };
            let page = twice(|| self.docs.find(DELTAS, &q)).await?;
            let n = page.len();
            for d in &page {
                let (cv, c) = layout::parse_delta(&d.body);
                from = from.max(cv);
                out.push((cv, c));
            }
            if n < 1000 {
                return Ok(out);
            }
        }
    }

    /// The collection's counters: what is folded plus what the observer recorded since —
    /// every committed write once, including writes that just returned in this process.
    /// `include_rules` adds each rule's counts and distinct-value counts.
    pub async fn get_totals(&self, key: &TotalsKey, include_rules: bool) -> Result<Totals> {
        let snap = self.snapshot(key).await?;
        let sums = snap.stored.counted(snap.deltas.iter().map(|(_, d)| d));
        let mut t = Totals {
            id: key.id(),
            tenant: key.tenant.clone(),
            db_name: key.db_name.clone(),
            collection: key.collection.clone(),
            counts: sums.totals,
            rules: BTreeMap::new(),
            last_at: sums.at,
        };
        if include_rules {
            for (name, counts) in sums.rules {
                t.rules.entry(name).or_default().counts = counts;
            }
            for (rule, prop) in self.rules.unique_properties() {
                let n = self.count_unique(key, rule, prop).await?;
                t.rules
                    .entry(rule.to_string())
                    .or_default()
                    .unique
                    .insert(prop.to_string(), n);
            }
        }
        Ok(t)
    }

    /// The collections of `tenant`'s database `db_name` that have a totals document, sorted.
    pub async fn collections(&self, tenant: &str, db_name: &str) -> Result<Vec<String>> {
        let q = DocQuery {
            filter: filter(json!({"tenant": tenant, "dbName": db_name})),
            sort: None,
            skip: 0,
            limit: 10_000,
        };
        let mut names: Vec<String> = twice(|| self.docs.find(TOTALS, &q))
            .await?
            .into_iter()
            .filter_map(|d| d.body.get("collection")?.as_str().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// What is counted now: the totals document and the deltas above its `feedCv` (re-read
    /// until no fold moved `feedCv` in between).
    async fn snapshot(&self, key: &TotalsKey) -> Result<Snapshot> {
        for _ in 0..20 {
            let before = self.read_totals(key).await?.unwrap_or_default();
            let deltas = self.deltas(key, before.feed_cv, None).await?;
            let after = self.read_totals(key).await?.unwrap_or_default();
            if after.feed_cv == before.feed_cv {
                return Ok(Snapshot {
                    stored: before,
                    deltas,
                });
            }
        }
        Err(
            Error::unavailable("counters kept moving while being read; retry")
                .with("collection", &key.collection),
        )
    }

    async fn count_unique(&self, key: &TotalsKey, rule: &str, prop: &str) -> Result<u64> {
        let coll = key.unique_collection(rule, prop);
        let all = filter(Value::Null);
        twice(|| self.docs.count(&coll, &all)).await
    }

    /// The distinct values of `rule.property`: the exact count and up to `values` of them.
    /// `NotFound` names a rule or property that is not configured.
    pub async fn get_unique_analytics(
        &self,
        key: &TotalsKey,
        rule: &str,
        property: &str,
        values: usize,
    ) -> Result<UniqueCount> {
        if !self
            .rules
            .unique_properties()
            .any(|(r, p)| r == rule && p == property)
        {
            return Err(Error::not_found(format!(
                "no counter rule '{rule}' counts unique '{property}'"
            ))
            .with("field", "countUnique"));
        }
        let count = self.count_unique(key, rule, property).await?;
        let mut out = Vec::new();
        if values > 0 {
            let q = DocQuery {
                filter: filter(Value::Null),
                sort: Some((SortField::Id, false)),
                skip: 0,
                limit: values,
            };
            let coll = key.unique_collection(rule, property);
            for d in twice(|| self.docs.find(&coll, &q)).await? {
                if let Some(v) = d.body.get("value") {
                    out.push(v.clone());
                }
            }
        }
        Ok(UniqueCount { count, values: out })
    }

    async fn insert_uniques(
        &self,
        key: &TotalsKey,
        uniques: &[(String, String, Value)],
    ) -> Result<()> {
        let inserts: Vec<_> = uniques
            .iter()
            .map(|(r, p, v)| {
                let (id, body) = layout::unique_doc(key, r, p, v);
                let coll = key.unique_collection(r, p);
                let docs = self.docs.clone();
                async move { insert_once(docs.as_ref(), &coll, id, body).await }
            })
            .collect();
        let results: Vec<Result<()>> = futures::stream::iter(inserts)
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Records one committed version (the observer's work): distinct values, then the delta.
    async fn record(&self, key: &TotalsKey, cv: u64, c: &Contribution) -> Result<()> {
        self.insert_uniques(key, &c.uniques).await?;
        insert_once(
            self.docs.as_ref(),
            DELTAS,
            key.delta_id(cv),
            layout::delta_body(key, cv, c),
        )
        .await
    }

    async fn contribution_of(&self, c: &Collection, v: &VersionEntry) -> Result<Contribution> {
        let data = if self.rules.needs_payload() {
            Some(c.change_data(v).await?)
        } else {
            None
        };
        Ok(self.rules.contribution(v.op, v.at, &v.meta, data.as_ref()))
    }

    /// Folds every committed version of `c` that the totals do not hold yet: the observer's
    /// deltas where it recorded them, the versions themselves where it did not (a crash
    /// between commit and counter update). Safe to run anywhere, any number of times, in any
    /// number of processes at once. `Gone` when the collection no longer keeps versions the
    /// totals have not counted (versioning off prunes them): [`Counters::recount`] then.
    pub async fn catch_up(&self, key: &TotalsKey, c: &Collection) -> Result<FoldReport> {
        let mut report = FoldReport::default();
        loop {
            let stored = match self.read_totals(key).await? {
                Some(s) => s,
                None => {
                    self.ensure_totals(key).await?;
                    continue;
                }
            };
            let from = stored.feed_cv;
            let page = c.changes(&c.cursor_at(from), FOLD_PAGE).await?;
            let upto = page.cursor.cv();
            report.feed_cv = from;
            if upto == from {
                return Ok(report);
            }
            let recorded: BTreeMap<u64, Contribution> = self
                .deltas(key, from, Some(upto))
                .await?
                .into_iter()
                .collect();
            let mut sum = Contribution::default();
            let mut buckets = Buckets::default();
            let now = Timestamp::now();
            let mut recovered = 0;
            for v in &page.changes {
                let mine;
                let contribution = match recorded.get(&v.cv) {
                    Some(d) => d,
                    None => {
                        mine = self.contribution_of(c, v).await?;
                        self.insert_uniques(key, &mine.uniques).await?;
                        recovered += 1;
                        &mine
                    }
                };
                sum.add(contribution);
                buckets.merge(&self.bucket(now, std::iter::once((v.at, contribution)), 1));
            }
            if self.apply(key, &stored, from, upto, &sum, &buckets).await? {
                report.versions += page.changes.len() as u64;
                report.recovered += recovered;
                report.feed_cv = upto;
                if recovered > 0 {
                    tracing::info!(collection = %key.collection, tenant = %key.tenant, recovered,
                        "counters recovered versions the commit observer never recorded");
                }
                self.forget(recorded.keys().copied(), key).await;
                if page.changes.len() < FOLD_PAGE {
                    // The feed had nothing more when this page was read.
                    return Ok(report);
                }
            }
            // Otherwise another fold moved `feedCv` (or the page was full): go on from there.
        }
    }

    /// The conditional update: adds `sum` and moves `feedCv` from `from` to `upto`, only if
    /// `feedCv` is still `from`. False when another fold got there first.
    async fn apply(
        &self,
        key: &TotalsKey,
        stored: &Stored,
        from: u64,
        upto: u64,
        sum: &Contribution,
        buckets: &Buckets,
    ) -> Result<bool> {
        let mut u = count_update(sum, false);
        u.inc.extend(buckets.increments(false));
        u.set.push(("feedCv".into(), json!(upto)));
        if let Some(t) = crate::rules::later(stored.sums.at, sum.at) {
            u.set.push(("lastAt".into(), json!(t.to_string())));
        }
        let expect = filter(json!({"feedCv": from}));
        // A lost acknowledgement: the retry finds feedCv moved. Read it back to tell ours
        // from another fold's (another fold would have folded the same range: the same sum).
        match self
            .docs
            .update_where(TOTALS, &key.id(), &expect, u.clone())
            .await
        {
            Ok(done) => Ok(done.is_some()),
            Err(e) if e.is_retryable() => {
                let now = self.read_totals(key).await?.unwrap_or_default();
                if now.feed_cv == from {
                    Ok(self
                        .docs
                        .update_where(TOTALS, &key.id(), &expect, u)
                        .await?
                        .is_some())
                } else {
                    Ok(false)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes folded deltas (readers ignore them anyway). Best effort.
    async fn forget(&self, cvs: impl Iterator<Item = u64>, key: &TotalsKey) {
        let ids: Vec<String> = cvs.map(|cv| key.delta_id(cv)).collect();
        let failed = futures::stream::iter(ids.into_iter().map(|id| {
            let docs = self.docs.clone();
            async move { docs.delete(DELTAS, &id).await.is_err() }
        }))
        .buffer_unordered(PARALLEL)
        .filter(|f| futures::future::ready(*f))
        .count()
        .await;
        if failed > 0 {
            tracing::debug!(collection = %key.collection, failed, "could not delete folded counter deltas; they are ignored");
        }
    }

    /// Rebuilds the collection's counters from its version log: totals back to zero with
    /// nothing folded, then a full [`Counters::catch_up`]. Distinct values are kept (they
    /// are a set; the rebuild re-inserts every one).
    pub async fn recount(&self, key: &TotalsKey, c: &Collection) -> Result<FoldReport> {
        twice(|| {
            self.docs.replace(
                TOTALS,
                Document {
                    id: key.id(),
                    body: layout::empty_totals(key),
                },
                true,
            )
        })
        .await?;
        // Every delta counts again until its version is refolded: all of them are stale now.
        let stale: Vec<u64> = self
            .deltas(key, 0, None)
            .await?
            .into_iter()
            .map(|(cv, _)| cv)
            .collect();
        self.forget(stale.into_iter(), key).await;
        let mut report = self.catch_up(key, c).await?;
        report.recovered = report.versions;
        Ok(report)
    }

    /// Zeroes the collection's counts from now on (distinct values are cleared too). Exact
    /// against concurrent writers: what is counted at the moment of the reset is subtracted
    /// as one conditional update.
    pub async fn reset_totals(&self, key: &TotalsKey) -> Result<()> {
        self.ensure_totals(key).await?;
        for _ in 0..20 {
            let snap = self.snapshot(key).await?;
            let sums = snap.stored.counted(snap.deltas.iter().map(|(_, d)| d));
            let mut u = count_update(&sums, true);
            // Buckets: every stored bucket and the pending deltas' share, subtracted.
            let mut buckets = snap.stored.buckets.clone();
            buckets.merge(&self.bucket(Timestamp::now(), Self::dated(&snap.deltas), 1));
            u.inc.extend(buckets.increments(true));
            u.inc.push(("rev".into(), 1.into()));
            u.set.push(("lastAt".into(), Value::Null));
            let expect = filter(json!({"feedCv": snap.stored.feed_cv}));
            if self
                .docs
                .update_where(TOTALS, &key.id(), &expect, u)
                .await?
                .is_some()
            {
                for (rule, prop) in self.rules.unique_properties() {
                    self.clear_uniques(&key.unique_collection(rule, prop))
                        .await?;
                }
                return Ok(());
            }
        }
        Err(
            Error::unavailable("counters kept moving during the reset; retry")
                .with("collection", &key.collection),
        )
    }

    /// Deltas with their commit instants (deltas of versions without one are left out).
    fn dated(deltas: &[(u64, Contribution)]) -> impl Iterator<Item = (Timestamp, &Contribution)> {
        deltas.iter().filter_map(|(_, d)| d.at.map(|at| (at, d)))
    }

    /// The collection's counts per `granularity` bucket, oldest first: every bucket
    /// `retention.counters` keeps that has a counted write (exact, as
    /// [`Counters::get_totals`]). Empty when that granularity is not kept.
    pub async fn get_periods(
        &self,
        key: &TotalsKey,
        granularity: Granularity,
        include_rules: bool,
    ) -> Result<Vec<PeriodCounts>> {
        if self.retention.keep(granularity).is_none() {
            return Ok(Vec::new());
        }
        let snap = self.snapshot(key).await?;
        let now = Timestamp::now();
        let mut buckets = snap.stored.buckets;
        buckets.merge(&self.bucket(now, Self::dated(&snap.deltas), 1));
        Ok(buckets.report(granularity, &self.retention, now, include_rules))
    }

    /// Drops the collection's buckets that are past `retention.counters` at `now` from its
    /// totals document (readers already ignore them); returns how many. Exact against concurrent
    /// folds and resets: the rewrite is conditional on neither having moved the document.
    pub async fn prune_periods(&self, key: &TotalsKey, now: Timestamp) -> Result<usize> {
        for _ in 0..20 {
            let id = key.id();
            let Some(doc) = twice(|| self.docs.get(TOTALS, &id)).await? else {
                return Ok(0);
            };
            let stored = layout::parse_totals(&doc.body)?;
            let Some((sets, dropped)) = periods::pruned(&doc.body, &self.retention, now) else {
                return Ok(0);
            };
            let u = DocUpdate {
                set: sets,
                inc: vec![("rev".into(), 1.into())],
            };
            let expect = filter(json!({"feedCv": stored.feed_cv, "rev": stored.rev}));
            if twice(|| self.docs.update_where(TOTALS, &id, &expect, u.clone()))
                .await?
                .is_some()
            {
                return Ok(dropped);
            }
        }
        Err(
            Error::unavailable("counters kept moving while expired buckets were pruned; retry")
                .with("collection", &key.collection),
        )
    }

    async fn clear_uniques(&self, coll: &str) -> Result<()> {
        loop {
            let q = DocQuery {
                filter: filter(Value::Null),
                sort: None,
                skip: 0,
                limit: 1000,
            };
            let page = self.docs.find(coll, &q).await?;
            if page.is_empty() {
                return Ok(());
            }
            for d in page {
                self.docs.delete(coll, &d.id).await?;
            }
        }
    }
}

/// The commit observer of one collection (see the module docs).
#[derive(Debug)]
pub struct CounterObserver {
    counters: Counters,
    key: TotalsKey,
    collection: OnceLock<WeakCollection>,
    since_fold: AtomicU64,
    folding: Arc<AtomicBool>,
}

impl CounterObserver {
    /// Gives the observer its collection (for folds); call once, right after opening it.
    pub fn attach(&self, c: &Collection) {
        let _ = self.collection.set(c.downgrade());
    }

    /// Starts a fold in the background unless one of this observer's is running.
    fn fold_soon(&self, after: Option<Duration>) {
        let Some(c) = self.collection.get().and_then(WeakCollection::upgrade) else {
            return;
        };
        if self.folding.swap(true, Ordering::AcqRel) {
            return;
        }
        let (counters, key, folding) = (
            self.counters.clone(),
            self.key.clone(),
            self.folding.clone(),
        );
        let work = async move {
            if let Some(d) = after {
                tokio::time::sleep(d).await;
            }
            folding.store(false, Ordering::Release);
            if let Err(e) = counters.catch_up(&key, &c).await {
                tracing::warn!(collection = %key.collection, tenant = %key.tenant, error = %e,
                    "folding counters failed; the next fold or catch_up retries");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => drop(h.spawn(work)),
            Err(_) => self.folding.store(false, Ordering::Release),
        }
    }
}

#[async_trait]
impl CommitObserver for CounterObserver {
    async fn committed(&self, e: CommitEvent<'_>) -> Result<()> {
        if let Some(window) = self.counters.debounce {
            // Debounced: the fold of the window applies this write from the change feed.
            self.fold_soon(Some(window));
            return Ok(());
        }
        let c = self
            .counters
            .rules
            .contribution(e.op, e.at, e.meta, Some(e.data));
        self.counters.record(&self.key, e.cv, &c).await?;
        if self.since_fold.fetch_add(1, Ordering::AcqRel) + 1 >= FOLD_EVERY {
            self.since_fold.store(0, Ordering::Release);
            self.fold_soon(None);
        }
        Ok(())
    }
}
