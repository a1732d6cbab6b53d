//! The parent: starts a child writer, kills it with SIGKILL at a random moment, reads what it
//! acknowledged, and does that round after round on one store.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ledger::Ledger;
use crate::workload::Rng;

/// The store under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    /// SQLite and local blob files: no server.
    #[value(name = "sqlite+fs")]
    SqliteFs,
    /// MongoDB and S3 from `CHRONOS_TEST_MONGODB_URI` and `CHRONOS_TEST_S3_*` (`cargo xtask
    /// crash` starts both).
    #[value(name = "mongo+s3")]
    MongoS3,
}

/// How long a write attempt may take, and the clock margin: short, so the sweep after the
/// rounds may remove what the killed attempts left (one host, one clock).
const WRITE_DEADLINE_MS: u64 = 3000;
const CLOCK_SKEW_MS: u64 = 1000;

/// The configuration every child and the checker open; with `spool`, the fallback queue in
/// `<dir>/spool` (short backoff, attempts enough to outlast any outage of a run).
pub(crate) fn config(
    backend: Backend,
    dir: &Path,
    spool: bool,
    server: Option<&MongoServer>,
) -> Result<Value, String> {
    let mut c = base_config(backend, dir)?;
    if let Some(s) = server {
        // Short timeouts: while the server is down a write fails (and is queued) within a
        // second instead of the driver's default 30 s.
        c["dbConnections"]["m"]["mongoUri"] = json!(format!(
            "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=1000&connectTimeoutMS=1000",
            s.port
        ));
    }
    if spool {
        // Replays wait for a failed attempt's deadline plus the skew before re-applying it:
        // short ones, so the children replay during the rounds (and get killed doing it).
        c["sweepSafety"] = json!({"writeDeadlineMs": 250, "clockSkewMs": 50});
        // Counters too: replayed writes must be counted exactly once.
        c["databases"]["runtime"]["tenantDatabases"][0]["analyticsDbName"] =
            json!("crash_analytics");
        c["fallback"] = json!({
            "enabled": true, "spoolDir": dir.join("spool"),
            "retryDelayMs": 20, "maxDelayMs": 200, "maxRetries": 1000
        });
    }
    Ok(c)
}

fn base_config(backend: Backend, dir: &Path) -> Result<Value, String> {
    let safety = json!({"writeDeadlineMs": WRITE_DEADLINE_MS, "clockSkewMs": CLOCK_SKEW_MS});
    Ok(match backend {
        Backend::SqliteFs => json!({
            "dbConnections": { "local": { "mongoUri": format!("sqlite://{}", dir.join("db").display()) } },
            "spacesConnections": {},
            "databases": { "runtime": { "tenantDatabases": [
                { "tenantId": "t", "dbConnRef": "local", "dbName": "crash" }
            ]}},
            "localStorage": { "enabled": true, "basePath": dir.join("blobs").display().to_string() },
            "sweepSafety": safety
        }),
        Backend::MongoS3 => {
            let var = |k: &str| {
                std::env::var(k).map_err(|_| {
                    format!("{k} is not set: run `cargo xtask crash`, which starts the servers")
                })
            };
            let suffix = Rng::from_os().next() % 1_000_000_000;
            json!({
                "dbConnections": { "m": { "mongoUri": var("CHRONOS_TEST_MONGODB_URI")? } },
                "spacesConnections": { "s3": {
                    "endpoint": var("CHRONOS_TEST_S3_ENDPOINT")?, "region": "us-east-1",
                    "forcePathStyle": true,
                    "accessKey": var("CHRONOS_TEST_S3_ACCESS_KEY")?,
                    "secretKey": var("CHRONOS_TEST_S3_SECRET_KEY")?
                }},
                "databases": { "runtime": { "tenantDatabases": [
                    { "tenantId": "t", "dbConnRef": "m", "spaceConnRef": "s3",
                      "bucket": var("CHRONOS_TEST_S3_BUCKET")?, "dbName": format!("crash_{suffix}") }
                ]}},
                "sweepSafety": safety
            })
        }
    })
}

/// The shortest sweep grace the configuration allows.
pub(crate) fn sweep_grace(config: &Value) -> Duration {
    let ms = |k: &str| config["sweepSafety"][k].as_u64().unwrap_or(0);
    Duration::from_millis(ms("writeDeadlineMs") + ms("clockSkewMs"))
}

/// What one round saw.
pub(crate) struct Round {
    /// Acknowledgements the child printed.
    pub(crate) acks: usize,
    /// Whether the kill landed before the child had opened the store.
    pub(crate) before_ready: bool,
    /// How long the child took to open the store (when the parent saw it before the kill).
    pub(crate) ready_after: Option<Duration>,
}

/// A blob-store outage on SQLite + files. The collection's blob directory
/// (`blobs/crash/crash`, below the store's canonical root) is a symbolic link to
/// `crash.real`; an outage atomically points it at itself instead (a rename over the link),
/// so every blob read and write fails with "too many levels of symbolic links" — a failure,
/// not an absence, as a server outage would be — and no child can recreate the directory
/// meanwhile, until the link is pointed back.
pub(crate) struct Outage {
    root: std::path::PathBuf,
    on: bool,
}

impl Outage {
    /// Sets up the link (once per run, before the first child).
    pub(crate) fn prepare(dir: &Path) -> Result<Self, String> {
        let root = dir.join("blobs").join("crash");
        std::fs::create_dir_all(root.join("crash.real")).map_err(|e| e.to_string())?;
        let mut outage = Self { root, on: true };
        outage.set(false)?;
        Ok(outage)
    }

    /// Takes the blob store down or brings it back; idempotent.
    fn set(&mut self, down: bool) -> Result<(), String> {
        if self.on == down {
            return Ok(());
        }
        // The link is replaced atomically (a rename over it), so no child ever sees the
        // directory missing, which it would recreate.
        let tmp = self.root.join("crash.link");
        let _ = std::fs::remove_file(&tmp);
        let target = if down { "crash" } else { "crash.real" };
        std::os::unix::fs::symlink(target, &tmp).map_err(|e| format!("outage: {e}"))?;
        std::fs::rename(&tmp, self.root.join("crash")).map_err(|e| format!("outage: {e}"))?;
        self.on = down;
        Ok(())
    }
}

/// A private SecantusDB (`CHRONOS_TEST_SECANTUSD`, which `cargo xtask` sets) on its own
/// port and data directory, for the spool mode on MongoDB: stopped (SIGTERM) and restarted
/// on the same port and data during the rounds.
pub(crate) struct MongoServer {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    log: std::path::PathBuf,
    pub(crate) port: u16,
    child: Option<std::process::Child>,
}

impl MongoServer {
    pub(crate) fn start(dir: &Path) -> Result<Self, String> {
        let bin = std::env::var("CHRONOS_TEST_SECANTUSD").map_err(|_| {
            "CHRONOS_TEST_SECANTUSD is not set: run `cargo xtask crash`, which installs SecantusDB"
                .to_string()
        })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let mut s = Self {
            bin: bin.into(),
            data: dir.join("mongo-data"),
            log: dir.join("mongo.log"),
            port,
            child: None,
        };
        std::fs::create_dir_all(&s.data).map_err(|e| e.to_string())?;
        s.up()?;
        Ok(s)
    }

    /// Starts the server and waits until it accepts connections.
    pub(crate) fn up(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| e.to_string())?;
        let child = Command::new(&self.bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--standalone",
            ])
            .arg("--storage-path")
            .arg(&self.data)
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start SecantusDB: {e}"))?;
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > until {
                return Err(format!(
                    "SecantusDB did not come up in 60 s: {}",
                    tail(&self.log)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the server gracefully (SIGTERM) and waits for it to exit.
    pub(crate) fn down(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        // SecantusDB now and then ignores SIGTERM (seen in CI): after 10 s it is killed, and
        // the run says so (a write the server acknowledged but had not made durable would
        // then show as lost: the server's durability, reported, not hidden).
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                return Ok(());
            }
            if Instant::now() > until {
                eprintln!("chronos-crash: SecantusDB ignored SIGTERM for 10 s; killed (SIGKILL)");
                let _ = child.kill();
                let _ = child.wait();
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What goes down during a round of the spool mode.
pub(crate) enum Disruption {
    /// The blob directory (SQLite + files).
    Blobs(Outage),
    /// The MongoDB server.
    Server(MongoServer),
}

impl Disruption {
    /// Takes the store down or brings it back; idempotent.
    fn set(&mut self, down: bool) -> Result<(), String> {
        match (self, down) {
            (Self::Blobs(o), _) => o.set(down),
            (Self::Server(s), true) => s.down(),
            (Self::Server(s), false) => s.up(),
        }
    }

    /// The private MongoDB server, when that is what goes down.
    pub(crate) fn server(&self) -> Option<&MongoServer> {
        match self {
            Self::Server(s) => Some(s),
            Self::Blobs(_) => None,
        }
    }
}

/// Whether a child's output line acknowledges a write (committed or queued in the spool).
fn is_ack(line: &str) -> bool {
    line.starts_with("ACK ") || line.starts_with("QUEUED ")
}

/// One round: a child writes into the store of `config_file` until it is killed. With a
/// `disruption`, the store goes down for a while during the round (the child's writes then
/// queue in the spool), and may still be down when the kill lands; it is back before the
/// round ends.
pub(crate) fn round(
    dir: &Path,
    config_file: &Path,
    ledger: &mut Ledger,
    first_op: u64,
    writers: usize,
    rng: &mut Rng,
    mut disruption: Option<&mut Disruption>,
) -> Result<Round, String> {
    // When (after the start) the outage begins and how long it lasts.
    let outage_at = Duration::from_millis(rng.below(300));
    let outage_for = Duration::from_millis(20 + rng.below(300));
    let pool = dir.join("pool.txt");
    let ids: String = ledger.created().map(|id| format!("{id}\n")).collect();
    std::fs::write(&pool, ids).map_err(|e| format!("{}: {e}", pool.display()))?;
    let stderr_path = dir.join("child.stderr");
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("child")
        .arg("--config")
        .arg(config_file)
        .arg("--pool")
        .arg(&pool)
        .args(["--first-op", &first_op.to_string()])
        .args(["--writers", &writers.to_string()])
        .args(["--seed", &rng.next().to_string()])
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // A quarter of the rounds die at a random instant (startup included); the rest after a
    // random number of acknowledgements, i.e. in the middle of writing.
    let start = Instant::now();
    let by_time = rng.below(4) == 0;
    // Half of those within the child's first 10 ms: while it opens the store.
    let wait_ms = if rng.below(2) == 0 {
        rng.below(10)
    } else {
        rng.below(400)
    };
    let acks_wanted = rng.below(80) as usize;
    let mut lines = Vec::new();
    let mut acks = 0;
    let mut ready = false;
    let mut ready_after = None;
    loop {
        if let Some(d) = disruption.as_deref_mut().filter(|_| ready) {
            let t = start.elapsed();
            d.set(t >= outage_at && t < outage_at + outage_for)?;
        }
        if by_time && start.elapsed() >= Duration::from_millis(wait_ms) {
            break;
        }
        if !by_time && ready && acks >= acks_wanted {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            if let Some(d) = disruption.as_deref_mut() {
                let _ = d.set(false);
            }
            return Err(format!(
                "the child stalled ({acks} acknowledgements in 60 s); its stderr: {}",
                tail(&stderr_path)
            ));
        }
        match rx.recv_timeout(Duration::from_millis(5)) {
            Ok(line) => {
                if line == "READY" && !ready {
                    ready = true;
                    ready_after = Some(start.elapsed());
                }
                acks += usize::from(is_ack(&line));
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().map_err(|e| e.to_string())?;
                return Err(format!(
                    "the child exited by itself ({status}); its stderr: {}",
                    tail(&stderr_path)
                ));
            }
        }
    }
    child
        .kill()
        .map_err(|e| format!("cannot kill the child: {e}"))?;
    child.wait().map_err(|e| e.to_string())?;
    if let Some(d) = disruption {
        d.set(false)?;
    }
    reader.join().map_err(|_| "the reader thread panicked")?;
    lines.extend(rx.try_iter());
    let n = lines.len();
    for (i, line) in lines.iter().enumerate() {
        ledger.record(line, i + 1 == n)?;
    }
    Ok(Round {
        acks: lines.iter().filter(|l| is_ack(l)).count(),
        before_ready: !lines.iter().any(|l| l == "READY"),
        ready_after,
    })
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}
