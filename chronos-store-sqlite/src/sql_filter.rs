//! Translation of the filter language to SQLite SQL over a JSON column.
//!
//! The translation reproduces [`Filter::matches`] exactly (a differential property test
//! checks it):
//! - the *leaves* of a path are the values it reaches plus the elements of reached arrays.
//!   One-segment paths use `json_type`/`->`/`json_each`; longer paths walk `json_tree` and keep
//!   the nodes whose `fullkey` has the path's shape — each segment optionally followed by one
//!   array index — which is exactly MongoDB-style traversal (matched with REGEXP, registered by
//!   sqlx from the same `regex` crate the reference evaluator uses);
//! - scalars compare by JSON type class (`integer`/`real`, `text`, `true`/`false`) so numbers
//!   compare by value and strings by bytes (SQLite's BINARY collation is `memcmp`);
//! - containers compare by canonical text: indexed metadata is stored canonical (sorted keys,
//!   integral floats as integers) and operands are canonicalised the same way.

use chronos_core::filter::{canonical_text, Cond, Filter};
use serde_json::Value;

use crate::conn::literal;

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Int(i64),
    Real(f64),
    Text(String),
}

/// The binds of a statement being built, in placeholder order.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub(crate) binds: Vec<Bind>,
}

/// The SQLite JSON path of a dotted path, every segment quoted: `$."a"."b"`.
pub(crate) fn json_path(path: &str) -> String {
    let mut p = String::from("$");
    for seg in path.split('.') {
        p.push_str(&format!(".\"{seg}\""));
    }
    p
}

/// Translates `f` into a boolean SQL expression over the JSON column `col`.
pub(crate) fn translate(f: &Filter, col: &str, out: &mut Sql) -> String {
    match f {
        Filter::All => "1".into(),
        Filter::And(fs) => join(fs.iter().map(|f| translate(f, col, out)).collect(), "AND"),
        Filter::Or(fs) => join(fs.iter().map(|f| translate(f, col, out)).collect(), "OR"),
        Filter::Field { path, cond } => cond_sql(col, path, cond, out),
    }
}

/// `(a OP b OP …)` as a balanced tree of parentheses: SQLite's parser nests a flat chain
/// one level per operand and refuses expressions deeper than 1000, so a long `$in` or `$or`
/// would fail; balanced, the depth is the logarithm of the length.
fn join(mut parts: Vec<String>, op: &str) -> String {
    match parts.len() {
        0 => String::new(),
        1 => format!("({})", parts.pop().expect("one part")),
        n if n <= 8 => format!("({})", parts.join(&format!(" {op} "))),
        n => {
            let right = parts.split_off(n / 2);
            format!("({} {op} {})", join(parts, op), join(right, op))
        }
    }
}

/// A subquery yielding `(ty, atom, js)` for every leaf of `path`.
fn leaves(col: &str, path: &str) -> String {
    let p = literal(&json_path(path));
    if !path.contains('.') {
        return format!(
            "SELECT json_type({col}, {p}) AS ty, {col} ->> {p} AS atom, \
             CASE WHEN json_type({col}, {p}) IN ('object','array') THEN {col} -> {p} END AS js \
             WHERE json_type({col}, {p}) IS NOT NULL \
             UNION ALL SELECT e.type, e.atom, CASE WHEN e.type IN ('object','array') THEN e.value END \
             FROM json_each({col}, {p}) e WHERE json_type({col}, {p}) = 'array'"
        );
    }
    let segs: Vec<&str> = path.split('.').collect();
    let mut re = String::from("^\\$");
    for seg in &segs {
        let s = regex::escape(seg);
        // SQLite writes a label bare or quoted depending on its characters; accept both.
        re.push_str(&format!("\\.(?:{s}|\"{s}\")(?:\\[[0-9]+\\])?"));
    }
    re.push('$');
    let root = literal(&json_path(segs[0]));
    format!(
        "SELECT t.type AS ty, t.atom AS atom, CASE WHEN t.type IN ('object','array') THEN t.value END AS js \
         FROM json_tree({col}, {root}) t WHERE t.fullkey REGEXP {}",
        literal(&re)
    )
}

fn any(src: &str, pred: &str) -> String {
    format!("EXISTS (SELECT 1 FROM ({src}) WHERE {pred})")
}

fn num_bind(n: &serde_json::Number) -> Bind {
    match n.as_i64() {
        Some(i) => Bind::Int(i),
        None => Bind::Real(n.as_f64().unwrap_or(0.0)),
    }
}

fn eq_sql(src: &str, x: &Value, out: &mut Sql) -> String {
    match x {
        Value::Null => format!("(NOT EXISTS ({src}) OR {})", any(src, "ty = 'null'")),
        Value::Bool(b) => any(src, if *b { "ty = 'true'" } else { "ty = 'false'" }),
        Value::Number(n) => {
            out.binds.push(num_bind(n));
            any(src, "ty IN ('integer','real') AND atom = ?")
        }
        Value::String(s) => {
            out.binds.push(Bind::Text(s.clone()));
            any(src, "ty = 'text' AND atom = ?")
        }
        Value::Array(_) | Value::Object(_) => {
            out.binds.push(Bind::Text(canonical_text(x)));
            any(src, "ty IN ('object','array') AND js = ?")
        }
    }
}

fn cmp_sql(src: &str, x: &Value, op: &str, out: &mut Sql) -> String {
    match x {
        Value::Null if op == ">=" || op == "<=" => eq_sql(src, x, out),
        Value::Null => "0".into(),
        Value::Number(n) => {
            out.binds.push(num_bind(n));
            any(src, &format!("ty IN ('integer','real') AND atom {op} ?"))
        }
        Value::String(s) => {
            out.binds.push(Bind::Text(s.clone()));
            any(src, &format!("ty = 'text' AND atom {op} ?"))
        }
        Value::Bool(b) => {
            out.binds.push(Bind::Int(*b as i64));
            any(src, &format!("ty IN ('true','false') AND atom {op} ?"))
        }
        // The parser rejects container operands for comparisons.
        Value::Array(_) | Value::Object(_) => "0".into(),
    }
}

fn cond_sql(col: &str, path: &str, cond: &Cond, out: &mut Sql) -> String {
    let src = leaves(col, path);
    match cond {
        Cond::Eq(x) => eq_sql(&src, x, out),
        Cond::Ne(x) => format!("NOT {}", eq_sql(&src, x, out)),
        Cond::In(xs) if xs.is_empty() => "0".into(),
        Cond::In(xs) => join(xs.iter().map(|x| eq_sql(&src, x, out)).collect(), "OR"),
        Cond::Nin(xs) if xs.is_empty() => "1".into(),
        Cond::Nin(xs) => format!(
            "NOT {}",
            join(xs.iter().map(|x| eq_sql(&src, x, out)).collect(), "OR")
        ),
        Cond::Exists(true) => format!("EXISTS ({src})"),
        Cond::Exists(false) => format!("NOT EXISTS ({src})"),
        Cond::Gt(x) => cmp_sql(&src, x, ">", out),
        Cond::Gte(x) => cmp_sql(&src, x, ">=", out),
        Cond::Lt(x) => cmp_sql(&src, x, "<", out),
        Cond::Lte(x) => cmp_sql(&src, x, "<=", out),
        Cond::Regex(p) => {
            let flags = if p.options.is_empty() {
                String::new()
            } else {
                format!("(?{})", p.options)
            };
            out.binds.push(Bind::Text(format!("{flags}{}", p.source)));
            any(&src, "ty = 'text' AND atom REGEXP ?")
        }
        Cond::Not(cs) => format!(
            "NOT {}",
            join(
                cs.iter().map(|c| cond_sql(col, path, c, out)).collect(),
                "AND"
            )
        ),
    }
}

/// `(rank, value)` SQL expressions that sort a JSON path in the canonical order: missing/null
/// < numbers < strings < objects < arrays < booleans, then by value (containers by canonical
/// text). Never NULL, so they work in row-value keyset comparisons.
pub(crate) fn sort_exprs(col: &str, path: &str) -> (String, String) {
    let p = literal(&json_path(path));
    let t = format!("json_type({col}, {p})");
    let rank = format!(
        "(CASE {t} WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'text' THEN 2 WHEN 'object' THEN 3 \
         WHEN 'array' THEN 4 WHEN 'true' THEN 5 WHEN 'false' THEN 5 ELSE 0 END)"
    );
    let val = format!(
        "(CASE WHEN {t} IN ('object','array') THEN {col} -> {p} WHEN {t} IS NULL OR {t} = 'null' THEN 0 \
         ELSE {col} ->> {p} END)"
    );
    (rank, val)
}

/// The `(rank, value)` binds of a sort value, matching [`sort_exprs`].
pub(crate) fn sort_binds(v: &Value) -> (Bind, Bind) {
    match v {
        Value::Null => (Bind::Int(0), Bind::Int(0)),
        Value::Number(n) => (Bind::Int(1), num_bind(n)),
        Value::String(s) => (Bind::Int(2), Bind::Text(s.clone())),
        Value::Object(_) => (Bind::Int(3), Bind::Text(canonical_text(v))),
        Value::Array(_) => (Bind::Int(4), Bind::Text(canonical_text(v))),
        Value::Bool(b) => (Bind::Int(5), Bind::Int(*b as i64)),
    }
}
