//! `cargo xtask`: the project's single entry point beyond plain `cargo`.
//!
//! - `cargo xtask tidy`  — architecture and hygiene checks (also run as a unit test);
//! - `cargo xtask lint`  — `cargo fmt --check` and clippy with warnings denied;
//! - `cargo xtask test`  — tidy, then the whole workspace test suite (what CI runs).
//!
//! Dependencies: std only, so the xtask builds in seconds.

mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("tidy") => tidy::check(&root).map(|n| println!("tidy: {n} files checked, all clean")),
        Some("lint") => lint(&root),
        Some("test") => {
            tidy::check(&root).and_then(|_| run(&root, "cargo", &["test", "--workspace"]))
        }
        _ => Err(
            "usage: cargo xtask <tidy|lint|test>\n  tidy  architecture and hygiene checks\n  \
                  lint  rustfmt + clippy (warnings denied)\n  test  tidy, then every test"
                .to_string(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn lint(root: &Path) -> Result<(), String> {
    run(root, "cargo", &["fmt", "--all", "--check"])?;
    run(
        root,
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )
}

fn run(root: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: running {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed ({status})", args.join(" ")))
    }
}
