//! `chronos-crash`: the kill -9 test (`cargo xtask crash`).
//!
//! `chronos-crash run --backend sqlite+fs --rounds 200` starts this binary again as a child
//! (`chronos-crash child …`) that creates, updates, enriches and deletes records with several
//! concurrent writers and prints each call before it is made and each result; the parent
//! kills the child with SIGKILL at a random moment, round after round on one store. Then it
//! reads everything back and checks (see `check.rs`) that every acknowledged write is there
//! with the same content, that no operation appears twice, and that no version exists that
//! was neither acknowledged nor in flight; finally a sweep removes what the killed attempts
//! left, and `verify` must find no damage and no orphan.

mod check;
mod ledger;
mod rounds;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use chronos::Chronos;
use clap::{Parser, Subcommand};
use serde_json::json;

use ledger::Ledger;
use rounds::Backend;
use workload::Rng;

#[derive(Parser)]
#[command(about = "kill -9 test of the Chronos write path")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the rounds and check the store.
    Run {
        /// The store under test.
        #[arg(long, value_enum, default_value = "sqlite+fs")]
        backend: Backend,
        /// How many times a child is started and killed.
        #[arg(long, default_value_t = 200)]
        rounds: u64,
        /// Concurrent writers in each child.
        #[arg(long, default_value_t = 3)]
        writers: usize,
        /// Seed of the kill moments and the workload (random when absent; printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Writes go through the fallback spool, and the store goes down during each round —
        /// the blob directory on SQLite + files, a private MongoDB server (stopped with
        /// SIGTERM and restarted) on MongoDB + S3: queued writes must all be replayed exactly
        /// once.
        #[arg(long)]
        spool: bool,
    },
    /// The child writer (started by `run`).
    #[command(hide = true)]
    Child {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        pool: PathBuf,
        #[arg(long)]
        first_op: u64,
        #[arg(long)]
        writers: usize,
        #[arg(long)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Run { spool: true, .. } = &cli.command {
        // A killed writer's cv reservation holds MongoDB's change feed (so the counters) up
        // until it expires: one second here, for the children (inherited) and the checker.
        // Set before any other thread exists.
        std::env::set_var(COUNTER_TTL_VAR, "1000");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = match cli.command {
        Cmd::Child {
            config,
            pool,
            first_op,
            writers,
            seed,
        } => rt.block_on(workload::child(&config, &pool, first_op, writers, seed)),
        Cmd::Run {
            backend,
            rounds,
            writers,
            seed,
            spool,
        } => run(&rt, backend, rounds, writers, seed, spool),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chronos-crash: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `chronos_store_mongo::RESERVATION_TTL_VAR`.
const COUNTER_TTL_VAR: &str = "CHRONOS_MONGO_RESERVATION_TTL_MS";

/// Operation numbers of one round start at `round * OPS_PER_ROUND + 1`.
const OPS_PER_ROUND: u64 = 1_000_000_000;

fn run(
    rt: &tokio::runtime::Runtime,
    backend: Backend,
    rounds: u64,
    writers: usize,
    seed: Option<u64>,
    spool: bool,
) -> Result<(), String> {
    let seed = seed.unwrap_or_else(|| Rng::from_os().next());
    let mut rng = Rng::new(seed);
    let dir = tempfile::Builder::new()
        .prefix("chronos-crash-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    // Spool mode takes the store down during rounds: the blob directory on SQLite + files,
    // a private MongoDB server (stopped and restarted) on MongoDB + S3.
    let mut disruption = match (spool, backend) {
        (false, _) => None,
        (true, Backend::SqliteFs) => Some(rounds::Disruption::Blobs(rounds::Outage::prepare(
            dir.path(),
        )?)),
        (true, Backend::MongoS3) => Some(rounds::Disruption::Server(rounds::MongoServer::start(
            dir.path(),
        )?)),
    };
    let server = disruption.as_ref().and_then(rounds::Disruption::server);
    let config = rounds::config(backend, dir.path(), spool, server)?;
    let config_file = dir.path().join("config.json");
    std::fs::write(&config_file, config.to_string()).map_err(|e| e.to_string())?;
    println!(
        "chronos-crash: {} rounds on {backend:?}{}, {writers} writers per child, seed {seed}",
        rounds,
        match (spool, backend) {
            (false, _) => "",
            (true, Backend::SqliteFs) => " through the fallback spool, with blob outages",
            (true, Backend::MongoS3) => {
                " through the fallback spool, the MongoDB server stopped and restarted"
            }
        }
    );
    let started = Instant::now();
    let mut ledger = Ledger::default();
    let (mut acks, mut early) = (0, 0);
    let mut opened = Vec::new();
    for r in 0..rounds {
        let round = rounds::round(
            dir.path(),
            &config_file,
            &mut ledger,
            r * OPS_PER_ROUND + 1,
            writers,
            &mut rng,
            disruption.as_mut(),
        )
        .map_err(|e| format!("round {r}: {e}"))?;
        acks += round.acks;
        opened.extend(round.ready_after);
        early += usize::from(round.before_ready);
        if (r + 1) % 25 == 0 || r + 1 == rounds {
            println!(
                "  {} rounds, {acks} acknowledged writes, {:.1} s",
                r + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    opened.sort();
    if let Some(median) = opened.get(opened.len() / 2) {
        println!(
            "  a child opens the store in {:.1} ms (median; the kills by time land 0–10 or 0–400 ms after the start)",
            median.as_secs_f64() * 1000.0
        );
    }
    for m in ledger.unknown.iter().take(5) {
        println!("    outcome unknown: {m}");
    }
    let (acked, in_flight, failed) = ledger.counts();
    println!(
        "  operations: {acked} acknowledged ({} of them queued in the spool), {in_flight} in \
         flight at a kill, {failed} failed {:?}; {early} kills before the store was open",
        ledger.queued(),
        ledger.failures()
    );
    let result = rt.block_on(check_store(&config, &mut ledger));
    match result {
        Ok(summary) => {
            println!("{summary}");
            Ok(())
        }
        Err(e) => {
            let kept = dir.keep();
            Err(format!("{e}\n(the store is kept in {})", kept.display()))
        }
    }
}

/// The checks after the rounds, in a fresh process-equivalent (a new `Chronos`).
async fn check_store(config: &serde_json::Value, ledger: &mut Ledger) -> Result<String, String> {
    let chronos = Chronos::from_json(&config.to_string()).map_err(|e| e.to_string())?;
    let c = chronos
        .with(&workload::route())
        .await
        .map_err(|e| e.to_string())?;
    let spooled = match chronos.fallback() {
        Ok(spool) => Some(drain(spool, ledger).await?),
        Err(_) => None,
    };
    let f = check::check(&c, ledger).await?;
    let mut problems = Vec::new();
    let counted = match spooled {
        Some(_) => {
            let (line, problem) = counters_match(&chronos, &c, f.by_op).await?;
            problems.extend(problem);
            Some(line)
        }
        None => None,
    };
    for (what, list) in [
        ("lost", &f.lost),
        ("duplicate", &f.duplicates),
        ("phantom", &f.phantoms),
        ("wrong content", &f.wrong_content),
    ] {
        problems.extend(list.iter().take(10).map(|p| format!("{what}: {p}")));
    }
    // Everything a killed attempt left is past its deadline once the grace has passed.
    tokio::time::sleep(rounds::sweep_grace(config)).await;
    let swept = c
        .sweep(rounds::sweep_grace(config))
        .await
        .map_err(|e| format!("sweep: {e}"))?;
    let report = c.verify(|_| {}).await.map_err(|e| format!("verify: {e}"))?;
    problems.extend(
        report
            .problems
            .iter()
            .take(10)
            .map(|p| format!("verify: {:?} {} {:?}: {}", p.kind, p.id, p.ov, p.detail)),
    );
    problems.extend(
        report
            .orphans
            .iter()
            .take(10)
            .map(|k| format!("orphan after the sweep: {k}")),
    );
    c.create(
        &json!({"after": "the crashes"}),
        chronos_core::CreateOptions::new(),
    )
    .await
    .map_err(|e| format!("the store refuses writes after the crashes: {e}"))?;
    chronos.shutdown().await;
    let summary = format!(
        "  read back {} records, {} versions ({} committed without their acknowledgement reaching \
         the parent): lost {}, duplicates {}, phantoms {}, wrong content {}\n  sweep removed {} \
         blobs of killed attempts; verify: {} versions, {} problems, {} orphans ({} blobs of other \
         databases in the bucket left alone)",
        f.records,
        f.versions,
        f.unacknowledged_commits,
        f.lost.len(),
        f.duplicates.len(),
        f.phantoms.len(),
        f.wrong_content.len(),
        swept.removed.len(),
        report.versions,
        report.problems.len(),
        report.orphans.len(),
        report.not_owned
    );
    let summary = match (spooled, counted) {
        (Some(s), Some(c)) => format!("{s}\n{summary}\n{c}"),
        _ => summary,
    };
    if problems.is_empty() && f.is_clean() {
        Ok(summary)
    } else {
        Err(format!("{summary}\n{}", problems.join("\n")))
    }
}

/// Replays what the killed children left in the spool until nothing is pending; dead
/// letters become operations of unknown outcome in the ledger.
async fn drain(spool: &chronos::fallback::Spool, ledger: &mut Ledger) -> Result<String, String> {
    let found = spool.stats();
    let until = Instant::now() + std::time::Duration::from_secs(120);
    while spool.stats().pending > 0 {
        if Instant::now() > until {
            return Err(format!(
                "the spool did not drain in 120 s: {:?}",
                spool.pending(None, 5)
            ));
        }
        spool
            .replay_due()
            .await
            .map_err(|e| format!("replay: {e}"))?;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let letters = spool.dead_letters(None, usize::MAX);
    let mut why: std::collections::BTreeMap<&str, usize> = Default::default();
    for d in &letters {
        let code = d.error.split(':').next().unwrap_or("");
        *why.entry(code).or_default() += 1;
    }
    let dead: std::collections::HashSet<String> =
        letters.iter().map(|d| d.op.op_id.to_string()).collect();
    let marked = ledger.dead_lettered(&dead);
    let s = spool.stats();
    // Every open (each child's) that found a torn tail left its bytes here.
    let quarantined = std::fs::read_dir(spool.settings().dir.join("quarantine"))
        .map(|d| d.count())
        .unwrap_or(0);
    Ok(format!(
        "  spool: {} operations pending after the last kill, replayed {}, found already \
         committed {}, dead letters {marked} {why:?}; {quarantined} damaged log ranges (torn appends) \
         quarantined over the run",
        found.pending, s.replayed, s.found_committed
    ))
}

/// The counters, once the change feed has settled and they caught up, against the versions
/// read back: every replayed write counted once.
async fn counters_match(
    chronos: &Chronos,
    c: &chronos_core::Collection,
    (created, updated, deleted): (u64, u64, u64),
) -> Result<(String, Option<String>), String> {
    let last = c
        .stores()
        .index
        .current_cv(c.name())
        .await
        .map_err(|e| e.to_string())?;
    let until = Instant::now() + std::time::Duration::from_secs(120);
    let mut cursor = chronos_core::ChangeCursor::start();
    while cursor.cv() < last {
        if Instant::now() > until {
            return Err(format!("the change feed did not reach cv {last} in 120 s"));
        }
        cursor = c
            .changes(&cursor, 1000)
            .await
            .map_err(|e| format!("change feed: {e}"))?
            .cursor;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let counters = chronos.counters();
    let route = workload::route();
    let tenant = route.tenant_id.as_deref().unwrap_or_default();
    counters
        .catch_up(tenant, &route.collection)
        .await
        .map_err(|e| format!("counters: {e}"))?;
    let q = chronos::TotalsQuery::new()
        .tenant(tenant)
        .collection(&route.collection);
    let t = counters
        .get_totals(&q)
        .await
        .map_err(|e| format!("counters: {e}"))?
        .pop()
        .ok_or("no counters")?;
    let got = (t.counts.created, t.counts.updated, t.counts.deleted);
    let line = format!(
        "  counters: created {}, updated {}, deleted {} (the versions read back: {created}, \
         {updated}, {deleted})",
        got.0, got.1, got.2
    );
    let problem = (got != (created, updated, deleted)).then(|| {
        format!(
            "counters differ from the version log: {got:?} vs {:?}",
            (created, updated, deleted)
        )
    });
    Ok((line, problem))
}
