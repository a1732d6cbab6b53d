//! [`Lock`] on SQLite: a `chronos_locks` table; acquisition is one immediate transaction, so
//! processes sharing the file agree on the holder.

use std::time::Duration;

use async_trait::async_trait;
use chronos_core::time::now_ms;
use chronos_core::{ItemId, Lease, Lock, Result};
use sqlx::SqlitePool;

use crate::conn::{begin_immediate, map_err};

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
        let now_ts = now_ms();
        let expires_at = chronos_core::lock::lease_expiry(now_ts, ttl)?;
        let (now, expires) = (now_ts.as_millisecond(), expires_at.as_millisecond());
        let token = ItemId::generate().to_string();
        let mut tx = begin_immediate(&self.pool).await?;
        let db = &mut *tx;
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

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>> {
        let now = now_ms();
        let expires_at = chronos_core::lock::lease_expiry(now, ttl)?;
        let done = sqlx::query(
            "UPDATE chronos_locks SET expires_at = ? WHERE key = ? AND token = ? AND expires_at > ?",
        )
        .bind(expires_at.as_millisecond())
        .bind(&lease.key)
        .bind(&lease.token)
        .bind(now.as_millisecond())
        .execute(&self.pool)
        .await
        .map_err(|e| map_err(e, "renew lease").with("key", &lease.key))?;
        Ok((done.rows_affected() == 1).then(|| Lease {
            expires_at,
            ..lease.clone()
        }))
    }
}
