//! `--compare OLD.json`: each row of this run beside the same row of an earlier run (a file
//! written by `--json`), so a change's effect is read off one table instead of two outputs.
//!
//! Rows are matched by backend and operation name. A row against a raw baseline is compared
//! by its ratio (the headline: it cancels out most of the machine's noise between runs) and
//! its own ops/s; a value row by each of its numeric fields. Rows only in one run are listed
//! as new or gone. Runs of different modes (quick against full) are refused: their sizes
//! differ, so their numbers do not compare.

use serde_json::Value;

/// The comparison of `new` against `old` as printable lines, or why they cannot be compared.
pub(crate) fn compare(old: &Value, new: &Value) -> Result<Vec<String>, String> {
    let mode = |v: &Value| v["mode"].as_str().unwrap_or("?").to_string();
    if mode(old) != mode(new) {
        return Err(format!(
            "cannot compare a {} run with a {} run: their sizes differ",
            mode(old),
            mode(new)
        ));
    }
    let backends = |v: &Value| v["backends"].as_object().cloned().unwrap_or_default();
    let (old_b, new_b) = (backends(old), backends(new));
    let mut out = Vec::new();
    for (backend, now) in &new_b {
        out.push(format!("\n== {backend}: this run against the earlier one"));
        let Some(before) = old_b.get(backend) else {
            out.push("  (not in the earlier run)".into());
            continue;
        };
        let rows = |v: &Value| v["rows"].as_array().cloned().unwrap_or_default();
        let (before, now) = (rows(before), rows(now));
        let name = |r: &Value| r["operation"].as_str().unwrap_or("?").to_string();
        for row in &now {
            match before.iter().find(|b| name(b) == name(row)) {
                Some(b) => out.extend(row_lines(&name(row), b, row)),
                None => out.push(format!("  {:<34} new", name(row))),
            }
        }
        for b in &before {
            if !now.iter().any(|r| name(r) == name(b)) {
                out.push(format!("  {:<34} gone", name(b)));
            }
        }
    }
    Ok(out)
}

/// How `old` became `new`, as a signed percentage.
fn change(old: f64, new: f64) -> String {
    if old == 0.0 {
        return "n/a".into();
    }
    format!("{:+.0}%", (new / old - 1.0) * 100.0)
}

fn row_lines(name: &str, old: &Value, new: &Value) -> Vec<String> {
    if let (Some(o), Some(n)) = (old["ratio"].as_f64(), new["ratio"].as_f64()) {
        let ops = |v: &Value| v["chronos"]["perSec"].as_f64().unwrap_or(0.0);
        return vec![format!(
            "  {name:<34} ratio {o:.2} → {n:.2} ({}), {:.0} → {:.0} ops/s ({}){}",
            change(o, n),
            ops(old),
            ops(new),
            change(ops(old), ops(new)),
            verdicts(old, new)
        )];
    }
    let mut fields = Vec::new();
    numbers("", &old["value"], &mut fields);
    let mut lines = Vec::new();
    for (path, o) in fields {
        if let Some(n) = pointer(&new["value"], &path).and_then(Value::as_f64) {
            lines.push(format!(
                "  {:<34} {o:.2} → {n:.2} ({})",
                format!("{name} [{path}]"),
                change(o, n)
            ));
        }
    }
    if lines.is_empty() {
        // Scaling rows and values without numbers: only their verdicts compare.
        lines.push(format!("  {name:<34}{}", verdicts(old, new)));
    } else if let Some(last) = lines.last_mut() {
        last.push_str(&verdicts(old, new));
    }
    lines
}

/// ` — target now missed` / ` — target now met` when the verdict changed.
fn verdicts(old: &Value, new: &Value) -> String {
    match (old["pass"].as_bool(), new["pass"].as_bool()) {
        (Some(true), Some(false)) => " — target now MISSED".into(),
        (Some(false), Some(true)) => " — target now met".into(),
        _ => String::new(),
    }
}

/// Every numeric leaf of `v` with its dotted path.
fn numbers(prefix: &str, v: &Value, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Number(n) => out.extend(n.as_f64().map(|f| (prefix.to_string(), f))),
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                numbers(&p, v, out);
            }
        }
        _ => {}
    }
}

fn pointer<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(v);
    }
    path.split('.').try_fold(v, |v, k| v.get(k))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(mode: &str, ratio: f64, ops: f64, writers16: f64, pass: bool) -> Value {
        json!({"mode": mode, "backends": {"sqlite+fs": {"rows": [
            {"operation": "create", "chronos": {"perSec": ops}, "raw": {"perSec": ops / ratio},
             "ratio": ratio, "target": 0.5, "pass": pass},
            {"operation": "writers on one record", "value": {"1": 200.0, "16": writers16}, "pass": null},
            {"operation": "old row", "value": {}, "pass": null}
        ]}}})
    }

    #[test]
    fn rows_are_matched_and_changes_named() {
        let old = run("full", 0.40, 1000.0, 40.0, false);
        let mut new = run("full", 0.60, 1500.0, 190.0, true);
        new["backends"]["sqlite+fs"]["rows"][2]["operation"] = json!("brand new row");
        let lines = compare(&old, &new).unwrap().join("\n");
        assert!(
            lines.contains("ratio 0.40 → 0.60 (+50%), 1000 → 1500 ops/s (+50%) — target now met"),
            "{lines}"
        );
        assert!(
            lines.contains("writers on one record [16]")
                && lines.contains("40.00 → 190.00 (+375%)"),
            "{lines}"
        );
        assert!(
            lines.contains("brand new row") && lines.contains(" new"),
            "{lines}"
        );
        assert!(
            lines.contains("old row") && lines.contains(" gone"),
            "{lines}"
        );
    }

    #[test]
    fn a_missed_target_is_called_out() {
        let old = run("full", 0.6, 1000.0, 1.0, true);
        let new = run("full", 0.4, 700.0, 1.0, false);
        let lines = compare(&old, &new).unwrap().join("\n");
        assert!(
            lines.contains("(-33%)") && lines.contains("target now MISSED"),
            "{lines}"
        );
    }

    #[test]
    fn quick_and_full_runs_do_not_compare() {
        let e = compare(
            &run("quick", 1.0, 1.0, 1.0, true),
            &run("full", 1.0, 1.0, 1.0, true),
        );
        assert!(e.unwrap_err().contains("quick run with a full run"));
    }
}
