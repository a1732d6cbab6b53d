//! 100 damaged spool logs — torn tails, flipped bytes, garbage appended, a zeroed sector —
//! each opens cleanly: the damage is quarantined with the bytes kept aside, every intact
//! operation is replayed exactly once, nothing crash-loops (a second open finds a clean log).

mod common;

use std::collections::HashSet;
use std::fs;

use chronos_core::{CreateOptions, HistoryOptions, ItemId};
use chronos_fallback::Outcome;
use chronos_testkit::fault::{FaultMode, FaultPlan};
use common::*;
use serde_json::json;

/// A small deterministic generator (no dependency, reproducible cases).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// Queued-operation frames of the pristine log that end at or before `cut` (the frame
/// layout: magic, length, CRC, payload).
fn adds_before(log: &[u8], cut: usize) -> usize {
    let (mut at, mut n) = (0, 0);
    while at + 12 <= log.len() {
        let len = u32::from_le_bytes(log[at + 4..at + 8].try_into().unwrap()) as usize;
        let end = at + 12 + len;
        if end > cut {
            break;
        }
        n += usize::from(log[at + 12..end].starts_with(br#"{"e":"add""#));
        at = end;
    }
    n
}

#[tokio::test]
async fn one_hundred_damaged_logs_open_cleanly() {
    // One spool with 12 queued creates, its log kept as the pristine copy.
    let plan = FaultPlan::new();
    let c = collection(&plan).await;
    let src = tempfile::tempdir().unwrap();
    let mut ids: Vec<ItemId> = Vec::new();
    {
        let spool = spool(src.path(), &c);
        let w = spool.collection("main", "users");
        plan.fail_every("put_if_absent", FaultMode::Before);
        for i in 0..12 {
            match w
                .create(
                    &json!({"i": i, "pad": "p".repeat(i * 7)}),
                    CreateOptions::new(),
                )
                .await
                .unwrap()
            {
                Outcome::Queued(q) => ids.push(q.id),
                other => panic!("{other:?}"),
            }
        }
    }
    plan.clear();
    let pristine = fs::read(src.path().join("spool.log")).unwrap();
    let mut rng = Lcg(42);
    let mut quarantined_cases = 0;
    for case in 0..100 {
        let mut bytes = pristine.clone();
        let what = case % 4;
        match what {
            // A torn append: the log cut anywhere in its last third.
            0 => {
                let from = bytes.len() * 2 / 3;
                let cut = from + rng.next(bytes.len() - from);
                bytes.truncate(cut);
            }
            // A flipped byte anywhere.
            1 => {
                let at = rng.next(bytes.len());
                bytes[at] ^= 1 + rng.next(255) as u8;
            }
            // Garbage after the last frame (a half-written frame of a newer entry).
            2 => {
                let n = 1 + rng.next(40);
                bytes.extend((0..n).map(|_| rng.next(256) as u8));
            }
            // A zeroed 512-byte sector.
            _ => {
                let at = rng.next(bytes.len());
                let end = (at + 512).min(bytes.len());
                bytes[at..end].fill(0);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("spool.log"), &bytes).unwrap();
        // A fresh store per case, so "exactly once" is counted per case.
        let plan = FaultPlan::new();
        let c = collection(&plan).await;
        let spool = spool(dir.path(), &c);
        let stats = spool.stats();
        if bytes != pristine && stats.quarantined > 0 {
            quarantined_cases += 1;
            let q: Vec<_> = fs::read_dir(dir.path().join("quarantine"))
                .unwrap()
                .collect();
            assert_eq!(
                q.len(),
                stats.quarantined,
                "case {case}: every damaged range kept aside"
            );
        }
        assert!(stats.pending <= ids.len(), "case {case}");
        let pending: HashSet<ItemId> = spool.pending(None, 100).iter().map(|p| p.op.id).collect();
        assert!(
            pending.iter().all(|id| ids.contains(id)),
            "case {case}: only real operations"
        );
        // A torn tail keeps every operation whose frame ends before the cut; garbage after
        // the end costs nothing.
        if what == 0 {
            assert_eq!(
                stats.pending,
                adds_before(&pristine, bytes.len()),
                "case {case}"
            );
        }
        if what == 2 {
            assert_eq!(stats.pending, ids.len(), "case {case}");
        }
        drain(&spool).await;
        for id in &ids {
            let n = match c.history(*id, HistoryOptions::default()).await {
                Ok(h) => h.versions.len(),
                Err(_) => 0,
            };
            let want = usize::from(pending.contains(id));
            assert_eq!(n, want, "case {case}: record {id} applied {n} times");
        }
        drop(spool);
        // The rewritten log is clean: a second open quarantines nothing.
        let again = common::spool(dir.path(), &c);
        assert_eq!(again.stats().quarantined, 0, "case {case}");
        assert_eq!(again.stats().pending, 0, "case {case}");
    }
    assert!(
        quarantined_cases >= 75,
        "most cases damage a frame: {quarantined_cases}"
    );
}
