//! Databases written before table names preserved case: a collection `Users` had tables
//! `Users_head` / `Users_ver`, which SQLite also answered for `users`. Opening such a file
//! renames them to their encoded names, so `Users` keeps its records and `users` is a
//! collection of its own.

use std::sync::Arc;

use chronos_core::{CollectionConfig, CreateOptions, Engine, ListOptions, ReadOptions, Stores};
use chronos_store_sqlite::SqliteBackend;
use serde_json::json;

async fn engine(
    uri: &str,
    blob: &Arc<chronos_testkit::MemoryBlobStore>,
) -> (SqliteBackend, Engine) {
    let db = SqliteBackend::open(uri).await.unwrap();
    let engine = Engine::new(Stores {
        index: db.index(),
        blob: blob.clone(),
        lock: db.lock(),
    });
    (db, engine)
}

#[tokio::test]
async fn old_case_insensitive_tables_are_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let uri = format!("sqlite://{}", path.display());
    let blob = Arc::new(chronos_testkit::MemoryBlobStore::new());

    let (db, e) = engine(&uri, &blob).await;
    let users = e
        .collection(CollectionConfig::new("Users").indexed_props(["name"]))
        .await
        .unwrap();
    let w = users
        .create(&json!({"name": "Ada"}), CreateOptions::new())
        .await
        .unwrap();
    db.close().await;
    // Give the tables (and an index) the names an earlier release used.
    let pool = &sqlx::SqlitePool::connect(&uri).await.unwrap();
    for (from, to) in [("^users_head", "Users_head"), ("^users_ver", "Users_ver")] {
        sqlx::raw_sql(&format!("ALTER TABLE \"{from}\" RENAME TO \"{to}\""))
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::raw_sql(
        "DROP INDEX \"^users_ver_cv\"; CREATE UNIQUE INDEX \"Users_ver_cv\" ON \"Users_ver\" (cv);",
    )
    .execute(pool)
    .await
    .unwrap();
    pool.close().await;

    let (_db, e) = engine(&uri, &blob).await;
    // The lower-case twin first: it must not pick up the old tables.
    let lower = e.collection(CollectionConfig::new("users")).await.unwrap();
    assert!(lower
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    lower
        .create(&json!({"name": "Bob"}), CreateOptions::new())
        .await
        .unwrap();
    let users = e
        .collection(CollectionConfig::new("Users").indexed_props(["name"]))
        .await
        .unwrap();
    let got = users
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.data["name"], "Ada");
    let page = users
        .list_by_meta(ListOptions::new().filter(json!({"name": "Ada"})))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(
        lower
            .list_by_meta(ListOptions::new())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}
