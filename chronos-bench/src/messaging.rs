//! Bench rows for the messaging database (`chronos-messaging`): `messages.save`,
//! `shared.save(latest)` and `shared.save(append)` beside the raw document insert / replace
//! of the same store with the same body (same run, same store).

use std::sync::Arc;

use chronos_core::{Document, DocumentStore, ItemId};
use chronos_messaging::{Messaging, NewMessage, Settings, Strategy};
use serde_json::{json, Map, Value};

use crate::stats::{timed, Row};

fn payload(i: usize) -> Value {
    json!({"orderId": format!("o-{i}"), "amount": i % 1000, "currency": "EUR", "pad": "x".repeat(200)})
}

fn body(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

/// The messaging rows.
pub(crate) async fn rows(docs: Arc<dyn DocumentStore>, n: usize) -> Vec<Row> {
    let tag = ItemId::generate().to_string()[14..].to_string();
    let m =
        Messaging::new(docs.clone(), Settings::default(), &format!("bench-{tag}")).expect("tenant");
    // Declare the layouts outside the timed loops (a handle does it once, on first use).
    m.topics().get("warmup").await.expect("prepare");
    let raw_coll = format!("msg_raw_{tag}");
    // Warm the store's path for raw writes too, so neither side pays first-use costs.
    for i in 0..100 {
        let d = Document {
            id: format!("warm-{i}"),
            body: body(json!({"i": i})),
        };
        docs.insert(&format!("msg_warm_{tag}"), d)
            .await
            .expect("warm up");
    }
    let raw_insert = timed("raw document insert", n, |i| {
        let (docs, coll) = (docs.clone(), raw_coll.clone());
        async move {
            let b = body(json!({"tenantId": "bench", "topic": "orders", "msgId": format!("m-{i}"),
                                "headers": {}, "payload": payload(i), "firstSeenAt": "2026-01-01T00:00:00.000Z"}));
            docs.insert(&coll, Document { id: format!("m-{i}"), body: b }).await.expect("insert");
        }
    })
    .await;
    let save = timed("messages.save", n, |i| {
        let m = m.clone();
        async move {
            let msg = NewMessage::new("orders", format!("m-{i}"), payload(i));
            m.messages().save(&msg).await.expect("save");
        }
    })
    .await;
    let raw_replace = timed("raw document replace (upsert)", n, |i| {
        let (docs, coll) = (docs.clone(), raw_coll.clone());
        async move {
            let b = body(
                json!({"tenantId": "bench", "namespace": "state", "key": format!("k-{}", i % 50),
                                "val": payload(i), "updatedAt": "2026-01-01T00:00:00.000Z"}),
            );
            docs.replace(
                &coll,
                Document {
                    id: format!("k-{}", i % 50),
                    body: b,
                },
                true,
            )
            .await
            .expect("replace");
        }
    })
    .await;
    let latest = timed("shared.save(latest)", n, |i| {
        let m = m.clone();
        async move {
            m.shared()
                .save(
                    "state",
                    &format!("k-{}", i % 50),
                    &payload(i),
                    Strategy::Latest,
                )
                .await
                .expect("save");
        }
    })
    .await;
    let append = timed("shared.save(append)", n, |i| {
        let m = m.clone();
        async move {
            m.shared()
                .save(
                    "events",
                    &format!("k-{}", i % 50),
                    &payload(i),
                    Strategy::Append,
                )
                .await
                .expect("append");
        }
    })
    .await;
    vec![
        Row::Versus {
            chronos: save,
            raw: raw_insert.clone(),
            target: 0.7,
        },
        Row::Versus {
            chronos: latest,
            raw: raw_replace,
            target: 0.7,
        },
        // An append reads the head, inserts the version and advances the head (the price of
        // gap-free numbering across processes): four round trips against one.
        Row::Versus {
            chronos: append,
            raw: raw_insert,
            target: 0.25,
        },
    ]
}
