//! Removing old version entries of one record (versioning off on every commit, retention on
//! demand), with the change feed's pruned watermark raised in the same transaction; and
//! scrubbing them (erase), with the freed bytes purged from the database and its WAL; and
//! rewriting a head from the log (`verify --repair`).

use chronos_core::{Error, HeadEntry, ItemId, Result};
use sqlx::{Row, SqliteConnection, SqlitePool};
use std::time::Duration;

use crate::conn::{ident, map_err, table_stem};

/// Inside the caller's transaction: removes the versions of `id` in table `ver` with
/// `ov < below`, never the record's latest, after raising `coll`'s pruned cv to the greatest
/// cv removed (so a feed cursor below it is `Gone`, never silently incomplete). Returns how
/// many entries went.
pub(crate) async fn prune(
    db: &mut SqliteConnection,
    coll: &str,
    ver: &str,
    id: &str,
    below: u64,
) -> Result<u64> {
    let below = i64::try_from(below).unwrap_or(i64::MAX);
    // `?3` capped at the record's latest ov: the latest version always stays.
    let bound = format!("MIN(?3, (SELECT MAX(ov) FROM {ver} WHERE item_id = ?2))");
    sqlx::query(&format!(
        "INSERT INTO chronos_feed_pruned (coll, cv)
           SELECT ?1, MAX(cv) FROM {ver} WHERE item_id = ?2 AND ov < {bound} HAVING MAX(cv) IS NOT NULL
           ON CONFLICT(coll) DO UPDATE SET cv = MAX(cv, excluded.cv)"
    ))
    .bind(coll)
    .bind(id)
    .bind(below)
    .execute(&mut *db)
    .await
    .map_err(|e| ctx(map_err(e, "record pruned cv"), coll, id))?;
    let done = sqlx::query(&format!(
        "DELETE FROM {ver} WHERE item_id = ?2 AND ov < {bound}"
    ))
    .bind(coll)
    .bind(id)
    .bind(below)
    .execute(&mut *db)
    .await
    .map_err(|e| ctx(map_err(e, "prune versions"), coll, id))?;
    Ok(done.rows_affected())
}

/// Inside the caller's transaction: makes the versions of `id` in `ver` with `ov < below`
/// (never the latest) content-free. Returns how many entries changed.
pub(crate) async fn scrub(
    db: &mut SqliteConnection,
    coll: &str,
    ver: &str,
    id: &str,
    below: u64,
) -> Result<u64> {
    let below = i64::try_from(below).unwrap_or(i64::MAX);
    let done = sqlx::query(&format!(
        "UPDATE {ver} SET meta = '{{}}', blob_key = '', size = 0, checksum = ?3,
                seal = json_remove(seal, '$.salt')
          WHERE item_id = ?1 AND checksum <> ?3
            AND ov < MIN(?2, (SELECT MAX(ov) FROM {ver} WHERE item_id = ?1))"
    ))
    .bind(id)
    .bind(below)
    .bind(chronos_core::ERASED_CHECKSUM)
    .execute(&mut *db)
    .await
    .map_err(|e| ctx(map_err(e, "scrub versions"), coll, id))?;
    Ok(done.rows_affected())
}

/// After a scrub: every page the erase changed is copied into the database file (where
/// `secure_delete` zeroed the freed bytes) and the WAL, which still holds the pages as they
/// were, is truncated to nothing. A reader holding an old snapshot blocks the truncation:
/// retried briefly, then `Unavailable` (the scrub is done; a second erase finishes this).
pub(crate) async fn purge_wal(pool: &SqlitePool, coll: &str, id: &str) -> Result<()> {
    for attempt in 0..20u32 {
        let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(pool)
            .await
            .map_err(|e| ctx(map_err(e, "checkpoint the WAL"), coll, id))?;
        let busy: i64 = row.try_get(0).unwrap_or(1);
        if busy == 0 {
            return Ok(());
        }
        tracing::debug!(
            collection = coll,
            attempt,
            "WAL checkpoint after an erase is busy; retrying"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(ctx(
        Error::unavailable(
            "the erased entries are scrubbed, but the SQLite WAL still holds their old pages:              other connections kept reading; run the erase again to finish",
        ),
        coll,
        id,
    ))
}

fn ctx(e: Error, coll: &str, id: &str) -> Error {
    e.with("collection", coll).with("id", id)
}

/// Whether record `id`'s head is still `seen` and its latest version still `latest_ov`
/// (read inside the caller's write transaction, so nothing changes before it commits).
pub(crate) async fn head_unchanged(
    db: &mut SqliteConnection,
    coll: &str,
    id: ItemId,
    seen: Option<(u64, u64)>,
    latest_ov: u64,
) -> Result<bool> {
    let (head, ver) = (
        ident(&format!("{}_head", table_stem(coll))),
        ident(&format!("{}_ver", table_stem(coll))),
    );
    let id = id.to_string();
    let now: Option<(i64, i64)> =
        sqlx::query_as(&format!("SELECT ov, cv FROM {head} WHERE item_id = ?"))
            .bind(&id)
            .fetch_optional(&mut *db)
            .await
            .map_err(|e| ctx(map_err(e, "read head"), coll, &id))?;
    let latest: Option<i64> =
        sqlx::query_scalar(&format!("SELECT MAX(ov) FROM {ver} WHERE item_id = ?"))
            .bind(&id)
            .fetch_one(&mut *db)
            .await
            .map_err(|e| ctx(map_err(e, "read latest ov"), coll, &id))?;
    Ok(now.map(|(o, c)| (o as u64, c as u64)) == seen && latest == Some(latest_ov as i64))
}

/// The statement that writes (or removes) a repaired head, and its parameters in order.
pub(crate) fn repair_head_sql(
    head_t: &str,
    id: ItemId,
    head: Option<HeadEntry>,
) -> (String, Vec<Option<String>>) {
    let Some(h) = head else {
        return (
            format!("DELETE FROM {head_t} WHERE item_id = ?"),
            vec![Some(id.to_string())],
        );
    };
    let cols = crate::index::HEAD_COLS;
    let n = cols.split(',').count();
    let marks = vec!["?"; n].join(", ");
    // Integers travel as text and SQLite's column affinity stores them as integers.
    let binds = vec![
        Some(h.item_id.to_string()),
        Some(h.ov.to_string()),
        Some(h.cv.to_string()),
        Some(h.blob_key),
        Some(serde_json::Value::Object(h.meta).to_string()),
        Some(h.size.to_string()),
        Some(h.checksum),
        Some(h.created_at.as_millisecond().to_string()),
        Some(h.updated_at.as_millisecond().to_string()),
        h.deleted_at.map(|d| d.as_millisecond().to_string()),
        h.shadow.as_ref().map(|s| s.json.clone()),
        h.shadow.map(|s| s.expires_at.as_millisecond().to_string()),
        h.lineage
            .map(|l| serde_json::to_string(&l).expect("lineage serializes")),
        h.chain,
    ];
    assert_eq!(binds.len(), n, "one parameter per head column");
    (
        format!("INSERT OR REPLACE INTO {head_t} ({cols}) VALUES ({marks})"),
        binds,
    )
}
