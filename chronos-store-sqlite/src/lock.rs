//! [`Lock`] on SQLite: a `chronos_locks` table; acquisition is one immediate transaction, so
//! processes sharing the file agree on the holder.

use std::time::Duration;

use async_trait::async_trait;
use chronos_core::time::now_ms;
use chronos_core::{Error, ItemId, Lease, Lock, Result, Timestamp};
use sqlx::{Acquire, Connection, SqlitePool};

use crate::conn::map_err;

/// The SQLite lock store.
#[derive(Debug)]
pub struct SqliteLock {
    pool: SqlitePool,
}

impl SqliteLock {
    pub(crate) async fn new(pool: SqlitePool) -> Result<Self> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS chronos_locks (key TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID",
        )
        .execute(&pool)
        .await
        .map_err(|e| map_err(e, "create lock table"))?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Lock for SqliteLock {
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>> {
        let now = now_ms().as_millisecond();
        let expires = now + ttl.as_millis() as i64;
        let expires_at = Timestamp::from_millisecond(expires)
            .map_err(|e| Error::validation(format!("lease ttl out of range: {e}")))?;
        let token = ItemId::generate().to_string();
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| map_err(e, "acquire connection"))?;
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map_err(e, "begin"))?;
        let db = tx.acquire().await.map_err(|e| map_err(e, "begin"))?;
        // Insert, or take over only a lapsed lease; zero rows changed means it is held.
        let changed = sqlx::query(
            "INSERT INTO chronos_locks (key, token, expires_at) VALUES (?, ?, ?)
             ON CONFLICT(key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at
             WHERE chronos_locks.expires_at <= ?",
        )
        .bind(key)
        .bind(&token)
        .bind(expires)
        .bind(now)
        .execute(&mut *db)
        .await
        .map_err(|e| map_err(e, "acquire lease").with("key", key))?
        .rows_affected();
        tx.commit().await.map_err(|e| map_err(e, "commit lease"))?;
        Ok((changed == 1).then(|| Lease {
            key: key.to_string(),
            token,
            expires_at,
        }))
    }

    async fn release(&self, lease: &Lease) -> Result<bool> {
        let done = sqlx::query("DELETE FROM chronos_locks WHERE key = ? AND token = ?")
            .bind(&lease.key)
            .bind(&lease.token)
            .execute(&self.pool)
            .await
            .map_err(|e| map_err(e, "release lease").with("key", &lease.key))?;
        Ok(done.rows_affected() == 1)
    }
}
