//! Rewriting a head from the version log ([`IndexStore::repair_head`](chronos_core::IndexStore::repair_head)):
//! one write transaction that checks the head and the latest ov are still what the caller
//! saw, then writes or removes the head.

use chronos_core::{Error, HeadEntry, ItemId, Result};
use serde_json::Value;
use sqlx::SqlitePool;

use crate::conn::{begin_immediate, map_err};
use crate::rows::HEAD_COLS;

/// In tables `head_t` / `ver_t` of collection `coll`: replaces (or, with `None`, removes)
/// the head of `id` if it is still `seen` and the latest version still `latest_ov`.
pub(crate) async fn repair_head(
    pool: &SqlitePool,
    coll: &str,
    (head_t, ver_t): (&str, &str),
    id: ItemId,
    seen: Option<(u64, u64)>,
    latest_ov: u64,
    head: Option<HeadEntry>,
) -> Result<bool> {
    let ctx = |e: Error| e.with("collection", coll).with("id", id);
    let id_s = id.to_string();
    let mut tx = begin_immediate(pool).await.map_err(ctx)?;
    let now: Option<(i64, i64)> =
        sqlx::query_as(&format!("SELECT ov, cv FROM {head_t} WHERE item_id = ?"))
            .bind(&id_s)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| ctx(map_err(e, "read head")))?;
    let latest: Option<i64> =
        sqlx::query_scalar(&format!("SELECT MAX(ov) FROM {ver_t} WHERE item_id = ?"))
            .bind(&id_s)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| ctx(map_err(e, "read latest ov")))?;
    if now.map(|(o, c)| (o as u64, c as u64)) != seen || latest != Some(latest_ov as i64) {
        // Dropping the transaction changes nothing.
        return Ok(false);
    }
    let written = match head {
        None => {
            sqlx::query(&format!("DELETE FROM {head_t} WHERE item_id = ?"))
                .bind(&id_s)
                .execute(&mut *tx)
                .await
        }
        Some(h) => {
            let marks = vec!["?"; HEAD_COLS.split(',').count()].join(", ");
            sqlx::query(&format!(
                "INSERT OR REPLACE INTO {head_t} ({HEAD_COLS}) VALUES ({marks})"
            ))
            .bind(&id_s)
            .bind(h.ov as i64)
            .bind(h.cv as i64)
            .bind(h.blob_key)
            .bind(Value::Object(h.meta).to_string())
            .bind(h.size as i64)
            .bind(h.checksum)
            .bind(h.created_at.as_millisecond())
            .bind(h.updated_at.as_millisecond())
            .bind(h.deleted_at.map(|d| d.as_millisecond()))
            .bind(h.shadow.as_ref().map(|s| s.json.clone()))
            .bind(h.shadow.map(|s| s.expires_at.as_millisecond()))
            .bind(
                h.lineage
                    .map(|l| serde_json::to_string(&l).expect("lineage serializes")),
            )
            .bind(h.chain)
            .execute(&mut *tx)
            .await
        }
    };
    written.map_err(|e| ctx(map_err(e, "repair head")))?;
    tx.commit()
        .await
        .map_err(|e| ctx(map_err(e, "commit head repair")))?;
    Ok(true)
}
