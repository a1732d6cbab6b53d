//! SQLite pages written per write, measured: every page a commit changes is appended to the
//! write-ahead log once, so the log's frames after `N` writes, divided by `N`, are the
//! B-tree pages each write dirtied (table and index leaves and interior pages, the counter
//! row's page). The log is emptied first (`wal_checkpoint(TRUNCATE)`), and `N` is kept
//! small enough that SQLite's automatic checkpoint (at 1,000 frames) cannot restart it
//! midway, which would undercount. The raw baseline — one row insert into a table with one
//! expression index — is measured the same way on its own file.

use std::path::Path;

use chronos_core::{CollectionConfig, CreateOptions, ItemId, WriteOptions};
use serde_json::json;
use sqlx::{Connection, SqliteConnection};

use crate::stats::Row;
use crate::{doc, Setup};

/// Writes of each kind counted: ≈ 10–20 pages each stays well under 1,000 frames.
const CALLS: usize = 20;

/// Frames in `db`'s write-ahead log; then empties the log (`wal_checkpoint(TRUNCATE)`:
/// after it the next write starts the log at frame 1).
async fn frames(db: &Path) -> i64 {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the database to count its log");
    // A PASSIVE checkpoint reports the frames in the log (TRUNCATE reports them after it
    // emptied it, i.e. none).
    let mut log = None;
    for mode in ["PASSIVE", "TRUNCATE"] {
        // Busy while a pool connection finishes its own checkpoint: ask again.
        let mut tries = 0;
        loop {
            let (busy, frames, _): (i64, i64, i64) =
                sqlx::query_as(&format!("PRAGMA wal_checkpoint({mode})"))
                    .fetch_one(&mut conn)
                    .await
                    .expect("checkpoint");
            if busy == 0 {
                log.get_or_insert(frames);
                break;
            }
            tries += 1;
            assert!(tries < 50, "{}: the log stayed busy", db.display());
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    log.unwrap_or_default()
}

pub(crate) async fn rows(s: &Setup) -> Vec<Row> {
    if !s.name.starts_with("sqlite") {
        return Vec::new();
    }
    let (db, raw_db) = (s.dir.path().join("chronos.db"), s.dir.path().join("raw.db"));
    let c = s
        .cold
        .collection(CollectionConfig::new("pages").indexed_props(["status"]))
        .await
        .expect("open collection");
    // The first write creates the collection's tables: not a write's cost.
    c.create(&doc(0), CreateOptions::new())
        .await
        .expect("create");
    let mut per = Vec::new();
    let mut ids = Vec::new();
    frames(&db).await;
    for i in 0..CALLS {
        ids.push(
            c.create(&doc(i), CreateOptions::new())
                .await
                .expect("create")
                .id,
        );
    }
    per.push(("create", frames(&db).await));
    for (i, id) in ids.iter().enumerate() {
        c.update(*id, &doc(i + 1), WriteOptions::new())
            .await
            .expect("update");
    }
    per.push(("update", frames(&db).await));
    for id in &ids {
        c.delete(*id, WriteOptions::new()).await.expect("delete");
    }
    per.push(("delete", frames(&db).await));
    frames(&raw_db).await;
    for i in 0..CALLS {
        s.raw.insert(&ItemId::generate().to_string(), &doc(i)).await;
    }
    let raw = frames(&raw_db).await;
    let per: Vec<(&str, f64)> = per
        .into_iter()
        .map(|(n, f)| (n, f as f64 / CALLS as f64))
        .collect();
    let text: Vec<String> = per.iter().map(|(n, v)| format!("{n} {v:.1}")).collect();
    let mut json: serde_json::Map<String, serde_json::Value> =
        per.iter().map(|(n, v)| (n.to_string(), json!(v))).collect();
    json.insert("raw".into(), json!(raw as f64 / CALLS as f64));
    vec![Row::Value {
        name: "SQLite pages written per write".into(),
        value: format!(
            "{} (raw insert: {:.1}; the write-ahead log's frames over {CALLS} writes each)",
            text.join(", "),
            raw as f64 / CALLS as f64
        ),
        pass: None,
        json: serde_json::Value::Object(json),
    }]
}
