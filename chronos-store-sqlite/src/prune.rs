//! Removing old version entries of one record (versioning off on every commit, retention on
//! demand), with the change feed's pruned watermark raised in the same transaction.

use chronos_core::{Error, Result};
use sqlx::SqliteConnection;

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

fn ctx(e: Error, coll: &str, id: &str) -> Error {
    e.with("collection", coll).with("id", id)
}
