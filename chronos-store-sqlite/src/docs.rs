//! [`DocumentStore`] on SQLite: one `chronos_docs` table; the body as given plus a canonical
//! copy (`idx`) that filters and sorts run on.

use async_trait::async_trait;
use chronos_core::docs::{DocQuery, DocUpdate, Document, DocumentStore};
use chronos_core::filter::canonical;
use chronos_core::{Error, Filter, Result, SortField};
use serde_json::{Map, Value};
use sqlx::SqlitePool;

use crate::conn::{begin_immediate, map_err};
use crate::index::bind_all;
use crate::rows;
use crate::sql_filter::{self, Bind, Sql};

/// The SQLite document store.
#[derive(Debug)]
pub struct SqliteDocumentStore {
    pool: SqlitePool,
}

fn encode(body: &Map<String, Value>) -> (String, String) {
    let v = Value::Object(body.clone());
    (v.to_string(), canonical(&v).to_string())
}

fn decode(id: String, body: &str) -> Result<Document> {
    let body = serde_json::from_str(body)
        .map_err(|e| Error::internal(format!("stored document is not JSON: {e}")))?;
    Ok(Document { id, body })
}

impl SqliteDocumentStore {
    pub(crate) async fn new(pool: SqlitePool) -> Result<Self> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS chronos_docs (coll TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
               idx TEXT NOT NULL, PRIMARY KEY (coll, id)) WITHOUT ROWID",
        )
        .execute(&pool)
        .await
        .map_err(|e| map_err(e, "create document table"))?;
        Ok(Self { pool })
    }

    /// An update in one write transaction, with an optional precondition.
    async fn apply(
        &self,
        coll: &str,
        id: &str,
        expect: Option<&Filter>,
        update: DocUpdate,
        upsert: bool,
    ) -> Result<Option<Document>> {
        let mut tx = begin_immediate(&self.pool).await?;
        let db = &mut *tx;
        let current: Option<String> =
            sqlx::query_scalar("SELECT body FROM chronos_docs WHERE coll = ? AND id = ?")
                .bind(coll)
                .bind(id)
                .fetch_optional(&mut *db)
                .await
                .map_err(|e| map_err(e, "read document").with("collection", coll))?;
        let mut body = match current {
            Some(b) => {
                let body = decode(id.to_string(), &b)?.body;
                if !expect.is_none_or(|f| f.matches(&body)) {
                    return Ok(None);
                }
                body
            }
            None if upsert => Map::new(),
            None => return Ok(None),
        };
        update
            .apply(&mut body)
            .map_err(|e| e.with("collection", coll).with("id", id))?;
        let (text, idx) = encode(&body);
        sqlx::query(
            "INSERT INTO chronos_docs (coll, id, body, idx) VALUES (?, ?, ?, ?)
             ON CONFLICT(coll, id) DO UPDATE SET body = excluded.body, idx = excluded.idx",
        )
        .bind(coll)
        .bind(id)
        .bind(text)
        .bind(idx)
        .execute(&mut *db)
        .await
        .map_err(|e| map_err(e, "update document").with("collection", coll))?;
        tx.commit().await.map_err(|e| map_err(e, "commit"))?;
        Ok(Some(Document {
            id: id.to_string(),
            body,
        }))
    }

    fn where_clause(coll_filter: &Filter, sql: &mut Sql) -> String {
        sql_filter::translate(coll_filter, "d.idx", sql)
    }
}

#[async_trait]
impl DocumentStore for SqliteDocumentStore {
    async fn insert(&self, coll: &str, doc: Document) -> Result<()> {
        let (body, idx) = encode(&doc.body);
        sqlx::query("INSERT INTO chronos_docs (coll, id, body, idx) VALUES (?, ?, ?, ?)")
            .bind(coll)
            .bind(&doc.id)
            .bind(body)
            .bind(idx)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                let e = map_err(e, "insert document");
                let e = if e.kind() == chronos_core::ErrorKind::AlreadyExists {
                    Error::already_exists(format!("document '{}' already exists", doc.id))
                } else {
                    e
                };
                e.with("collection", coll).with("id", &doc.id)
            })?;
        Ok(())
    }

    async fn get(&self, coll: &str, id: &str) -> Result<Option<Document>> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM chronos_docs WHERE coll = ? AND id = ?")
                .bind(coll)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map_err(e, "read document").with("collection", coll))?;
        body.map(|b| decode(id.to_string(), &b)).transpose()
    }

    async fn replace(&self, coll: &str, doc: Document, upsert: bool) -> Result<bool> {
        let (body, idx) = encode(&doc.body);
        let sql = if upsert {
            "INSERT INTO chronos_docs (coll, id, body, idx) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(coll, id) DO UPDATE SET body = excluded.body, idx = excluded.idx"
        } else {
            "UPDATE chronos_docs SET body = ?3, idx = ?4 WHERE coll = ?1 AND id = ?2"
        };
        let r = sqlx::query(sql)
            .bind(coll)
            .bind(&doc.id)
            .bind(body)
            .bind(idx)
            .execute(&self.pool)
            .await
            .map_err(|e| map_err(e, "replace document").with("collection", coll))?;
        Ok(r.rows_affected() == 1)
    }

    async fn update(
        &self,
        coll: &str,
        id: &str,
        update: DocUpdate,
        upsert: bool,
    ) -> Result<Option<Document>> {
        self.apply(coll, id, None, update, upsert).await
    }

    async fn update_where(
        &self,
        coll: &str,
        id: &str,
        expect: &Filter,
        update: DocUpdate,
    ) -> Result<Option<Document>> {
        self.apply(coll, id, Some(expect), update, false).await
    }

    async fn delete(&self, coll: &str, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM chronos_docs WHERE coll = ? AND id = ?")
            .bind(coll)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| map_err(e, "delete document").with("collection", coll))?;
        Ok(r.rows_affected() == 1)
    }

    async fn find(&self, coll: &str, q: &DocQuery) -> Result<Vec<Document>> {
        let mut sql = Sql::default();
        sql.binds.push(Bind::Text(coll.to_string()));
        let cond = Self::where_clause(&q.filter, &mut sql);
        let (keys, descending): (Vec<String>, bool) = match &q.sort {
            Some((SortField::Meta(p), desc)) => {
                let (rank, val) = sql_filter::sort_exprs("d.idx", p);
                (vec![rank, val, "d.id".into()], *desc)
            }
            Some((_, desc)) => (vec!["d.id".into()], *desc),
            None => (vec!["d.id".into()], false),
        };
        let sk = rows::sort_keys(&keys, descending);
        let text = format!(
            "SELECT id, body, {} FROM chronos_docs d WHERE d.coll = ? AND {cond} ORDER BY {} LIMIT ? OFFSET ?",
            sk.select, sk.inner_order
        );
        sql.binds
            .push(Bind::Int(q.limit.min(i64::MAX as usize) as i64));
        sql.binds
            .push(Bind::Int(q.skip.min(i64::MAX as usize) as i64));
        let page: String = sqlx::query_scalar_with(
            &rows::one_row("id, body", &text, &sk.outer_order),
            bind_all(&sql.binds)?,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| map_err(e, "find documents").with("collection", coll))?;
        let docs: Vec<(String, String)> = serde_json::from_str(&page).map_err(rows::malformed)?;
        docs.into_iter()
            .map(|(id, body)| decode(id, &body))
            .collect()
    }

    async fn count(&self, coll: &str, filter: &Filter) -> Result<u64> {
        let mut sql = Sql::default();
        sql.binds.push(Bind::Text(coll.to_string()));
        let cond = Self::where_clause(filter, &mut sql);
        let n: i64 = sqlx::query_scalar_with(
            &format!("SELECT COUNT(*) FROM chronos_docs d WHERE d.coll = ? AND {cond}"),
            bind_all(&sql.binds)?,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| map_err(e, "count documents").with("collection", coll))?;
        Ok(n as u64)
    }

    async fn delete_where(&self, coll: &str, filter: &Filter) -> Result<u64> {
        let mut sql = Sql::default();
        sql.binds.push(Bind::Text(coll.to_string()));
        let cond = Self::where_clause(filter, &mut sql);
        let r = sqlx::query_with(
            &format!("DELETE FROM chronos_docs AS d WHERE d.coll = ? AND {cond}"),
            bind_all(&sql.binds)?,
        )
        .execute(&self.pool)
        .await
        .map_err(|e| map_err(e, "delete documents").with("collection", coll))?;
        Ok(r.rows_affected())
    }
}
