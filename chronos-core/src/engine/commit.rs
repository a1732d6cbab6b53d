//! The commit pipeline: every write ends here, as explicit stages.
//!
//! 1. **stage** ([`Collection::stage`]): checks what will be stored (depth, size, metadata
//!    size), externalises properties, encodes the payload and builds the [`Commit`] — nothing
//!    is written yet;
//! 2. **store** ([`Collection::store`]): the payload put under its attempt-unique key, in
//!    parallel with the index's precommit (checks, a cv reservation; nothing visible);
//! 3. **commit** ([`Collection::commit`]): the index commit — the linearisation point — after
//!    the attempt's deadline is checked;
//! 4. **resolve** ([`Collection::resolve`]): a conflict or an unknown outcome (lost
//!    acknowledgement) settled by reading the slot back: our unique blob key tells;
//! 5. **after commit** ([`Collection::after_commit`]): clean-up of what the commit made
//!    unreferenced, then the [`CommitObserver`](super::CommitObserver)s — the post-commit
//!    seam.
//!
//! The retry loop ([`Collection::retrying`]) wraps whole writes whose callers did not pin
//! `expected_ov`. Every failure path either leaves nothing or leaves garbage that only the
//! sweep removes; see the module docs of `engine` for why a committed payload is never
//! touched.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};
use tracing::Instrument;

use super::attempt::Attempt;
use super::conflict;
use super::idempotency::IdempotencyKey;
use super::observer::CommitEvent;
use super::payload::{self, StoredSystem};
use super::state::{Current, HeadRead};
use super::Collection;
use crate::chain::ChainLink;
use crate::error::{Error, ErrorKind, Result};
use crate::id::ItemId;
use crate::index::{Commit, HeadAction, NewVersion, Precommit, Shadow};
use crate::model::{Lineage, Op, WriteResult};
use crate::time::{next_ms, now_ms, Timestamp};

/// Jittered exponential backoff: about 1 ms doubling to 32 ms, times a random 0.5–1.5.
fn backoff(tries: usize) -> Duration {
    let base_us = 500u64 << tries.min(6);
    let mut r = [0u8; 2];
    let _ = getrandom::getrandom(&mut r);
    let jitter = 0.5 + f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX);
    Duration::from_micros((base_us as f64 * jitter) as u64)
}

/// Drafts of a batch staged and put at once.
const BATCH_CONCURRENCY: usize = 16;

/// What one appended version contains.
pub(super) struct Draft {
    pub(super) id: ItemId,
    pub(super) op: Op,
    pub(super) data: Map<String, Value>,
    pub(super) lineage: Lineage,
    pub(super) actor: Option<String>,
    pub(super) reason: Option<String>,
    /// The write's idempotency key, named by its blobs.
    pub(super) key: Option<IdempotencyKey>,
}

/// A version ready to be stored: the output of [`Collection::stage`] besides its
/// [`Commit`] (which the commit stage consumes).
struct Staged {
    id: ItemId,
    ov: u64,
    op: Op,
    at: Timestamp,
    actor: Option<String>,
    /// The payload's attempt-unique key.
    key: String,
    /// The payload as stored (maybe gzipped).
    stored: Bytes,
    /// The data of the version (for observers).
    data: Map<String, Value>,
    /// Its indexed metadata, kept only when observers are registered.
    meta: Map<String, Value>,
    /// The attempt the blob keys belong to.
    attempt: Attempt,
}

impl Staged {
    fn result(&self, cv: u64) -> WriteResult {
        WriteResult {
            id: self.id,
            ov: self.ov,
            cv,
            at: self.at,
            op: self.op,
        }
    }
}

impl Collection {
    /// Runs `attempt` until it succeeds, fails with something other than a lost race, or —
    /// when the caller pinned `expected_ov` — fails at all.
    pub(super) async fn retrying<F, Fut>(
        &self,
        id: ItemId,
        expected_ov: Option<u64>,
        mut attempt: F,
    ) -> Result<WriteResult>
    where
        F: FnMut(HeadRead) -> Fut,
        Fut: std::future::Future<Output = Result<WriteResult>>,
    {
        // Writers of this record in this process go one at a time, so they do not spend
        // round trips losing races to each other; the loop handles other processes.
        let _turn = self.inner.turns.take(id).await;
        let mut tries = 0;
        loop {
            // The first attempt may start from a head that lags the log (one request less on
            // some stores); a lost race, which that would cause, retries from a checked head.
            let how = if tries == 0 && expected_ov.is_none() {
                HeadRead::MayLag
            } else {
                HeadRead::Checked
            };
            match attempt(how).await {
                Err(e) if conflict::is_lost_race(&e) && expected_ov.is_none() => {
                    tries += 1;
                    // A single writer among n on one hot record wins each round with odds near
                    // 1/n, so the budget (`max_write_retries`) is large.
                    if tries > self.inner.config.max_write_retries {
                        tracing::warn!(collection = self.name(), %id, attempts = tries,
                            "write gave up: it lost every race on a hot record");
                        return Err(conflict::retries_exhausted(self.name(), id, tries));
                    }
                    tracing::debug!(collection = self.name(), %id, attempt = tries,
                        "write lost a race to another writer; retrying");
                    // After a few immediate retries, back off with jitter so that many writers
                    // on one hot record take turns instead of colliding forever.
                    if tries > 2 {
                        futures_timer::Delay::new(backoff(tries)).await;
                    }
                }
                other => return other,
            }
        }
    }

    /// Appends version `cur.ov + 1` (or 0) with the draft's content: every stage in order.
    pub(super) async fn append(&self, cur: Option<&Current>, d: Draft) -> Result<WriteResult> {
        let ov = cur.map_or(0, |c| c.ov + 1);
        let span = tracing::debug_span!("chronos.commit", collection = self.name(), id = %d.id, ov, op = ?d.op);
        async move {
            let id = d.id;
            let ctx = |e: Error| e.with("collection", self.name()).with("id", id);
            let (staged, commit) = self.stage(cur, d).await.map_err(ctx)?;
            let prepared = self.store(&staged, &commit).await.map_err(ctx)?;
            let cv = self.commit(&staged, commit, prepared).await.map_err(ctx)?;
            self.after_commit(cur, &staged, cv).await;
            Ok(staged.result(cv))
        }
        .instrument(span)
        .await
    }

    /// [`Collection::append`] for several drafts of distinct records: staged and their
    /// payloads put concurrently (at most [`BATCH_CONCURRENCY`] at once), committed with one
    /// [`IndexStore::commit_many`](crate::IndexStore::commit_many) call, each failure
    /// resolved on its own. One result per draft, in order; no retry (the caller decides).
    pub(super) async fn append_many(
        &self,
        drafts: Vec<(Option<Current>, Draft)>,
    ) -> Vec<Result<WriteResult>> {
        use futures::stream::{self, StreamExt};
        let name = self.name();
        let ctx = |id: ItemId| move |e: Error| e.with("collection", name).with("id", id);
        let (curs, drafts): (Vec<Option<Current>>, Vec<Draft>) = drafts.into_iter().unzip();
        let ids: Vec<ItemId> = drafts.iter().map(|d| d.id).collect();
        // Stages 1 and 2 per draft: staged, then its payload put. The futures are built
        // first and then run: a stream closure borrowing its items would make the whole
        // batch future not `Send` for every lifetime (so not spawnable).
        let staging: Vec<_> = curs
            .iter()
            .zip(drafts)
            .map(|(cur, d)| self.stage_and_put(cur.as_ref(), d))
            .collect();
        let stored: Vec<Result<(Staged, Commit)>> = stream::iter(staging)
            .buffered(BATCH_CONCURRENCY)
            .collect()
            .await;
        let mut out: Vec<Option<Result<WriteResult>>> = Vec::with_capacity(ids.len());
        let mut sent: Vec<(usize, Staged)> = Vec::new();
        let mut commits = Vec::new();
        for (i, r) in stored.into_iter().enumerate() {
            let checked = match r {
                Ok((s, c)) => match self.refuse_if_expired(&s) {
                    Ok(()) => Ok((s, c)),
                    Err(e) => {
                        self.discard(&s.key, "attempt past its deadline").await;
                        Err(e)
                    }
                },
                Err(e) => Err(e),
            };
            match checked {
                Ok((s, c)) => {
                    sent.push((i, s));
                    commits.push(c);
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(ctx(ids[i])(e)))),
            }
        }
        // Stage 3 for the whole batch, then 4 and 5 per commit.
        let results = self.stores().index.commit_many(name, commits).await;
        for ((i, s), r) in sent.into_iter().zip(results) {
            let r = match r {
                Ok(cv) => Ok(cv),
                Err(e) => self.resolve(&s, e).await,
            };
            out[i] = Some(match r {
                Ok(cv) => {
                    self.after_commit(curs[i].as_ref(), &s, cv).await;
                    Ok(s.result(cv))
                }
                Err(e) => Err(ctx(s.id)(e)),
            });
        }
        out.into_iter()
            .map(|r| r.expect("every draft has a result"))
            .collect()
    }

    /// Stages 1 and 2 of a batch item, without the precommit.
    async fn stage_and_put(&self, cur: Option<&Current>, d: Draft) -> Result<(Staged, Commit)> {
        let (staged, commit) = self.stage(cur, d).await?;
        self.put_unique(&staged.key, staged.stored.clone())
            .await
            .map_err(|e| e.with("key", &staged.key))?;
        Ok((staged, commit))
    }

    /// Stage 1: everything derived from the draft, checked against the collection's limits.
    async fn stage(&self, cur: Option<&Current>, mut d: Draft) -> Result<(Staged, Commit)> {
        let cfg = &self.inner.config;
        let ov = cur.map_or(0, |c| c.ov + 1);
        // Every blob of this attempt carries its database and start in its key (see
        // `attempt`): the sweep's proof of what it may delete.
        let attempt = Attempt::start(&self.inner.owner, d.key.as_ref());
        // What is stored must read back: merges and restores are checked like new data.
        crate::model::check_map_depth(&d.data)?;
        // Externalised properties become refs before anything is derived from the document.
        self.externalize(&mut d.data, d.id, ov, &attempt).await?;
        let now = now_ms();
        // `at` must strictly increase per record even if clocks jump back or writes are fast.
        let at = match cur {
            Some(c) if c.updated_at >= now => next_ms(c.updated_at),
            _ => now,
        };
        let created_at = cur.map_or(at, |c| c.created_at);
        let deleted = matches!(d.op, Op::Delete | Op::Erase);
        let system = StoredSystem {
            inserted_at: Some(created_at),
            updated_at: Some(at),
            deleted_at: deleted.then_some(at),
            deleted,
            lineage: d.lineage.clone(),
        };
        // Encoded first and bounded: a payload over the limit is refused before anything
        // else copies it (the metadata is the whole document without indexedProps).
        let enc = payload::encode(&d.data, &system, cfg.max_payload_bytes)
            .ok_or_else(|| self.too_large())?;
        let size = enc.bytes.len() as u64;
        let meta = payload::extract_meta(&d.data, &cfg.indexed_props);
        self.check_sizes(size, &meta)?;
        let (stored, gz) = payload::maybe_compress(&enc.bytes, cfg.compression);
        let key = payload::blob_key(&cfg.blob_prefix, self.name(), d.id, ov, &attempt, gz);
        let shadow = match cfg.shadow {
            Some(p) if size <= p.max_bytes => Some(Shadow {
                json: String::from_utf8_lossy(&enc.bytes).into_owned(),
                expires_at: Timestamp::from_millisecond(
                    at.as_millisecond().saturating_add(p.ttl.as_millis() as i64),
                )
                .unwrap_or(at),
            }),
            _ => None,
        };
        let staged = Staged {
            id: d.id,
            ov,
            op: d.op,
            at,
            actor: d.actor.clone(),
            key: key.clone(),
            stored,
            data: d.data,
            meta: if self.inner.observers.is_empty() {
                Map::new()
            } else {
                meta.clone()
            },
            attempt,
        };
        let commit = Commit {
            version: NewVersion {
                item_id: d.id,
                ov,
                op: d.op,
                at,
                actor: d.actor,
                reason: d.reason,
                blob_key: key,
                meta,
                size,
                checksum: enc.checksum,
                prev_ov: cur.map(|c| c.ov),
                chain: Some(ChainLink::after(cur.and_then(|c| c.chain.clone()))),
            },
            created_at,
            head: if deleted && !cfg.logical_delete {
                HeadAction::Remove
            } else {
                HeadAction::Upsert
            },
            prune_below_ov: (!cfg.versioning && ov > 0).then_some(ov),
            shadow,
            lineage: d.lineage,
            not_after: Some(staged.attempt.deadline(cfg.write_deadline)),
        };
        Ok((staged, commit))
    }

    /// The error for a payload over `max_payload_bytes` (the encoder stops at the limit, so
    /// its full size is not known). Externalised content already stored for the attempt is
    /// unreferenced: garbage for the sweep (its slot stays free, so after the grace period).
    fn too_large(&self) -> Error {
        let max = self.inner.config.max_payload_bytes;
        Error::validation(format!(
            "payload exceeds the collection's maximum of {max} bytes (max_payload_bytes; \
             large binary content belongs in base64Props)"
        ))
        .with("limit", max)
    }

    /// The metadata bound (`max_meta_bytes`) for a payload of `size` bytes.
    fn check_sizes(&self, size: u64, meta: &Map<String, Value>) -> Result<()> {
        let cfg = &self.inner.config;
        // The metadata is a copy inside the index (all of the document without indexedProps):
        // bounded, so the index store is not asked to hold a second large copy. Measured
        // only when the payload could exceed the bound at all.
        if size > cfg.max_meta_bytes {
            let meta_size = serde_json::to_vec(meta).map_or(0, |v| v.len()) as u64;
            if meta_size > cfg.max_meta_bytes {
                return Err(Error::validation(format!(
                    "indexed metadata of {meta_size} bytes exceeds the collection's maximum of \
                     {} bytes (max_meta_bytes): {}",
                    cfg.max_meta_bytes,
                    if cfg.indexed_props.is_empty() {
                        "without indexedProps the whole document is indexed; list the fields \
                         to index in indexedProps"
                    } else {
                        "an indexed property holds a large value; index smaller fields"
                    }
                ))
                .with("limit", cfg.max_meta_bytes));
            }
        }
        Ok(())
    }

    /// Stage 2: the payload put, overlapped with the index's precommit.
    async fn store(&self, s: &Staged, commit: &Commit) -> Result<Precommit> {
        let idx = &self.stores().index;
        let (put, prepared) = futures::join!(
            self.put_unique(&s.key, s.stored.clone()),
            idx.precommit(self.name(), commit)
        );
        if let Err(e) = put {
            if let Ok(p) = prepared {
                idx.abandon(self.name(), p).await;
            }
            return Err(e.with("key", &s.key));
        }
        match prepared {
            Ok(p) => Ok(p),
            Err(e) => {
                // No commit was sent, so no version can refer to this payload.
                self.discard(&s.key, "precommit failed").await;
                Err(if e.kind() == ErrorKind::Conflict {
                    conflict::lost_race(self.name(), s.id, s.ov)
                } else {
                    e
                })
            }
        }
    }

    /// Past its deadline a sweep may already treat an attempt's blobs as garbage, so it must
    /// not commit: `Unavailable` (the caller discards the payload: nothing was sent).
    fn refuse_if_expired(&self, s: &Staged) -> Result<()> {
        let cfg = &self.inner.config;
        if !s.attempt.expired(cfg.write_deadline) {
            return Ok(());
        }
        tracing::warn!(collection = self.name(), id = %s.id, ov = s.ov, deadline = ?cfg.write_deadline,
            "write attempt passed its deadline before its commit; refused");
        Err(Error::unavailable(format!(
            "the write took longer than its deadline of {:?} before its commit (slow blob \
             or index store); nothing was committed, retry it",
            cfg.write_deadline
        )))
    }

    /// Stage 3: the index commit, refused once the attempt is past its deadline.
    async fn commit(&self, s: &Staged, commit: Commit, prepared: Precommit) -> Result<u64> {
        if let Err(e) = self.refuse_if_expired(s) {
            self.discard(&s.key, "attempt past its deadline").await;
            self.stores().index.abandon(self.name(), prepared).await;
            return Err(e);
        }
        match self
            .stores()
            .index
            .commit_prepared(self.name(), commit, prepared)
            .await
        {
            Ok(cv) => Ok(cv),
            Err(e) => self.resolve(s, e).await,
        }
    }

    /// Stage 4: a failed commit settled. A conflict may be our own commit delivered twice (a
    /// retry after a lost acknowledgement); any other error leaves the outcome unknown. Our
    /// version is identified by its unique blob key, so one read of the slot settles both.
    async fn resolve(&self, s: &Staged, e: Error) -> Result<u64> {
        let v = s;
        let found = self.stores().index.version(self.name(), v.id, v.ov).await;
        let conflicted = e.kind() == ErrorKind::Conflict;
        match found {
            Ok(Some(found)) if found.blob_key == v.key => {
                tracing::info!(collection = self.name(), id = %v.id, ov = v.ov, error = %e,
                    "commit reported a failure but the version is ours: it committed (lost acknowledgement)");
                Ok(found.cv)
            }
            Ok(_) if conflicted => {
                // Someone else's version: ours never committed and never will (its ov is
                // taken), so its payload is garbage now.
                self.discard(&v.key, "lost the race for its ov").await;
                Err(conflict::lost_race(self.name(), v.id, v.ov))
            }
            // Not committed. The blob stays for the sweep: on a networked store a commit could
            // in principle still be in flight, and deleting the payload of a version that then
            // lands would break invariant 1.
            Ok(_) => {
                tracing::debug!(collection = self.name(), id = %v.id, ov = v.ov, error = %e,
                    "commit failed and did not land");
                Err(e)
            }
            Err(read) if conflicted => {
                // Unknown whose version it is: leave the payload for the sweep.
                tracing::debug!(collection = self.name(), id = %v.id, ov = v.ov, error = %read,
                    "could not read back a conflicting slot");
                Err(conflict::lost_race(self.name(), v.id, v.ov))
            }
            Err(read) => {
                tracing::warn!(collection = self.name(), id = %v.id, ov = v.ov,
                    error = %e, read_back = %read,
                    "commit outcome unknown: the commit failed and reading the slot back failed too");
                Err(e.set_indeterminate())
            }
        }
    }

    /// Stage 5: what follows a commit. Nothing here can fail the write.
    async fn after_commit(&self, cur: Option<&Current>, s: &Staged, cv: u64) {
        if let (false, Some(c)) = (self.inner.config.versioning, cur) {
            // Versioning off: the previous payload is no longer referenced.
            self.discard(&c.blob_key, "replaced with versioning off")
                .await;
        }
        self.notify(CommitEvent {
            collection: self.name(),
            database_id: &self.inner.owner,
            id: s.id,
            ov: s.ov,
            cv,
            op: s.op,
            at: s.at,
            actor: s.actor.as_deref(),
            meta: &s.meta,
            data: &s.data,
        })
        .await;
    }

    /// Hands a committed version to every [`CommitObserver`](super::CommitObserver); their
    /// failures are logged, never returned (the version stands).
    pub(super) async fn notify(&self, event: CommitEvent<'_>) {
        for o in &self.inner.observers {
            if let Err(e) = o.committed(event).await {
                tracing::warn!(collection = self.name(), id = %event.id, ov = event.ov,
                    cv = event.cv, observer = ?o, error = %e,
                    "a commit observer failed; the write stands");
            }
        }
    }
}
