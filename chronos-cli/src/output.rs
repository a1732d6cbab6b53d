//! Human-readable and `--json` output.

use std::time::Duration;

use chronos_core::time::format_instant;
use chronos_core::{ItemId, Page, Record, RestoreAction, RestoreReport, VersionEntry, WriteResult};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

/// Where results go: plain text for people, one JSON document per command with `--json`.
pub(crate) struct Out {
    json: bool,
    silent: bool,
}

/// A spinner on stderr for operations that may take a while (hidden when not a terminal).
pub(crate) fn spinner(what: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        pb.set_style(style);
    }
    pb.set_message(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

fn version_json(v: &VersionEntry) -> Value {
    json!({
        "ov": v.ov, "cv": v.cv, "op": v.op.as_str(), "at": format_instant(v.at),
        "actor": v.actor, "reason": v.reason, "size": v.size, "checksum": v.checksum,
    })
}

impl Out {
    pub(crate) fn new(json: bool) -> Self {
        Self {
            json,
            silent: false,
        }
    }

    /// For commands that print one JSON summary at the end: their narration is human text,
    /// or nothing at all under `--json`.
    pub(crate) fn narration(&self) -> Self {
        Self {
            json: false,
            silent: self.json,
        }
    }

    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    pub(crate) fn say(&self, text: &str) {
        if !self.json && !self.silent {
            out!("{text}");
        }
    }

    /// A collection's counters.
    pub(crate) fn periods(&self, collection: &str, buckets: &[chronos::PeriodCounts]) {
        if self.json {
            out!("{}", serde_json::to_value(buckets).unwrap_or(Value::Null));
            return;
        }
        if buckets.is_empty() {
            out!(
                "{collection}: no counted writes in the buckets kept (is retention.counters set?)"
            );
        }
        for b in buckets {
            let rules: Vec<String> = b
                .rules
                .iter()
                .map(|(n, r)| format!("{n} {}/{}/{}", r.created, r.updated, r.deleted))
                .collect();
            out!(
                "{collection} {} {}: created {}, updated {}, deleted {}{}",
                b.granularity.name(),
                b.start,
                b.counts.created,
                b.counts.updated,
                b.counts.deleted,
                if rules.is_empty() {
                    String::new()
                } else {
                    format!("; rules {}", rules.join(", "))
                }
            );
        }
    }

    pub(crate) fn totals(&self, t: &chronos::Totals) {
        if self.json {
            out!("{}", serde_json::to_value(t).unwrap_or(Value::Null));
            return;
        }
        let last = t
            .last_at
            .map_or_else(|| "never".to_string(), format_instant);
        out!(
            "{} (tenant {}, {}): created {}, updated {}, deleted {}, last write {last}",
            t.collection,
            t.tenant,
            t.db_name,
            t.counts.created,
            t.counts.updated,
            t.counts.deleted
        );
        for (name, r) in &t.rules {
            let unique: Vec<String> = r.unique.iter().map(|(p, n)| format!("{p} {n}")).collect();
            out!(
                "  rule {name}: created {}, updated {}, deleted {}{}",
                r.counts.created,
                r.counts.updated,
                r.counts.deleted,
                if unique.is_empty() {
                    String::new()
                } else {
                    format!("; distinct {}", unique.join(", "))
                }
            );
        }
    }

    pub(crate) fn write(&self, verb: &str, w: &WriteResult) {
        if self.silent {
            return;
        }
        if self.json {
            out!(
                "{}",
                json!({"id": w.id.to_string(), "ov": w.ov, "cv": w.cv, "at": format_instant(w.at), "op": w.op.as_str()})
            );
        } else {
            out!(
                "{verb} {} -> ov {} (cv {}, {}, at {})",
                w.id,
                w.ov,
                w.cv,
                w.op,
                format_instant(w.at)
            );
        }
    }

    pub(crate) fn record(&self, r: &Record) {
        if self.silent {
            return;
        }
        if self.json {
            out!("{}", r.to_json());
        } else {
            out!(
                "{}",
                serde_json::to_string_pretty(&r.to_json()).unwrap_or_default()
            );
        }
    }

    pub(crate) fn history(&self, id: ItemId, versions: &[VersionEntry]) {
        if self.silent {
            return;
        }
        if self.json {
            out!(
                "{}",
                Value::Array(versions.iter().map(version_json).collect())
            );
            return;
        }
        out!("history of {id}: {} version(s)", versions.len());
        out!(
            "{:>4}  {:>6}  {:<8} {:<25} {:<12} reason",
            "ov",
            "cv",
            "op",
            "at",
            "actor"
        );
        for v in versions {
            out!(
                "{:>4}  {:>6}  {:<8} {:<25} {:<12} {}",
                v.ov,
                v.cv,
                v.op.as_str(),
                format_instant(v.at),
                v.actor.as_deref().unwrap_or("-"),
                v.reason.as_deref().unwrap_or("-")
            );
        }
    }

    pub(crate) fn page(&self, p: &Page) {
        if self.silent {
            return;
        }
        if self.json {
            let items: Vec<Value> = p.items.iter().map(Record::to_json).collect();
            out!("{}", json!({"items": items, "nextCursor": p.next_cursor}));
            return;
        }
        for r in &p.items {
            let deleted = if r.system.deleted { " (deleted)" } else { "" };
            out!(
                "{}  ov {}{deleted}  {}",
                r.id,
                r.system.ov,
                Value::Object(r.data.clone())
            );
        }
        out!("{} record(s)", p.items.len());
        if let Some(c) = &p.next_cursor {
            out!("more: --cursor {c}");
        }
    }

    pub(crate) fn restore_report(&self, r: &RestoreReport) {
        if self.silent {
            return;
        }
        let action = |a: &RestoreAction| match a {
            RestoreAction::Restore { to_ov } => format!("restore to ov {to_ov}"),
            RestoreAction::Delete => "delete".to_string(),
        };
        if self.json {
            let planned: Vec<Value> = r
                .planned
                .iter()
                .map(|p| json!({"id": p.id.to_string(), "fromOv": p.from_ov, "action": action(&p.action)}))
                .collect();
            let applied: Vec<Value> =
                r.applied.iter().map(|w| json!({"id": w.id.to_string(), "ov": w.ov, "cv": w.cv, "op": w.op.as_str()})).collect();
            let failed: Vec<Value> = r
                .failed
                .iter()
                .map(|(id, e)| json!({"id": id.to_string(), "error": e.to_string()}))
                .collect();
            out!(
                "{}",
                json!({"dryRun": r.dry_run, "planned": planned, "applied": applied, "failed": failed})
            );
            return;
        }
        out!(
            "{} change(s) planned{}",
            r.planned.len(),
            if r.dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            }
        );
        for p in &r.planned {
            out!("  {}  ov {} -> {}", p.id, p.from_ov, action(&p.action));
        }
        if !r.dry_run {
            out!("{} applied, {} failed", r.applied.len(), r.failed.len());
            for (id, e) in &r.failed {
                out!("  failed {id}: {e}");
            }
        }
    }

    pub(crate) fn repaired(&self, moved: &[chronos::MovedVersion]) {
        if self.silent {
            return;
        }
        if self.json {
            let items: Vec<Value> = moved
                .iter()
                .map(|m| json!({"id": m.item_id, "ov": m.ov, "movedKey": m.moved_key, "keptKey": m.kept_key, "keptBecause": m.kept_because}))
                .collect();
            out!("{}", json!({"moved": items}));
            return;
        }
        out!("{} duplicate version entr(ies) moved aside", moved.len());
        for m in moved {
            out!(
                "  {} ov {}: kept {} ({}), moved {}",
                m.item_id,
                m.ov,
                m.kept_key,
                m.kept_because,
                m.moved_key
            );
        }
    }
}

impl Out {
    /// What a prune removed, per (tenant, collection).
    pub(crate) fn pruned(
        &self,
        pruned: &[(String, String, chronos::PruneReport)],
        collections: usize,
    ) {
        if self.silent {
            return;
        }
        let versions: u64 = pruned.iter().map(|(_, _, r)| r.versions_removed).sum();
        if self.json {
            let items: Vec<Value> = pruned
                .iter()
                .map(|(t, c, r)| {
                    json!({"tenant": t, "collection": c, "records": r.records,
                    "prunedRecords": r.pruned_records, "versionsRemoved": r.versions_removed,
                    "blobsRemoved": r.blobs_removed.len(), "notOwned": r.not_owned})
                })
                .collect();
            out!(
                "{}",
                json!({"collections": collections, "versionsRemoved": versions, "pruned": items})
            );
            return;
        }
        out!("{versions} old version(s) removed from {collections} collection(s)");
        for (t, c, r) in pruned {
            out!(
                "  {t}/{c}: {} version(s) of {} record(s), {} blob(s) deleted{}",
                r.versions_removed,
                r.pruned_records,
                r.blobs_removed.len(),
                if r.not_owned > 0 {
                    format!(", {} not this database's (kept)", r.not_owned)
                } else {
                    String::new()
                }
            );
        }
    }

    /// A verify report, and the repair (heads rebuilt, the sweep) when one ran.
    pub(crate) fn verified(
        &self,
        collection: &str,
        r: &chronos::VerifyReport,
        repaired: Option<&(Vec<chronos::ItemId>, chronos::SweepReport)>,
    ) {
        if self.silent {
            return;
        }
        if self.json {
            let problems: Vec<Value> = r
                .problems
                .iter()
                .map(|p| {
                    json!({"kind": p.kind.name(), "id": p.id.to_string(), "ov": p.ov,
                    "key": p.key, "detail": p.detail})
                })
                .collect();
            out!(
                "{}",
                json!({"collection": collection, "ok": r.is_ok(), "records": r.records,
                "versions": r.versions, "blobsChecked": r.blobs_checked, "problems": problems,
                "orphans": r.orphans, "notOwned": r.not_owned, "unchained": r.unchained,
                "repairHeads": repaired.map(|(h, _)| h.iter().map(|i| i.to_string()).collect::<Vec<_>>()),
                "repairRemoved": repaired.map(|(_, s)| s.removed.len())})
            );
            return;
        }
        out!(
            "{collection}: {} record(s), {} version(s), {} blob(s) checked: {}",
            r.records,
            r.versions,
            r.blobs_checked,
            if r.is_ok() {
                "ok".to_string()
            } else {
                format!("{} problem(s)", r.problems.len())
            }
        );
        for p in &r.problems {
            let ov = p.ov.map(|o| format!(" ov {o}")).unwrap_or_default();
            let key = p
                .key
                .as_deref()
                .map(|k| format!(" [{k}]"))
                .unwrap_or_default();
            out!("  {}: {}{ov}{key}: {}", p.kind.name(), p.id, p.detail);
        }
        if !r.orphans.is_empty() {
            out!("  {} unreferenced blob(s)", r.orphans.len());
        }
        if r.not_owned > 0 {
            out!(
                "  {} unreferenced blob(s) of another database or layout (never swept)",
                r.not_owned
            );
        }
        if r.unchained > 0 {
            out!(
                "  {} version(s) without a seal (upstream data): not tamper-evident",
                r.unchained
            );
        }
        if let Some((heads, s)) = repaired {
            out!(
                "  repair: {} head(s) rebuilt from the log; the sweep removed {} blob(s)",
                heads.len(),
                s.removed.len()
            );
        }
    }

    /// An erase receipt.
    pub(crate) fn erased(&self, r: &chronos::EraseReceipt) {
        if self.silent {
            return;
        }
        if self.json {
            out!(
                "{}",
                json!({"collection": r.collection, "id": r.id.to_string(), "ov": r.erase.ov,
                "cv": r.erase.cv, "at": r.erase.at.to_string(), "actor": r.actor,
                "reason": r.reason, "versionsScrubbed": r.versions_scrubbed,
                "blobsDeleted": r.blobs_deleted.len(), "leftNotOwned": r.left_not_owned,
                "pending": r.pending, "complete": r.complete})
            );
            return;
        }
        out!(
            "{} {}: erased at ov {} by {} ({}); {} blob(s) deleted, {} version(s) scrubbed{}",
            r.collection,
            r.id,
            r.erase.ov,
            r.actor,
            r.reason,
            r.blobs_deleted.len(),
            r.versions_scrubbed,
            if r.complete {
                "; complete"
            } else {
                "; NOT complete"
            }
        );
        for p in &r.pending {
            out!("  pending: {p}");
        }
        for k in &r.left_not_owned {
            out!("  left (not this database's): {k}");
        }
    }

    pub(crate) fn patch(&self, patch: &chronos::json_patch::Patch) {
        if self.silent {
            return;
        }
        let ops = serde_json::to_value(patch).unwrap_or_default();
        if self.json {
            out!("{ops}");
            return;
        }
        let ops = ops.as_array().cloned().unwrap_or_default();
        if ops.is_empty() {
            out!("no changes");
        }
        for op in ops {
            let kind = op["op"].as_str().unwrap_or_default();
            let path = op["path"].as_str().unwrap_or_default();
            match op.get("value") {
                Some(v) => out!("{kind} {path} = {v}"),
                None => match op.get("from") {
                    Some(f) => out!("{kind} {path} from {}", f.as_str().unwrap_or_default()),
                    None => out!("{kind} {path}"),
                },
            }
        }
    }

    pub(crate) fn buckets(&self, b: &[chronos::BucketStatus]) {
        if self.silent {
            return;
        }
        if self.json {
            out!("{}", json!({ "buckets": b }));
            return;
        }
        if b.is_empty() {
            out!("no spaces buckets configured: nothing to create");
        }
        for s in b {
            let what = if s.created { "created" } else { "exists" };
            out!("bucket '{}' on '{}': {what}", s.bucket, s.connection);
        }
    }

    pub(crate) fn health(&self, h: &chronos::Health) {
        if self.silent {
            return;
        }
        if self.json {
            out!("{}", serde_json::to_value(h).unwrap_or_default());
            return;
        }
        for b in &h.backends {
            let role = match b.role {
                chronos::Role::Index => "index",
                chronos::Role::Blob => "blob ",
            };
            let state = match &b.state {
                chronos::HealthState::NotOpened => "not opened".to_string(),
                chronos::HealthState::Reachable { latency } => {
                    format!("ok ({:.1} ms)", latency.as_secs_f64() * 1000.0)
                }
                chronos::HealthState::Unreachable { error } => format!("UNREACHABLE: {error}"),
            };
            out!("{role} {}: {state}", b.name);
        }
    }
}

/// Writes one line of command output; see the `out!` macro.
pub(crate) fn emit(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
    {
        // The reader went away (`| head`): nothing more can be shown, which is not an error.
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write output: {e}");
        std::process::exit(1);
    }
}
