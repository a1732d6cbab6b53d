//! `chronos worker`: runs the configuration's scheduled jobs — one per time-based and
//! cross-tenant analytics rule, and the results clean-up — at their UTC period boundaries,
//! catching up missed periods within the horizon. Any number of worker processes may run on
//! one configuration: each (job, period) runs once, under a lease. SIGINT or SIGTERM stops it
//! gracefully: the running job gets the grace period to finish, then is abandoned (it runs
//! again later; results are replaced, never duplicated). `--once` runs what is due now and
//! exits (for cron), non-zero if a run failed.

use std::time::Duration;

use chronos::worker::{PassReport, WorkerConfig};
use chronos::Chronos;
use chronos_core::time::{format_instant, now_ms};
use chronos_core::{Error, Result};
use clap::Args as ClapArgs;
use serde_json::json;

use crate::output::Out;

/// `chronos worker` options.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct WorkerArgs {
    /// How far back missed periods are caught up, in hours.
    #[arg(long, default_value_t = 168, value_name = "HOURS")]
    horizon_hours: u64,
    /// Lease length of a running job, in seconds (renewed every third of it).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    lease_ttl: u64,
    /// How long shutdown lets a running job finish, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    shutdown_grace: u64,
    /// Longest wait between passes, in seconds (work other workers left is picked up).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    poll: u64,
    /// This worker's name in run records and logs (default: worker-<pid>).
    #[arg(long)]
    worker_id: Option<String>,
    /// Run what is due now, print the report and exit.
    #[arg(long)]
    once: bool,
}

impl WorkerArgs {
    fn config(&self) -> Result<WorkerConfig> {
        let secs = |what: &str, n: u64| {
            if n == 0 {
                Err(Error::validation(format!("--{what} must be at least 1")))
            } else {
                Ok(Duration::from_secs(n))
            }
        };
        let mut c = WorkerConfig {
            horizon: secs("horizon-hours", self.horizon_hours.saturating_mul(3600))?,
            lease_ttl: secs("lease-ttl", self.lease_ttl)?,
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            ..WorkerConfig::default()
        };
        if let Some(id) = &self.worker_id {
            c.worker_id = id.clone();
        }
        Ok(c)
    }
}

/// A future that resolves on SIGINT or (Unix) SIGTERM. The handlers are installed by this
/// call, not when the future is first polled: a signal that arrives before the worker loop
/// awaits it still stops the worker gracefully instead of killing the process.
fn shutdown_signal() -> Result<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let listen = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| Error::internal(format!("cannot listen for {name}: {e}")))
        };
        let mut int = listen(SignalKind::interrupt(), "SIGINT")?;
        let mut term = listen(SignalKind::terminate(), "SIGTERM")?;
        Ok(Box::pin(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }))
    }
    #[cfg(not(unix))]
    {
        Ok(Box::pin(async {
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        }))
    }
}

fn report(out: &Out, pass: &PassReport) {
    for r in &pass.ran {
        if out.is_json() {
            out!(
                "{}",
                json!({"job": r.job, "start": format_instant(r.start), "end": format_instant(r.end),
                       "workerId": r.worker_id, "report": r.report})
            );
        } else {
            out!(
                "ran {} for {} .. {}",
                r.job,
                format_instant(r.start),
                format_instant(r.end)
            );
        }
    }
    for (job, period, error) in &pass.failed {
        if out.is_json() {
            out!(
                "{}",
                json!({"job": job, "start": format_instant(period.start), "error": error})
            );
        } else {
            out!(
                "FAILED {} for {}: {error}",
                job,
                format_instant(period.start)
            );
        }
    }
    if !out.is_json() {
        out!(
            "{} run(s), {} failed, {} held by other workers",
            pass.ran.len(),
            pass.failed.len(),
            pass.busy
        );
    }
}

/// Runs the worker.
pub(crate) async fn run(chronos: &Chronos, args: &WorkerArgs, out: &Out) -> Result<()> {
    let worker = chronos.worker(args.config()?).await?;
    if worker.jobs().is_empty() {
        return Err(Error::invalid_config(
            "nothing to schedule: the configuration has no analytics.timeBasedRules, \
             analytics.crossTenantRules or analytics.resultsTtlDays",
        ));
    }
    if args.once {
        let pass = worker.run_due(now_ms()).await?;
        report(out, &pass);
        if !pass.failed.is_empty() {
            return Err(Error::unavailable(format!(
                "{} run(s) failed; they are retried on the next pass",
                pass.failed.len()
            )));
        }
        return Ok(());
    }
    let shutdown = shutdown_signal()?;
    let names = worker.jobs();
    tracing::info!(jobs = ?names, "worker started");
    if !out.is_json() {
        eprintln!(
            "worker running {} job(s): {}; stop with Ctrl-C or SIGTERM",
            names.len(),
            names.join(", ")
        );
    }
    worker
        .run_until(shutdown, Duration::from_secs(args.poll.max(1)))
        .await?;
    if !out.is_json() {
        eprintln!("worker stopped");
    }
    Ok(())
}
