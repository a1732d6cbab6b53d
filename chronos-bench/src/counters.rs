//! Bench rows for the counters (`chronos-analytics`): a create with counters and three rules
//! beside the same create without them (same run, same stores), `get_totals` and
//! `get_periods` beside one raw read of the totals document, and a fold with per-period
//! buckets (`retention.counters`) beside the same fold of lifetime totals only.

use std::sync::Arc;

use chronos_analytics::{CounterRetention, CounterRule, Counters, Granularity, Rules, TotalsKey};
use chronos_core::{CollectionConfig, CreateOptions, DocumentStore, Engine, ItemId};
use serde_json::json;

use crate::stats::{timed, Row};

fn rules() -> Vec<CounterRule> {
    serde_json::from_value(json!([
        { "name": "logins", "on": ["CREATE"], "when": { "action": "login" }, "countUnique": ["sessionId"] },
        { "name": "views", "on": ["CREATE"], "when": { "action": "view" }, "countUnique": ["productId", "category"] },
        { "name": "big", "when": { "amount": { "$gte": 100 } } }
    ]))
    .expect("bench rules")
}

fn event(i: usize) -> serde_json::Value {
    let action = ["login", "view", "purchase"][i % 3];
    json!({"action": action, "sessionId": format!("s{}", i % 500), "productId": format!("p{}", i % 97),
           "category": format!("c{}", i % 13), "amount": i % 200, "pad": "x".repeat(200)})
}

/// The counters rows.
pub(crate) async fn rows(engine: &Engine, docs: Arc<dyn DocumentStore>, n: usize) -> Vec<Row> {
    let tag = &ItemId::generate().to_string()[14..];
    let plain = engine
        .collection(CollectionConfig::new(format!("cnt_plain_{tag}")))
        .await
        .expect("open collection");
    let counters = Counters::new(docs.clone(), Rules::compile(&rules()).expect("rules"), None);
    let key = TotalsKey::new("bench", "bench_db", format!("cnt_counted_{tag}"));
    let observer = counters.observer(key.clone());
    let counted = engine
        .clone()
        .observe(observer.clone())
        .collection(CollectionConfig::new(&key.collection))
        .await
        .expect("open collection");
    observer.attach(&counted);
    let without = timed("create (no counters)", n, |i| {
        let c = plain.clone();
        async move {
            c.create(&event(i), CreateOptions::new())
                .await
                .expect("create");
        }
    })
    .await;
    let with = timed("create + counters (3 rules)", n, |i| {
        let c = counted.clone();
        async move {
            c.create(&event(i), CreateOptions::new())
                .await
                .expect("create");
        }
    })
    .await;
    counters.catch_up(&key, &counted).await.expect("catch up");
    let id = key.id();
    let raw = timed("raw read of the totals document", n, |_| {
        let (docs, id) = (docs.clone(), id.clone());
        async move {
            docs.get(chronos_analytics::layout::TOTALS, &id)
                .await
                .expect("read");
        }
    })
    .await;
    let totals = timed("get_totals (with rules)", n, |_| {
        let (counters, key) = (counters.clone(), key.clone());
        async move {
            let t = counters.get_totals(&key, true).await.expect("totals");
            assert!(t.counts.created > 0);
        }
    })
    .await;
    // Folding the same versions from scratch under a fresh key: lifetime totals only, and
    // with buckets per day, week and month (`retention.counters`).
    let bucketed = Counters::new(docs.clone(), Rules::compile(&rules()).expect("rules"), None)
        .with_retention(CounterRetention {
            days: Some(30),
            weeks: Some(12),
            months: Some(6),
        });
    let fold = |name: String, counters: Counters| {
        let counted = counted.clone();
        async move {
            timed(&name, 5, |i| {
                let (counters, counted) = (counters.clone(), counted.clone());
                let key = TotalsKey::new("bench", "bench_db", format!("fold_{tag}_{name}_{i}"));
                async move {
                    let r = counters.catch_up(&key, &counted).await.expect("fold");
                    assert_eq!(r.versions as usize, n);
                }
            })
            .await
        }
    };
    let plain_fold = fold(format!("fold of {n} versions (totals)"), counters.clone()).await;
    let bucket_fold = fold(
        format!("fold of {n} versions + day/week/month buckets"),
        bucketed.clone(),
    )
    .await;
    let periods_key = TotalsKey::new("bench", "bench_db", format!("fold_{tag}_periods"));
    bucketed
        .catch_up(&periods_key, &counted)
        .await
        .expect("fold");
    let periods = timed("get_periods (day, with rules)", n, |_| {
        let (counters, key) = (bucketed.clone(), periods_key.clone());
        async move {
            let p = counters
                .get_periods(&key, Granularity::Day, true)
                .await
                .expect("periods");
            assert!(!p.is_empty());
        }
    })
    .await;
    let raw_periods = timed("raw read of the totals document", n, |_| {
        let (docs, id) = (docs.clone(), periods_key.id());
        async move {
            docs.get(chronos_analytics::layout::TOTALS, &id)
                .await
                .expect("read");
        }
    })
    .await;
    vec![
        Row::Versus {
            chronos: with,
            raw: without,
            target: 0.8,
        },
        Row::Versus {
            chronos: totals,
            raw,
            target: 0.2,
        },
        Row::Versus {
            chronos: bucket_fold,
            raw: plain_fold,
            target: 0.8,
        },
        Row::Versus {
            chronos: periods,
            raw: raw_periods,
            target: 0.2,
        },
    ]
}
