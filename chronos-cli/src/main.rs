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
mod output;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let json = args.json;
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
