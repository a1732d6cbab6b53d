//! Decoding head and version rows, one at a time or as a whole page fetched as one row.
//!
//! sqlx runs SQLite on a worker thread and hands every result row to the async caller
//! through a channel: a page of 100 heads is 100 thread wake-ups, which cost more than the
//! query itself (measured: ≈ 11 µs a head, most of it in the scheduler). Multi-row reads
//! therefore ask SQLite for one row holding the page as a JSON array of arrays
//! ([`one_row`]) and decode it here. Every text column travels as a JSON string, so it
//! comes back byte for byte (devShadow copies are checksummed against the payload's
//! digest; metadata keeps integers beyond 2^53 as written).

use chronos_core::{Error, HeadEntry, ItemId, Op, Result, Shadow, Timestamp, VersionEntry};
use serde_json::{Map, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::FromRow;

use crate::conn::map_err;

/// A version row's columns; the decoders below take them in this order.
pub(crate) const VER_COLS: &str =
    "item_id, ov, cv, op, at, actor, reason, blob_key, meta, size, checksum, prev_ov, seal";
/// A head row's columns; the decoders below take them in this order.
pub(crate) const HEAD_COLS: &str =
    "item_id, ov, cv, blob_key, meta, size, checksum, created_at, updated_at, deleted_at, shadow, shadow_expires, lineage, chain";

/// The statement that returns what `inner` selects as one row: a JSON array with one array
/// of `cols` per row, in `order` (`inner` must select every name `cols` and `order` use).
/// The aggregate's own `ORDER BY` keeps the order: without it, SQLite may aggregate rows in
/// any order.
pub(crate) fn one_row(cols: &str, inner: &str, order: &str) -> String {
    format!("SELECT json_group_array(json_array({cols}) ORDER BY {order}) FROM ({inner})")
}

/// A page's sort keys, each carried out of the inner query as `_k<i>` so that
/// [`one_row`]'s aggregate can order by them.
pub(crate) struct SortKeys {
    /// `k0 AS _k0, k1 AS _k1, …`, for the inner query's select list.
    pub(crate) select: String,
    /// `k0 DIR, k1 DIR, …`, for the inner query's `ORDER BY`.
    pub(crate) inner_order: String,
    /// `_k0 DIR, _k1 DIR, …`, for [`one_row`]'s `order`.
    pub(crate) outer_order: String,
}

/// The [`SortKeys`] of `keys`, all in one direction.
pub(crate) fn sort_keys(keys: &[String], descending: bool) -> SortKeys {
    let dir = if descending { "DESC" } else { "ASC" };
    let join = |f: &dyn Fn(usize, &String) -> String| {
        keys.iter()
            .enumerate()
            .map(|(i, k)| f(i, k))
            .collect::<Vec<_>>()
            .join(", ")
    };
    SortKeys {
        select: join(&|i, k| format!("{k} AS _k{i}")),
        inner_order: join(&|_, k| format!("{k} {dir}")),
        outer_order: join(&|i, _| format!("_k{i} {dir}")),
    }
}

/// [`VER_COLS`] as decoded from one element of a [`one_row`] page.
type VerCols = (
    String,
    i64,
    i64,
    String,
    i64,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<String>,
);

/// [`HEAD_COLS`] as decoded from one element of a [`one_row`] page.
type HeadCols = (
    String,
    i64,
    i64,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn ts(ms: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms)
        .map_err(|e| Error::internal(format!("stored instant out of range: {e}")))
}

fn parse_meta(s: &str) -> Result<Map<String, Value>> {
    serde_json::from_str(s)
        .map_err(|e| Error::internal(format!("stored metadata is not a JSON object: {e}")))
}

pub(crate) fn parse_id(s: &str) -> Result<ItemId> {
    ItemId::parse(s).map_err(|e| Error::internal(format!("stored id is malformed: {e}")))
}

pub(crate) fn malformed(e: serde_json::Error) -> Error {
    Error::internal(format!("a page of stored rows is malformed: {e}"))
}

fn version(c: VerCols) -> Result<VersionEntry> {
    let (item_id, ov, cv, op, at, actor, reason, blob_key, meta, size, checksum, prev_ov, seal) = c;
    Ok(VersionEntry {
        item_id: parse_id(&item_id)?,
        ov: ov as u64,
        cv: cv as u64,
        op: Op::parse(&op)?,
        at: ts(at)?,
        actor,
        reason,
        blob_key,
        meta: parse_meta(&meta)?,
        size: size as u64,
        checksum,
        prev_ov: prev_ov.map(|v| v as u64),
        // A malformed seal is no seal: the record stays readable, and `verify` reports the
        // broken link (the next version links to a hash this one no longer shows).
        seal: seal.and_then(|s| match serde_json::from_str(&s) {
            Ok(seal) => Some(seal),
            Err(e) => {
                tracing::warn!(error = %e, "a stored seal is malformed; reading the version as unsealed");
                None
            }
        }),
    })
}

fn head(c: HeadCols) -> Result<HeadEntry> {
    let (
        item_id,
        ov,
        cv,
        blob_key,
        meta,
        size,
        checksum,
        created_at,
        updated_at,
        deleted_at,
        shadow,
        shadow_expires,
        lineage,
        chain,
    ) = c;
    Ok(HeadEntry {
        item_id: parse_id(&item_id)?,
        ov: ov as u64,
        cv: cv as u64,
        blob_key,
        meta: parse_meta(&meta)?,
        size: size as u64,
        checksum,
        created_at: ts(created_at)?,
        updated_at: ts(updated_at)?,
        deleted_at: deleted_at.map(ts).transpose()?,
        shadow: match (shadow, shadow_expires) {
            (Some(json), Some(exp)) => Some(Shadow {
                json,
                expires_at: ts(exp)?,
            }),
            _ => None,
        },
        // A copy only: unreadable means "absent", and readers fall back to the payload.
        lineage: lineage.and_then(|l| serde_json::from_str(&l).ok()),
        chain,
    })
}

/// A version from a row selecting [`VER_COLS`].
pub(crate) fn version_from_row(row: &SqliteRow) -> Result<VersionEntry> {
    version(VerCols::from_row(row).map_err(|e| map_err(e, "decode row"))?)
}

/// A head from a row selecting [`HEAD_COLS`].
pub(crate) fn head_from_row(row: &SqliteRow) -> Result<HeadEntry> {
    head(HeadCols::from_row(row).map_err(|e| map_err(e, "decode row"))?)
}

/// The versions of a [`one_row`] page over [`VER_COLS`].
pub(crate) fn versions_from_page(text: &str) -> Result<Vec<VersionEntry>> {
    let rows: Vec<VerCols> = serde_json::from_str(text).map_err(malformed)?;
    rows.into_iter().map(version).collect()
}

/// The heads of a [`one_row`] page over [`HEAD_COLS`].
pub(crate) fn heads_from_page(text: &str) -> Result<Vec<HeadEntry>> {
    let rows: Vec<HeadCols> = serde_json::from_str(text).map_err(malformed)?;
    rows.into_iter().map(head).collect()
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::one_row;

    /// Text comes back byte for byte through a one-row page (devShadow copies are checked
    /// against the payload's checksum; metadata keeps big integers as written), integers at
    /// their extremes, NULLs as NULLs, and the order is the aggregate's, whatever order the
    /// inner query produces.
    #[tokio::test]
    async fn a_one_row_page_is_the_rows_exactly_in_order() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::raw_sql("CREATE TABLE t (k INTEGER NOT NULL, a TEXT NOT NULL, b TEXT)")
            .execute(&pool)
            .await
            .unwrap();
        let texts = [
            "",
            "\"quoted\"",
            "back\\slash",
            "line\nbreak\ttab\u{1}\u{1f}",
            "\u{2028}\u{2029}",
            "😀 naïve ß",
            r#"{"n":18446744073709551615,"f":1.0e400,"s":"\u0041"}"#,
            "[1, 2 ,3]",
        ];
        let keys = [i64::MIN, -1, 0, 7, 3, i64::MAX, 42, 9007199254740993];
        for (i, (k, a)) in keys.iter().zip(texts).enumerate() {
            sqlx::query("INSERT INTO t (k, a, b) VALUES (?, ?, ?)")
                .bind(k)
                .bind(a)
                .bind((i % 2 == 0).then(|| a.repeat(3)))
                .execute(&pool)
                .await
                .unwrap();
        }
        let direct: Vec<(i64, String, Option<String>)> =
            sqlx::query("SELECT k, a, b FROM t ORDER BY k DESC")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
        assert_eq!(direct.len(), texts.len());
        // The inner query in insertion order: only the aggregate's ORDER BY sorts.
        let page: String =
            sqlx::query_scalar(&one_row("k, a, b", "SELECT k, a, b FROM t", "k DESC"))
                .fetch_one(&pool)
                .await
                .unwrap();
        let decoded: Vec<(i64, String, Option<String>)> = serde_json::from_str(&page).unwrap();
        assert_eq!(decoded, direct);
        // No rows: an empty array, not NULL.
        let empty: String = sqlx::query_scalar(&one_row(
            "k, a, b",
            "SELECT k, a, b FROM t WHERE k = 1",
            "k",
        ))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(empty, "[]");
    }
}
