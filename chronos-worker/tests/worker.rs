//! The worker on memory, SQLite and MongoDB: two workers (tasks; OS processes on one SQLite file)
//! over three periods run each (job, period) once with identical results; catch-up is
//! bounded by the horizon; a failing run is retried and not recorded; a lost lease or a
//! shutdown abandons a run without recording it; bad registrations are refused.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chronos_core::{DocUpdate, DocumentStore, ErrorKind, Lease, Lock, Result, Timestamp};
use chronos_worker::{Every, Job, Period, Worker, WorkerConfig};
use serde_json::{json, Value};

/// Counts its runs per period in the document store and reports a value derived from the
/// period only (so repeated runs give identical results).
#[derive(Debug)]
struct Counting {
    every: Every,
    docs: Arc<dyn DocumentStore>,
    sleep: Duration,
    fail_first: AtomicUsize,
}

impl Counting {
    fn new(docs: Arc<dyn DocumentStore>, sleep: Duration) -> Self {
        Self {
            every: Every::parse("PT1H").unwrap(),
            docs,
            sleep,
            fail_first: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Job for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn every(&self) -> &Every {
        &self.every
    }
    async fn run(&self, p: &Period) -> Result<Value> {
        tokio::time::sleep(self.sleep).await;
        if self.fail_first.load(Ordering::SeqCst) > 0 {
            self.fail_first.fetch_sub(1, Ordering::SeqCst);
            return Err(chronos_core::Error::unavailable("injected job failure"));
        }
        let up = DocUpdate {
            set: vec![],
            inc: vec![("runs".into(), 1.into())],
        };
        self.docs
            .update("counts", &p.index.to_string(), up, true)
            .await?;
        Ok(json!({"index": p.index}))
    }
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn config(id: &str, horizon_h: u64) -> WorkerConfig {
    WorkerConfig {
        horizon: Duration::from_secs(horizon_h * 3600),
        lease_ttl: Duration::from_secs(5),
        shutdown_grace: Duration::from_millis(50),
        worker_id: id.into(),
    }
}

async fn counts(docs: &Arc<dyn DocumentStore>) -> Vec<(String, u64)> {
    let q = chronos_core::DocQuery {
        filter: chronos_core::Filter::All,
        sort: None,
        skip: 0,
        limit: 1000,
    };
    let mut v: Vec<(String, u64)> = docs
        .find("counts", &q)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.id, d.body["runs"].as_u64().unwrap()))
        .collect();
    v.sort();
    v
}

async fn sqlite(dir: &tempfile::TempDir) -> (Arc<dyn Lock>, Arc<dyn DocumentStore>) {
    let uri = format!("sqlite://{}", dir.path().join("worker.db").display());
    let b = chronos_store_sqlite::SqliteBackend::open(&uri)
        .await
        .unwrap();
    (b.lock(), b.docs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_run_each_period_once() {
    let dir = tempfile::tempdir().unwrap();
    let memory: (Arc<dyn Lock>, Arc<dyn DocumentStore>) = (
        Arc::new(chronos_testkit::MemoryLock::new()),
        Arc::new(chronos_testkit::MemoryDocumentStore::new()),
    );
    #[allow(unused_mut)]
    let mut backends = vec![("memory", memory), ("sqlite", sqlite(&dir).await)];
    #[cfg(chronos_services)]
    {
        let uri = chronos_testkit::service_var("CHRONOS_TEST_MONGODB_URI").unwrap();
        let conn = chronos_store_mongo::MongoConnection::connect(&uri, Default::default())
            .await
            .unwrap();
        let name = format!(
            "wrk_t_{}",
            &chronos_core::ItemId::generate().to_string()[12..]
        );
        let db = conn.database(&name).await.unwrap();
        backends.push(("mongodb", (db.lock(), db.docs())));
    }
    #[cfg(not(chronos_services))]
    eprintln!("SKIPPED on MongoDB: the server suites are not compiled (run `cargo xtask test`)");
    for (name, (lock, docs)) in backends {
        let workers: Vec<Worker> = ["w1", "w2"]
            .iter()
            .map(|id| {
                let mut w = Worker::new(lock.clone(), docs.clone(), config(id, 3));
                w.register(Arc::new(Counting::new(
                    docs.clone(),
                    Duration::from_millis(20),
                )))
                .unwrap();
                w
            })
            .collect();
        let now = at("2026-12-02T14:30:00Z");
        let (a, b) = tokio::join!(workers[0].run_due(now), workers[1].run_due(now));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(
            a.ran.len() + b.ran.len(),
            3,
            "{name}: three periods, each run by one worker"
        );
        let c = counts(&docs).await;
        assert_eq!(c.len(), 3, "{name}: {c:?}");
        assert!(
            c.iter().all(|(_, n)| *n == 1),
            "{name}: each period ran once: {c:?}"
        );
        // Later passes, by either worker, run nothing more.
        assert!(workers[0].run_due(now).await.unwrap().ran.is_empty());
        assert!(workers[1].run_due(now).await.unwrap().ran.is_empty());
        let recs = workers[0]
            .completed("counting", at("2026-12-01T00:00:00Z"))
            .await
            .unwrap();
        let starts: Vec<String> = recs.iter().map(|r| r.start.to_string()).collect();
        assert_eq!(
            starts,
            [
                "2026-12-02T11:00:00Z",
                "2026-12-02T12:00:00Z",
                "2026-12-02T13:00:00Z"
            ],
            "{name}"
        );
        assert!(recs.iter().all(|r| r.report["index"].is_i64()));
    }
}

/// The child side: one pass when started by `two_processes_share_the_work`.
#[test]
fn child_worker() {
    let (Ok(dir), Ok(id)) = (
        std::env::var("CHRONOS_WORKER_DIR"),
        std::env::var("CHRONOS_WORKER_ID"),
    ) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let uri = format!("sqlite://{dir}/worker.db");
        let b = chronos_store_sqlite::SqliteBackend::open(&uri)
            .await
            .unwrap();
        let mut w = Worker::new(b.lock(), b.docs(), config(&id, 6));
        w.register(Arc::new(Counting::new(b.docs(), Duration::from_millis(30))))
            .unwrap();
        let r = w.run_due(at("2026-12-02T14:30:00Z")).await.unwrap();
        println!("ran {} busy {}", r.ran.len(), r.busy);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let (_, docs) = sqlite(&dir).await;
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["p1", "p2"]
        .iter()
        .map(|id| {
            Command::new(&exe)
                .args(["child_worker", "--exact", "--nocapture", "--test-threads=1"])
                .env("CHRONOS_WORKER_DIR", dir.path())
                .env("CHRONOS_WORKER_ID", id)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let c = counts(&docs).await;
    assert_eq!(c.len(), 6, "six periods within the horizon: {c:?}");
    assert!(
        c.iter().all(|(_, n)| *n == 1),
        "each period ran once across processes: {c:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_is_bounded_by_the_horizon_and_failures_retry() {
    let docs: Arc<dyn DocumentStore> = Arc::new(chronos_testkit::MemoryDocumentStore::new());
    let mut w = Worker::new(
        Arc::new(chronos_testkit::MemoryLock::new()),
        docs.clone(),
        config("w", 24),
    );
    let job = Arc::new(Counting::new(docs.clone(), Duration::ZERO));
    job.fail_first.store(1, Ordering::SeqCst);
    w.register(job).unwrap();
    // Down for three days: only the last 24 hours are caught up.
    let r = w.run_due(at("2026-12-02T00:00:00Z")).await.unwrap();
    assert_eq!(
        (r.ran.len(), r.failed.len()),
        (23, 1),
        "the failed period is not recorded"
    );
    let r = w.run_due(at("2026-12-02T00:10:00Z")).await.unwrap();
    assert_eq!(
        r.ran.len(),
        1,
        "the failed period runs again on the next pass"
    );
    assert_eq!(counts(&docs).await.len(), 24);
    let r = w.run_due(at("2026-12-02T01:00:00Z")).await.unwrap();
    assert_eq!(r.ran.len(), 1, "the hour that just ended");
}

/// A lock whose renewals always report the lease lost.
#[derive(Debug)]
struct LosesLeases(chronos_testkit::MemoryLock);

#[async_trait]
impl Lock for LosesLeases {
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>> {
        self.0.try_acquire(key, ttl).await
    }
    async fn release(&self, lease: &Lease) -> Result<bool> {
        self.0.release(lease).await
    }
    async fn renew(&self, _: &Lease, _: Duration) -> Result<Option<Lease>> {
        Ok(None)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_or_a_shutdown_abandons_the_run_unrecorded() {
    let docs: Arc<dyn DocumentStore> = Arc::new(chronos_testkit::MemoryDocumentStore::new());
    let cfg = WorkerConfig {
        lease_ttl: Duration::from_millis(60),
        ..config("w", 1)
    };
    let mut w = Worker::new(
        Arc::new(LosesLeases(chronos_testkit::MemoryLock::new())),
        docs.clone(),
        cfg,
    );
    w.register(Arc::new(Counting::new(
        docs.clone(),
        Duration::from_millis(300),
    )))
    .unwrap();
    let r = w.run_due(at("2026-12-02T14:30:00Z")).await.unwrap();
    assert_eq!((r.ran.len(), r.failed.len()), (0, 1), "{r:?}");
    assert!(
        counts(&docs).await.is_empty(),
        "the abandoned run was dropped before it wrote"
    );
    assert!(w
        .completed("counting", at("2020-01-01T00:00:00Z"))
        .await
        .unwrap()
        .is_empty());

    // Shutdown: the running job gets the grace (50 ms), then is abandoned; run_until returns.
    let docs2: Arc<dyn DocumentStore> = Arc::new(chronos_testkit::MemoryDocumentStore::new());
    let mut w = Worker::new(
        Arc::new(chronos_testkit::MemoryLock::new()),
        docs2.clone(),
        config("w", 1),
    );
    w.register(Arc::new(Counting::new(
        docs2.clone(),
        Duration::from_secs(30),
    )))
    .unwrap();
    let started = std::time::Instant::now();
    w.run_until(
        tokio::time::sleep(Duration::from_millis(100)),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "shutdown did not wait for the 30 s job"
    );
    assert!(counts(&docs2).await.is_empty());
    assert!(w
        .completed("counting", at("2020-01-01T00:00:00Z"))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registrations_are_refused() {
    #[derive(Debug)]
    struct Named(&'static str, Every);
    #[async_trait]
    impl Job for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn every(&self) -> &Every {
            &self.1
        }
        async fn run(&self, _: &Period) -> Result<Value> {
            Ok(Value::Null)
        }
    }
    let mut w = Worker::new(
        Arc::new(chronos_testkit::MemoryLock::new()),
        Arc::new(chronos_testkit::MemoryDocumentStore::new()),
        WorkerConfig::default(),
    );
    let every = || Every::parse("P1D").unwrap();
    w.register(Arc::new(Named("daily", every()))).unwrap();
    let e = w.register(Arc::new(Named("daily", every()))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    let e = w
        .register(Arc::new(Named("bad name|x", every())))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(w.jobs(), ["daily"]);
}
