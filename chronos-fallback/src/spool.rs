//! The spool: the in-memory view of the log (pending operations in spool order, dead
//! letters) and the operator's API over it (stats, listings, retry, cancel).
//!
//! Every change is appended to the log before it takes effect in memory, and the caller
//! waits until the append is durable: what the API reports is what a restart finds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use chronos_core::{Error, IdempotencyKey, ItemId, Result};
use serde::Serialize;
use tokio::sync::Notify;

use crate::config::Settings;
use crate::log::{self, Log};
use crate::op::{Entry, Progress, QueuedOp};
use crate::Resolve;

/// A queued operation and its replay progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingOp {
    /// The operation.
    pub op: QueuedOp,
    /// How far its replay has got.
    pub progress: Progress,
}

/// An operation that will not be replayed unless retried: its attempts ran out, or it
/// failed in a way retrying cannot fix (a conflict, a validation error, a missing record).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The operation.
    pub op: QueuedOp,
    /// Replay attempts made.
    pub attempts: u32,
    /// Its last error.
    pub error: String,
}

/// Counts, for dashboards and the CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpoolStats {
    /// Operations waiting to be replayed.
    pub pending: usize,
    /// Dead letters.
    pub dead_letters: usize,
    /// The log's size in bytes.
    pub bytes: u64,
    /// The size limit.
    pub max_bytes: u64,
    /// Since this process opened the spool: operations queued.
    pub queued: u64,
    /// … applied by a replay.
    pub replayed: u64,
    /// … found already committed by an earlier attempt (never applied twice).
    pub found_committed: u64,
    /// … moved to the dead letters.
    pub dead_lettered: u64,
    /// Damaged log ranges quarantined when the spool was opened.
    pub quarantined: usize,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) pending: BTreeMap<u64, PendingOp>,
    pub(crate) dead: BTreeMap<u64, DeadLetter>,
    pub(crate) seq_of: HashMap<IdempotencyKey, u64>,
    /// Pending operations per record, so a new write never overtakes queued ones.
    pub(crate) per_record: HashMap<(String, ItemId), usize>,
    /// Operations a replay is applying right now.
    pub(crate) busy: HashSet<IdempotencyKey>,
    pub(crate) next_seq: u64,
    pub(crate) stats: SpoolStats,
}

impl State {
    fn apply(&mut self, e: Entry) {
        match e {
            Entry::Add { op } => {
                let seq = op.seq;
                self.next_seq = self.next_seq.max(seq + 1);
                self.seq_of.insert(op.op_id.clone(), seq);
                *self
                    .per_record
                    .entry((op.target.clone(), op.id))
                    .or_default() += 1;
                self.pending.insert(
                    seq,
                    PendingOp {
                        op: *op,
                        progress: Progress::default(),
                    },
                );
            }
            Entry::Progress { id, p } => {
                if let Some(o) = self.pending_mut(&id) {
                    o.progress = p;
                }
            }
            Entry::Done { id, .. } | Entry::Cancel { id } => {
                if let Some(o) = self.take_pending(&id) {
                    drop(o);
                } else if let Some(seq) = self.seq_of.remove(&id) {
                    self.dead.remove(&seq);
                }
            }
            Entry::Dead { id, error } => {
                if let Some(o) = self.take_pending(&id) {
                    let seq = o.op.seq;
                    self.seq_of.insert(id, seq);
                    self.dead.insert(
                        seq,
                        DeadLetter {
                            attempts: o.progress.attempts,
                            op: o.op,
                            error,
                        },
                    );
                }
            }
            Entry::Revive { id } => {
                if let Some(seq) = self.seq_of.get(&id).copied() {
                    if let Some(d) = self.dead.remove(&seq) {
                        self.apply(Entry::Add { op: Box::new(d.op) });
                    }
                }
            }
        }
    }

    fn pending_mut(&mut self, id: &IdempotencyKey) -> Option<&mut PendingOp> {
        let seq = self.seq_of.get(id)?;
        self.pending.get_mut(seq)
    }

    fn take_pending(&mut self, id: &IdempotencyKey) -> Option<PendingOp> {
        let seq = *self.seq_of.get(id)?;
        let o = self.pending.remove(&seq)?;
        self.seq_of.remove(id);
        let k = (o.op.target.clone(), o.op.id);
        if let Some(n) = self.per_record.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                self.per_record.remove(&k);
            }
        }
        Some(o)
    }

    /// The entries that rebuild this state: what a rewrite keeps.
    fn snapshot(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        // Dead letters first (their seqs are older or equal), each as Add + Progress + Dead.
        let mut all: Vec<(u64, Vec<Entry>)> = Vec::new();
        for (seq, p) in &self.pending {
            let mut es = vec![Entry::Add {
                op: Box::new(p.op.clone()),
            }];
            if p.progress != Progress::default() {
                es.push(Entry::Progress {
                    id: p.op.op_id.clone(),
                    p: p.progress.clone(),
                });
            }
            all.push((*seq, es));
        }
        for (seq, d) in &self.dead {
            all.push((
                *seq,
                vec![
                    Entry::Add {
                        op: Box::new(d.op.clone()),
                    },
                    Entry::Progress {
                        id: d.op.op_id.clone(),
                        p: Progress {
                            attempts: d.attempts,
                            ..Progress::default()
                        },
                    },
                    Entry::Dead {
                        id: d.op.op_id.clone(),
                        error: d.error.clone(),
                    },
                ],
            ));
        }
        all.sort_by_key(|(seq, _)| *seq);
        for (_, es) in all {
            out.extend(es);
        }
        out
    }
}

pub(crate) struct Inner {
    pub(crate) settings: Settings,
    /// The spool's own id (`spool.id` in its directory).
    pub(crate) id: String,
    pub(crate) log: Log,
    pub(crate) state: Mutex<State>,
    pub(crate) resolver: Arc<dyn Resolve>,
    /// Woken when an operation is queued or retried.
    pub(crate) wake: Notify,
}

/// The fallback spool. Cheap to clone; every clone is the same spool.
///
/// One process per spool directory: two processes appending to one log would interleave
/// their frames.
#[derive(Clone)]
pub struct Spool {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.inner.settings.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Spool {
    /// Opens (or creates) the spool in `settings.dir`. A damaged log (a torn append, flipped
    /// bytes) never stops the spool from opening: the damaged ranges are moved to
    /// `quarantine/` with an error log line, everything intact is kept, and the log is
    /// rewritten to hold only live operations. `resolver` turns an operation's target into
    /// its collection when the operation is replayed.
    pub fn open(settings: Settings, resolver: Arc<dyn Resolve>) -> Result<Self> {
        let rec = log::recover(&settings.dir)?;
        let id = log::spool_id(&settings.dir)?;
        let mut state = State::default();
        for e in rec.entries {
            state.apply(e);
        }
        state.stats.quarantined = rec.quarantined;
        let log = Log::start(&settings.dir, &state.snapshot())?;
        tracing::info!(dir = %settings.dir.display(), pending = state.pending.len(),
            dead_letters = state.dead.len(), quarantined = rec.quarantined, found_bytes = rec.size,
            "fallback spool opened");
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                id,
                log,
                state: Mutex::new(state),
                resolver,
                wake: Notify::new(),
            }),
        })
    }

    /// The spool's id: 16 hex characters kept in `spool.id` in its directory, the same
    /// after every restart (it names the spool's worker job: each spool is replayed by its
    /// own process).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The spool's settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dir(&self) -> &Path {
        &self.inner.settings.dir
    }

    /// Appends `entries` durably, then applies them: under the lock so the log's order is the
    /// state's order; the wait for `fdatasync` happens outside it (and is shared with every
    /// append waiting at that moment).
    pub(crate) async fn commit(&self, entries: Vec<Entry>) -> Result<()> {
        let rx = {
            let mut st = self.lock();
            let rx = self.inner.log.append(&entries);
            for e in entries {
                st.apply(e);
            }
            rx
        };
        log::durable(rx, self.dir()).await
    }

    /// Queues a new operation: fails (nothing queued) when the log would pass its size limit.
    pub(crate) async fn enqueue(&self, mut op: QueuedOp, progress: Progress) -> Result<u64> {
        let rx = {
            let mut st = self.lock();
            op.seq = st.next_seq;
            let id = op.op_id.clone();
            let mut entries = vec![Entry::Add {
                op: Box::new(op.clone()),
            }];
            if progress != Progress::default() {
                entries.push(Entry::Progress { id, p: progress });
            }
            let need = log::encode(&entries).len() as u64;
            let max = self.inner.settings.max_bytes;
            if self.inner.log.size() + need > max {
                // Done and cancelled entries may be most of the log: compact, then look again.
                let snap = st.snapshot();
                if (log::encode(&snap).len() as u64) + need <= max {
                    drop(self.inner.log.rewrite(&snap));
                } else {
                    return Err(Error::unavailable(format!(
                        "fallback spool is full: {} of its {max} bytes (fallback.maxSpoolBytes) \
                         hold {} pending operations and {} dead letters; the write was not \
                         queued",
                        self.inner.log.size(),
                        st.pending.len(),
                        st.dead.len()
                    ))
                    .with("collection", &op.collection)
                    .with("id", op.id));
                }
            }
            let seq = op.seq;
            let rx = self.inner.log.append(&entries);
            for e in entries {
                st.apply(e);
            }
            st.stats.queued += 1;
            (rx, seq)
        };
        let (rx, seq) = rx;
        // A failed fsync may still leave the entry in the file: the caller cannot know
        // whether the operation will be replayed.
        log::durable(rx, self.dir())
            .await
            .map_err(|e| e.set_indeterminate())?;
        self.inner.wake.notify_one();
        Ok(seq)
    }

    /// Whether operations of record `id` at `target` are waiting.
    pub(crate) fn has_pending(&self, target: &str, id: ItemId) -> bool {
        self.lock()
            .per_record
            .contains_key(&(target.to_string(), id))
    }

    /// Counts.
    pub fn stats(&self) -> SpoolStats {
        let st = self.lock();
        SpoolStats {
            pending: st.pending.len(),
            dead_letters: st.dead.len(),
            bytes: self.inner.log.size(),
            max_bytes: self.inner.settings.max_bytes,
            ..st.stats.clone()
        }
    }

    /// Pending operations in spool order, starting after sequence number `after`, at most
    /// `limit`.
    pub fn pending(&self, after: Option<u64>, limit: usize) -> Vec<PendingOp> {
        let st = self.lock();
        let from = after.map_or(0, |a| a + 1);
        st.pending
            .range(from..)
            .take(limit)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Dead letters in spool order, starting after sequence number `after`, at most `limit`.
    pub fn dead_letters(&self, after: Option<u64>, limit: usize) -> Vec<DeadLetter> {
        let st = self.lock();
        let from = after.map_or(0, |a| a + 1);
        st.dead
            .range(from..)
            .take(limit)
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// Puts a dead letter back in the queue (its attempts start again), or makes a pending
    /// operation due now. `NotFound` for an unknown operation.
    pub async fn retry(&self, op_id: &IdempotencyKey) -> Result<()> {
        let entry = {
            let st = self.lock();
            let seq = st
                .seq_of
                .get(op_id)
                .copied()
                .ok_or_else(|| unknown(op_id))?;
            if st.dead.contains_key(&seq) {
                Entry::Revive { id: op_id.clone() }
            } else {
                let p = &st.pending[&seq].progress;
                Entry::Progress {
                    id: op_id.clone(),
                    p: Progress {
                        next_at_ms: 0,
                        ..p.clone()
                    },
                }
            }
        };
        self.commit(vec![entry]).await?;
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Puts every dead letter back in the queue; how many.
    pub async fn retry_all(&self) -> Result<usize> {
        let ids: Vec<Entry> = self
            .lock()
            .dead
            .values()
            .map(|d| Entry::Revive {
                id: d.op.op_id.clone(),
            })
            .collect();
        let n = ids.len();
        if n > 0 {
            self.commit(ids).await?;
            self.inner.wake.notify_one();
        }
        Ok(n)
    }

    /// Removes a pending operation or a dead letter for good: it is never applied (by this
    /// spool; an attempt made before may have committed — see the operation's
    /// `lastError`). `NotFound` for an unknown operation, `Conflict` while a replay is
    /// applying it.
    pub async fn cancel(&self, op_id: &IdempotencyKey) -> Result<()> {
        {
            let st = self.lock();
            if !st.seq_of.contains_key(op_id) {
                return Err(unknown(op_id));
            }
            if st.busy.contains(op_id) {
                return Err(Error::conflict(format!(
                    "queued operation {op_id} is being replayed right now; try again"
                ))
                .with("operation", op_id));
            }
        }
        self.commit(vec![Entry::Cancel { id: op_id.clone() }]).await
    }
}

fn unknown(op_id: &IdempotencyKey) -> Error {
    Error::not_found(format!("no queued operation or dead letter {op_id}")).with("operation", op_id)
}
