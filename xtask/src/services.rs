//! Real services for the integration tests, installed from package registries and started on
//! free loopback ports: SecantusDB (MongoDB wire protocol, from PyPI).
//!
//! Everything lives under `target/services/`: the virtualenv, logs and data. A started service
//! is stopped when its [`Service`] is dropped.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned SecantusDB release.
const SECANTUS: &str = "secantusdb==0.7.0b3";

/// A running service process.
pub(crate) struct Service {
    name: &'static str,
    child: Child,
    /// What tests connect to.
    pub(crate) uri: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("xtask: stopped {}", self.name);
    }
}

fn services_dir(root: &Path) -> PathBuf {
    root.join("target").join("services")
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn free_port() -> Result<u16, String> {
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

/// Installs SecantusDB into `target/services/secantus-venv` unless it is there already.
fn install_secantus(root: &Path) -> Result<PathBuf, String> {
    let venv = services_dir(root).join("secantus-venv");
    let bin = venv.join("bin").join("secantusd-py");
    if bin.exists() {
        return Ok(bin);
    }
    eprintln!(
        "xtask: installing {SECANTUS} (PyPI) into {}",
        venv.display()
    );
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
            SECANTUS,
        ]),
        "pip install secantusdb",
    )?;
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{SECANTUS} installed but {} is missing",
            bin.display()
        ))
    }
}

/// Installs (if needed) and starts SecantusDB on a free port, in memory.
pub(crate) fn start_mongo(root: &Path) -> Result<Service, String> {
    let bin = install_secantus(root)?;
    let port = free_port()?;
    let log = services_dir(root).join("secantus.log");
    let out = fs::File::create(&log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(&bin)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--storage-path",
            ":memory:",
        ])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    if let Err(e) = wait_for_port("SecantusDB", port, &mut child, &log) {
        let _ = child.kill();
        return Err(e);
    }
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    eprintln!("xtask: SecantusDB (MongoDB wire protocol) listening at {uri}");
    Ok(Service {
        name: "SecantusDB",
        child,
        uri,
    })
}
