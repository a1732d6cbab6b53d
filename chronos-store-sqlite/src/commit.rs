//! The write path of [`crate::SqliteIndexStore`]: the statements of one commit, sent to
//! SQLite in one round trip when the store knows the collection's last cv.
//!
//! A commit is a version insert (its `WHERE` is the ov check), the collection's counter bump
//! and the head statement, in one write transaction. The seal covers the cv, so the cv is
//! computed in Rust before the statements are bound. Done plainly that is four round trips to
//! the connection's thread — `BEGIN IMMEDIATE`, the read of the last cv, the statements,
//! `COMMIT` — each a channel send and a thread wake-up (≈ a quarter of a create's time on
//! SQLite + files). The fast path sends one: the store remembers each collection's last cv
//! ([`CvCache`]), the insert also checks that the counter still holds it and that the write
//! attempt's deadline has not passed (at SQLite's clock, the same host's), and the counter and
//! head statements run only when the statement before them changed a row (`changes()`). A
//! failed check so commits an empty transaction, and the plain path takes over: it reads
//! the cv under the write lock, and names an ov conflict or a late deadline as it always did.
//! Another process writing the collection is what makes the remembered cv stale.

use std::collections::HashMap;

use chronos_core::{Commit, Error, HeadAction, Result};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{Row, Sqlite, SqlitePool};

use crate::conn::{begin_immediate, map_err};
use crate::rows::{HEAD_COLS, VER_COLS};

/// Each collection's last committed cv as this store last saw it, behind the lock every
/// write transaction of the index store takes (commits, prunes, scrubs, head repairs):
/// in-process writers queue here, in order, instead of on SQLite's busy handler (which
/// sleeps up to 100 ms between tries), and a commit that finds the cv here never sees it
/// changed by another writer of this process.
pub(crate) type CvCache = tokio::sync::Mutex<HashMap<String, u64>>;

/// Commits `c` to `coll` (tables `head` / `ver`): the fast path when the cache has the
/// collection's cv and the commit prunes nothing, otherwise (or when its check failed) the
/// plain transaction. Updates the cache with the cv taken.
pub(crate) async fn commit(
    pool: &SqlitePool,
    cache: &CvCache,
    tables: (&str, &str),
    coll: &str,
    c: Commit,
) -> Result<u64> {
    let ctx = |e: Error, id| e.with("collection", coll).with("id", id);
    let id = c.version.item_id;
    let mut cvs = cache.lock().await;
    let c = match (cvs.get(coll), c.prune_below_ov) {
        (Some(&last), None) => {
            let (c, r) = fast(pool, tables, coll, c, last).await;
            match r.map_err(|e| ctx(e, id))? {
                Some(cv) => {
                    cvs.insert(coll.to_string(), cv);
                    return Ok(cv);
                }
                None => {
                    tracing::debug!(
                        collection = coll,
                        %id,
                        "SQLite one-round-trip commit refused by its check (another process \
                         wrote, an ov conflict or a late deadline): committing with the cv \
                         read under the write lock"
                    );
                    c.expect("a refused fast commit hands the commit back")
                }
            }
        }
        _ => c,
    };
    // Forget the cv first: if this commit fails half-way, nothing stale stays behind.
    cvs.remove(coll);
    let mut tx = begin_immediate(pool).await.map_err(|e| ctx(e, id))?;
    // On an error the transaction is dropped: everything the commit ran is rolled back.
    let cv = commit_in(&mut tx, tables, coll, &c).await?;
    tx.commit()
        .await
        .map_err(|e| ctx(map_err(e, "commit"), id))?;
    cvs.insert(coll.to_string(), cv);
    Ok(cv)
}

/// One write transaction for the whole batch (one WAL commit, one fsync with `powerLoss`).
/// The collection's cv is read once, under the write lock, and each commit then takes one
/// round trip — its statements bound with the next cv — because a refused ov check writes
/// nothing (the statements are chained on `changes()`). A statement that fails outright
/// (disk full, I/O) may have left part of its commit behind: that transaction is rolled
/// back and the batch re-run with a savepoint per commit, so a failed commit is rolled back
/// alone. `Err` when the transaction itself failed: then nothing committed.
pub(crate) async fn commit_batch(
    pool: &SqlitePool,
    cache: &CvCache,
    tables: (&str, &str),
    coll: &str,
    commits: &[Commit],
) -> Result<Vec<Result<u64>>> {
    let mut cvs = cache.lock().await;
    cvs.remove(coll);
    let out = match batch_chained(pool, tables, coll, commits).await? {
        Some(out) => out,
        None => batch_isolated(pool, tables, coll, commits).await?,
    };
    if let Some(&cv) = out.iter().filter_map(|r| r.as_ref().ok()).max() {
        cvs.insert(coll.to_string(), cv);
    }
    Ok(out)
}

/// The batch with one round trip per commit; `None` when a statement failed (its
/// transaction rolled back: nothing committed).
async fn batch_chained(
    pool: &SqlitePool,
    tables: (&str, &str),
    coll: &str,
    commits: &[Commit],
) -> Result<Option<Vec<Result<u64>>>> {
    let mut tx = begin_immediate(pool).await?;
    let mut last = read_cv(&mut tx, coll).await?;
    // The statements' two texts, built once for the batch.
    let upsert = statements(tables, HeadAction::Upsert, false);
    let remove = statements(tables, HeadAction::Remove, false);
    let mut out = Vec::with_capacity(commits.len());
    for c in commits {
        let r = if c.prune_below_ov.is_some() {
            // Pruning runs statements the chain does not cover: a savepoint of its own.
            isolated(&mut tx, tables, coll, c).await?
        } else {
            let sql = match c.head {
                HeadAction::Upsert => &upsert,
                HeadAction::Remove => &remove,
            };
            match chained(&mut tx, sql, tables.1, coll, c, last).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(
                        collection = coll,
                        error = %e,
                        "SQLite batch statement failed: re-running the batch with a savepoint \
                         per commit"
                    );
                    tx.rollback().await.map_err(|e| map_err(e, "rollback"))?;
                    return Ok(None);
                }
            }
        };
        if let Ok(cv) = &r {
            last = *cv;
        }
        out.push(r);
    }
    tx.commit().await.map_err(|e| map_err(e, "commit"))?;
    Ok(Some(out))
}

/// The batch with a savepoint per commit.
async fn batch_isolated(
    pool: &SqlitePool,
    tables: (&str, &str),
    coll: &str,
    commits: &[Commit],
) -> Result<Vec<Result<u64>>> {
    let mut tx = begin_immediate(pool).await?;
    let mut out = Vec::with_capacity(commits.len());
    for c in commits {
        out.push(isolated(&mut tx, tables, coll, c).await?);
    }
    tx.commit().await.map_err(|e| map_err(e, "commit"))?;
    Ok(out)
}

/// [`commit_in`] inside a savepoint, rolled back when the commit fails. The outer `Err` is
/// a savepoint statement's failure (the transaction's).
async fn isolated(
    db: &mut sqlx::SqliteConnection,
    tables: (&str, &str),
    coll: &str,
    c: &Commit,
) -> Result<Result<u64>> {
    savepoint(db, "SAVEPOINT chronos_batch").await?;
    let r = commit_in(db, tables, coll, c).await;
    if r.is_err() {
        savepoint(db, "ROLLBACK TO chronos_batch").await?;
    }
    savepoint(db, "RELEASE chronos_batch").await?;
    Ok(r)
}

/// One commit's statements `sql` (see [`statements`], without the deadline) run with the
/// collection's cv `last`, read under the write lock this transaction holds (table `ver`
/// names the ov a refused check conflicts with): the inner `Err` is this commit's refusal
/// (nothing written), the outer a failed statement (which may have written part of it).
async fn chained(
    db: &mut sqlx::SqliteConnection,
    sql: &str,
    ver: &str,
    coll: &str,
    c: &Commit,
    last: u64,
) -> Result<Result<u64>> {
    if let Err(e) = c.check_deadline(coll, chronos_core::time::now_ms()) {
        return Ok(Err(e));
    }
    let rows = bind(sql, coll, c, last)
        .fetch_all(&mut *db)
        .await
        .map_err(|e| map_err(e, "commit version"))?;
    match first_cv(&rows)? {
        Some(cv) => Ok(Ok(cv)),
        None => Ok(Err(conflict(db, ver, coll, c).await?)),
    }
}

/// The cv the version insert returned, if it inserted.
fn first_cv(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Option<u64>> {
    rows.first()
        .map(|row| {
            row.try_get::<i64, _>(0)
                .map(|cv| cv as u64)
                .map_err(|e| map_err(e, "read cv"))
        })
        .transpose()
}

/// The collection's last cv, read inside the caller's transaction.
async fn read_cv(db: &mut sqlx::SqliteConnection, coll: &str) -> Result<u64> {
    let cv: i64 =
        sqlx::query_scalar("SELECT COALESCE((SELECT cv FROM chronos_counters WHERE coll = ?), 0)")
            .bind(coll)
            .fetch_one(&mut *db)
            .await
            .map_err(|e| map_err(e, "read cv"))?;
    Ok(cv as u64)
}

/// The conflict error of a commit whose ov check refused it (the cv it was bound with was
/// read under the write lock, so the ov is what failed), naming the latest committed ov.
async fn conflict(
    db: &mut sqlx::SqliteConnection,
    ver: &str,
    coll: &str,
    c: &Commit,
) -> Result<Error> {
    let v = &c.version;
    let latest: Option<i64> =
        sqlx::query_scalar(&format!("SELECT MAX(ov) FROM {ver} WHERE item_id = ?"))
            .bind(v.item_id.to_string())
            .fetch_one(&mut *db)
            .await
            .map_err(|e| {
                map_err(e, "read latest ov")
                    .with("collection", coll)
                    .with("id", v.item_id)
            })?;
    Ok(Error::conflict(format!(
        "cannot commit ov {} of {}: latest committed ov is {latest:?}",
        v.ov, v.item_id
    ))
    .with("collection", coll)
    .with("id", v.item_id))
}

/// The one-round-trip commit with `last` as the collection's last cv: `Some(cv)` when it
/// committed, `None` when a check refused it (nothing was written). The commit comes back
/// unless the task running it panicked.
async fn fast(
    pool: &SqlitePool,
    (head, ver): (&str, &str),
    coll: &str,
    c: Commit,
    last: u64,
) -> (Option<Commit>, Result<Option<u64>>) {
    let conn = match pool.acquire().await {
        Ok(conn) => OwnTransaction(Some(conn)),
        Err(e) => return (Some(c), Err(map_err(e, "acquire"))),
    };
    let sql = format!(
        "BEGIN IMMEDIATE;
         {}
         COMMIT;",
        statements((head, ver), c.head, true)
    );
    let coll = coll.to_string();
    // A task of its own, so that a caller who stops waiting cannot stop the statements
    // between BEGIN and COMMIT (sqlx stops at the statement it is on when nobody reads).
    let task = tokio::spawn(async move {
        let r = run(conn, &sql, &coll, &c, last).await;
        (c, r)
    });
    match task.await {
        Ok((c, r)) => (Some(c), r),
        Err(e) => (
            None,
            Err(Error::internal(format!("SQLite commit task failed: {e}"))),
        ),
    }
}

/// Runs the fast path's statements on `conn` and hands it back to the pool with no
/// transaction open.
async fn run(
    mut conn: OwnTransaction,
    sql: &str,
    coll: &str,
    c: &Commit,
    last: u64,
) -> Result<Option<u64>> {
    let result = bind(sql, coll, c, last).fetch_all(&mut **conn.get()).await;
    match result {
        Ok(rows) => {
            conn.release();
            first_cv(&rows)
        }
        Err(e) => {
            // A statement failed and may have left the transaction open: roll it back (an
            // error here is "no transaction is active" when BEGIN itself failed), or close
            // the connection if even that fails.
            match sqlx::query("ROLLBACK").execute(&mut **conn.get()).await {
                Ok(_) => conn.release(),
                Err(r) if r.to_string().contains("no transaction is active") => conn.release(),
                Err(r) => {
                    tracing::warn!(error = %r, "SQLite rollback after a failed commit failed")
                }
            }
            Err(map_err(e, "commit version"))
        }
    }
}

/// A pooled connection running statements that open and end their own transaction. Dropped
/// before [`OwnTransaction::release`] — the caller's future was cancelled mid-statement (sqlx
/// then stops at the statement it was on), or a rollback failed — it is closed rather than
/// returned to the pool: closing rolls back whatever is open on it, and a pooled connection
/// inside a transaction would hold the write lock for every later writer.
struct OwnTransaction(Option<PoolConnection<Sqlite>>);

impl OwnTransaction {
    fn get(&mut self) -> &mut PoolConnection<Sqlite> {
        self.0.as_mut().expect("used before release")
    }

    /// Hands the connection back to the pool: its statements ended their transaction.
    fn release(mut self) {
        self.0.take();
    }
}

impl Drop for OwnTransaction {
    fn drop(&mut self) {
        if let Some(conn) = self.0.as_mut() {
            tracing::debug!("closing a SQLite connection whose transaction may still be open");
            conn.close_on_drop();
        }
    }
}

/// The statements of one commit (see the module docs): the version insert returning its cv
/// — checked against the counter and, when `deadline`, the write attempt's deadline — then
/// the counter bump and the head statement, each only when the statement before it changed a
/// row. Parameters are numbered, so each statement takes the ones it needs.
fn statements((head, ver): (&str, &str), action: HeadAction, deadline: bool) -> String {
    let head_sql = match action {
        HeadAction::Upsert => format!(
            "INSERT INTO {head} ({HEAD_COLS})
               SELECT ?1, ?2, ?18, ?8, ?9, ?10, ?11, ?13, ?5, ?14, ?15, ?16, ?17, ?20
               WHERE changes() = 1
             ON CONFLICT(item_id) DO UPDATE SET ov = excluded.ov, cv = excluded.cv, blob_key = excluded.blob_key,
               meta = excluded.meta, size = excluded.size, checksum = excluded.checksum,
               created_at = excluded.created_at, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at,
               shadow = excluded.shadow, shadow_expires = excluded.shadow_expires, lineage = excluded.lineage,
               chain = excluded.chain;"
        ),
        HeadAction::Remove => {
            format!("DELETE FROM {head} WHERE item_id = ?1 AND changes() = 1;")
        }
    };
    // The plain path checks the deadline in Rust, under the write lock it already holds.
    let deadline = if deadline {
        "AND (?21 IS NULL OR unixepoch('subsec') * 1000 <= ?21)"
    } else {
        ""
    };
    format!(
        "INSERT INTO {ver} ({VER_COLS})
           SELECT ?1, ?2, ?18, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?19
           WHERE COALESCE((SELECT MAX(ov) FROM {ver} WHERE item_id = ?1), -1) = ?2 - 1
             AND COALESCE((SELECT cv FROM chronos_counters WHERE coll = ?3), 0) = ?18 - 1
             {deadline}
           RETURNING cv;
         INSERT INTO chronos_counters (coll, cv) SELECT ?3, 1 WHERE changes() = 1
           ON CONFLICT(coll) DO UPDATE SET cv = cv + 1;
         {head_sql}"
    )
}

/// [`statements`] bound for `c` taking cv `last + 1`.
fn bind<'q>(
    sql: &'q str,
    coll: &'q str,
    c: &'q Commit,
    last: u64,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    let v = &c.version;
    let cv = last + 1;
    let seal = v.seal(cv);
    sqlx::query(sql)
        .bind(v.item_id.to_string())
        .bind(v.ov as i64)
        .bind(coll)
        .bind(v.op.as_str())
        .bind(v.at.as_millisecond())
        .bind(v.actor.as_deref())
        .bind(v.reason.as_deref())
        .bind(v.blob_key.as_str())
        .bind(Value::Object(v.meta.clone()).to_string())
        .bind(v.size as i64)
        .bind(v.checksum.as_str())
        .bind(v.prev_ov.map(|p| p as i64))
        .bind(c.created_at.as_millisecond())
        .bind(v.is_tombstone().then(|| v.at.as_millisecond()))
        .bind(c.shadow.as_ref().map(|s| s.json.as_str()))
        .bind(c.shadow.as_ref().map(|s| s.expires_at.as_millisecond()))
        .bind(serde_json::to_string(&c.lineage).expect("lineage serializes"))
        .bind(cv as i64)
        .bind(
            seal.as_ref()
                .map(|s| serde_json::to_string(s).expect("seal serializes")),
        )
        .bind(seal.map(|s| s.hash))
        .bind(c.not_after.map(|t| t.as_millisecond()))
}

/// The statements of one commit, run on `db` inside an open write transaction (the caller
/// commits it, or rolls it back on an error).
async fn commit_in(
    db: &mut sqlx::SqliteConnection,
    tables: (&str, &str),
    coll: &str,
    c: &Commit,
) -> Result<u64> {
    let v = &c.version;
    let ctx = |e: Error| e.with("collection", coll).with("id", v.item_id);
    let last = read_cv(db, coll).await.map_err(ctx)?;
    let sql = statements(tables, c.head, false);
    // The deadline is checked under the write lock: nothing between it and the COMMIT
    // waits on other writers.
    let cv = chained(db, &sql, tables.1, coll, c, last)
        .await
        .map_err(ctx)??;
    if let Some(below) = c.prune_below_ov {
        crate::prune::prune(db, coll, tables.1, &v.item_id.to_string(), below).await?;
    }
    Ok(cv)
}

/// A savepoint statement of a batch.
async fn savepoint(db: &mut sqlx::SqliteConnection, sql: &'static str) -> Result<()> {
    sqlx::query(sql)
        .execute(&mut *db)
        .await
        .map(|_| ())
        .map_err(|e| map_err(e, "savepoint"))
}

#[cfg(test)]
mod tests;
