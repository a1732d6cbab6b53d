//! Bench rows for the worker's analytics: a time-based rule's aggregate computed in the
//! index store (`Collection::aggregate`: SQL in SQLite, aggregation in MongoDB) beside what
//! an application without it would do for the same answer — list every matching record
//! (pages of 500, payloads read) and add up the field itself. Same run, same stores.

use chronos_core::{AggregateOp, CollectionConfig, CreateOptions, Engine, ItemId, ListOptions};
use serde_json::{json, Value};

use crate::stats::{timed, Row};

/// Records the aggregate runs over.
const RECORDS: usize = 2_000;
/// Aggregates timed per row (each one covers every record).
const RUNS: usize = 10;

/// The aggregate rows.
pub(crate) async fn rows(engine: &Engine) -> Vec<Row> {
    let tag = &ItemId::generate().to_string()[14..];
    let c = engine
        .collection(CollectionConfig::new(format!("agg_{tag}")).indexed_props(["kind", "amount"]))
        .await
        .expect("open collection");
    use futures::StreamExt;
    futures::stream::iter(0..RECORDS)
        .map(|i| {
            let c = c.clone();
            async move {
                let kind = ["sale", "refund"][i % 2];
                let body =
                    json!({"kind": kind, "amount": (i % 500) as f64 / 4.0, "pad": "x".repeat(200)});
                c.create(&body, CreateOptions::new()).await.expect("create");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let filter = json!({"kind": "sale"});
    let expected: f64 = (0..RECORDS)
        .filter(|i| i % 2 == 0)
        .map(|i| (i % 500) as f64 / 4.0)
        .sum();
    let by_listing = timed(
        "sum of 1,000 records by listing them (pages of 500)",
        RUNS,
        |_| {
            let (c, filter) = (c.clone(), filter.clone());
            async move {
                let mut sum = 0.0;
                let mut cursor = None;
                loop {
                    let opts = ListOptions {
                        filter: filter.clone(),
                        limit: 500,
                        cursor: cursor.take(),
                        ..ListOptions::default()
                    };
                    let page = c.list_by_meta(opts).await.expect("list");
                    sum += page
                        .items
                        .iter()
                        .filter_map(|r| r.data.get("amount").and_then(Value::as_f64))
                        .sum::<f64>();
                    match page.next_cursor {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                assert_eq!(sum, expected);
            }
        },
    )
    .await;
    let in_store = timed(
        "sum of 1,000 records (aggregate in the store)",
        RUNS,
        |_| {
            let (c, filter) = (c.clone(), filter.clone());
            async move {
                let v = c
                    .aggregate(&filter, AggregateOp::Sum, Some("amount"), None)
                    .await
                    .expect("aggregate");
                assert_eq!(v, Some(expected));
            }
        },
    )
    .await;
    let median = timed("exact median of 1,000 records (in the store)", RUNS, |_| {
        let (c, filter) = (c.clone(), filter.clone());
        async move {
            let v = c
                .aggregate(&filter, AggregateOp::Median, Some("amount"), None)
                .await
                .expect("aggregate");
            assert!(v.is_some());
        }
    })
    .await;
    vec![
        Row::Versus {
            chronos: in_store,
            raw: by_listing.clone(),
            target: 1.0,
        },
        Row::Versus {
            chronos: median,
            raw: by_listing,
            target: 1.0,
        },
    ]
}
