//! The `chronos` command-line tool: versioned records from the shell.
//!
//! Without `--config` it uses the embedded default (SQLite + files) in `./chronos-data`.
//! Run `chronos demo` for a guided tour, `chronos --help` for every command.

/// `println!` for command output: a closed stdout (`chronos list | head`) ends the process
/// quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::emit(format_args!($($arg)*))
    };
}

mod cli;
mod demo;
mod fallback;
mod messaging;
mod output;
mod worker;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Logs go to standard error (stdout is for command output): `RUST_LOG` when set, else the
/// level `-v` asks for (warnings by default — retries, recoveries, swallowed clean-up
/// failures).
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    // -v and -vv raise Chronos's own crates; the drivers (sqlx logs every statement at
    // debug) stay at warnings until -vvv.
    let ours = [
        "chronos",
        "chronos_cli",
        "chronos_core",
        "chronos_blob",
        "chronos_store_sqlite",
        "chronos_store_mongo",
        "chronos_store_memory",
        "chronos_worker",
        "chronos_analytics",
    ];
    let directives = match verbose {
        0 => "warn".to_string(),
        3.. => "trace".to_string(),
        v => {
            let level = if v == 1 { "info" } else { "debug" };
            std::iter::once("warn".to_string())
                .chain(ours.iter().map(|c| format!("{c}={level}")))
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directives));
    // A second subscriber (none here) is the only way `try_init` fails; logging is optional.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let json = args.json;
    init_logging(args.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                let v = serde_json::json!({"error": {"kind": e.kind().code(), "message": e.to_string()}});
                // Ignored when stdout is closed: the error still goes to stderr below.
                let _ = writeln!(std::io::stdout(), "{v}");
            }
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
