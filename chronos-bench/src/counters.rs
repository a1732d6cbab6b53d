//! Bench rows for the counters (`chronos-analytics`): a create with counters and three rules
//! beside the same create without them (same run, same stores), and `get_totals` beside one
//! raw read of the totals document.

use std::sync::Arc;

use chronos_analytics::{CounterRule, Counters, Rules, TotalsKey};
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
    ]
}
