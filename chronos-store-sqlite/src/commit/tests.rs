//! Tests of the one-round-trip commit, the batch re-run and the connection guard.

use chronos_core::{ChainLink, ItemId, NewVersion, Op, Timestamp};
use serde_json::json;

use super::*;
use crate::index::tables;

const COLL: &str = "things";

fn commit_of(id: ItemId, ov: u64, head: HeadAction, chain: Option<String>) -> Commit {
    let v = NewVersion {
        item_id: id,
        ov,
        op: if ov == 0 { Op::Create } else { Op::Update },
        at: chronos_core::time::now_ms(),
        actor: Some("t".into()),
        reason: None,
        blob_key: format!("{id}/{ov}"),
        meta: json!({"ov": ov}).as_object().cloned().unwrap(),
        size: 2,
        checksum: "c".into(),
        prev_ov: ov.checked_sub(1),
        chain: Some(ChainLink::after(chain)),
    };
    Commit::new(v, head)
}

async fn store() -> (crate::SqliteBackend, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite://{}", dir.path().join("c.db").display());
    let db = crate::SqliteBackend::open(&uri).await.unwrap();
    db.index().prepare(COLL, &[]).await.unwrap();
    (db, dir)
}

/// (counter, version rows, head ov) of the collection.
async fn state(pool: &SqlitePool, id: ItemId) -> (i64, i64, Option<i64>) {
    let (head, ver) = tables(COLL);
    let counter: i64 =
        sqlx::query_scalar("SELECT COALESCE((SELECT cv FROM chronos_counters WHERE coll = ?), 0)")
            .bind(COLL)
            .fetch_one(pool)
            .await
            .unwrap();
    let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {ver}"))
        .fetch_one(pool)
        .await
        .unwrap();
    let head_ov: Option<i64> =
        sqlx::query_scalar(&format!("SELECT ov FROM {head} WHERE item_id = ?"))
            .bind(id.to_string())
            .fetch_optional(pool)
            .await
            .unwrap();
    (counter, rows, head_ov)
}

#[tokio::test]
async fn a_refused_check_writes_nothing_and_a_passed_one_everything() {
    let (db, _dir) = store().await;
    let (head, ver) = tables(COLL);
    let t = (head.as_str(), ver.as_str());
    let id = ItemId::generate();
    let first = commit_of(id, 0, HeadAction::Upsert, None);
    // A stale cv (as after another process's commit): refused, nothing written.
    let (back, r) = fast(&db.pool, t, COLL, first, 7).await;
    assert_eq!(r.unwrap(), None);
    assert_eq!(state(&db.pool, id).await, (0, 0, None));
    // The right cv: version, counter and head in one go, sealed with that cv.
    let (_, r) = fast(&db.pool, t, COLL, back.unwrap(), 0).await;
    assert_eq!(r.unwrap(), Some(1));
    assert_eq!(state(&db.pool, id).await, (1, 1, Some(0)));
    let v = db.index().version(COLL, id, 0).await.unwrap().unwrap();
    assert_eq!(v.cv, 1);
    assert_eq!(
        v.seal.as_ref().unwrap().check(&v),
        None,
        "sealed with its cv"
    );

    // An ov conflict (ov 0 again) and a passed deadline: refused, nothing written.
    let again = commit_of(id, 0, HeadAction::Upsert, None);
    let (_, r) = fast(&db.pool, t, COLL, again, 1).await;
    assert_eq!(r.unwrap(), None);
    let mut late = commit_of(id, 1, HeadAction::Upsert, None);
    late.not_after = Some(Timestamp::from_millisecond(1).unwrap());
    let (_, r) = fast(&db.pool, t, COLL, late, 1).await;
    assert_eq!(r.unwrap(), None);
    assert_eq!(state(&db.pool, id).await, (1, 1, Some(0)));

    // A refused delete keeps the head; an accepted one removes it.
    let delete = commit_of(id, 1, HeadAction::Remove, None);
    let (back, r) = fast(&db.pool, t, COLL, delete, 5).await;
    assert_eq!(r.unwrap(), None);
    assert_eq!(state(&db.pool, id).await, (1, 1, Some(0)));
    let (_, r) = fast(&db.pool, t, COLL, back.unwrap(), 1).await;
    assert_eq!(r.unwrap(), Some(2));
    assert_eq!(state(&db.pool, id).await, (2, 2, None));
}

#[tokio::test]
async fn a_second_store_on_the_file_makes_the_cache_stale_not_wrong() {
    let (a, dir) = store().await;
    let uri = format!("sqlite://{}", dir.path().join("c.db").display());
    let b = crate::SqliteBackend::open(&uri).await.unwrap();
    let ids = [ItemId::generate(), ItemId::generate()];
    let mut chains: [Option<String>; 2] = [None, None];
    // Alternating writers: every commit after the first of each finds its cv stale.
    for n in 0..20u64 {
        let w = (n % 2) as usize;
        let store = if w == 0 { a.index() } else { b.index() };
        let ov = n / 2;
        let c = commit_of(ids[w], ov, HeadAction::Upsert, chains[w].clone());
        assert_eq!(store.commit(COLL, c).await.unwrap(), n + 1, "cvs are dense");
        let v = store.version(COLL, ids[w], ov).await.unwrap().unwrap();
        assert_eq!(v.seal.as_ref().unwrap().check(&v), None);
        chains[w] = Some(v.seal.unwrap().hash);
    }
}

#[tokio::test]
async fn a_connection_dropped_inside_its_transaction_is_closed_not_pooled() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite://{}?mode=rwc", dir.path().join("d.db").display());
    // One connection: were the dropped one pooled, the next writer would get it.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&uri)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t (x INTEGER)")
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = OwnTransaction(Some(pool.acquire().await.unwrap()));
    sqlx::raw_sql("BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
        .execute(&mut **conn.get())
        .await
        .unwrap();
    drop(conn);
    let mut tx = begin_immediate(&pool)
        .await
        .expect("no transaction left open");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 0, "the open transaction was rolled back");
}

#[tokio::test]
async fn a_batch_whose_statement_fails_is_rerun_with_savepoints() {
    let (db, _dir) = store().await;
    let (head, _) = tables(COLL);
    let ids = [ItemId::generate(), ItemId::generate(), ItemId::generate()];
    // The second commit's head statement fails after its version and counter statements
    // ran: only a savepoint can take those back.
    sqlx::raw_sql(&format!(
        "CREATE TRIGGER boom BEFORE INSERT ON {head} WHEN NEW.item_id = '{}'
         BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        ids[1]
    ))
    .execute(&db.pool)
    .await
    .unwrap();
    let commits: Vec<Commit> = ids
        .iter()
        .map(|&id| commit_of(id, 0, HeadAction::Upsert, None))
        .collect();
    let out = db.index().commit_many(COLL, commits).await;
    assert_eq!(out[0].as_ref().unwrap(), &1);
    assert!(out[1].as_ref().unwrap_err().to_string().contains("boom"));
    assert_eq!(out[2].as_ref().unwrap(), &2, "cvs stay dense");
    assert_eq!(
        state(&db.pool, ids[1]).await,
        (2, 2, None),
        "nothing of it stays"
    );
    assert!(db.index().version(COLL, ids[1], 0).await.unwrap().is_none());
    // The store knows the batch's last cv: the next commit takes the one round trip.
    let next = commit_of(ids[1], 0, HeadAction::Remove, None);
    assert_eq!(db.index().commit(COLL, next).await.unwrap(), 3);
}
