//! Replay: queued operations applied in spool order per record, each exactly once.
//!
//! Before an operation is (re-)applied, [`Collection::find_committed`] looks for a version
//! carrying its idempotency key: an earlier attempt whose acknowledgement was lost is found
//! and the operation completes without a second version. An attempt that failed may still
//! commit until its write deadline plus the clock-skew margin has passed
//! ([`CollectionConfig::write_deadline`](chronos_core::CollectionConfig::write_deadline)),
//! so an operation is not re-applied before then (its `settledAtMs`) — a lookup then that
//! finds nothing means no earlier attempt ever will commit.
//!
//! Between attempts: exponential backoff from `retryDelayMs` doubling up to `maxDelayMs`,
//! with full jitter over its upper half. After `maxRetries` failed attempts, or at once for an
//! error retrying cannot fix (a conflict, a validation error, a missing record), the
//! operation becomes a dead letter with its last error.

use std::collections::HashSet;
use std::time::Duration;

use chronos_core::time::now_ms;
use chronos_core::{Collection, Error, ItemId, Result, Timestamp, WriteResult};
use futures::StreamExt;
use serde::Serialize;

use crate::op::{Committed, Entry, Progress, QueuedOp};
use crate::spool::Spool;
use crate::writes::apply;

/// Operations replayed at once (on distinct records).
const CONCURRENCY: usize = 16;

/// What one replay pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    /// Operations applied.
    pub applied: usize,
    /// Operations found already committed by an earlier attempt.
    pub found_committed: usize,
    /// Operations that failed and wait for another attempt.
    pub retrying: usize,
    /// Operations moved to the dead letters.
    pub dead_lettered: usize,
    /// Operations not due yet (backoff, or an earlier attempt not yet settled).
    pub waiting: usize,
}

impl ReplayReport {
    fn add(&mut self, o: &ReplayReport) {
        self.applied += o.applied;
        self.found_committed += o.found_committed;
        self.retrying += o.retrying;
        self.dead_lettered += o.dead_lettered;
        self.waiting += o.waiting;
    }
}

enum Fate {
    Applied(WriteResult),
    Found(WriteResult),
    Retry(Progress),
    Wait,
    Dead(String),
}

impl Spool {
    /// One pass: every due operation that is first in line for its record, applied.
    pub async fn replay_due(&self) -> Result<ReplayReport> {
        let now = now_ms().as_millisecond();
        let (due, waiting) = {
            let mut st = self.lock();
            let mut seen: HashSet<(String, ItemId)> = HashSet::new();
            let mut due = Vec::new();
            let mut waiting = 0;
            for p in st.pending.values() {
                let first = seen.insert((p.op.target.clone(), p.op.id));
                if !first || st.busy.contains(&p.op.op_id) {
                    continue;
                }
                if p.progress.next_at_ms > now {
                    waiting += 1;
                    continue;
                }
                due.push(p.clone());
            }
            for p in &due {
                st.busy.insert(p.op.op_id.clone());
            }
            (due, waiting)
        };
        let mut report = ReplayReport {
            waiting,
            ..ReplayReport::default()
        };
        // Each outcome is logged as soon as its operation settles, so a process killed in the
        // middle of a pass loses at most the operations still running (found again later).
        let settled: Vec<(ReplayReport, Result<()>)> = futures::stream::iter(due)
            .map(|p| async move {
                let fate = self.replay_one(&p.op, &p.progress).await;
                self.settle(&p.op, fate).await
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut first_err = None;
        for (one, res) in settled {
            report.add(&one);
            if let Err(e) = res {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Logs what happened to one operation and releases it; the report counts it.
    async fn settle(&self, op: &QueuedOp, fate: Fate) -> (ReplayReport, Result<()>) {
        let mut one = ReplayReport::default();
        let id = op.op_id.clone();
        let entry = match fate {
            Fate::Applied(r) => {
                self.lock().stats.replayed += 1;
                one.applied = 1;
                Some(Entry::Done {
                    id,
                    c: Committed::of(&r),
                })
            }
            Fate::Found(r) => {
                self.lock().stats.found_committed += 1;
                one.found_committed = 1;
                tracing::info!(operation = %op.op_id, collection = op.collection, id = %op.id, ov = r.ov,
                    "fallback replay: the operation had committed already (an earlier attempt's acknowledgement was lost)");
                Some(Entry::Done {
                    id,
                    c: Committed::of(&r),
                })
            }
            Fate::Retry(p) => {
                one.retrying = 1;
                Some(Entry::Progress { id, p })
            }
            Fate::Wait => {
                one.waiting = 1;
                None
            }
            Fate::Dead(error) => {
                self.lock().stats.dead_lettered += 1;
                one.dead_lettered = 1;
                tracing::warn!(operation = %op.op_id, collection = op.collection, id = %op.id,
                    kind = op.kind.name(), error, "fallback replay: operation moved to the dead letters");
                Some(Entry::Dead { id, error })
            }
        };
        let res = match entry {
            Some(e) => self.commit(vec![e]).await,
            None => Ok(()),
        };
        self.lock().busy.remove(&op.op_id);
        (one, res)
    }

    async fn replay_one(&self, op: &QueuedOp, p: &Progress) -> Fate {
        let c = match self.inner.resolver.collection(&op.target).await {
            Ok(c) => c,
            Err(e) if e.is_retryable() => return self.failed(op, p, e, None),
            Err(e) => return Fate::Dead(e.to_string()),
        };
        let skew = c.config().clock_skew;
        let since = Timestamp::from_millisecond(
            op.first_started_ms.saturating_sub(skew.as_millis() as i64),
        )
        .unwrap_or(Timestamp::MIN);
        match c.find_committed(op.id, &op.op_id, since).await {
            Ok(Some(r)) => return Fate::Found(r),
            Ok(None) => {}
            Err(e) if e.is_retryable() => return self.failed(op, p, e, Some(&c)),
            Err(e) => return Fate::Dead(e.to_string()),
        }
        if now_ms().as_millisecond() < p.settled_at_ms {
            // An earlier attempt may still land: look again once it cannot.
            return if p.next_at_ms < p.settled_at_ms {
                Fate::Retry(Progress {
                    next_at_ms: p.settled_at_ms,
                    ..p.clone()
                })
            } else {
                Fate::Wait
            };
        }
        match apply(&c, op).await {
            Ok(r) => Fate::Applied(r),
            Err(e) if e.is_retryable() => self.failed(op, p, e, Some(&c)),
            Err(e) => Fate::Dead(e.to_string()),
        }
    }

    /// A retryable failure: another attempt after the backoff, or a dead letter once the
    /// attempts are used up.
    fn failed(&self, op: &QueuedOp, p: &Progress, e: Error, c: Option<&Collection>) -> Fate {
        let attempts = p.attempts + 1;
        let s = &self.inner.settings;
        if attempts >= s.max_retries.max(1) {
            return Fate::Dead(format!("gave up after {attempts} attempts: {e}"));
        }
        tracing::debug!(operation = %op.op_id, attempts, error = %e, "fallback replay: attempt failed");
        let now = now_ms().as_millisecond();
        Fate::Retry(Progress {
            attempts,
            next_at_ms: now + backoff(s.retry_delay, s.max_delay, attempts).as_millis() as i64,
            // An attempt that reached the collection may still commit until its deadline.
            settled_at_ms: match c {
                Some(c) => settle_after(now, c),
                None => p.settled_at_ms,
            },
            last_error: Some(e.to_string()),
        })
    }
}

/// When an attempt that failed at `failed_ms` can no longer commit.
pub(crate) fn settle_after(failed_ms: i64, c: &Collection) -> i64 {
    let cfg = c.config();
    failed_ms
        + (cfg.write_deadline + cfg.clock_skew)
            .as_millis()
            .min(i64::MAX as u128 / 2) as i64
}

/// The wait before attempt `attempts + 1`: `base · 2^(attempts-1)` capped at `max`, drawn
/// uniformly from its upper half (jitter spreads the replays of many spools).
pub(crate) fn backoff(base: Duration, max: Duration, attempts: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    let cap = exp.min(max);
    let mut b = [0u8; 4];
    getrandom::getrandom(&mut b).expect("operating system random source");
    let frac = u32::from_le_bytes(b) as f64 / u32::MAX as f64;
    cap.mul_f64(0.5 + 0.5 * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(2));
        for attempts in 1..40 {
            let b = backoff(base, max, attempts);
            let cap = base.saturating_mul(1 << (attempts - 1).min(20)).min(max);
            assert!(b >= cap / 2 && b <= cap, "{attempts}: {b:?} vs {cap:?}");
        }
    }
}
