//! kill -9 tests: the test binary runs one of its own (ignored) tests as a child process
//! that prints a line per acknowledged write, and the parent reads those lines until it
//! decides to kill the child.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process running the ignored test `test` of the current test binary.
#[derive(Debug)]
pub struct ChildWriter {
    /// The process (kill it with [`Child::kill`]: SIGKILL on Unix).
    pub child: Child,
    /// Its standard output, line by line.
    pub lines: Lines<BufReader<ChildStdout>>,
}

impl ChildWriter {
    /// Starts `test` (an `#[ignore]`d test of this binary) with `envs` set.
    pub fn spawn(test: &str, envs: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(std::env::current_exe().expect("current test binary"));
        cmd.args([
            "--ignored",
            "--exact",
            test,
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn the child test");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Self { child, lines }
    }

    /// Reads lines until `n` of them started with `prefix` (panicking after 60 s or if the
    /// child exits first); returns those lines without the prefix.
    pub fn wait_for(&mut self, prefix: &str, n: usize) -> Vec<String> {
        let start = Instant::now();
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the child stalled"
            );
            let Some(line) = self.lines.next() else {
                panic!("the child exited after {} of {n} lines", out.len())
            };
            if let Some(rest) = line.expect("child output").strip_prefix(prefix) {
                out.push(rest.to_string());
            }
        }
        out
    }

    /// Kills the child (SIGKILL: no destructor, no flush) and returns the lines with
    /// `prefix` it printed before dying.
    pub fn kill(mut self, prefix: &str) -> Vec<String> {
        self.child.kill().expect("kill the child");
        self.child.wait().expect("reap the child");
        self.lines
            .map_while(|l| l.ok())
            .filter_map(|l| l.strip_prefix(prefix).map(str::to_string))
            .collect()
    }
}
