//! `cargo xtask`: the project's single entry point beyond plain `cargo`.
//!
//! - `cargo xtask tidy`  — architecture and hygiene checks (also run as a unit test);
//! - `cargo xtask lint`  — `cargo fmt --check` and clippy with warnings denied;
//! - `cargo xtask test`  — tidy, start the real services (installing them on first use), then
//!   the whole workspace test suite against them (what CI runs);
//! - `cargo xtask services` — start the services and print their URIs, until interrupted;
//! - `cargo xtask bench [--backend <index>+<blobs>|all] [--quick] [--json FILE] [--compare OLD.json]
//!   [--mongo-replica-set] [--mongo-server python|rust]` — benchmarks beside raw baselines
//!   (only the servers the backends use, SecantusDB standalone unless `--mongo-replica-set`, its
//!   Python build unless `--mongo-server rust` asks for the Rust one, built on first use;
//!   `--quick` only checks the harness);
//! - `cargo xtask crash [--backend sqlite+fs|mongo+s3|spool|all] [--rounds N] [--mongo-rounds M]
//!   [--spool-rounds K] [--mongo-spool-rounds J] [--quick]` — the kill -9 test
//!   (`chronos-crash`): 200 rounds on SQLite + files, 100 on SQLite + files through the
//!   fallback spool with blob outages, 50 on MongoDB + S3, and 20 on MongoDB + S3 through the
//!   spool with the MongoDB server stopped and restarted, by default; `--quick` uses the debug
//!   build the tests made.
//!
//! Dependencies: std only, so the xtask builds in seconds.

mod secantus_rs;
mod services;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("tidy") => tidy::check(&root)
            .and_then(|n| Ok((n, tidy::check_embedded_tree(&root)?)))
            .map(|(n, t)| {
                println!("tidy: {n} files checked, all clean; the sqlite,fs build has {t} crates and no server driver")
            }),
        Some("lint") => lint(&root),
        Some("test") => tidy::check(&root).and_then(|_| test(&root)),
        Some("services") => services(&root),
        Some("bench") => bench(&root, &args[1..]),
        Some("crash") => crash(&root, &args[1..]),
        _ => Err("usage: cargo xtask <tidy|lint|test|services>\n  \
                  tidy      architecture and hygiene checks\n  \
                  lint      rustfmt + clippy (warnings denied)\n  \
                  test      tidy, start the services, then every test\n  \
                  services  start the test services and print their URIs\n  \
                  bench     [--backend sqlite+fs|sqlite+s3|mongo+s3|mongo+azure|all] [--quick] [--json FILE] [--compare OLD.json] [--mongo-replica-set] [--mongo-server python|rust]\n  \
                  crash     [--backend sqlite+fs|mongo+s3|spool|all] [--rounds N] [--mongo-rounds M] [--spool-rounds K] [--mongo-spool-rounds J] [--quick]"
            .to_string()),
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

/// Starts the services (unless the caller points at its own with the `CHRONOS_TEST_*`
/// variables) and runs every test against them.
fn test(root: &Path) -> Result<(), String> {
    let mut env: Vec<(&str, String)> = Vec::new();
    tidy::check_embedded_tree(root)?;
    let _services = services::start_for_tests(root, &mut env)?;
    run_with_env(root, "cargo", &["test", "--workspace"], &env)?;
    // The workspace build has every feature (chronos-cli asks for them); the embedded-only
    // build must work on its own and reject what it lacks.
    run(root, "cargo", &EMBEDDED_FEATURES_TEST)
}

/// The facade's feature test on the embedded-only build.
const EMBEDDED_FEATURES_TEST: [&str; 8] = [
    "test",
    "-p",
    "chronos",
    "--no-default-features",
    "--features",
    "sqlite,fs",
    "--test",
    "features",
];

fn bench(root: &Path, args: &[String]) -> Result<(), String> {
    let backend = args
        .iter()
        .position(|a| a == "--backend")
        .and_then(|i| args.get(i + 1))
        .map_or("sqlite+fs", String::as_str);
    let quick = args.iter().any(|a| a == "--quick");
    // `--mongo-replica-set` is the xtask's own: SecantusDB then runs as a replica set (with
    // transactions) instead of standalone; see `MongoTopology::Standalone` for why that is
    // not the default here.
    let topology = if args.iter().any(|a| a == "--mongo-replica-set") {
        services::MongoTopology::ReplicaSet
    } else {
        services::MongoTopology::Standalone
    };
    // `--mongo-server python|rust` is the xtask's own too: which SecantusDB build serves.
    let server = match args.iter().position(|a| a == "--mongo-server") {
        None => services::MongoServer::Python,
        Some(i) => match args.get(i + 1).map(String::as_str) {
            Some("python") => services::MongoServer::Python,
            Some("rust") => services::MongoServer::Rust,
            other => {
                return Err(format!(
                    "--mongo-server {}: use python or rust",
                    other.unwrap_or("(missing)")
                ))
            }
        },
    };
    let mut own = vec![false; args.len()];
    for (i, a) in args.iter().enumerate() {
        if a == "--mongo-replica-set" {
            own[i] = true;
        }
        if a == "--mongo-server" {
            own[i] = true;
            if let Some(value) = own.get_mut(i + 1) {
                *value = true;
            }
        }
    }
    let args: Vec<&String> = args
        .iter()
        .zip(own)
        .filter(|(_, own)| !own)
        .map(|(a, _)| a)
        .collect();
    let mut env: Vec<(&str, String)> = Vec::new();
    // Only the servers the backends use (the embedded default needs none); never the
    // authenticating SecantusDB, which only a test uses.
    let all = backend == "all";
    let needed = |var: &str| match var {
        "CHRONOS_TEST_MONGODB_URI" => all || backend.starts_with("mongo"),
        "CHRONOS_TEST_S3_ENDPOINT" => all || backend.ends_with("+s3"),
        "CHRONOS_TEST_AZURE_ENDPOINT" => all || backend.ends_with("+azure"),
        _ => false,
    };
    let _services = if !matches!(backend, "sqlite" | "sqlite+fs") {
        services::start_all(root, &mut env, topology, server, &needed)?
    } else {
        Vec::new()
    };
    // Quick mode only checks the harness: the debug build the tests already made will do.
    let mut cargo: Vec<&str> = vec!["run", "-q", "-p", "chronos-bench"];
    if !quick {
        cargo.push("--release");
    }
    cargo.push("--");
    cargo.extend(args.iter().map(|a| a.as_str()));
    run_with_env(root, "cargo", &cargo, &env)
}

/// The kill -9 test: `chronos-crash run` on each asked backend, servers started as for tests.
fn crash(root: &Path, args: &[String]) -> Result<(), String> {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    let backend = value("--backend").unwrap_or("all");
    let rounds = value("--rounds").unwrap_or("200");
    let mongo_rounds = value("--mongo-rounds").unwrap_or("50");
    let spool_rounds = value("--spool-rounds").unwrap_or("100");
    // Each of these rounds stops and restarts a MongoDB server (seconds each).
    let mongo_spool_rounds = value("--mongo-spool-rounds").unwrap_or("20");
    let quick = args.iter().any(|a| a == "--quick");
    // (backend, rounds, through the fallback spool with blob outages)
    let runs: Vec<(&str, &str, bool)> = match backend {
        "sqlite+fs" => vec![("sqlite+fs", rounds, false)],
        "mongo+s3" => vec![("mongo+s3", mongo_rounds, false)],
        "spool" => vec![
            ("sqlite+fs", spool_rounds, true),
            ("mongo+s3", mongo_spool_rounds, true),
        ],
        "all" => vec![
            ("sqlite+fs", rounds, false),
            ("sqlite+fs", spool_rounds, true),
            ("mongo+s3", mongo_rounds, false),
            ("mongo+s3", mongo_spool_rounds, true),
        ],
        other => {
            return Err(format!(
                "unknown crash backend {other:?} (sqlite+fs, mongo+s3, spool, all)"
            ))
        }
    };
    let mut env: Vec<(&str, String)> = Vec::new();
    let _services = if runs.iter().any(|(b, _, _)| *b == "mongo+s3") {
        services::start_for_tests(root, &mut env)?
    } else {
        Vec::new()
    };
    for (backend, rounds, spool) in runs {
        let mut cargo = vec!["run", "-q", "-p", "chronos-crash"];
        if !quick {
            cargo.push("--release");
        }
        cargo.extend(["--", "run", "--backend", backend, "--rounds", rounds]);
        if spool {
            cargo.push("--spool");
        }
        run_with_env(root, "cargo", &cargo, &env)?;
    }
    Ok(())
}

fn services(root: &Path) -> Result<(), String> {
    let mut env = Vec::new();
    let _services = services::start_for_tests(root, &mut env)?;
    for (k, v) in &env {
        println!("export {k}='{v}'");
    }
    eprintln!("xtask: services are running; press Ctrl-C to stop them");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

fn lint(root: &Path) -> Result<(), String> {
    run(root, "cargo", &["fmt", "--all", "--check"])?;
    // With the server suites compiled, so clippy sees them too.
    run_with_env(
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
        &[(services::SERVICES_VAR, "1".to_string())],
    )?;
    // The embedded-only build has its own cfg combinations.
    run(
        root,
        "cargo",
        &[
            "clippy",
            "-p",
            "chronos",
            "--no-default-features",
            "--features",
            "sqlite,fs",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )
}

fn run(root: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    run_with_env(root, program, args, &[])
}

fn run_with_env(
    root: &Path,
    program: &str,
    args: &[&str],
    env: &[(&str, String)],
) -> Result<(), String> {
    eprintln!("xtask: running {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed ({status})", args.join(" ")))
    }
}
