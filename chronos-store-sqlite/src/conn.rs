//! Opening a database from a `sqlite://` URI, and mapping sqlx errors to Chronos errors.

use std::str::FromStr;
use std::time::Duration;

use chronos_core::{Error, ErrorKind};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if needed) the database at `uri`: `sqlite://path/to/file.db`,
/// `sqlite:relative.db` or `sqlite::memory:`. Files use WAL mode so readers never block the
/// writer and several processes can share one file.
pub(crate) async fn open_pool(uri: &str, durable: bool) -> Result<SqlitePool, Error> {
    let memory = uri == "sqlite::memory:" || uri == "sqlite://:memory:";
    let opts = SqliteConnectOptions::from_str(uri)
        .map_err(|e| Error::invalid_config(format!("invalid SQLite URI '{uri}': {e}")))?
        .create_if_missing(true)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(false)
        // Freed cells and pages are zeroed, so bytes a write replaced (an old head's
        // metadata, an erased record's entries) do not linger in the file's free space.
        .pragma("secure_delete", "ON")
        .with_regexp();
    let opts = if memory {
        opts
    } else {
        // NORMAL in WAL mode survives a process crash; FULL also a power loss (it syncs
        // the log at every commit).
        opts.journal_mode(SqliteJournalMode::Wal)
            .synchronous(if durable {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
    };
    // An in-memory database lives in one connection: keep exactly that one forever.
    let pool = if memory {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(8)
    };
    // No ping before handing out a connection (sqlx's default): a SQLite connection is a
    // file handle on a thread of this process, not a socket that goes stale, and the ping
    // is a round trip to that thread on every read and write (a create: 570 → 430 µs).
    pool.acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .connect_with(opts)
        .await
        .map_err(|e| map_err(e, "open database").with("uri", uri))
}

/// Maps a sqlx error: busy/locked/pool/IO failures are retryable (`Unavailable`), a unique
/// violation is `AlreadyExists`, the rest `Internal`.
pub(crate) fn map_err(e: sqlx::Error, op: &str) -> Error {
    let kind = match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => ErrorKind::AlreadyExists,
        sqlx::Error::Database(db) => {
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), including extended codes.
            let code = db.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
            match code & 0xff {
                5 | 6 => ErrorKind::Unavailable,
                // SQLITE_FULL, SQLITE_IOERR, SQLITE_CANTOPEN: the disk, not the data.
                13 => {
                    return Error::unavailable(format!(
                        "SQLite {op} failed: the disk is full (free space, then retry; nothing \
                         was committed)"
                    ))
                    .with_source(e)
                }
                10 | 14 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("SQLite {op} failed: {e}")).with_source(e)
}

/// A pooled connection in a `BEGIN IMMEDIATE` transaction: it takes the write lock first, so
/// concurrent writers (also in other processes) queue on the busy timeout instead of failing
/// on a read-to-write lock upgrade.
pub(crate) async fn begin_immediate(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, Error> {
    pool.begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| map_err(e, "begin"))
}

/// Quotes an identifier built from a validated collection name.
pub(crate) fn ident(name: &str) -> String {
    debug_assert!(!name.is_empty());
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The table-name stem of a collection. SQLite compares identifiers case-insensitively, so
/// `users` and `Users` would share tables: the stem is an injective encoding in which no
/// two collection names meet — upper-case letters become `^` + the lower-case letter, and a
/// name starting with SQLite's reserved `sqlite_` gets a `~` in front (neither character can
/// appear in a collection name). Names in lower case, the common case, are unchanged, so
/// their tables keep the names earlier releases gave them.
pub(crate) fn table_stem(coll: &str) -> String {
    let mut out = String::with_capacity(coll.len() + 4);
    if coll.to_ascii_lowercase().starts_with("sqlite_") {
        out.push('~');
    }
    for c in coll.chars() {
        if c.is_ascii_uppercase() {
            out.push('^');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A SQL string literal.
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::{map_err, table_stem};

    /// A full disk (here: a database at its page limit) is `Unavailable` saying so, not
    /// `Internal`.
    #[tokio::test]
    async fn a_full_disk_is_unavailable() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::raw_sql("CREATE TABLE t (b BLOB); PRAGMA max_page_count = 8;")
            .execute(&pool)
            .await
            .unwrap();
        let mut err = None;
        for _ in 0..64 {
            if let Err(e) = sqlx::query("INSERT INTO t VALUES (zeroblob(4096))")
                .execute(&pool)
                .await
            {
                err = Some(e);
                break;
            }
        }
        let e = map_err(err.expect("the page limit was reached"), "commit");
        assert_eq!(e.kind(), chronos_core::ErrorKind::Unavailable, "{e}");
        assert!(e.to_string().contains("disk is full"), "{e}");
    }

    #[test]
    fn table_stems_are_injective_and_case_free() {
        // Valid collection names only: `^` and `~` cannot occur in one, which is what makes
        // the escapes unambiguous.
        let names = [
            "users",
            "Users",
            "USERS",
            "uSers",
            "sqlite_master",
            "SQLITE_master",
            "Sqlite_x",
            "sqlite_x",
            "a-b.c_d",
            "_x",
        ];
        let stems: Vec<String> = names.iter().map(|n| table_stem(n)).collect();
        for (i, a) in stems.iter().enumerate() {
            assert!(!a.chars().any(|c| c.is_ascii_uppercase()), "{a}");
            assert!(!a.to_ascii_lowercase().starts_with("sqlite_"), "{a}");
            for b in &stems[i + 1..] {
                assert_ne!(a.to_ascii_lowercase(), b.to_ascii_lowercase());
            }
        }
        assert_eq!(
            table_stem("users"),
            "users",
            "lower-case names keep their tables"
        );
    }
}
