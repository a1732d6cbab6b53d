//! The scheduler: runs every due period of every job once, across any number of worker
//! processes sharing one database.
//!
//! A period is due once it has ended and lies within the catch-up horizon (after downtime
//! the worker runs the missed periods, oldest first). For each due period a worker takes the
//! lease `worker|<job>|<start>`, checks the run record (`worker_runs`, create-only id
//! `R|<job>|<start>`), runs the job while renewing the lease, and writes the record. A worker
//! that finds the lease taken or the record present skips the period, so two workers never
//! run one `(job, period)` at once, and a finished one never again. A run whose lease is lost
//! (its renewal failed) or that shutdown abandons is dropped unrecorded and runs again later.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chronos_core::time::{format_instant, now_ms};
use chronos_core::{
    doc_key, DocQuery, Document, DocumentStore, Error, ErrorKind, Filter, Lock, Result, SortField,
    Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::job::Job;
use crate::schedule::Period;

/// The collection of run records.
pub const RUNS: &str = "worker_runs";
/// Periods examined per job and pass at most (a tiny period over a long horizon).
pub const MAX_PERIODS_PER_PASS: usize = 10_000;

/// Worker settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// How far back missed periods are caught up (default 7 days).
    pub horizon: Duration,
    /// Lease length; renewed every third of it while a job runs (default 30 s).
    pub lease_ttl: Duration,
    /// How long shutdown lets a running job finish before abandoning it (default 30 s).
    pub shutdown_grace: Duration,
    /// This worker's name in run records and logs.
    pub worker_id: String,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            horizon: Duration::from_secs(7 * 86_400),
            lease_ttl: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            worker_id: format!("worker-{}", std::process::id()),
        }
    }
}

/// A finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// The job.
    pub job: String,
    /// The period's start.
    #[serde(with = "chronos_core::time::serde_instant")]
    pub start: Timestamp,
    /// The period's end.
    #[serde(with = "chronos_core::time::serde_instant")]
    pub end: Timestamp,
    /// When the run finished.
    #[serde(with = "chronos_core::time::serde_instant")]
    pub finished_at: Timestamp,
    /// Which worker ran it.
    pub worker_id: String,
    /// What the job reported.
    pub report: Value,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassReport {
    /// Runs this worker finished.
    pub ran: Vec<RunRecord>,
    /// Periods another worker held (leased) at the time.
    pub busy: usize,
    /// Runs that failed (job error or lost lease); they are retried on a later pass.
    pub failed: Vec<(String, Period, String)>,
}

/// The scheduler ([module docs](self)).
#[derive(Debug, Clone)]
pub struct Worker {
    jobs: Vec<Arc<dyn Job>>,
    lock: Arc<dyn Lock>,
    runs: Arc<dyn DocumentStore>,
    config: WorkerConfig,
}

fn check_job_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "job name '{name}' must be 1..=128 of [A-Za-z0-9_.:-]"
        ))
        .with("job", name))
    }
}

impl Worker {
    /// A worker with no jobs, taking leases from `lock` and recording runs in `runs`.
    pub fn new(lock: Arc<dyn Lock>, runs: Arc<dyn DocumentStore>, config: WorkerConfig) -> Self {
        Self {
            jobs: Vec::new(),
            lock,
            runs,
            config,
        }
    }

    /// Adds a job; names must be unique.
    pub fn register(&mut self, job: Arc<dyn Job>) -> Result<()> {
        check_job_name(job.name())?;
        if self.jobs.iter().any(|j| j.name() == job.name()) {
            return Err(
                Error::validation(format!("job '{}' is registered twice", job.name()))
                    .with("job", job.name()),
            );
        }
        self.jobs.push(job);
        Ok(())
    }

    /// The registered jobs' names.
    pub fn jobs(&self) -> Vec<&str> {
        self.jobs.iter().map(|j| j.name()).collect()
    }

    /// The due periods of `job` at `now`: ended, within the horizon, oldest first.
    fn due(&self, job: &dyn Job, now: Timestamp) -> Result<Vec<Period>> {
        let span = jiff::SignedDuration::try_from(self.config.horizon)
            .map_err(|_| Error::validation("worker horizon is too long"))?;
        let from = now.checked_sub(span).unwrap_or(Timestamp::MIN);
        let mut p = job.every().period_containing(from)?;
        let mut out = Vec::new();
        while p.end <= now {
            if p.end > from {
                out.push(p);
            }
            if out.len() >= MAX_PERIODS_PER_PASS {
                tracing::warn!(
                    job = job.name(),
                    "more due periods than one pass runs; the rest wait for the next pass"
                );
                break;
            }
            p = job.every().period(p.index + 1)?;
        }
        Ok(out)
    }

    /// Run records of `job` for periods starting at or after `since`, oldest first.
    pub async fn completed(&self, job: &str, since: Timestamp) -> Result<Vec<RunRecord>> {
        let f = Filter::parse(&json!({"job": job, "start": {"$gte": format_instant(since)}}))?;
        let q = DocQuery {
            filter: f,
            sort: Some((SortField::Meta("start".into()), false)),
            skip: 0,
            limit: MAX_PERIODS_PER_PASS * 2,
        };
        let docs = self.runs.find(RUNS, &q).await?;
        docs.into_iter()
            .map(|d| chronos_core::docs::decode_body(RUNS, d))
            .collect()
    }

    /// One pass at `now`: every due, unfinished, unleased period of every job, run in
    /// order. Job errors are reported, not returned; store errors are returned.
    pub async fn run_due(&self, now: Timestamp) -> Result<PassReport> {
        self.pass(now, &Shutdown::never()).await
    }

    async fn pass(&self, now: Timestamp, stop: &Shutdown) -> Result<PassReport> {
        let mut report = PassReport::default();
        for job in &self.jobs {
            let due = self.due(job.as_ref(), now)?;
            let Some(first) = due.first() else { continue };
            let done: HashSet<Timestamp> = self
                .completed(job.name(), first.start)
                .await?
                .into_iter()
                .map(|r| r.start)
                .collect();
            for p in due.into_iter().filter(|p| !done.contains(&p.start)) {
                if stop.requested() {
                    return Ok(report);
                }
                self.run_one(job, p, stop, &mut report).await?;
            }
        }
        Ok(report)
    }

    async fn run_one(
        &self,
        job: &Arc<dyn Job>,
        p: Period,
        stop: &Shutdown,
        report: &mut PassReport,
    ) -> Result<()> {
        let start = format_instant(p.start);
        let key = format!("worker|{}|{start}", job.name());
        let Some(lease) = self.lock.try_acquire(&key, self.config.lease_ttl).await? else {
            report.busy += 1;
            return Ok(());
        };
        let record_id = doc_key("R", &[job.name(), &start]);
        // Finished by another worker between our listing and our lease.
        if self.runs.get(RUNS, &record_id).await?.is_some() {
            self.release(&lease).await;
            return Ok(());
        }
        tracing::info!(job = job.name(), start = %start, end = %format_instant(p.end), worker = %self.config.worker_id, "job run starting");
        let outcome = self.heartbeat(job.run(&p), &lease, stop).await;
        let result = match outcome {
            Outcome::Done(Ok(r)) => {
                let rec = RunRecord {
                    job: job.name().to_string(),
                    start: p.start,
                    end: p.end,
                    finished_at: now_ms(),
                    worker_id: self.config.worker_id.clone(),
                    report: r,
                };
                let body = serde_json::to_value(&rec)
                    .map_err(|e| Error::internal(format!("run record: {e}")))?
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                match self
                    .runs
                    .insert(
                        RUNS,
                        Document {
                            id: record_id,
                            body,
                        },
                    )
                    .await
                {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        tracing::warn!(job = job.name(), start = %start, "a run record already existed: the period ran twice (a lease was lost?)");
                    }
                    Err(e) => {
                        self.release(&lease).await;
                        return Err(e);
                    }
                }
                tracing::info!(job = job.name(), start = %start, "job run finished");
                report.ran.push(rec);
                Ok(())
            }
            Outcome::Done(Err(e)) => {
                tracing::warn!(job = job.name(), start = %start, error = %e, "job run failed; it is retried on a later pass");
                report
                    .failed
                    .push((job.name().to_string(), p, e.to_string()));
                Ok(())
            }
            Outcome::LeaseLost => {
                tracing::warn!(job = job.name(), start = %start, "job run abandoned: its lease was lost");
                report
                    .failed
                    .push((job.name().to_string(), p, "lease lost".into()));
                Ok(())
            }
            Outcome::Abandoned => {
                tracing::warn!(job = job.name(), start = %start, "job run abandoned by shutdown; it runs again later");
                Ok(())
            }
        };
        self.release(&lease).await;
        result
    }

    async fn release(&self, lease: &chronos_core::Lease) {
        if let Err(e) = self.lock.release(lease).await {
            // It lapses by itself after its ttl.
            tracing::warn!(key = %lease.key, error = %e, "releasing a worker lease failed");
        }
    }

    /// Runs `work`, renewing `lease` every third of its ttl; stops when the lease is lost,
    /// or when shutdown's grace has passed.
    async fn heartbeat<F: std::future::Future<Output = Result<Value>>>(
        &self,
        work: F,
        lease: &chronos_core::Lease,
        stop: &Shutdown,
    ) -> Outcome {
        tokio::pin!(work);
        let every = self.config.lease_ttl / 3;
        let mut held = lease.clone();
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        let grace = async {
            stop.wait().await;
            tokio::time::sleep(self.config.shutdown_grace).await;
        };
        tokio::pin!(grace);
        loop {
            tokio::select! {
                r = &mut work => return Outcome::Done(r),
                _ = &mut grace => return Outcome::Abandoned,
                _ = tick.tick() => match self.lock.renew(&held, self.config.lease_ttl).await {
                    Ok(Some(l)) => held = l,
                    Ok(None) => return Outcome::LeaseLost,
                    Err(e) => tracing::warn!(key = %held.key, error = %e, "renewing a worker lease failed; retrying"),
                },
            }
        }
    }

    /// Runs passes until `shutdown` resolves: one pass now, then one at each next period
    /// boundary of any job (and at least every `poll`, to pick up work other workers left).
    /// On shutdown, a running job gets `shutdown_grace` to finish, then is abandoned.
    pub async fn run_until<S: std::future::Future<Output = ()>>(
        &self,
        shutdown: S,
        poll: Duration,
    ) -> Result<()> {
        let stop = Shutdown::new();
        let trigger = stop.clone();
        let watcher = async move {
            shutdown.await;
            tracing::info!("worker shutdown requested");
            trigger.request();
        };
        let looping = async {
            while !stop.requested() {
                let now = now_ms();
                let r = self.pass(now, &stop).await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "worker pass failed; retrying after the poll interval");
                }
                let wait = self.until_next_boundary(now_ms()).min(poll);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait() => {}
                }
            }
            Ok::<(), Error>(())
        };
        tokio::pin!(watcher);
        tokio::pin!(looping);
        loop {
            tokio::select! {
                _ = &mut watcher, if !stop.requested() => {}
                r = &mut looping => return r,
            }
        }
    }

    fn until_next_boundary(&self, now: Timestamp) -> Duration {
        self.jobs
            .iter()
            .filter_map(|j| j.every().period_containing(now).ok())
            .map(|p| Duration::from_millis(p.end.duration_since(now).as_millis().max(1) as u64))
            .min()
            .unwrap_or(Duration::from_secs(60))
    }
}

enum Outcome {
    Done(Result<Value>),
    LeaseLost,
    Abandoned,
}

/// A shutdown flag that can be awaited.
#[derive(Debug, Clone)]
struct Shutdown(Arc<tokio::sync::watch::Sender<bool>>);

impl Shutdown {
    fn new() -> Self {
        Self(Arc::new(tokio::sync::watch::channel(false).0))
    }
    fn never() -> Self {
        Self::new()
    }
    fn request(&self) {
        self.0.send_replace(true);
    }
    fn requested(&self) -> bool {
        *self.0.borrow()
    }
    async fn wait(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}
