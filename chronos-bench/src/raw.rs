//! The raw baselines: what one record costs without Chronos — one index write in its own
//! transaction (SQLite) or one `insert_one` (MongoDB), one blob put of the same payload; one
//! read by key and one blob get; the raw filtered query, alone (head-only) and followed by
//! fetching and parsing every payload of the page (what a user must do to get the records).

use std::path::Path;
use std::sync::Arc;

use mongodb::bson::{doc, Document};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde_json::Value;
use sqlx::{Connection, SqlitePool};

pub(crate) enum RawIndex {
    Sqlite(SqlitePool),
    Mongo(mongodb::Collection<Document>),
}

impl RawIndex {
    pub(crate) async fn sqlite(path: &Path) -> Result<Self, String> {
        use std::str::FromStr;
        let opts =
            sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
                .map_err(|e| e.to_string())?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql(
            "CREATE TABLE raw (id TEXT PRIMARY KEY, meta TEXT NOT NULL) WITHOUT ROWID;
             CREATE INDEX raw_status ON raw (json_extract(meta, '$.status'));",
        )
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
        Ok(Self::Sqlite(pool))
    }

    pub(crate) async fn mongo(uri: &str, db: &str) -> Result<Self, String> {
        // Pooled the way Chronos pools its own connections.
        let mut opts = mongodb::options::ClientOptions::parse(uri)
            .await
            .map_err(|e| e.to_string())?;
        opts.max_idle_time
            .get_or_insert(chronos_store_mongo::DEFAULT_MAX_IDLE);
        let client = mongodb::Client::with_options(opts).map_err(|e| e.to_string())?;
        let coll = client.database(db).collection::<Document>("raw");
        coll.create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"meta.status": 1})
                .build(),
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(Self::Mongo(coll))
    }

    pub(crate) async fn insert(&self, id: &str, meta: &Value) {
        match self {
            Self::Sqlite(pool) => {
                let mut conn = pool.acquire().await.expect("raw connection");
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.expect("raw begin");
                sqlx::query("INSERT INTO raw (id, meta) VALUES (?, ?)")
                    .bind(id)
                    .bind(meta.to_string())
                    .execute(&mut *tx)
                    .await
                    .expect("raw insert");
                tx.commit().await.expect("raw commit");
            }
            Self::Mongo(c) => {
                let meta = mongodb::bson::to_document(meta).expect("bson");
                c.insert_one(doc! {"_id": id, "meta": meta})
                    .await
                    .expect("raw insert_one");
            }
        }
    }

    pub(crate) async fn get(&self, id: &str) {
        match self {
            Self::Sqlite(pool) => {
                let row: Option<String> = sqlx::query_scalar("SELECT meta FROM raw WHERE id = ?")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
                    .expect("raw get");
                assert!(row.is_some());
            }
            Self::Mongo(c) => {
                assert!(c
                    .find_one(doc! {"_id": id})
                    .await
                    .expect("raw find_one")
                    .is_some());
            }
        }
    }

    /// Deletes one row by key (its own transaction / one `delete_one`).
    pub(crate) async fn delete(&self, id: &str) {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query("DELETE FROM raw WHERE id = ?")
                    .bind(id)
                    .execute(pool)
                    .await
                    .expect("raw delete");
            }
            Self::Mongo(c) => {
                c.delete_one(doc! {"_id": id})
                    .await
                    .expect("raw delete_one");
            }
        }
    }

    pub(crate) async fn ids(&self, n: usize) -> Vec<String> {
        match self {
            Self::Sqlite(pool) => sqlx::query_scalar("SELECT id FROM raw LIMIT ?")
                .bind(n as i64)
                .fetch_all(pool)
                .await
                .expect("raw ids"),
            Self::Mongo(c) => mongo_ids(c, doc! {}, false, n).await,
        }
    }

    /// Up to `limit` rows whose id starts with `prefix`, after `after`, in id order: one page
    /// of a full scan (ids and metadata read, as a reader of every entry reads them).
    pub(crate) async fn scan(&self, prefix: &str, after: &str, limit: usize) -> Vec<String> {
        let from = if after.is_empty() { prefix } else { after };
        let to = format!("{prefix}\u{10ffff}");
        match self {
            Self::Sqlite(pool) => {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT id, meta FROM raw WHERE id > ? AND id < ? ORDER BY id LIMIT ?",
                )
                .bind(from)
                .bind(&to)
                .bind(limit as i64)
                .fetch_all(pool)
                .await
                .expect("raw scan");
                rows.into_iter().map(|(id, _)| id).collect()
            }
            Self::Mongo(c) => {
                mongo_ids(c, doc! {"_id": {"$gt": from, "$lt": &to}}, true, limit).await
            }
        }
    }

    /// One page of the raw query with each row's document as the application gets it: the
    /// metadata (the whole document, in this table) parsed — what a devShadow page returns
    /// without reading a payload. MongoDB's driver decodes the documents it returns anyway.
    /// How many came back.
    pub(crate) async fn list_parsed(&self, status: &str, limit: usize) -> usize {
        match self {
            Self::Sqlite(pool) => {
                let rows = sqlite_page(pool, status, limit).await;
                let docs: Vec<(String, serde_json::Value)> = rows
                    .into_iter()
                    .map(|(id, meta)| (id, serde_json::from_str(&meta).expect("raw meta is JSON")))
                    .collect();
                assert!(!docs.is_empty());
                docs.len()
            }
            Self::Mongo(_) => self.list(status, limit).await.len(),
        }
    }

    /// The ids of one page of the raw query (head-only: no payload).
    pub(crate) async fn list(&self, status: &str, limit: usize) -> Vec<String> {
        match self {
            Self::Sqlite(pool) => {
                let rows = sqlite_page(pool, status, limit).await;
                assert!(!rows.is_empty());
                rows.into_iter().map(|(id, _)| id).collect()
            }
            Self::Mongo(c) => {
                let ids = mongo_ids(c, doc! {"meta.status": status}, true, limit).await;
                assert!(!ids.is_empty());
                ids
            }
        }
    }
}

/// `(id, meta)` of one page of the raw SQLite query.
async fn sqlite_page(pool: &sqlx::SqlitePool, status: &str, limit: usize) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT id, meta FROM raw WHERE json_extract(meta, '$.status') = ? ORDER BY id LIMIT ?",
    )
    .bind(status)
    .bind(limit as i64)
    .fetch_all(pool)
    .await
    .expect("raw list")
}

/// The `_id`s of up to `limit` documents matching `filter` (in `_id` order when `sorted`).
async fn mongo_ids(
    c: &mongodb::Collection<Document>,
    filter: Document,
    sorted: bool,
    limit: usize,
) -> Vec<String> {
    use futures::TryStreamExt;
    let find = c.find(filter).limit(limit as i64);
    let find = if sorted {
        find.sort(doc! {"_id": 1})
    } else {
        find
    };
    let docs: Vec<Document> = find
        .await
        .expect("raw find")
        .try_collect()
        .await
        .expect("raw find results");
    docs.iter()
        .filter_map(|d| d.get_str("_id").ok().map(str::to_string))
        .collect()
}

/// Raw blob puts and gets through `object_store` directly (the local filesystem, or the same
/// S3/Azure bucket Chronos uses), as Chronos's blob store does them.
pub(crate) struct RawBlob(Arc<dyn ObjectStore>);

impl RawBlob {
    pub(crate) fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self(store)
    }

    pub(crate) fn local(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| e.to_string())?;
        Ok(Self(Arc::new(fs)))
    }

    pub(crate) async fn put(&self, key: &str, bytes: Vec<u8>) {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.0
            .put_opts(&ObjPath::from(key), PutPayload::from(bytes), opts)
            .await
            .expect("raw put");
    }

    pub(crate) async fn get(&self, key: &str) -> bytes::Bytes {
        self.0
            .get(&ObjPath::from(key))
            .await
            .expect("raw get")
            .bytes()
            .await
            .expect("raw bytes")
    }

    pub(crate) async fn delete(&self, key: &str) {
        self.0
            .delete(&ObjPath::from(key))
            .await
            .expect("raw delete");
    }

    /// What a careful user writes by hand to get a page of records: every payload fetched
    /// concurrently (as many at a time as Chronos fetches) and parsed.
    pub(crate) async fn get_all_parsed(&self, keys: Vec<String>, concurrency: usize) -> usize {
        use futures::StreamExt;
        futures::stream::iter(keys)
            .map(|k| async move {
                let bytes = self.get(&k).await;
                serde_json::from_slice::<Value>(&bytes).expect("raw payload parses")
            })
            .buffered(concurrency)
            .count()
            .await
    }
}
