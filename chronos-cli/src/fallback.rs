//! `chronos fallback …`: the fallback spool of this configuration (`fallback.spoolDir`) from
//! the shell — counts, pending operations and dead letters (paged by sequence number), retry,
//! cancel, and one replay pass now.

use chronos::fallback::{DeadLetter, PendingOp};
use chronos::Chronos;
use chronos_core::time::format_instant;
use chronos_core::{IdempotencyKey, Result};
use clap::{Args as ClapArgs, Subcommand};
use serde_json::json;

use crate::messaging::line;
use crate::output::Out;

/// A page of the spool.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct SpoolPage {
    /// Continue after this sequence number.
    #[arg(long)]
    after: Option<u64>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

#[derive(Debug, Subcommand)]
pub(crate) enum FallbackCommand {
    /// Counts: pending, dead letters, bytes.
    Stats,
    /// Operations waiting to be replayed, in spool order.
    Pending(SpoolPage),
    /// Operations that will not be replayed unless retried.
    DeadLetters(SpoolPage),
    /// Put a dead letter back in the queue (or make a pending operation due now).
    Retry {
        /// Operation id.
        op_id: String,
    },
    /// Put every dead letter back in the queue.
    RetryAll,
    /// Remove a pending operation or dead letter for good.
    Cancel {
        /// Operation id.
        op_id: String,
    },
    /// One replay pass now.
    Replay,
}

fn describe(op: &chronos::fallback::QueuedOp) -> String {
    format!(
        "#{} {} {} {} of {} (queued {})",
        op.seq,
        op.op_id,
        op.kind.name(),
        op.id,
        op.collection,
        format_instant(op.queued_at)
    )
}

pub(crate) async fn run(chronos: &Chronos, cmd: &FallbackCommand, out: &Out) -> Result<()> {
    let spool = chronos.fallback()?;
    match cmd {
        FallbackCommand::Stats => {
            let s = spool.stats();
            line(out, &s, || {
                format!(
                    "{} pending, {} dead letters, {} of {} bytes",
                    s.pending, s.dead_letters, s.bytes, s.max_bytes
                )
            });
        }
        FallbackCommand::Pending(p) => {
            for o in spool.pending(p.after, p.limit) {
                line(out, &o, || {
                    let PendingOp { op, progress } = &o;
                    match &progress.last_error {
                        Some(e) => format!(
                            "{} — {} attempts, last: {e}",
                            describe(op),
                            progress.attempts
                        ),
                        None => describe(op),
                    }
                });
            }
        }
        FallbackCommand::DeadLetters(p) => {
            for d in spool.dead_letters(p.after, p.limit) {
                line(out, &d, || {
                    let DeadLetter {
                        op,
                        attempts,
                        error,
                    } = &d;
                    format!("{} — {attempts} attempts: {error}", describe(op))
                });
            }
        }
        FallbackCommand::Retry { op_id } => {
            spool.retry(&IdempotencyKey::parse(op_id)?).await?;
            line(out, &json!({"retried": op_id}), || {
                format!("{op_id}: queued again")
            });
        }
        FallbackCommand::RetryAll => {
            let n = spool.retry_all().await?;
            line(out, &json!({"retried": n}), || {
                format!("{n} dead letters queued again")
            });
        }
        FallbackCommand::Cancel { op_id } => {
            spool.cancel(&IdempotencyKey::parse(op_id)?).await?;
            line(out, &json!({"cancelled": op_id}), || {
                format!("{op_id}: cancelled")
            });
        }
        FallbackCommand::Replay => {
            let r = spool.replay_due().await?;
            line(out, &r, || {
                format!(
                    "applied {}, found committed {}, retrying {}, dead-lettered {}, waiting {}",
                    r.applied, r.found_committed, r.retrying, r.dead_lettered, r.waiting
                )
            });
        }
    }
    Ok(())
}
