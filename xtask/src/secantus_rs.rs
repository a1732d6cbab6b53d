//! SecantusDB's Rust build (`secantus-mdb` on crates.io, the `secantusd-rs` binary over
//! WiredTiger): an optional MongoDB-wire server for the benchmark,
//! `cargo xtask bench --mongo-server rust`, so its rows can be read beside the Python
//! build's (whose planner and per-request cost make some MongoDB numbers look worse than a
//! real server would). The tests keep the Python build: it starts in a second, where this
//! one is a long first build.
//!
//! Built once into `target/services/secantus-rs/` with `cargo install`, from crates.io
//! only: WiredTiger's C build needs cmake, which comes from PyPI's `cmake` wheel in its own
//! virtualenv. The crate declares `rust-version = 1.98`; it builds and runs on this
//! project's 1.95 toolchain (the only one these machines have), hence
//! `--ignore-rust-version`. `--locked` builds exactly the dependency versions it was
//! released with.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::services::{free_port, install_pip, run, services_dir, spawn, MongoTopology, Service};

/// The pinned release (a beta: the crate has published no other line).
pub(crate) const VERSION: &str = "0.5.3-beta.196";
/// The cmake its build needs.
const CMAKE: &str = "cmake==4.4.5";

/// Builds `secantusd-rs` unless it is there already; its path.
fn install(root: &Path) -> Result<std::path::PathBuf, String> {
    let dir = services_dir(root).join("secantus-rs");
    let bin = dir.join("bin").join("secantusd-rs");
    if bin.exists() {
        return Ok(bin);
    }
    let cmake = install_pip(root, "cmake-venv", CMAKE, "cmake")?;
    let cmake_dir = cmake.parent().ok_or("cmake has no directory")?;
    let path = match std::env::var_os("PATH") {
        Some(p) => {
            let mut dirs = vec![cmake_dir.to_path_buf()];
            dirs.extend(std::env::split_paths(&p));
            std::env::join_paths(dirs).map_err(|e| e.to_string())?
        }
        None => cmake_dir.as_os_str().to_owned(),
    };
    eprintln!(
        "xtask: building secantus-mdb {VERSION} (crates.io) into {} — once; the first build \
         compiles WiredTiger and takes 10–20 minutes on 2 cores",
        dir.display()
    );
    run(
        Command::new("cargo")
            .args([
                "install",
                "--quiet",
                "secantus-mdb",
                "--version",
                &format!("={VERSION}"),
                "--locked",
                "--ignore-rust-version",
                "--root",
            ])
            .arg(&dir)
            .env("PATH", path)
            // The build's own target directory (a temporary one), not the workspace's.
            .env_remove("CARGO_TARGET_DIR"),
        "cargo install secantus-mdb",
    )?;
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "secantus-mdb installed but {} is missing",
            bin.display()
        ))
    }
}

/// Installs (if needed) and starts `secantusd-rs` on a free port, on a data directory of
/// its own that is removed when it stops (WiredTiger has no in-memory mode here).
pub(crate) fn start(root: &Path, topology: MongoTopology) -> Result<Service, String> {
    let bin = install(root)?;
    let port = free_port()?;
    let data = services_dir(root).join(format!("secantus-rs-data-{port}"));
    let _ = fs::remove_dir_all(&data);
    let port_arg = port.to_string();
    let mut cmd = Command::new(&bin);
    cmd.args([
        "--host",
        "127.0.0.1",
        "--port",
        &port_arg,
        "--log-level",
        "WARNING",
    ])
    .arg("--storage-path")
    .arg(&data);
    if topology == MongoTopology::Standalone {
        cmd.arg("--standalone");
    }
    let child = spawn(root, "SecantusDB (Rust)", "secantus-rs.log", &mut cmd, port)?;
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    eprintln!("xtask: SecantusDB's Rust build {VERSION} listening at {uri}");
    Ok(Service::new(
        "SecantusDB (Rust)",
        child,
        Some(data),
        vec![
            ("CHRONOS_TEST_MONGODB_URI", uri),
            (
                "CHRONOS_TEST_MONGODB_SERVER",
                format!("SecantusDB {VERSION} (Rust, WiredTiger)"),
            ),
        ],
    ))
}
