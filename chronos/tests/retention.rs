//! Version retention through the facade (`retention.ver`), on memory, SQLite and MongoDB:
//! `Chronos::prune_versions` over the collections of every tenant (named in
//! `collectionMaps`, or counted), counters still exact and folding afterwards, and the
//! worker's daily `versions-retention` job.

use chronos::{Chronos, Route, TotalsQuery};
use chronos_core::{CreateOptions, HistoryOptions, ItemId, Timestamp, WriteOptions};
use serde_json::json;

mod counters_support;
use counters_support::{suffix, uris};

fn config(uri: &str, dir: &std::path::Path, s: &str) -> String {
    json!({
        "dbConnections": { "c": { "mongoUri": uri } },
        "spacesConnections": {},
        "databases": { "runtime": { "tenantDatabases": [
            { "tenantId": "a", "dbConnRef": "c", "dbName": format!("rt_a_{s}"),
              "analyticsDbName": format!("an_a_{s}") },
            { "tenantId": "b", "dbConnRef": "c", "dbName": format!("rt_b_{s}") }
        ]}},
        "collectionMaps": { "orders": { "indexedProps": [] } },
        "localStorage": { "enabled": true, "basePath": dir.join(format!("blobs_{s}")).display().to_string() },
        "retention": { "ver": { "maxPerItem": 3 } }
    })
    .to_string()
}

/// A record with `n` versions in `tenant`'s `collection`.
async fn record(chronos: &Chronos, tenant: &str, collection: &str, n: u64) -> ItemId {
    let c = chronos
        .with(&Route::runtime(tenant, collection))
        .await
        .unwrap();
    let w = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    for i in 1..n {
        c.update(w.id, &json!({ "n": i }), WriteOptions::new())
            .await
            .unwrap();
    }
    w.id
}

async fn ovs(chronos: &Chronos, tenant: &str, collection: &str, id: ItemId) -> Vec<u64> {
    let c = chronos
        .with(&Route::runtime(tenant, collection))
        .await
        .unwrap();
    let page = c.history(id, HistoryOptions::default()).await.unwrap();
    page.versions.iter().map(|v| v.ov).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_versions_keeps_the_latest_of_every_tenant() {
    let dir = tempfile::tempdir().unwrap();
    for uri in uris(dir.path()) {
        let chronos = Chronos::from_json(&config(&uri, dir.path(), &suffix())).unwrap();
        assert!(chronos.unsupported_options().is_empty(), "{uri}");
        assert!(chronos
            .maintenance_jobs()
            .iter()
            .any(|j| j.name() == "versions-retention"));
        // Tenant a: a counted collection not in collectionMaps, and a mapped one; tenant b
        // (no analytics): the mapped one only.
        let events = record(&chronos, "a", "events", 10).await;
        let orders_a = record(&chronos, "a", "orders", 5).await;
        let orders_b = record(&chronos, "b", "orders", 4).await;
        let unnamed_b = record(&chronos, "b", "unnamed", 4).await;

        let s = chronos
            .prune_versions(None, Timestamp::now())
            .await
            .unwrap();
        assert_eq!(s.versions_removed(), 7 + 2 + 1, "{uri}: {s:?}");
        assert_eq!(
            ovs(&chronos, "a", "events", events).await,
            [7, 8, 9],
            "{uri}"
        );
        assert_eq!(ovs(&chronos, "a", "orders", orders_a).await, [2, 3, 4]);
        assert_eq!(ovs(&chronos, "b", "orders", orders_b).await, [1, 2, 3]);
        assert_eq!(
            ovs(&chronos, "b", "unnamed", unnamed_b).await.len(),
            4,
            "{uri}: a collection named nowhere is left to Collection::prune_now"
        );
        // The counters were folded before the prune: still exact, and they go on folding.
        let q = TotalsQuery::new().collection("events");
        let t = &chronos.counters().get_totals(&q).await.unwrap()[0];
        assert_eq!((t.counts.created, t.counts.updated), (1, 9), "{uri}");
        let c = chronos.with(&Route::runtime("a", "events")).await.unwrap();
        c.update(events, &json!({"n": 10}), WriteOptions::new())
            .await
            .unwrap();
        chronos.counters().catch_up("a", "events").await.unwrap();
        let t = &chronos.counters().get_totals(&q).await.unwrap()[0];
        assert_eq!(t.counts.updated, 10, "{uri}");

        // The worker's daily job: half an hour into tomorrow (UTC), yesterday's period is due.
        let later = counters_support::half_past_midnight(1);
        let worker = counters_support::worker(&chronos).await;
        let pass = worker.run_due(later).await.unwrap();
        assert!(pass.failed.is_empty(), "{uri}: {:?}", pass.failed);
        let run = pass
            .ran
            .iter()
            .find(|r| r.job == "versions-retention")
            .unwrap_or_else(|| panic!("{uri}: {:?}", pass.ran));
        assert_eq!(run.report["versionsRemoved"], json!(1), "{uri}");
        assert_eq!(ovs(&chronos, "a", "events", events).await, [8, 9, 10]);
        chronos.shutdown().await;
    }
}

#[tokio::test]
async fn prune_versions_without_retention_ver_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&config("memory://", dir.path(), "x")).unwrap();
    cfg.as_object_mut().unwrap().remove("retention");
    let chronos = Chronos::from_json(&cfg.to_string()).unwrap();
    let e = chronos
        .prune_versions(None, Timestamp::now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), chronos::ErrorKind::Validation, "{e}");
    assert!(e.to_string().contains("retention.ver"), "{e}");
    assert!(!chronos
        .maintenance_jobs()
        .iter()
        .any(|j| j.name() == "versions-retention"));
    let e = chronos
        .prune_versions(Some("nobody"), Timestamp::now())
        .await;
    assert!(e.is_err());
}
