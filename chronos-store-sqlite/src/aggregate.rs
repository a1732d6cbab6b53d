//! [`IndexStore::aggregate`](chronos_core::IndexStore::aggregate) as one SQL statement over
//! the head table: the filter translated by [`sql_filter`], numbers selected by `json_type`,
//! and the exact median read by `ORDER BY … LIMIT/OFFSET` in the same statement (one
//! snapshot), so nothing but the answer leaves SQLite.

use chronos_core::{AggregateOp, AggregateQuery, Result};

use crate::sql_filter::{self, json_path, Bind, Sql};

/// The statement computing `q` over the head table `head`, and its binds.
pub(crate) fn statement(head: &str, q: &AggregateQuery) -> (String, Vec<Bind>) {
    let mut sql = Sql::default();
    let cond = sql_filter::translate(&q.filter, "h.meta", &mut sql);
    let mut base = format!("FROM {head} h WHERE {cond} AND h.deleted_at IS NULL");
    if let Some(w) = q.created {
        base.push_str(" AND h.created_at >= ? AND h.created_at < ?");
        sql.binds.push(Bind::Int(w.from.as_millisecond()));
        sql.binds.push(Bind::Int(w.to.as_millisecond()));
    }
    let field = q.field.as_deref().unwrap_or("_");
    let path = crate::conn::literal(&json_path(field));
    let (ty, val) = (
        format!("json_type(h.meta, {path})"),
        sql_filter::indexed_expr("h.meta", field),
    );
    let numeric = format!("{ty} IN ('integer', 'real')");
    let text = match q.op {
        AggregateOp::Count => format!("SELECT CAST(COUNT(*) AS REAL) {base}"),
        // Numbers by value (1 and 1.0 are one), everything else by type and text, so that
        // `true` (extracted as 1) and the string "1" stay apart from the number 1.
        AggregateOp::CountDistinct => format!(
            "SELECT CAST(COUNT(DISTINCT CASE WHEN {numeric} THEN {val} \
             WHEN {ty} = 'null' THEN NULL ELSE {ty} || ':' || {val} END) AS REAL) {base}"
        ),
        AggregateOp::Sum => format!("SELECT TOTAL({val}) {base} AND {numeric}"),
        AggregateOp::Avg => format!("SELECT CAST(AVG({val}) AS REAL) {base} AND {numeric}"),
        AggregateOp::Min => format!("SELECT CAST(MIN({val}) AS REAL) {base} AND {numeric}"),
        AggregateOp::Max => format!("SELECT CAST(MAX({val}) AS REAL) {base} AND {numeric}"),
        AggregateOp::Median => format!(
            "WITH v AS (SELECT CAST({val} AS REAL) AS x {base} AND {numeric}), \
             n AS (SELECT COUNT(*) AS c FROM v) \
             SELECT AVG(x) FROM (SELECT x FROM v ORDER BY x \
             LIMIT 2 - (SELECT c FROM n) % 2 OFFSET ((SELECT c FROM n) - 1) / 2)"
        ),
    };
    (text, sql.binds)
}

/// Runs the statement.
pub(crate) async fn run(
    pool: &sqlx::SqlitePool,
    head: &str,
    q: &AggregateQuery,
) -> Result<Option<f64>> {
    let (text, binds) = statement(head, q);
    sqlx::query_scalar_with::<_, Option<f64>, _>(&text, crate::index::bind_all(&binds)?)
        .fetch_one(pool)
        .await
        .map_err(|e| crate::conn::map_err(e, "aggregate"))
}
