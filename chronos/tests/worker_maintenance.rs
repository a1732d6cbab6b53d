//! The worker's maintenance jobs through the facade, on memory, SQLite and MongoDB: counter
//! buckets per `retention.counters` (kept, then dropped by `counters-retention` once past
//! their retention), messaging retention and the session purge — each over every tenant
//! found in its database, including tenants that are not in the configuration.

use chronos::identities::{NewSession, NewUser};
use chronos::messaging::NewMessage;
use chronos::{Chronos, Granularity, Route};
use chronos_core::CreateOptions;
use serde_json::json;

mod counters_support;
use counters_support::{suffix, uris};

fn config(uri: &str, dir: &std::path::Path, s: &str) -> String {
    json!({
        "dbConnections": { "c": { "mongoUri": uri } },
        "spacesConnections": {},
        "databases": {
            "runtime": { "tenantDatabases": [
                { "tenantId": "a", "dbConnRef": "c", "dbName": format!("rt_a_{s}"),
                  "analyticsDbName": format!("an_a_{s}") }
            ]},
            "messaging": { "dbConnRef": "c", "dbName": format!("msg_{s}"),
                           "retention": { "messagesDays": 1 } },
            "identities": { "dbConnRef": "c", "dbName": format!("ids_{s}"), "sessionTtlHours": 1 }
        },
        "localStorage": { "enabled": true, "basePath": dir.join(format!("blobs_{s}")).display().to_string() },
        "retention": { "counters": { "days": 30, "months": 6 } }
    })
    .to_string()
}

fn sum_created(b: &[chronos::PeriodCounts]) -> u64 {
    b.iter().map(|p| p.counts.created).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_jobs_clean_every_tenant_they_find() {
    let dir = tempfile::tempdir().unwrap();
    for uri in uris(dir.path()) {
        let chronos = Chronos::from_json(&config(&uri, dir.path(), &suffix())).unwrap();
        assert!(
            !chronos
                .unsupported_options()
                .iter()
                .any(|o| o.starts_with("retention")),
            "{uri}: {:?}",
            chronos.unsupported_options()
        );
        let events = chronos.with(&Route::runtime("a", "events")).await.unwrap();
        for n in 0..5 {
            events
                .create(&json!({ "n": n }), CreateOptions::new())
                .await
                .unwrap();
        }
        let periods = |g| {
            let chronos = chronos.clone();
            async move {
                chronos
                    .counters()
                    .get_periods("a", "events", g, false)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(sum_created(&periods(Granularity::Day).await), 5, "{uri}");
        assert_eq!(sum_created(&periods(Granularity::Month).await), 5, "{uri}");
        assert!(
            periods(Granularity::Week).await.is_empty(),
            "{uri}: weeks are not kept"
        );

        // Messages and sessions of a configured tenant and of tenants only these databases
        // know.
        for t in ["a", "zz"] {
            let m = chronos.messaging(t).await.unwrap();
            for i in 0..2 {
                m.messages()
                    .save(&NewMessage::new("t", format!("m{i}"), json!({ "i": i })))
                    .await
                    .unwrap();
            }
        }
        for t in ["a", "x"] {
            let ids = chronos.identities(t).await.unwrap();
            let user = ids
                .users()
                .create(NewUser::new(format!("u@{t}.example")))
                .await
                .unwrap();
            ids.sessions()
                .create(&user.id, NewSession::default())
                .await
                .unwrap();
        }
        counters_fold(&chronos).await;

        // 41 days on, half an hour past midnight (UTC): one daily and two hourly periods
        // within a two-hour horizon.
        let now = counters_support::half_past_midnight(41);
        let worker = counters_support::worker(&chronos).await;
        let pass = worker.run_due(now).await.unwrap();
        assert!(pass.failed.is_empty(), "{uri}: {:?}", pass.failed);
        let runs = |job: &str| pass.ran.iter().filter(|r| r.job == job).collect::<Vec<_>>();
        let counters = runs("counters-retention");
        assert_eq!(counters.len(), 1, "{uri}");
        assert_eq!(
            counters[0].report["bucketsDropped"],
            json!(1),
            "{uri}: today's day"
        );
        assert_eq!(runs("messaging-retention").len(), 2, "{uri}");
        let purged: u64 = runs("sessions-purge")
            .iter()
            .map(|r| r.report["purged"].as_u64().unwrap())
            .sum();
        assert_eq!(purged, 2, "{uri}: both tenants' sessions");

        // The day bucket is gone from storage, the month bucket and the totals stay.
        assert!(periods(Granularity::Day).await.is_empty(), "{uri}");
        assert_eq!(sum_created(&periods(Granularity::Month).await), 5, "{uri}");
        for t in ["a", "zz"] {
            let m = chronos.messaging(t).await.unwrap();
            assert!(
                m.messages().get("t", "m0").await.unwrap().is_none(),
                "{uri}: {t}'s old message kept"
            );
        }
        // Nothing is due again.
        assert!(worker.run_due(now).await.unwrap().ran.is_empty(), "{uri}");
        chronos.shutdown().await;
    }
}

/// Folds tenant `a`'s counters (so the buckets are in the totals document).
async fn counters_fold(chronos: &Chronos) {
    chronos.counters().catch_up("a", "events").await.unwrap();
}
