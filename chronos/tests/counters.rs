//! Counters through the facade: the observer is wired on runtime databases that have an
//! `analyticsDbName` (memory, SQLite, MongoDB) and `Chronos::counters()` answers with exact
//! totals (the kill -9 test is `counters_crash.rs`).

use chronos::{Chronos, ErrorKind, Route, TotalsQuery};
use chronos_core::{CreateOptions, WriteOptions};
use serde_json::json;

mod counters_support;
use counters_support::{config, suffix, uris};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_wired_on_databases_with_analytics() {
    let dir = tempfile::tempdir().unwrap();
    for uri in uris(dir.path()) {
        let s = suffix();
        let chronos = Chronos::from_json(&config(&uri, dir.path(), &s)).unwrap();
        assert!(
            !chronos
                .unsupported_options()
                .iter()
                .any(|o| o.contains("counterRules")),
            "counter rules are implemented"
        );
        let users = chronos.with(&Route::runtime("a", "users")).await.unwrap();
        let mut ids = Vec::new();
        for n in 0..20 {
            ids.push(
                users
                    .create(&json!({"n": n, "k": n % 4}), CreateOptions::new())
                    .await
                    .unwrap()
                    .id,
            );
        }
        users
            .update(ids[0], &json!({"n": 99}), WriteOptions::new())
            .await
            .unwrap();
        users.delete(ids[1], WriteOptions::new()).await.unwrap();
        let q = TotalsQuery::new()
            .db_name(format!("rt_a_{s}"))
            .collection("users")
            .include_rules(true);
        let t = chronos.counters().get_totals(&q).await.unwrap();
        assert_eq!(t.len(), 1, "{uri}");
        let t = &t[0];
        assert_eq!(
            (t.counts.created, t.counts.updated, t.counts.deleted),
            (20, 1, 1),
            "{uri}"
        );
        assert_eq!(t.rules["big"].counts.created, 10, "{uri}");
        assert_eq!(t.rules["big"].unique["k"], 4, "{uri}");
        assert_eq!(t.tenant, "a");
        // Listing by tenant finds the collection's totals document.
        chronos.counters().catch_up("a", "users").await.unwrap();
        let all = chronos
            .counters()
            .get_totals(&TotalsQuery::new().tenant("a"))
            .await
            .unwrap();
        assert_eq!(
            all.iter()
                .map(|t| t.collection.as_str())
                .collect::<Vec<_>>(),
            ["users"],
            "{uri}"
        );
        // A tenant without an analytics database keeps no counters; an unknown one is named.
        let other = chronos.with(&Route::runtime("b", "users")).await.unwrap();
        other
            .create(&json!({"n": 1}), CreateOptions::new())
            .await
            .unwrap();
        let e = chronos.counters().catch_up("b", "users").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
        assert!(e.to_string().contains("analyticsDbName"), "{e}");
        let e = chronos
            .counters()
            .get_totals(&TotalsQuery::new().tenant("zz"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TenantNotConfigured, "{e}");
        assert!(e.to_string().contains("zz"), "{e}");
        chronos.shutdown().await;
    }
}
