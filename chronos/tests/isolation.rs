//! Tenant isolation as a property: random writes across tenants, domains and tiers, on the
//! in-memory and SQLite backends; nothing bound to one route ever observes another route's
//! records, versions or blobs — by id, by listing, by history, or on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chronos::{Chronos, DatabaseType, Route};
use chronos_core::{
    CreateOptions, ErrorKind, HistoryOptions, ItemId, ListOptions, ReadOptions, WriteOptions,
};
use proptest::prelude::*;
use serde_json::json;

fn routes() -> Vec<(Route, &'static str)> {
    vec![
        (Route::runtime("t0", "things"), "rt_t0"),
        (Route::runtime("t1", "things"), "rt_t1"),
        (Route::runtime("t2", "things"), "rt_t2"),
        (
            Route::generic(DatabaseType::Knowledge, "things"),
            "kn_generic",
        ),
        (
            Route::domain(DatabaseType::Knowledge, "d0", "things"),
            "kn_d0",
        ),
        (
            Route::tenant(DatabaseType::Knowledge, "t0", "things"),
            "kn_t0",
        ),
        (
            Route::tenant(DatabaseType::Knowledge, "t1", "things"),
            "kn_t1",
        ),
    ]
}

fn chronos(uri: &str, dir: &Path) -> Chronos {
    let t = |tenant: &str, db: &str| json!({"tenantId": tenant, "dbConnRef": "c", "dbName": db});
    let cfg = json!({
        "dbConnections": { "c": { "mongoUri": uri } },
        "spacesConnections": {},
        "databases": {
            "runtime": { "tenantDatabases": [t("t0", "rt_t0"), t("t1", "rt_t1"), t("t2", "rt_t2")] },
            "knowledge": {
                "genericDatabase": { "dbConnRef": "c", "dbName": "kn_generic" },
                "domainsDatabases": [ { "domain": "d0", "dbConnRef": "c", "dbName": "kn_d0" } ],
                "tenantDatabases": [t("t0", "kn_t0"), t("t1", "kn_t1")]
            }
        },
        "localStorage": { "enabled": true, "basePath": dir.join("blobs").display().to_string() }
    });
    Chronos::from_json(&cfg.to_string()).unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    Create(usize, u8),
    Update(usize, usize, u8),
    Delete(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let r = 0..routes().len();
    prop_oneof![
        3 => (r.clone(), any::<u8>()).prop_map(|(r, v)| Op::Create(r, v)),
        2 => (r.clone(), any::<usize>(), any::<u8>()).prop_map(|(r, i, v)| Op::Update(r, i, v)),
        1 => (r, any::<usize>()).prop_map(|(r, i)| Op::Delete(r, i)),
    ]
}

/// Ids under `<basePath>/<dbName>/things/` on disk.
fn blob_ids(dir: &Path, db: &str) -> BTreeSet<String> {
    let base = dir.join("blobs").join(db).join("things");
    std::fs::read_dir(base)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn check(backend: &str, ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let uri = if backend == "sqlite" {
            format!("sqlite://{}", dir.path().join("db").display())
        } else {
            "memory://".to_string()
        };
        let c = chronos(&uri, dir.path());
        let routes = routes();
        let mut owned: BTreeMap<usize, Vec<ItemId>> = BTreeMap::new();
        for op in &ops {
            match *op {
                Op::Create(r, v) => {
                    let w = c
                        .with(&routes[r].0)
                        .await
                        .unwrap()
                        .create(&json!({"v": v, "route": r}), CreateOptions::new())
                        .await
                        .unwrap();
                    owned.entry(r).or_default().push(w.id);
                }
                Op::Update(r, i, _) | Op::Delete(r, i)
                    if owned.get(&r).is_some_and(|ids| !ids.is_empty()) =>
                {
                    let ids = &owned[&r];
                    let id = ids[i % ids.len()];
                    let coll = c.with(&routes[r].0).await.unwrap();
                    let res = match op {
                        Op::Update(_, _, v) => {
                            coll.update(id, &json!({"v": v, "route": r}), WriteOptions::new())
                                .await
                        }
                        _ => coll.delete(id, WriteOptions::new()).await,
                    };
                    if let Err(e) = res {
                        assert_eq!(
                            e.kind(),
                            ErrorKind::NotFound,
                            "only a deleted record may refuse: {e}"
                        );
                    }
                }
                _ => {}
            }
        }
        for (r, (route, db)) in routes.iter().enumerate() {
            let coll = c.with(route).await.unwrap();
            let mine: BTreeSet<ItemId> = owned
                .get(&r)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect();
            let listed: BTreeSet<ItemId> = coll
                .list_by_meta(ListOptions::new().include_deleted(true).limit(1000))
                .await
                .unwrap()
                .items
                .iter()
                .map(|x| x.id)
                .collect();
            assert_eq!(listed, mine, "{route:?} lists exactly its own records");
            for rec in coll
                .list_by_meta(ListOptions::new().include_deleted(true).limit(1000))
                .await
                .unwrap()
                .items
            {
                assert_eq!(
                    rec.data["route"],
                    json!(r),
                    "{route:?} returned another route's payload"
                );
            }
            let on_disk = blob_ids(dir.path(), db);
            let mine_text: BTreeSet<String> = mine.iter().map(|i| i.to_string()).collect();
            assert!(
                on_disk.is_subset(&mine_text) && on_disk.len() == mine.len(),
                "{db}: blobs of other routes on disk"
            );
            for (other, ids) in &owned {
                if *other == r {
                    continue;
                }
                for id in ids {
                    assert!(coll
                        .get_latest(*id, ReadOptions::new().include_deleted(true))
                        .await
                        .unwrap()
                        .is_none());
                    assert!(coll
                        .get_version(*id, 0, ReadOptions::new().include_deleted(true))
                        .await
                        .unwrap()
                        .is_none());
                    assert_eq!(
                        coll.history(*id, HistoryOptions::default())
                            .await
                            .unwrap_err()
                            .kind(),
                        ErrorKind::NotFound
                    );
                    let e = coll
                        .update(*id, &json!({"hijack": true}), WriteOptions::new())
                        .await
                        .unwrap_err();
                    assert_eq!(
                        e.kind(),
                        ErrorKind::NotFound,
                        "{route:?} could write another route's record"
                    );
                }
            }
        }
        c.shutdown().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn routes_are_isolated_in_memory(ops in prop::collection::vec(op(), 1..20)) {
        check("memory", ops);
    }

    #[test]
    fn routes_are_isolated_on_sqlite(ops in prop::collection::vec(op(), 1..20)) {
        check("sqlite", ops);
    }
}
