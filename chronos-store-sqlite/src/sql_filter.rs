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

/// The value of `path` in the JSON column `col`, as the expression index of an indexed
/// property spells it: a query that spells it the same way can use that index.
pub(crate) fn indexed_expr(col: &str, path: &str) -> String {
    format!("json_extract({col}, {})", literal(&json_path(path)))
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
    let root = literal(&json_path(segs[0]));
    format!(
        "SELECT t.type AS ty, t.atom AS atom, CASE WHEN t.type IN ('object','array') THEN t.value END AS js \
         FROM json_tree({col}, {root}) t WHERE t.fullkey REGEXP {}",
        literal(&shape(&segs))
    )
}

/// The regex of the `json_tree` `fullkey`s of the nodes a walk along `segs` reaches: each
/// segment optionally followed by one array index (an array reached by key is walked through
/// its elements; arrays inside arrays are not).
fn shape(segs: &[&str]) -> String {
    let mut re = String::from("^\\$");
    for seg in segs {
        let s = regex::escape(seg);
        // SQLite writes a label bare or quoted depending on its characters; accept both.
        re.push_str(&format!("\\.(?:{s}|\"{s}\")(?:\\[[0-9]+\\])?"));
    }
    re.push('$');
    re
}

/// Whether some branch of the walk along `path` finds it missing, as
/// [`chronos_core::filter::resolve_traced`] says: the first key absent, or a node reached by
/// the first `k` segments that is an object without segment `k`, or a scalar reached by key
/// (its `fullkey` does not end in an array index) where the path goes on.
fn missing(col: &str, path: &str) -> String {
    let segs: Vec<&str> = path.split('.').collect();
    let root = literal(&json_path(segs[0]));
    let mut parts = vec![format!("json_type({col}, {root}) IS NULL")];
    for k in 1..segs.len() {
        let next = literal(&json_path(segs[k]));
        parts.push(format!(
            "EXISTS (SELECT 1 FROM json_tree({col}, {root}) t WHERE t.fullkey REGEXP {} \
             AND ((t.type = 'object' AND json_type(t.value, {next}) IS NULL) \
               OR (t.type NOT IN ('object','array') AND t.fullkey NOT LIKE '%]')))",
            literal(&shape(&segs[..k]))
        ));
    }
    join(parts, "OR")
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

/// `src`'s leaves (see [`leaves`]) hold `x`; `missing` builds the [`missing`] expression of
/// the path, which `null` matches (only a `null` operand needs it).
fn eq_sql(src: &str, missing: &dyn Fn() -> String, x: &Value, out: &mut Sql) -> String {
    match x {
        Value::Null => format!("({} OR {})", missing(), any(src, "ty = 'null'")),
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

fn cmp_sql(src: &str, missing: &dyn Fn() -> String, x: &Value, op: &str, out: &mut Sql) -> String {
    match x {
        Value::Null if op == ">=" || op == "<=" => eq_sql(src, missing, x, out),
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

/// The most values a [`probe`] lists; a longer `$in` goes without one (correct, unindexed).
const PROBE_MAX_VALUES: usize = 1000;

/// An index-usable superset of `path` equalling one of `xs`, or `None` where there is none.
///
/// The exact predicates above walk the path's leaves with `json_each`, which no index can
/// answer, so without a probe a filter scans every head. Every indexed property has an
/// expression index on `json_extract(meta, path)`, and for a one-segment path the rows whose
/// leaves include a string or number `x` are those where that expression is `x` itself (a
/// scalar) or an array's JSON text (`'['` up to `'\'`, excluded). So
/// `probe AND exact` selects the same rows as `exact`, through the index. Values go in as
/// SQL literals (no binds: a long `$in` must not double its placeholders); strings holding a
/// NUL, booleans, null and containers get no probe.
fn probe(col: &str, path: &str, xs: &[Value]) -> Option<String> {
    if path.contains('.') || xs.is_empty() || xs.len() > PROBE_MAX_VALUES {
        return None;
    }
    let lits = probe_literals(xs)?;
    let e = indexed_expr(col, path);
    Some(format!(
        "({e} IN ({}) OR ({}))",
        lits.join(", "),
        array_text_range(&e)
    ))
}

/// The range of the indexed expression `e` that holds every array's JSON text (`'['` up to
/// `'\'`, excluded) — and scalar strings that happen to start with `[`.
fn array_text_range(e: &str) -> String {
    format!("{e} >= '[' AND {e} < '\\'")
}

/// `xs` as SQL literals of the values a probe compares the indexed expression with, or
/// `None` when one of them has no such literal.
fn probe_literals(xs: &[Value]) -> Option<Vec<String>> {
    xs.iter()
        .map(|x| match x {
            Value::String(s) if !s.contains('\0') => Some(literal(s)),
            // The same value the exact predicate binds; a double in its shortest round trip.
            Value::Number(n) => match num_bind(n) {
                Bind::Int(i) => Some(i.to_string()),
                Bind::Real(f) => Some(format!("{f:?}")),
                Bind::Text(_) => None,
            },
            _ => None,
        })
        .collect()
}

/// The most values an equality may have to be split into [`branches`].
const BRANCH_MAX_VALUES: usize = 8;

/// Disjoint, index-walkable predicates whose union holds every row `f` selects, or `None`.
///
/// A [`probe`] is an `IN … OR range`, which SQLite answers by collecting every matching row
/// and sorting them: a page of 100 out of 10,000 matches reads all 10,000. Split into one
/// `e = x` per value (walked in the index's order: the index holds the primary key after the
/// expression) plus the arrays (`json_type` = `'array'` keeps them apart from scalar strings
/// that start with `[`), each branch can stop at the page's end and a merge orders them. The
/// first conjunct of `f` that is an equality or a short `$in` on a one-segment path that
/// `indexed` accepts is split; several numeric values are not (`1` and `1.0` are one value
/// to SQLite, so two branches would return a row twice), duplicate strings count once.
pub(crate) fn branches(
    f: &Filter,
    col: &str,
    indexed: &dyn Fn(&str) -> bool,
) -> Option<Vec<String>> {
    let conjuncts = match f {
        Filter::And(fs) => fs.as_slice(),
        other => std::slice::from_ref(other),
    };
    conjuncts.iter().find_map(|c| {
        let Filter::Field { path, cond } = c else {
            return None;
        };
        let xs = match cond {
            Cond::Eq(x) => std::slice::from_ref(x),
            Cond::In(xs) => xs.as_slice(),
            _ => return None,
        };
        if path.contains('.') || !indexed(path) || xs.is_empty() || xs.len() > BRANCH_MAX_VALUES {
            return None;
        }
        if xs.len() > 1 && !xs.iter().all(Value::is_string) {
            return None;
        }
        let mut lits = probe_literals(xs)?;
        lits.sort();
        lits.dedup();
        let e = indexed_expr(col, path);
        let p = literal(&json_path(path));
        let mut out: Vec<String> = lits.iter().map(|l| format!("{e} = {l}")).collect();
        out.push(format!(
            "({} AND json_type({col}, {p}) = 'array')",
            array_text_range(&e)
        ));
        Some(out)
    })
}

/// `exact`, behind the index-usable `probe` when there is one.
fn probed(probe: Option<String>, exact: String) -> String {
    match probe {
        Some(p) => format!("({p} AND {exact})"),
        None => exact,
    }
}

fn cond_sql(col: &str, path: &str, cond: &Cond, out: &mut Sql) -> String {
    let src = leaves(col, path);
    let gone = || missing(col, path);
    let eq = |x: &Value, out: &mut Sql| eq_sql(&src, &gone, x, out);
    match cond {
        Cond::Eq(x) => probed(probe(col, path, std::slice::from_ref(x)), eq(x, out)),
        Cond::Ne(x) => format!("NOT {}", eq(x, out)),
        Cond::In(xs) if xs.is_empty() => "0".into(),
        Cond::In(xs) => probed(
            probe(col, path, xs),
            join(xs.iter().map(|x| eq(x, out)).collect(), "OR"),
        ),
        Cond::Nin(xs) if xs.is_empty() => "1".into(),
        Cond::Nin(xs) => format!(
            "NOT {}",
            join(xs.iter().map(|x| eq(x, out)).collect(), "OR")
        ),
        Cond::Exists(true) => format!("EXISTS ({src})"),
        Cond::Exists(false) => format!("NOT EXISTS ({src})"),
        Cond::Gt(x) => cmp_sql(&src, &gone, x, ">", out),
        Cond::Gte(x) => cmp_sql(&src, &gone, x, ">=", out),
        Cond::Lt(x) => cmp_sql(&src, &gone, x, "<", out),
        Cond::Lte(x) => cmp_sql(&src, &gone, x, "<=", out),
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

#[cfg(test)]
mod tests {
    use chronos_core::filter::Filter;
    use serde_json::json;
    use sqlx::Row;

    use super::{indexed_expr, translate, Sql};
    use crate::index::bind_all;

    /// A head table in memory with the expression index every indexed property gets, and
    /// rows that put the probe's superset to the test: arrays, strings that look like
    /// arrays, numbers beside numeric strings, big numbers, booleans, absent fields.
    async fn table() -> sqlx::SqlitePool {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::raw_sql(&format!(
            "CREATE TABLE h (id INTEGER PRIMARY KEY, meta TEXT NOT NULL);
             CREATE INDEX h_s ON h ({});",
            indexed_expr("meta", "s")
        ))
        .execute(&pool)
        .await
        .unwrap();
        let rows = [
            json!({"s": "a"}),
            json!({"s": ["a", "b"]}),
            json!({"s": "[a"}),
            json!({"s": 5}),
            json!({"s": "5"}),
            json!({"s": [5, [6]]}),
            json!({"s": 1.8446744073709552e19}),
            json!({"s": true}),
            json!({"s": null}),
            json!({"t": "a"}),
            json!({"s": {"a": 1}}),
            json!({"s": "a'b"}),
        ];
        for (i, m) in rows.iter().enumerate() {
            sqlx::query("INSERT INTO h (id, meta) VALUES (?, ?)")
                .bind(i as i64)
                .bind(m.to_string())
                .execute(&pool)
                .await
                .unwrap();
        }
        for i in 100..400 {
            sqlx::query("INSERT INTO h (id, meta) VALUES (?, ?)")
                .bind(i as i64)
                .bind(json!({"s": format!("filler{i}")}).to_string())
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::raw_sql("ANALYZE").execute(&pool).await.unwrap();
        pool
    }

    async fn ids(pool: &sqlx::SqlitePool, filter: &serde_json::Value, plan: bool) -> Vec<String> {
        let f = Filter::parse(filter).unwrap();
        let mut sql = Sql::default();
        let cond = translate(&f, "meta", &mut sql);
        let text = format!(
            "{}SELECT id FROM h WHERE {cond} ORDER BY id",
            if plan { "EXPLAIN QUERY PLAN " } else { "" }
        );
        let rows = sqlx::query_with(&text, bind_all(&sql.binds).unwrap())
            .fetch_all(pool)
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                if plan {
                    r.get::<String, _>(3)
                } else {
                    r.get::<i64, _>(0).to_string()
                }
            })
            .collect()
    }

    fn strs(ids: &[i64]) -> Vec<String> {
        ids.iter().map(i64::to_string).collect()
    }

    #[tokio::test]
    async fn equality_and_in_use_the_expression_index_and_select_the_same_rows() {
        let pool = table().await;
        for (filter, want) in [
            (json!({"s": "a"}), strs(&[0, 1])),
            (json!({"s": "[a"}), strs(&[2])),
            (json!({"s": 5}), strs(&[3, 5])),
            (json!({"s": "5"}), strs(&[4])),
            (json!({"s": 1.8446744073709552e19}), strs(&[6])),
            (json!({"s": "a'b"}), strs(&[11])),
            (json!({"s": {"$in": ["b", 5, "nothing"]}}), strs(&[1, 3, 5])),
            (json!({"s": "filler250"}), strs(&[250])),
        ] {
            assert_eq!(ids(&pool, &filter, false).await, want, "{filter}");
            let plan = ids(&pool, &filter, true).await.join(" | ");
            assert!(plan.contains("USING INDEX h_s"), "{filter}: {plan}");
        }
        // No probe where the index cannot answer (booleans, containers, negations): the
        // exact predicate alone, still correct.
        let not_a: Vec<i64> = (2..12).chain(100..400).collect();
        for (filter, want) in [
            (json!({"s": true}), strs(&[7])),
            (json!({"s": {"a": 1}}), strs(&[10])),
            (json!({"s": {"$ne": "a"}}), strs(&not_a)),
        ] {
            assert_eq!(ids(&pool, &filter, false).await, want, "{filter}");
        }
    }
}
