//! The kill -9 test, shortened, inside `cargo xtask test`: the `chronos-crash` binary run as
//! `cargo xtask crash` runs it, with fewer rounds. It fails unless every acknowledged write
//! is read back, nothing is duplicated or invented, and verify is clean after the sweep.

use std::process::Command;

fn crash(backend: &str, rounds: u32) {
    let out = Command::new(env!("CARGO_BIN_EXE_chronos-crash"))
        .args(["run", "--backend", backend, "--rounds", &rounds.to_string()])
        .output()
        .expect("run chronos-crash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for clean in [
        "lost 0, duplicates 0, phantoms 0, wrong content 0",
        "0 problems, 0 orphans",
    ] {
        assert!(stdout.contains(clean), "{clean:?} missing from\n{stdout}");
    }
}

#[test]
fn sqlite_and_files_survive_kills() {
    crash("sqlite+fs", 40);
}

#[cfg(chronos_services)]
#[test]
fn mongodb_and_s3_survive_kills() {
    crash("mongo+s3", 10);
}
