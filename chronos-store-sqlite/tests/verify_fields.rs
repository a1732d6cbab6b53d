//! Property: every single-field change to a stored version entry or head — made with raw SQL
//! on the database, as someone with write access to the file would — is found by
//! `Collection::verify` and located at its record and version (the fields, the fixture and
//! the rule are `chronos_testkit::tamper`'s). 3,000 random cases by default, 10,000 with
//! `PROPTEST_CASES=10000` (45 s in a debug build); each case restores the rows it changed,
//! and the collection verifies clean at the end.

use std::sync::Arc;

use chronos_core::{Collection, CollectionConfig, Engine, ItemId, Stores};
use chronos_store_sqlite::SqliteBackend;
use chronos_testkit::tamper::{self, Field};
use sqlx::SqlitePool;

/// The SQL that changes the field (`?1` the id, `?2` the ov, `?3` a random number); every
/// statement changes exactly one row.
fn sql(field: Field) -> &'static str {
    match field {
        Field::Ov => "UPDATE m_ver SET ov = ov + 100 WHERE item_id = ?1 AND ov = ?2",
        Field::Cv => "UPDATE m_ver SET cv = cv + 1000000 + ?3 WHERE item_id = ?1 AND ov = ?2",
        Field::Op => {
            "UPDATE m_ver SET op = CASE op WHEN 'UPDATE' THEN 'CREATE' ELSE 'UPDATE' END
              WHERE item_id = ?1 AND ov = ?2"
        }
        Field::At => "UPDATE m_ver SET at = at + 1 + ?3 % 5 WHERE item_id = ?1 AND ov = ?2",
        Field::Actor => {
            "UPDATE m_ver SET actor = CASE WHEN actor IS NULL THEN 'mallory' ELSE NULL END
              WHERE item_id = ?1 AND ov = ?2"
        }
        Field::Reason => {
            "UPDATE m_ver SET reason = COALESCE(reason, '') || 'x'
              WHERE item_id = ?1 AND ov = ?2"
        }
        Field::BlobKey => {
            "UPDATE m_ver SET blob_key = blob_key || '.moved' WHERE item_id = ?1 AND ov = ?2"
        }
        Field::Meta => {
            "UPDATE m_ver SET meta = json_set(meta, '$.n', ?3 + 1000) WHERE item_id = ?1 AND ov = ?2"
        }
        Field::Size => "UPDATE m_ver SET size = size + 1 + ?3 % 7 WHERE item_id = ?1 AND ov = ?2",
        Field::Checksum => {
            "UPDATE m_ver SET checksum = CASE substr(checksum, 1, 1) WHEN 'a' THEN 'b' ELSE 'a' END
              || substr(checksum, 2) WHERE item_id = ?1 AND ov = ?2"
        }
        Field::PrevOv => {
            "UPDATE m_ver SET prev_ov = COALESCE(prev_ov, 0) + 1 + ?3 % 3 WHERE item_id = ?1 AND ov = ?2"
        }
        Field::SealSalt => {
            "UPDATE m_ver SET seal = json_set(seal, '$.salt', printf('%032x', ?3))
              WHERE item_id = ?1 AND ov = ?2"
        }
        Field::SealDigest => {
            "UPDATE m_ver SET seal = json_set(seal, '$.digest', printf('%064x', ?3))
              WHERE item_id = ?1 AND ov = ?2"
        }
        Field::SealPrev => {
            "UPDATE m_ver SET seal = json_set(seal, '$.prev', printf('%064x', ?3))
              WHERE item_id = ?1 AND ov = ?2"
        }
        Field::SealHash => {
            "UPDATE m_ver SET seal = json_set(seal, '$.hash', printf('%064x', ?3))
              WHERE item_id = ?1 AND ov = ?2"
        }
        Field::SealRemoved => "UPDATE m_ver SET seal = NULL WHERE item_id = ?1 AND ov = ?2",
        Field::RowRemoved => "DELETE FROM m_ver WHERE item_id = ?1 AND ov = ?2",
        Field::HeadOv => "UPDATE m_head SET ov = ov + 1 + ?3 % 3 WHERE item_id = ?1",
        Field::HeadCv => "UPDATE m_head SET cv = cv + 1 + ?3 % 3 WHERE item_id = ?1",
        Field::HeadBlobKey => {
            "UPDATE m_head SET blob_key = blob_key || '.moved' WHERE item_id = ?1"
        }
        Field::HeadMeta => {
            "UPDATE m_head SET meta = json_set(meta, '$.n', ?3 + 1000) WHERE item_id = ?1"
        }
        Field::HeadSize => "UPDATE m_head SET size = size + 1 + ?3 % 7 WHERE item_id = ?1",
        Field::HeadChecksum => {
            "UPDATE m_head SET checksum = CASE substr(checksum, 1, 1) WHEN 'a' THEN 'b' ELSE 'a' END
              || substr(checksum, 2) WHERE item_id = ?1"
        }
        Field::HeadUpdatedAt => {
            "UPDATE m_head SET updated_at = updated_at - 1 - ?3 % 5 WHERE item_id = ?1"
        }
        Field::HeadDeleted => {
            "UPDATE m_head SET deleted_at = CASE WHEN deleted_at IS NULL THEN updated_at ELSE NULL END
              WHERE item_id = ?1"
        }
        Field::HeadChain => {
            "UPDATE m_head SET chain = printf('%064x', ?3) WHERE item_id = ?1"
        }
        Field::HeadRemoved => "DELETE FROM m_head WHERE item_id = ?1",
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    pool: SqlitePool,
    coll: Collection,
    ids: Vec<ItemId>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chronos.db");
    let db = SqliteBackend::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let engine = Engine::new(Stores {
        index: db.index(),
        blob: Arc::new(chronos_testkit::MemoryBlobStore::new()),
        lock: db.lock(),
    });
    let coll = engine.collection(CollectionConfig::new("m")).await.unwrap();
    let ids = tamper::fixture(&coll).await;
    // One connection: the temporary backup tables live in it.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TEMP TABLE bak_ver AS SELECT * FROM m_ver WHERE 0;
         CREATE TEMP TABLE bak_head AS SELECT * FROM m_head WHERE 0;",
    )
    .execute(&pool)
    .await
    .unwrap();
    Fixture {
        _dir: dir,
        pool,
        coll,
        ids,
    }
}

/// Changes `field` of record `rec`'s version `ov`, verifies, restores, checks the finding.
async fn case(f: &Fixture, rec: usize, ov: u64, field: Field, n: i64) -> Result<(), String> {
    let id = f.ids[rec];
    let id_s = id.to_string();
    let mut conn = f.pool.acquire().await.unwrap();
    sqlx::raw_sql("DELETE FROM bak_ver; DELETE FROM bak_head;")
        .execute(&mut *conn)
        .await
        .unwrap();
    for t in ["ver", "head"] {
        sqlx::query(&format!(
            "INSERT INTO bak_{t} SELECT * FROM m_{t} WHERE item_id = ?"
        ))
        .bind(&id_s)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    let changed = sqlx::query(sql(field))
        .bind(&id_s)
        .bind(ov as i64)
        .bind(n)
        .execute(&mut *conn)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1, "{field:?} changes one row");
    let report = f.coll.verify(|_| {}).await.unwrap();
    for t in ["ver", "head"] {
        sqlx::query(&format!("DELETE FROM m_{t} WHERE item_id = ?"))
            .bind(&id_s)
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::raw_sql(&format!("INSERT INTO m_{t} SELECT * FROM bak_{t}"))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    tamper::located(&report, id, ov, field)
}

#[test]
fn verify_locates_every_changed_field() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let f = rt.block_on(fixture());
    assert!(rt.block_on(f.coll.verify(|_| {})).unwrap().is_ok());
    tamper::run_cases(3_000, |rec, ov, field, n| {
        rt.block_on(case(&f, rec, ov, field, n))
    });
    let end = rt.block_on(f.coll.verify(|_| {})).unwrap();
    assert!(end.is_ok(), "every case restored what it changed: {end:?}");
    assert_eq!(end.versions, tamper::RECORDS as u64 * tamper::VERSIONS);
}
