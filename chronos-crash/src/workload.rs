//! What the child writes, and the child itself.
//!
//! The child mixes creates, updates, enrichments and deletes, and now and then a batch of
//! creates through `create_many` (each item its own operation).
//!
//! Every operation has a number (`op`), unique across the whole run, and its content is a
//! pure function of that number, so the checker can tell which operation wrote any version it
//! finds and what that version must contain. The child prints one line before each call and
//! one after it:
//!
//! - `BEGIN <op> <kind> <id>` — the call is about to be made (from here on it may commit);
//! - `ACK <op> <ov> <cv>` — the call returned this version: it must survive any crash;
//! - `QUEUED <op> <operation id>` — the call was queued in the fallback spool (spool mode:
//!   single writes go through `Chronos::spooled`): it must be there once the spool drains;
//! - `ERR <op> <CODE> <message>` — the call failed with this error.
//!
//! Standard output is line-buffered, so a line is out before the next call starts.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chronos::fallback::Outcome;
use chronos::{Chronos, Route};
use chronos_core::{CreateOptions, EnrichOptions, ItemId, WriteOptions};
use serde_json::{json, Map, Value};

/// The tenant and collection every run writes.
pub(crate) fn route() -> Route {
    Route::runtime("t", "crash")
}

/// The kinds of operation the child mixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Create,
    Update,
    Enrich,
    Delete,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Update => "update",
            Kind::Enrich => "enrich",
            Kind::Delete => "delete",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [Kind::Create, Kind::Update, Kind::Enrich, Kind::Delete]
            .into_iter()
            .find(|k| k.name() == s)
    }
}

/// Padding whose length varies with the operation (0–2,999 bytes), so payloads of many sizes
/// are in flight when the kill lands.
fn pad(op: u64) -> String {
    "x".repeat((op.wrapping_mul(7919) % 3000) as usize)
}

/// The data a create or update with number `op` stores.
pub(crate) fn replacement(kind: Kind, op: u64) -> Map<String, Value> {
    let v = json!({"last": op, "kind": kind.name(), "pad": pad(op)});
    v.as_object().expect("an object").clone()
}

/// The patch an enrich with number `op` merges in.
pub(crate) fn patch(op: u64) -> Map<String, Value> {
    let v = json!({"last": op, "enriched": [op]});
    v.as_object().expect("an object").clone()
}

/// A small xorshift generator: the workload needs variety, not cryptographic randomness.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn from_os() -> Self {
        let mut b = [0u8; 8];
        getrandom::getrandom(&mut b).expect("operating system random source");
        Self::new(u64::from_le_bytes(b))
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The child: opens the configuration, then `writers` tasks write until the process is killed.
/// `pool` lists ids of records created in earlier rounds; `first_op` is this round's first
/// operation number.
pub(crate) async fn child(
    config: &Path,
    pool: &Path,
    first_op: u64,
    writers: usize,
    seed: u64,
) -> Result<(), String> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let chronos = Chronos::from_json(&text).map_err(|e| e.to_string())?;
    let c = chronos.with(&route()).await.map_err(|e| e.to_string())?;
    // With the fallback queue configured, single writes go through the spool.
    let spooled = match chronos.fallback() {
        Ok(_) => Some(chronos.spooled(&route()).map_err(|e| e.to_string())?),
        Err(_) => None,
    };
    let ids: Vec<ItemId> = std::fs::read_to_string(pool)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| ItemId::parse(l.trim()).ok())
        .collect();
    let pool = Arc::new(Mutex::new(ids));
    let next = Arc::new(AtomicU64::new(first_op));
    println!("READY");
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (c, pool, next, spooled) = (c.clone(), pool.clone(), next.clone(), spooled.clone());
        let mut rng = Rng::new(
            seed.wrapping_add(w as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                // One turn in ten is a batch: several creates through one `create_many`,
                // each with its own operation number and lines.
                if rng.below(10) == 0 {
                    let n = 2 + rng.below(19);
                    let first = next.fetch_add(n, Ordering::Relaxed);
                    let items: Vec<(u64, ItemId)> = (first..first + n)
                        .map(|op| (op, ItemId::generate()))
                        .collect();
                    for (op, id) in &items {
                        println!("BEGIN {op} create {id}");
                    }
                    let results = c
                        .create_many(items.iter().map(|(op, id)| {
                            (replacement(Kind::Create, *op), CreateOptions::new().id(*id))
                        }))
                        .await;
                    for ((op, id), r) in items.iter().zip(results) {
                        if r.is_ok() {
                            pool.lock().expect("pool lock").push(*id);
                        }
                        report(*op, r.map(Outcome::Committed));
                    }
                    continue;
                }
                let op = next.fetch_add(1, Ordering::Relaxed);
                let target = {
                    let ids = pool.lock().expect("pool lock");
                    (!ids.is_empty()).then(|| ids[rng.below(ids.len() as u64) as usize])
                };
                let kind = match (target, rng.below(100)) {
                    (None, _) | (_, 0..=29) => Kind::Create,
                    (_, 30..=54) => Kind::Update,
                    (_, 55..=89) => Kind::Enrich,
                    _ => Kind::Delete,
                };
                let id = match kind {
                    Kind::Create => ItemId::generate(),
                    _ => target.expect("a target for a change"),
                };
                println!("BEGIN {op} {} {id}", kind.name());
                let result = match (&spooled, kind) {
                    (Some(w), Kind::Create) => {
                        w.create(&replacement(kind, op), CreateOptions::new().id(id))
                            .await
                    }
                    (Some(w), Kind::Update) => {
                        w.update(id, &replacement(kind, op), WriteOptions::new())
                            .await
                    }
                    (Some(w), Kind::Enrich) => w.enrich(id, &patch(op), EnrichOptions::new()).await,
                    (Some(w), Kind::Delete) => w.delete(id, WriteOptions::new()).await,
                    (None, Kind::Create) => c
                        .create(&replacement(kind, op), CreateOptions::new().id(id))
                        .await
                        .map(Outcome::Committed),
                    (None, Kind::Update) => c
                        .update(id, &replacement(kind, op), WriteOptions::new())
                        .await
                        .map(Outcome::Committed),
                    (None, Kind::Enrich) => c
                        .enrich(id, &patch(op), EnrichOptions::new())
                        .await
                        .map(Outcome::Committed),
                    (None, Kind::Delete) => c
                        .delete(id, WriteOptions::new())
                        .await
                        .map(Outcome::Committed),
                };
                if kind == Kind::Create && result.is_ok() {
                    pool.lock().expect("pool lock").push(id);
                }
                report(op, result);
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Prints the line that tells the parent how operation `op` ended.
fn report(op: u64, result: chronos_core::Result<Outcome>) {
    match result {
        Ok(Outcome::Committed(w)) => println!("ACK {op} {} {}", w.ov, w.cv),
        Ok(Outcome::Queued(q)) => println!("QUEUED {op} {}", q.op_id),
        Err(e) => println!("ERR {op} {} {e}", e.kind().code()),
    }
}
