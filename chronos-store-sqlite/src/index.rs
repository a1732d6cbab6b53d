//! [`IndexStore`] on SQLite: one `<coll>_head` and one `<coll>_ver` table per collection and a
//! shared `chronos_counters` table. A commit is one `BEGIN IMMEDIATE` transaction
//! ([`crate::commit`]).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chronos_core::{
    Commit, Error, FeedPage, HeadEntry, HeadQuery, IndexCapabilities, IndexStore, ItemId, Point,
    Result, SortField, VersionEntry,
};
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, SqlitePool};

use crate::commit::CvCache;
use crate::conn::{begin_immediate, ident, literal, map_err, table_stem};
use crate::rows::{self, head_from_row, version_from_row, HEAD_COLS, VER_COLS};
use crate::sql_filter::{self, Bind, Sql};

/// Fewer placeholders than SQLite's default limit (32,766) in one statement.
const MAX_BINDS: usize = 30_000;

/// The SQLite index store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SqliteIndexStore {
    pool: SqlitePool,
    /// Collections whose tables exist (created once per process, not per call).
    ready: Mutex<HashSet<String>>,
    /// Tables of older releases renamed ([`migrate_case_sensitive_names`]), once per store.
    migrated: tokio::sync::OnceCell<()>,
    /// Each prepared collection's indexed properties (which have expression indexes), so a
    /// list page can walk them ([`sql_filter::branches`]).
    indexed: Mutex<HashMap<String, HashSet<String>>>,
    /// Each collection's last cv, for one-round-trip commits ([`crate::commit`]).
    cvs: CvCache,
}

pub(crate) fn tables(coll: &str) -> (String, String) {
    let stem = table_stem(coll);
    (
        ident(&format!("{stem}_head")),
        ident(&format!("{stem}_ver")),
    )
}

/// Renames tables that releases before [`table_stem`] named after collections with upper-case
/// letters (`Users_head`) to their encoded names (`^users_head`), and drops their indexes,
/// whose names would collide case-insensitively; `ensure` recreates them. Encoded names never
/// contain upper-case letters, so those that do are exactly the old ones. Idempotent.
async fn migrate_case_sensitive_names(pool: &SqlitePool) -> Result<()> {
    let legacy: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND (name LIKE '%\\_head' ESCAPE '\\' OR name LIKE '%\\_ver' ESCAPE '\\')
           AND name <> lower(name)",
    )
    .fetch_all(pool)
    .await
    .map_err(|e| map_err(e, "list tables to migrate"))?;
    for old in legacy {
        let (coll, suffix) = old.rsplit_once('_').expect("matched a suffix");
        let new = format!("{}_{suffix}", table_stem(coll));
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        )
        .bind(&old)
        .fetch_all(pool)
        .await
        .map_err(|e| map_err(e, "list indexes to migrate"))?;
        let mut ddl = String::from("BEGIN IMMEDIATE;");
        for i in indexes {
            ddl.push_str(&format!("DROP INDEX {};", ident(&i)));
        }
        ddl.push_str(&format!(
            "ALTER TABLE {} RENAME TO {}; COMMIT;",
            ident(&old),
            ident(&new)
        ));
        sqlx::raw_sql(&ddl)
            .execute(pool)
            .await
            .map_err(|e| map_err(e, "migrate table name").with("table", &old))?;
        tracing::info!(from = %old, to = %new, "renamed a table to its case-preserving name");
    }
    Ok(())
}

pub(crate) fn bind_all(binds: &[Bind]) -> Result<SqliteArguments<'static>> {
    let mut args = SqliteArguments::default();
    for b in binds {
        let r = match b {
            Bind::Int(i) => args.add(*i),
            Bind::Real(f) => args.add(*f),
            Bind::Text(s) => args.add(s.clone()),
        };
        r.map_err(|e| Error::internal(format!("cannot bind query argument: {e}")))?;
    }
    Ok(args)
}

impl SqliteIndexStore {
    pub(crate) fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            ready: Mutex::new(HashSet::new()),
            migrated: tokio::sync::OnceCell::new(),
            indexed: Mutex::new(HashMap::new()),
            cvs: CvCache::default(),
        }
    }

    fn is_ready(&self, coll: &str) -> bool {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(coll)
    }

    async fn ensure(&self, coll: &str) -> Result<()> {
        if self.is_ready(coll) {
            return Ok(());
        }
        chronos_core::engine::validate_collection_name(coll)?;
        self.migrated
            .get_or_try_init(|| migrate_case_sensitive_names(&self.pool))
            .await?;
        let (head, ver) = tables(coll);
        let stem = table_stem(coll);
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS chronos_counters (coll TEXT PRIMARY KEY, cv INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS chronos_feed_pruned (coll TEXT PRIMARY KEY, cv INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS {ver} (item_id TEXT NOT NULL, ov INTEGER NOT NULL, cv INTEGER NOT NULL,
               op TEXT NOT NULL, at INTEGER NOT NULL, actor TEXT, reason TEXT, blob_key TEXT NOT NULL,
               meta TEXT NOT NULL, size INTEGER NOT NULL, checksum TEXT NOT NULL, prev_ov INTEGER,
               seal TEXT, PRIMARY KEY (item_id, ov)) WITHOUT ROWID;
             CREATE UNIQUE INDEX IF NOT EXISTS {} ON {ver} (cv);
             CREATE INDEX IF NOT EXISTS {} ON {ver} (item_id, at);
             CREATE INDEX IF NOT EXISTS {} ON {ver} (item_id, cv);
             CREATE INDEX IF NOT EXISTS {} ON {ver} (at);
             CREATE TABLE IF NOT EXISTS {head} (item_id TEXT PRIMARY KEY, ov INTEGER NOT NULL, cv INTEGER NOT NULL,
               blob_key TEXT NOT NULL, meta TEXT NOT NULL, size INTEGER NOT NULL, checksum TEXT NOT NULL,
               created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER,
               shadow TEXT, shadow_expires INTEGER, lineage TEXT, chain TEXT) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS {} ON {head} (updated_at);
             CREATE INDEX IF NOT EXISTS {} ON {head} (created_at);",
            ident(&format!("{stem}_ver_cv")),
            ident(&format!("{stem}_ver_item_at")),
            ident(&format!("{stem}_ver_item_cv")),
            ident(&format!("{stem}_ver_at")),
            ident(&format!("{stem}_head_updated")),
            ident(&format!("{stem}_head_created")),
        );
        sqlx::raw_sql(&ddl)
            .execute(&self.pool)
            .await
            .map_err(|e| map_err(e, "create tables").with("collection", coll))?;
        // Tables created by earlier releases lack later columns (devShadow's, lineage, the
        // seal and the head's chain hash): add them in place.
        for (table, added) in [
            (
                "head",
                &[
                    ("shadow", "TEXT"),
                    ("shadow_expires", "INTEGER"),
                    ("lineage", "TEXT"),
                    ("chain", "TEXT"),
                ][..],
            ),
            ("ver", &[("seal", "TEXT")][..]),
        ] {
            let name = format!("{stem}_{table}");
            let columns: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT name FROM pragma_table_info({})",
                literal(&name)
            ))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_err(e, "inspect table").with("collection", coll))?;
            for (col, ty) in added {
                if !columns.iter().any(|c| c == col) {
                    sqlx::raw_sql(&format!(
                        "ALTER TABLE {} ADD COLUMN {col} {ty};",
                        ident(&name)
                    ))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "migrate table").with("collection", coll))?;
                }
            }
        }
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(coll.to_string());
        Ok(())
    }
}

#[async_trait]
impl IndexStore for SqliteIndexStore {
    fn capabilities(&self) -> IndexCapabilities {
        IndexCapabilities::new(true)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| map_err(e, "ping"))
    }

    async fn database_id(&self) -> Result<String> {
        // Insert-if-absent, then read: concurrent first calls (in any process) agree.
        let id: String = sqlx::query_scalar(
            "CREATE TABLE IF NOT EXISTS chronos_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
             INSERT OR IGNORE INTO chronos_meta (key, value) VALUES ('database_id', ?1);
             SELECT value FROM chronos_meta WHERE key = 'database_id';",
        )
        .bind(chronos_core::new_database_id())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| map_err(e, "read database id"))?;
        Ok(id)
    }

    async fn prepare(&self, coll: &str, indexed_props: &[String]) -> Result<()> {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(coll);
        self.ensure(coll).await?;
        let (head, _) = tables(coll);
        for (i, prop) in indexed_props.iter().enumerate() {
            chronos_core::filter::check_path(prop)?;
            let ddl = format!(
                "CREATE INDEX IF NOT EXISTS {} ON {head} ({})",
                ident(&format!(
                    "{}_head_meta_{i}_{}",
                    table_stem(coll),
                    prop.replace('.', "_")
                )),
                sql_filter::indexed_expr("meta", prop)
            );
            sqlx::raw_sql(&ddl)
                .execute(&self.pool)
                .await
                .map_err(|e| map_err(e, "create index").with("collection", coll))?;
        }
        self.indexed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(coll.to_string(), indexed_props.iter().cloned().collect());
        Ok(())
    }

    async fn commit(&self, coll: &str, c: Commit) -> Result<u64> {
        self.ensure(coll).await?;
        let (head, ver) = tables(coll);
        crate::commit::commit(&self.pool, &self.cvs, (&head, &ver), coll, c).await
    }

    /// One write transaction for the whole batch (one WAL commit, one fsync with
    /// `powerLoss`), a savepoint per commit so a refused one is rolled back alone.
    async fn commit_many(&self, coll: &str, commits: Vec<Commit>) -> Vec<Result<u64>> {
        let n = commits.len();
        let batch = async {
            self.ensure(coll).await?;
            let (head, ver) = tables(coll);
            crate::commit::commit_batch(&self.pool, &self.cvs, (&head, &ver), coll, &commits).await
        };
        match batch.await {
            Ok(out) => out,
            // Nothing of the batch committed: every commit reports it, the refused ones too.
            Err(e) => {
                let e = e.with("collection", coll);
                (0..n).map(|_| Err(e.replicate())).collect()
            }
        }
    }

    async fn prune_versions(&self, coll: &str, id: ItemId, below_ov: u64) -> Result<u64> {
        self.ensure(coll).await?;
        let (_, ver) = tables(coll);
        // In turn with this store's commits (see `CvCache`), not on SQLite's busy handler.
        let _turn = self.cvs.lock().await;
        let mut tx = begin_immediate(&self.pool)
            .await
            .map_err(|e| e.with("collection", coll))?;
        let n = crate::prune::prune(&mut tx, coll, &ver, &id.to_string(), below_ov).await?;
        tx.commit()
            .await
            .map_err(|e| map_err(e, "commit prune").with("collection", coll))?;
        Ok(n)
    }

    async fn scrub_versions(&self, coll: &str, id: ItemId, below_ov: u64) -> Result<u64> {
        self.ensure(coll).await?;
        let (_, ver) = tables(coll);
        let id = id.to_string();
        let turn = self.cvs.lock().await;
        let mut tx = begin_immediate(&self.pool)
            .await
            .map_err(|e| e.with("collection", coll))?;
        let n = crate::prune::scrub(&mut tx, coll, &ver, &id, below_ov).await?;
        tx.commit()
            .await
            .map_err(|e| map_err(e, "commit scrub").with("collection", coll))?;
        drop(turn);
        crate::prune::purge_wal(&self.pool, coll, &id).await?;
        Ok(n)
    }

    async fn repair_head(
        &self,
        coll: &str,
        id: ItemId,
        seen: Option<(u64, u64)>,
        latest_ov: u64,
        head: Option<HeadEntry>,
    ) -> Result<bool> {
        self.ensure(coll).await?;
        let (head_t, ver_t) = tables(coll);
        let _turn = self.cvs.lock().await;
        crate::repair::repair_head(
            &self.pool,
            coll,
            (&head_t, &ver_t),
            id,
            seen,
            latest_ov,
            head,
        )
        .await
    }

    async fn head(&self, coll: &str, id: ItemId) -> Result<Option<HeadEntry>> {
        self.ensure(coll).await?;
        let (head, _) = tables(coll);
        let row = sqlx::query(&format!("SELECT {HEAD_COLS} FROM {head} WHERE item_id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map_err(e, "read head").with("collection", coll))?;
        row.as_ref().map(head_from_row).transpose()
    }

    async fn version(&self, coll: &str, id: ItemId, ov: u64) -> Result<Option<VersionEntry>> {
        self.ensure(coll).await?;
        let (_, ver) = tables(coll);
        let row = sqlx::query(&format!(
            "SELECT {VER_COLS} FROM {ver} WHERE item_id = ? AND ov = ?"
        ))
        .bind(id.to_string())
        .bind(ov as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_err(e, "read version").with("collection", coll))?;
        row.as_ref().map(version_from_row).transpose()
    }

    async fn version_at(
        &self,
        coll: &str,
        id: ItemId,
        point: Point,
    ) -> Result<Option<VersionEntry>> {
        self.ensure(coll).await?;
        let (_, ver) = tables(coll);
        let (col, bound) = match point {
            Point::At(t) => ("at", t.as_millisecond()),
            Point::Cv(n) => ("cv", n.min(i64::MAX as u64) as i64),
        };
        let row = sqlx::query(&format!(
            "SELECT {VER_COLS} FROM {ver} WHERE item_id = ? AND {col} <= ? ORDER BY {col} DESC LIMIT 1"
        ))
        .bind(id.to_string())
        .bind(bound)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_err(e, "read version as of").with("collection", coll))?;
        row.as_ref().map(version_from_row).transpose()
    }

    async fn versions(
        &self,
        coll: &str,
        id: ItemId,
        after_ov: Option<u64>,
        limit: usize,
    ) -> Result<Vec<VersionEntry>> {
        self.ensure(coll).await?;
        let (_, ver) = tables(coll);
        let inner = format!(
            "SELECT {VER_COLS} FROM {ver} WHERE item_id = ? AND ov > ? ORDER BY ov LIMIT ?"
        );
        let page: String = sqlx::query_scalar(&rows::one_row(VER_COLS, &inner, "ov"))
            .bind(id.to_string())
            .bind(after_ov.map_or(-1, |a| a as i64))
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map_err(e, "read history").with("collection", coll))?;
        rows::versions_from_page(&page)
    }

    async fn scan_versions(
        &self,
        coll: &str,
        after: Option<(ItemId, u64)>,
        limit: usize,
    ) -> Result<Vec<VersionEntry>> {
        self.ensure(coll).await?;
        let (_, ver) = tables(coll);
        // A row-value comparison: one range of the (item_id, ov) primary key.
        let (id, ov) = after.map_or((String::new(), -1), |(id, ov)| (id.to_string(), ov as i64));
        let inner = format!(
            "SELECT {VER_COLS} FROM {ver} WHERE (item_id, ov) > (?, ?) ORDER BY item_id, ov LIMIT ?"
        );
        let page: String = sqlx::query_scalar(&rows::one_row(VER_COLS, &inner, "item_id, ov"))
            .bind(id)
            .bind(ov)
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map_err(e, "read the version log").with("collection", coll))?;
        rows::versions_from_page(&page)
    }

    async fn query_heads(&self, coll: &str, q: &HeadQuery) -> Result<Vec<HeadEntry>> {
        self.ensure(coll).await?;
        let (head, _) = tables(coll);
        let mut sql = Sql::default();
        let cond = sql_filter::translate(&q.filter, "h.meta", &mut sql);
        let keys: Vec<String> = match &q.sort.field {
            SortField::Id => vec!["h.item_id".into()],
            SortField::CreatedAt => vec!["h.created_at".into(), "h.item_id".into()],
            SortField::UpdatedAt => vec!["h.updated_at".into(), "h.item_id".into()],
            SortField::Meta(p) => {
                let (rank, val) = sql_filter::sort_exprs("h.meta", p);
                vec![rank, val, "h.item_id".into()]
            }
        };
        let sk = rows::sort_keys(&keys, q.sort.descending);
        let mut rest = cond;
        if !q.include_deleted {
            rest.push_str(" AND h.deleted_at IS NULL");
        }
        if let Some(after) = &q.after {
            let mut vals = match &q.sort.field {
                SortField::Id => vec![],
                SortField::CreatedAt | SortField::UpdatedAt => {
                    vec![Bind::Int(after.value.as_i64().ok_or_else(|| {
                        Error::validation("invalid cursor: bad instant")
                    })?)]
                }
                SortField::Meta(_) => {
                    let (r, v) = sql_filter::sort_binds(&after.value);
                    vec![r, v]
                }
            };
            vals.push(Bind::Text(after.id.to_string()));
            let op = if q.sort.descending { "<" } else { ">" };
            let placeholders = vec!["?"; vals.len()].join(", ");
            rest.push_str(&format!(" AND ({}) {op} ({placeholders})", keys.join(", ")));
            sql.binds.extend(vals);
        }
        let limit = Bind::Int(q.limit.min(i64::MAX as usize) as i64);
        let select = |pred: &str| {
            format!(
                "SELECT {HEAD_COLS}, {} FROM {head} h WHERE {pred}",
                sk.select
            )
        };
        let branches = {
            let indexed = self.indexed.lock().unwrap_or_else(|p| p.into_inner());
            let props = indexed.get(coll);
            sql_filter::branches(&q.filter, "h.meta", &|p| {
                props.is_some_and(|ps| ps.contains(p))
            })
        };
        let (text, binds) = match branches {
            // Each branch walks its index in the page's order and the union merges them,
            // pulling rows only until the page is full (the arrays' branch is sorted, but
            // holds only the records whose property is an array).
            Some(bs) if bs.len() * sql.binds.len() + 1 < MAX_BINDS => {
                let parts: Vec<String> = bs
                    .iter()
                    .map(|b| select(&format!("{b} AND {rest}")))
                    .collect();
                let mut binds: Vec<Bind> = std::iter::repeat_n(&sql.binds, bs.len())
                    .flatten()
                    .cloned()
                    .collect();
                binds.push(limit);
                let text = format!(
                    "{} ORDER BY {} LIMIT ?",
                    parts.join(" UNION ALL "),
                    sk.outer_order
                );
                (text, binds)
            }
            _ => {
                let text = format!("{} ORDER BY {} LIMIT ?", select(&rest), sk.inner_order);
                sql.binds.push(limit);
                (text, sql.binds)
            }
        };
        let page: String = sqlx::query_scalar_with(
            &rows::one_row(HEAD_COLS, &text, &sk.outer_order),
            bind_all(&binds)?,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| map_err(e, "query heads").with("collection", coll))?;
        rows::heads_from_page(&page)
    }

    async fn changed_items(
        &self,
        coll: &str,
        since: Point,
        after_id: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<ItemId>> {
        self.ensure(coll).await?;
        let (_, ver) = tables(coll);
        let (col, bound) = match since {
            Point::At(t) => ("at", t.as_millisecond()),
            Point::Cv(n) => ("cv", n.min(i64::MAX as u64) as i64),
        };
        let ids: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT DISTINCT item_id FROM {ver} WHERE {col} > ? AND item_id > ? ORDER BY item_id LIMIT ?"
        ))
        .bind(bound)
        .bind(after_id.map(|a| a.to_string()).unwrap_or_default())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_err(e, "list changed items").with("collection", coll))?;
        ids.iter().map(|s| rows::parse_id(s)).collect()
    }

    async fn current_cv(&self, coll: &str) -> Result<u64> {
        self.ensure(coll).await?;
        let cv: Option<i64> = sqlx::query_scalar("SELECT cv FROM chronos_counters WHERE coll = ?")
            .bind(coll)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map_err(e, "read cv").with("collection", coll))?;
        Ok(cv.unwrap_or(0) as u64)
    }

    /// cvs are assigned inside the commit's write transaction, which SQLite serialises, so
    /// every committed version is settled: read the counter, then everything up to it.
    async fn feed(&self, coll: &str, after_cv: u64, limit: usize) -> Result<FeedPage> {
        let upto = self.current_cv(coll).await?;
        let (_, ver) = tables(coll);
        let after = after_cv.min(i64::MAX as u64) as i64;
        let inner =
            format!("SELECT {VER_COLS} FROM {ver} WHERE cv > ? AND cv <= ? ORDER BY cv LIMIT ?");
        let page: String = sqlx::query_scalar(&rows::one_row(VER_COLS, &inner, "cv"))
            .bind(after)
            .bind(upto as i64)
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map_err(e, "read change feed").with("collection", coll))?;
        let versions = rows::versions_from_page(&page)?;
        // After the read: a prune that removed part of this range has raised it by now.
        let pruned: Option<i64> =
            sqlx::query_scalar("SELECT cv FROM chronos_feed_pruned WHERE coll = ?")
                .bind(coll)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_err(e, "read change feed").with("collection", coll))?;
        FeedPage::check_pruned(coll, after_cv, pruned.unwrap_or(0).max(0) as u64)?;
        Ok(FeedPage::up_to(versions, limit, after_cv, upto))
    }

    async fn aggregate(&self, coll: &str, q: &chronos_core::AggregateQuery) -> Result<Option<f64>> {
        self.ensure(coll).await?;
        let (head, _) = tables(coll);
        crate::aggregate::run(&self.pool, &head, q)
            .await
            .map_err(|e| e.with("collection", coll))
    }
}
