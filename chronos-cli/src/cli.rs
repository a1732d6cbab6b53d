//! Argument definitions and command dispatch of the `chronos` CLI.

use std::path::PathBuf;

use chronos::{Chronos, DatabaseType, Route, Tier};
use chronos_core::time::parse_instant;
use chronos_core::{
    CollectionRestoreOptions, CreateOptions, EnrichOptions, Error, HistoryOptions, ItemId,
    ListOptions, Point, ReadOptions, RestoreTarget, Result, SortField, WriteOptions,
};
use clap::{Args as ClapArgs, Parser, Subcommand};
use serde_json::Value;

use crate::demo;
use crate::output::{self, Out};

/// Versioned, multi-tenant persistence: every write is a version you can read back, travel
/// through and restore.
#[derive(Debug, Parser)]
#[command(name = "chronos", version, about)]
pub(crate) struct Args {
    /// JSON configuration file (the spec's ChronosConfig). Without it: the embedded default.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of the embedded default store.
    #[arg(
        long,
        global = true,
        default_value = "chronos-data",
        value_name = "DIR"
    )]
    data_dir: PathBuf,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// More log output on standard error: -v info, -vv debug, -vvv trace (default: warnings).
    /// `RUST_LOG` (e.g. `RUST_LOG=chronos_core=debug`) overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// Which database and collection a command works on.
#[derive(Debug, Clone, ClapArgs)]
struct Target {
    /// Collection name.
    #[arg(short, long)]
    collection: String,
    /// Database type: runtime, metadata, knowledge or logs.
    #[arg(long, default_value = "runtime")]
    db_type: String,
    /// Tier: generic, domain or tenant (default: tenant for runtime, generic otherwise).
    #[arg(long)]
    tier: Option<String>,
    /// Tenant id (tenant tier). The embedded default has the tenant `default`.
    #[arg(long, default_value = "default")]
    tenant: String,
    /// Domain (domain tier).
    #[arg(long)]
    domain: Option<String>,
}

#[derive(Debug, Clone, ClapArgs)]
struct Audit {
    /// Who makes the change.
    #[arg(long)]
    actor: Option<String>,
    /// Why.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A guided tour: create, update, enrich, time travel, delete, restore, history,
    /// restore-collection — each step explained.
    Demo,
    /// Create a record from a JSON object.
    Create {
        #[command(flatten)]
        target: Target,
        /// The record, as a JSON object (or `@FILE`, or `-` for standard input).
        #[arg(long)]
        data: String,
        #[command(flatten)]
        audit: Audit,
    },
    /// Replace a record's data (a new version).
    Update {
        #[command(flatten)]
        target: Target,
        /// Record id.
        id: String,
        /// The new data, as a JSON object (or `@FILE`, or `-` for standard input).
        #[arg(long)]
        data: String,
        /// Fail unless the record is at this version.
        #[arg(long)]
        expected_ov: Option<u64>,
        #[command(flatten)]
        audit: Audit,
    },
    /// Deep-merge a patch (object, or array of objects) into a record.
    Enrich {
        #[command(flatten)]
        target: Target,
        /// Record id.
        id: String,
        /// The patch: a JSON object or an array of objects (or `@FILE`, or `-` for stdin).
        #[arg(long)]
        data: String,
        /// Enrichment function id (recorded in functionIds).
        #[arg(long)]
        function_id: Option<String>,
        /// Fail unless the record is at this version.
        #[arg(long)]
        expected_ov: Option<u64>,
        #[command(flatten)]
        audit: Audit,
    },
    /// Delete a record (logically: history stays).
    Delete {
        #[command(flatten)]
        target: Target,
        /// Record id.
        id: String,
        /// Fail unless the record is at this version.
        #[arg(long)]
        expected_ov: Option<u64>,
        #[command(flatten)]
        audit: Audit,
    },
    /// Read a record: latest, one version, or as of an instant.
    Get {
        #[command(flatten)]
        target: Target,
        /// Record id.
        id: String,
        /// A specific object version.
        #[arg(long, conflicts_with = "as_of")]
        ov: Option<u64>,
        /// The version current at this ISO-8601 instant.
        #[arg(long)]
        as_of: Option<String>,
        /// Show tombstones too.
        #[arg(long)]
        include_deleted: bool,
        /// Add presigned URLs valid this many seconds (S3 and Azure storage only).
        #[arg(long, value_name = "SECONDS")]
        presign: Option<u64>,
        /// Return externalised (base64Props) properties as their base64 content.
        #[arg(long)]
        inline: bool,
    },
    /// A record's version history.
    History {
        #[command(flatten)]
        target: Target,
        /// Record id.
        id: String,
    },
    /// GDPR erase: delete every payload of every version of a record, keep its history as
    /// content-free entries with an ERASE version saying who and why. Exits non-zero until
    /// the receipt is complete (run it again to finish what is pending).
    Erase {
        #[command(flatten)]
        target: Target,
        /// Record id.
        id: String,
        /// Who erases it (recorded in the ERASE version).
        #[arg(long)]
        actor: String,
        /// Why (recorded in the ERASE version), e.g. a request reference.
        #[arg(long)]
        reason: String,
    },
    /// Check a collection: heads against the version log, the log's continuity, every
    /// payload and property blob read and checked against its checksum, orphan blobs
    /// listed, hash chains checked. Exits non-zero when a problem is found (with --json: the
    /// report, then the error, one JSON document per line). With --repair, heads that
    /// disagree with the log are rebuilt from it and a sweep removes the orphans that are
    /// provably garbage (committed data is never touched); the exit is then non-zero only
    /// for problems the repair did not fix.
    Verify {
        #[command(flatten)]
        target: Target,
        /// Rebuild bad heads from the log, then sweep provable garbage (at the collection's
        /// minimum grace period).
        #[arg(long)]
        repair: bool,
    },
    /// What changed between two versions of a record: an RFC 6902 JSON Patch that turns
    /// version FROM into version TO.
    Diff {
        #[command(flatten)]
        target: Target,
        /// Record id.
        id: String,
        /// The version to start from.
        from: u64,
        /// The version to arrive at.
        to: u64,
    },
    /// List records whose indexed metadata matches a filter.
    List {
        #[command(flatten)]
        target: Target,
        /// Mongo-style filter, e.g. '{"status": {"$in": ["a", "b"]}}'.
        #[arg(long, default_value = "{}")]
        filter: String,
        /// Page size.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Sort by `_id`, `createdAt`, `updatedAt` or an indexed property.
        #[arg(long, default_value = "_id")]
        sort: String,
        /// Descending order.
        #[arg(long)]
        desc: bool,
        /// Continue after a previous page.
        #[arg(long)]
        cursor: Option<String>,
        /// Include deleted records.
        #[arg(long)]
        include_deleted: bool,
    },
    /// Restore a record to an earlier version (appends a version).
    Restore {
        #[command(flatten)]
        target: Target,
        /// Record id.
        id: String,
        /// Target version.
        #[arg(long, conflicts_with = "as_of", required_unless_present = "as_of")]
        ov: Option<u64>,
        /// Target instant (ISO-8601).
        #[arg(long)]
        as_of: Option<String>,
        /// Fail unless the record is at this version.
        #[arg(long)]
        expected_ov: Option<u64>,
        #[command(flatten)]
        audit: Audit,
    },
    /// Restore a whole collection to a collection version or instant (append-only).
    RestoreCollection {
        #[command(flatten)]
        target: Target,
        /// Target collection version.
        #[arg(long, conflicts_with = "as_of", required_unless_present = "as_of")]
        cv: Option<u64>,
        /// Target instant (ISO-8601).
        #[arg(long)]
        as_of: Option<String>,
        /// Only show the plan.
        #[arg(long)]
        dry_run: bool,
        /// Seconds after which this restore's lease lapses if the process dies (it is
        /// renewed while the restore runs); a re-run then finishes the restore.
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        lease_ttl: u64,
        #[command(flatten)]
        audit: Audit,
    },
    /// Resolve duplicate version entries left by the TypeScript library (MongoDB): keeps the
    /// one the head points at, moves the others to `<collection>_ver_duplicates`.
    RepairVersions {
        #[command(flatten)]
        target: Target,
    },
    /// Create the S3 buckets and Azure containers the configuration names that do not exist
    /// yet (existing ones are left as they are).
    Init,
    /// Remove old versions per `retention.ver` (or --max-per-item / --days for one
    /// collection): never a record's latest; their payloads are deleted. Without -c, every
    /// collection in collectionMaps or counted, in every tenant (or --tenant).
    Prune {
        /// One runtime collection (default: all named in collectionMaps or counted).
        #[arg(short, long)]
        collection: Option<String>,
        /// Only this tenant (with -c: the collection's tenant, default `default`).
        #[arg(long)]
        tenant: Option<String>,
        /// Keep this many latest versions per record (with -c; overrides the config).
        #[arg(long)]
        max_per_item: Option<u32>,
        /// Remove versions older than this many days (with -c; overrides the config).
        #[arg(long)]
        days: Option<u32>,
    },
    /// A collection's exact counters (created, updated, deleted, lastAt), kept in its
    /// tenant's analytics database; with --rules, each counter rule and its distinct counts.
    Counters {
        /// Collection name.
        #[arg(short, long)]
        collection: String,
        /// Tenant id. The embedded default has the tenant `default`.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Add each counter rule's counts and distinct-value counts.
        #[arg(long)]
        rules: bool,
        /// Fold in writes no counter has seen yet first (what a crashed process left).
        #[arg(long)]
        catch_up: bool,
        /// Instead of the totals, the counts per day, week or month that
        /// `retention.counters` keeps.
        #[arg(long, value_parser = ["day", "week", "month"])]
        periods: Option<String>,
    },
    /// The messaging database: topics, messages and dead letters of a tenant; save a
    /// message; apply retention.
    Messaging {
        #[command(subcommand)]
        cmd: crate::messaging::MessagingCommand,
    },
    /// The fallback spool (`fallback.spoolDir`): counts, pending operations, dead letters;
    /// retry, cancel, replay now.
    Fallback {
        #[command(subcommand)]
        cmd: crate::fallback::FallbackCommand,
    },
    /// Run the scheduled jobs (time-based and cross-tenant analytics rules, results clean-up)
    /// until SIGINT / SIGTERM; several workers may share one configuration.
    Worker {
        #[command(flatten)]
        args: crate::worker::WorkerArgs,
    },
    /// Probe every configured index and blob backend (one round trip each); exits non-zero
    /// when one is unreachable.
    Health {
        /// Also open backends this process has not used yet (a CLI process has used none, so
        /// without it every backend is probed anyway: the default is on for the CLI).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
        open: bool,
    },
}

/// Parses a JSON argument: the text itself, `@FILE` for a file's contents, or `-` for
/// standard input (so payloads are not limited by the command line's length).
fn parse_json(what: &str, s: &str) -> Result<Value> {
    let text = match s {
        "-" => {
            let mut buf = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf).map_err(|e| {
                Error::validation(format!("--{what} -: cannot read standard input: {e}"))
            })?;
            buf
        }
        _ if s.starts_with('@') => std::fs::read_to_string(&s[1..])
            .map_err(|e| Error::validation(format!("--{what} {s}: cannot read the file: {e}")))?,
        _ => s.to_string(),
    };
    serde_json::from_str(&text)
        .map_err(|e| Error::validation(format!("--{what} is not valid JSON: {e}")))
}

fn parse_id(s: &str) -> Result<ItemId> {
    ItemId::parse(s)
}

impl Target {
    fn route(&self) -> Result<Route> {
        let db: DatabaseType = self.db_type.parse()?;
        let tier = match &self.tier {
            Some(t) => t.parse()?,
            None if db == DatabaseType::Runtime => Tier::Tenant,
            None => Tier::Generic,
        };
        Ok(Route {
            database_type: db,
            tier,
            tenant_id: (tier == Tier::Tenant).then(|| self.tenant.clone()),
            domain: self.domain.clone().filter(|_| tier == Tier::Domain),
            collection: self.collection.clone(),
        })
    }
}

async fn open(args: &Args) -> Result<Chronos> {
    match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::invalid_config(format!("cannot read {}: {e}", path.display()))
            })?;
            let c = Chronos::from_json(&text)?;
            for opt in c.unsupported_options() {
                eprintln!("warning: {opt} is configured but not implemented yet; it has no effect");
            }
            Ok(c)
        }
        None => Chronos::embedded(&args.data_dir),
    }
}

fn write_opts(expected_ov: Option<u64>, a: &Audit) -> WriteOptions {
    WriteOptions {
        expected_ov,
        actor: a.actor.clone(),
        reason: a.reason.clone(),
        idempotency_key: None,
    }
}

fn sort_field(s: &str) -> SortField {
    match s {
        "_id" | "id" => SortField::Id,
        "createdAt" => SortField::CreatedAt,
        "updatedAt" => SortField::UpdatedAt,
        other => SortField::Meta(other.to_string()),
    }
}

pub(crate) async fn run(args: Args) -> Result<()> {
    let out = Out::new(args.json);
    if let Command::Demo = args.command {
        return demo::run(&args.data_dir, &out).await;
    }
    let chronos = open(&args).await?;
    let result = dispatch(&chronos, &args.command, &out).await;
    chronos.shutdown().await;
    result
}

async fn dispatch(chronos: &Chronos, cmd: &Command, out: &Out) -> Result<()> {
    match cmd {
        Command::Demo => unreachable!("handled before opening a store"),
        Command::Create {
            target,
            data,
            audit,
        } => {
            let c = chronos.with(&target.route()?).await?;
            let opts = CreateOptions {
                actor: audit.actor.clone(),
                reason: audit.reason.clone(),
                ..Default::default()
            };
            out.write(
                "created",
                &c.create(&parse_json("data", data)?, opts).await?,
            );
        }
        Command::Update {
            target,
            id,
            data,
            expected_ov,
            audit,
        } => {
            let c = chronos.with(&target.route()?).await?;
            let w = c
                .update(
                    parse_id(id)?,
                    &parse_json("data", data)?,
                    write_opts(*expected_ov, audit),
                )
                .await?;
            out.write("updated", &w);
        }
        Command::Enrich {
            target,
            id,
            data,
            function_id,
            expected_ov,
            audit,
        } => {
            let c = chronos.with(&target.route()?).await?;
            let opts = EnrichOptions {
                expected_ov: *expected_ov,
                function_id: function_id.clone(),
                actor: audit.actor.clone(),
                reason: audit.reason.clone(),
                idempotency_key: None,
            };
            out.write(
                "enriched",
                &c.enrich(parse_id(id)?, &parse_json("data", data)?, opts)
                    .await?,
            );
        }
        Command::Delete {
            target,
            id,
            expected_ov,
            audit,
        } => {
            let c = chronos.with(&target.route()?).await?;
            out.write(
                "deleted",
                &c.delete(parse_id(id)?, write_opts(*expected_ov, audit))
                    .await?,
            );
        }
        Command::Get {
            target,
            id,
            ov,
            as_of,
            include_deleted,
            presign,
            inline,
        } => {
            let c = chronos.with(&target.route()?).await?;
            let id = parse_id(id)?;
            let mut ro = ReadOptions::new().include_deleted(*include_deleted);
            if let Some(secs) = presign {
                ro = ro.presign(std::time::Duration::from_secs(*secs));
            }
            if *inline {
                ro = ro.externals(chronos_core::Externals::Inline);
            }
            let (rec, what) = match (ov, as_of) {
                (Some(ov), _) => (
                    c.get_version(id, *ov, ro).await?,
                    format!("version {ov} of record {id}"),
                ),
                (_, Some(t)) => {
                    let t = parse_instant(t)?;
                    (
                        c.get_as_of(id, t, ro).await?,
                        format!("record {id} as of {t}"),
                    )
                }
                _ => (c.get_latest(id, ro).await?, format!("record {id}")),
            };
            let rec = rec.ok_or_else(|| {
                Error::not_found(format!(
                    "{what} not found (deleted records need --include-deleted)"
                ))
                .with("collection", c.name())
            })?;
            out.record(&rec);
        }
        Command::Verify { target, repair } => {
            let c = chronos.with(&target.route()?).await?;
            let spinner = output::spinner("verifying");
            let report = c
                .verify(|n| spinner.set_message(format!("verifying: {n} records checked")))
                .await;
            spinner.finish_and_clear();
            let report = report?;
            let repaired = if *repair {
                let heads = c.repair_heads(&report).await?;
                Some((heads, c.sweep(c.config().min_sweep_grace()).await?))
            } else {
                None
            };
            out.verified(c.name(), &report, repaired.as_ref());
            let fixed = |p: &chronos::Problem| {
                p.kind == chronos::ProblemKind::Head
                    && repaired.as_ref().is_some_and(|(h, _)| h.contains(&p.id))
            };
            let left = report.problems.iter().filter(|p| !fixed(p)).count();
            if left > 0 {
                return Err(Error::internal(format!(
                    "verify found {left} problem(s) in collection '{}'{}",
                    c.name(),
                    if *repair {
                        " that the repair did not fix"
                    } else {
                        ""
                    }
                )));
            }
        }
        Command::Erase {
            target,
            id,
            actor,
            reason,
        } => {
            let receipt = chronos
                .erase(&target.route()?, parse_id(id)?, actor, reason)
                .await?;
            out.erased(&receipt);
            if !receipt.complete {
                return Err(Error::unavailable(format!(
                    "the erase of {} is not complete ({} step(s) pending); run it again",
                    receipt.id,
                    receipt.pending.len()
                )));
            }
        }
        Command::Diff {
            target,
            id,
            from,
            to,
        } => {
            let c = chronos.with(&target.route()?).await?;
            let patch = c.diff(parse_id(id)?, *from, *to).await?;
            out.patch(&patch);
        }
        Command::History { target, id } => {
            let c = chronos.with(&target.route()?).await?;
            let id = parse_id(id)?;
            let mut all = Vec::new();
            let mut opts = HistoryOptions::default();
            loop {
                let page = c.history(id, opts.clone()).await?;
                all.extend(page.versions);
                match page.next_after_ov {
                    Some(a) => opts.after_ov = Some(a),
                    None => break,
                }
            }
            out.history(id, &all);
        }
        Command::List {
            target,
            filter,
            limit,
            sort,
            desc,
            cursor,
            include_deleted,
        } => {
            let c = chronos.with(&target.route()?).await?;
            let opts = ListOptions::new()
                .filter(parse_json("filter", filter)?)
                .limit(*limit)
                .sort(sort_field(sort), *desc)
                .cursor(cursor.clone())
                .include_deleted(*include_deleted);
            let spinner = output::spinner("listing");
            let page = c.list_by_meta(opts).await;
            spinner.finish_and_clear();
            out.page(&page?);
        }
        Command::Restore {
            target,
            id,
            ov,
            as_of,
            expected_ov,
            audit,
        } => {
            let c = chronos.with(&target.route()?).await?;
            let t = match (ov, as_of) {
                (Some(ov), _) => RestoreTarget::Ov(*ov),
                (_, Some(t)) => RestoreTarget::At(parse_instant(t)?),
                _ => return Err(Error::validation("give --ov or --as-of")),
            };
            out.write(
                "restored",
                &c.restore_object(parse_id(id)?, t, write_opts(*expected_ov, audit))
                    .await?,
            );
        }
        Command::RestoreCollection {
            target,
            cv,
            as_of,
            dry_run,
            lease_ttl,
            audit,
        } => {
            let c = chronos.with(&target.route()?).await?;
            let point = match (cv, as_of) {
                (Some(cv), _) => Point::Cv(*cv),
                (_, Some(t)) => Point::At(parse_instant(t)?),
                _ => return Err(Error::validation("give --cv or --as-of")),
            };
            if *lease_ttl == 0 {
                return Err(Error::validation("--lease-ttl must be at least 1 second"));
            }
            let opts = CollectionRestoreOptions {
                dry_run: *dry_run,
                actor: audit.actor.clone(),
                reason: audit.reason.clone(),
                lease_ttl: Some(std::time::Duration::from_secs(*lease_ttl)),
            };
            let spinner = output::spinner("restoring collection");
            let report = c.restore_collection(point, opts).await;
            spinner.finish_and_clear();
            let report = report?;
            out.restore_report(&report);
            if !report.failed.is_empty() {
                return Err(Error::conflict(format!(
                    "{} record(s) changed concurrently and were not restored; run again",
                    report.failed.len()
                )));
            }
        }
        Command::RepairVersions { target } => {
            let moved = chronos.repair_duplicate_versions(&target.route()?).await?;
            out.repaired(&moved);
        }
        Command::Init => {
            let buckets = chronos.ensure_buckets().await?;
            out.buckets(&buckets);
        }
        Command::Prune {
            collection,
            tenant,
            max_per_item,
            days,
        } => {
            let now = chronos::Timestamp::now();
            let Some(collection) = collection else {
                if max_per_item.is_some() || days.is_some() {
                    return Err(Error::validation(
                        "--max-per-item and --days apply to one collection: add -c COLLECTION \
                         (without it, retention.ver from the configuration applies)",
                    ));
                }
                let summary = chronos.prune_versions(tenant.as_deref(), now).await?;
                out.pruned(&summary.pruned, summary.collections);
                return Ok(());
            };
            let policy = if max_per_item.is_some() || days.is_some() {
                chronos::VersionRetention {
                    days: *days,
                    max_per_item: *max_per_item,
                }
            } else {
                chronos.version_retention()?
            };
            let tenant = tenant.as_deref().unwrap_or("default");
            let report = chronos
                .prune_collection(tenant, collection, &policy, now)
                .await?;
            out.pruned(&[(tenant.to_string(), collection.clone(), report)], 1);
        }
        Command::Counters {
            collection,
            tenant,
            rules,
            catch_up,
            periods,
        } => {
            if *catch_up {
                chronos.counters().catch_up(tenant, collection).await?;
            }
            if let Some(p) = periods {
                let g = match p.as_str() {
                    "day" => chronos::Granularity::Day,
                    "week" => chronos::Granularity::Week,
                    _ => chronos::Granularity::Month,
                };
                let buckets = chronos
                    .counters()
                    .get_periods(tenant, collection, g, *rules)
                    .await?;
                out.periods(collection, &buckets);
                return Ok(());
            }
            let q = chronos::TotalsQuery::new()
                .tenant(tenant)
                .collection(collection)
                .include_rules(*rules);
            for t in chronos.counters().get_totals(&q).await? {
                out.totals(&t);
            }
        }
        Command::Messaging { cmd } => crate::messaging::run(chronos, cmd, out).await?,
        Command::Fallback { cmd } => crate::fallback::run(chronos, cmd, out).await?,
        Command::Worker { args } => crate::worker::run(chronos, args, out).await?,
        Command::Health { open } => {
            let health = chronos.health(*open).await;
            out.health(&health);
            if !health.ok() {
                let down = health
                    .backends
                    .iter()
                    .filter(|b| matches!(b.state, chronos::HealthState::Unreachable { .. }))
                    .count();
                return Err(Error::unavailable(format!("{down} backend(s) unreachable")));
            }
        }
    }
    Ok(())
}
