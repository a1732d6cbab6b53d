//! Removing old version entries of one record (versioning off on every commit, retention on
//! demand), with the change feed's pruned watermark raised in the same transaction; and
//! scrubbing them (erase), with the freed bytes purged from the database and its WAL.

use chronos_core::{Error, Result};
use sqlx::{Row, SqliteConnection, SqlitePool};
use std::time::Duration;

use crate::conn::map_err;

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
    // One round trip: the watermark, the delete, and how many rows the delete removed.
    let removed: i64 = sqlx::query_scalar(&format!(
        "INSERT INTO chronos_feed_pruned (coll, cv)
           SELECT ?1, MAX(cv) FROM {ver} WHERE item_id = ?2 AND ov < {bound} HAVING MAX(cv) IS NOT NULL
           ON CONFLICT(coll) DO UPDATE SET cv = MAX(cv, excluded.cv);
         DELETE FROM {ver} WHERE item_id = ?2 AND ov < {bound};
         SELECT changes();"
    ))
    .bind(coll)
    .bind(id)
    .bind(below)
    .fetch_one(&mut *db)
    .await
    .map_err(|e| ctx(map_err(e, "prune versions"), coll, id))?;
    Ok(removed.max(0) as u64)
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
