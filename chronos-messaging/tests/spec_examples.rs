//! Every example of the spec's messaging section, on every backend: shared memory (latest,
//! append, versions, tombstone), topics, messages (idempotent save, get, list by time),
//! deliveries and dead letters — plus the errors a careless caller gets.

mod common;

use chronos_core::time::now_ms;
use chronos_core::{ErrorKind, Timestamp};
use chronos_messaging::{
    DeliveryStatus, ListQuery, Messaging, NewDeadLetter, NewDelivery, NewMessage, Order,
    SaveOutcome, Settings, Strategy,
};
use serde_json::{json, Map, Value};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn ago(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(now_ms().as_millisecond() - ms).unwrap()
}

async fn shared_memory(m: &Messaging) {
    let shared = m.shared();
    // Latest strategy: one document per key, overwritten.
    let first = shared
        .save(
            "config",
            "feature-flags",
            &json!({"beta": true, "newUI": false}),
            Strategy::Latest,
        )
        .await
        .unwrap();
    assert_eq!(first.version, None, "latest keeps no history");
    let config = shared
        .load("config", "feature-flags", Strategy::Latest, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(config.val, json!({"beta": true, "newUI": false}));
    assert_eq!(config.tenant_id, m.tenant());
    let second = shared
        .save(
            "config",
            "feature-flags",
            &json!({"beta": false}),
            Strategy::Latest,
        )
        .await
        .unwrap();
    assert_eq!(second.id, first.id, "one document per key, replaced");
    let config = shared
        .load("config", "feature-flags", Strategy::Latest, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(config.val, json!({"beta": false}));

    // Append strategy: versioned history.
    let v0 = shared
        .save(
            "events",
            "user-session",
            &json!({"action": "login", "ts": "2026-01-01T00:00:00Z"}),
            Strategy::Append,
        )
        .await
        .unwrap();
    assert_eq!(v0.version, Some(0));
    let v1 = shared
        .save(
            "events",
            "user-session",
            &json!({"action": "view-page", "page": "/home"}),
            Strategy::Append,
        )
        .await
        .unwrap();
    assert_eq!(v1.version, Some(1));
    assert_ne!(v0.id, v1.id);
    let got0 = shared
        .load("events", "user-session", Strategy::Append, Some(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got0.val["action"], "login");
    assert_eq!(got0.version, Some(0));
    let latest = shared
        .load("events", "user-session", Strategy::Append, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (latest.version.unwrap(), latest.val["page"].clone()),
        (1, json!("/home"))
    );
    assert!(shared
        .load("events", "user-session", Strategy::Append, Some(2))
        .await
        .unwrap()
        .is_none());
    assert!(shared
        .load("events", "other", Strategy::Append, None)
        .await
        .unwrap()
        .is_none());
    let e = shared
        .load("config", "feature-flags", Strategy::Latest, Some(0))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");

    // Tombstone: every version of the key, with its reason.
    let t = shared
        .tombstone("config", "feature-flags", "tenant-deleted")
        .await
        .unwrap();
    assert!(t.latest);
    assert!(shared
        .load("config", "feature-flags", Strategy::Latest, None)
        .await
        .unwrap()
        .is_none());
    let t = shared
        .tombstone("events", "user-session", "tenant-deleted")
        .await
        .unwrap();
    assert_eq!(t.versions, 2);
    assert!(shared
        .load("events", "user-session", Strategy::Append, None)
        .await
        .unwrap()
        .is_none());
    assert!(shared
        .load("events", "user-session", Strategy::Append, Some(0))
        .await
        .unwrap()
        .is_none());
    // A later save lives again; append numbers are never reused.
    let v2 = shared
        .save(
            "events",
            "user-session",
            &json!({"action": "again"}),
            Strategy::Append,
        )
        .await
        .unwrap();
    assert_eq!(v2.version, Some(2));
    let back = shared
        .load("events", "user-session", Strategy::Append, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.val["action"], "again");
    shared
        .save(
            "config",
            "feature-flags",
            &json!({"beta": true}),
            Strategy::Latest,
        )
        .await
        .unwrap();
    assert!(shared
        .load("config", "feature-flags", Strategy::Latest, None)
        .await
        .unwrap()
        .is_some());
}

async fn topics_and_messages(m: &Messaging) {
    let t = m.topics().ensure("payments", 4).await.unwrap();
    assert_eq!(
        (t.tenant_id.as_str(), t.topic.as_str(), t.shards),
        (m.tenant(), "payments", 4)
    );
    let again = m.topics().ensure("payments", 8).await.unwrap();
    assert_eq!(again, t, "ensure never changes an existing topic");
    assert_eq!(m.topics().get("payments").await.unwrap(), Some(t.clone()));
    assert!(m.topics().get("refunds").await.unwrap().is_none());
    m.topics().ensure("refunds", 1).await.unwrap();
    let names: Vec<String> = m
        .topics()
        .list(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.topic)
        .collect();
    assert_eq!(names, ["payments", "refunds"]);

    let msg = NewMessage::new(
        "payments",
        "171223123-0",
        json!({"orderId": "123", "amount": 100}),
    )
    .headers(obj(json!({"type": "payment.created", "traceId": "abc123"})))
    .first_seen_at(ago(1000))
    .size(128);
    assert_eq!(m.messages().save(&msg).await.unwrap(), SaveOutcome::Saved);
    assert_eq!(
        m.messages().save(&msg).await.unwrap(),
        SaveOutcome::Duplicate
    );
    // Same id, other content: an error, never an overwrite.
    let forged = NewMessage {
        payload: json!({"orderId": "123", "amount": 1_000_000}),
        ..msg.clone()
    };
    let e = m.messages().save(&forged).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("171223123-0"), "{e}");
    let got = m
        .messages()
        .get("payments", "171223123-0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.payload["amount"], 100);
    assert_eq!(got.headers["traceId"], "abc123");
    assert_eq!(got.size, 128);
    assert_eq!(got.first_seen_at, msg.first_seen_at.unwrap());

    // List with a time filter: the last 24 h, newest first, keyset pages.
    for i in 0..25 {
        let old = NewMessage::new("payments", format!("m{i:02}"), json!({"i": i})).first_seen_at(
            ago(if i < 5 {
                2 * 86_400_000
            } else {
                60_000 - i * 10
            }),
        );
        m.messages().save(&old).await.unwrap();
    }
    let recent = m
        .messages()
        .list(&ListQuery::new("payments").after(ago(86_400_000)).limit(100))
        .await
        .unwrap();
    assert_eq!(recent.items.len(), 21, "20 recent + the spec's message");
    assert!(recent.next.is_none());
    assert!(
        recent
            .items
            .windows(2)
            .all(|w| w[0].first_seen_at >= w[1].first_seen_at),
        "newest first"
    );
    let mut seen = Vec::new();
    let mut q = ListQuery::new("payments").order(Order::Oldest).limit(7);
    loop {
        let page = m.messages().list(&q).await.unwrap();
        seen.extend(page.items.iter().map(|x| x.msg_id.clone()));
        match page.next {
            Some(c) => q = q.cursor(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 26, "every message once across pages");
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 26);
    let older = m
        .messages()
        .list(&ListQuery::new("payments").before(ago(86_400_000)))
        .await
        .unwrap();
    assert_eq!(older.items.len(), 5);
    let e = m
        .messages()
        .list(&ListQuery::new("payments").limit(0))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    let page = m
        .messages()
        .list(&ListQuery::new("payments").limit(2))
        .await
        .unwrap();
    let e = m
        .messages()
        .list(
            &ListQuery::new("payments")
                .order(Order::Oldest)
                .cursor(page.next.unwrap()),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Validation,
        "a cursor of the other order: {e}"
    );
}

async fn deliveries_and_dead_letters(m: &Messaging) {
    let deliveries = m.deliveries().expect("captureDeliveries is on");
    let attempt = |status, ts| NewDelivery {
        topic: "payments".into(),
        subscription: "payment-processor".into(),
        msg_id: "171223123-0".into(),
        attempt: 1,
        status,
        consumer_id: Some("worker-1".into()),
        ts: Some(ts),
    };
    let t0 = ago(5000);
    let pending = deliveries
        .append(&attempt(DeliveryStatus::Pending, t0))
        .await
        .unwrap();
    assert_eq!(pending.status, DeliveryStatus::Pending);
    let acked = deliveries
        .append(&attempt(DeliveryStatus::Ack, ago(4000)))
        .await
        .unwrap();
    assert_eq!(acked.status, DeliveryStatus::Ack);
    // A late report of an older state does not reopen the attempt.
    let late = deliveries
        .append(&attempt(DeliveryStatus::Pending, t0))
        .await
        .unwrap();
    assert_eq!(late.status, DeliveryStatus::Ack);
    let list = deliveries
        .list_by_message("payments", "171223123-0")
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].attempt, list[0].status), (1, DeliveryStatus::Ack));
    let e = deliveries
        .append(&NewDelivery {
            attempt: 0,
            ..attempt(DeliveryStatus::Pending, t0)
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);

    let dl = NewDeadLetter {
        topic: "payments".into(),
        subscription: "payment-processor".into(),
        msg_id: "171223123-0".into(),
        headers: obj(json!({"type": "payment.created"})),
        payload: json!({"orderId": "123", "amount": 100}),
        deliveries: 5,
        reason: "max_retries_exceeded".into(),
        failed_at: Some(ago(3000)),
    };
    assert_eq!(
        m.dead_letters().save(&dl).await.unwrap(),
        SaveOutcome::Saved
    );
    assert_eq!(
        m.dead_letters().save(&dl).await.unwrap(),
        SaveOutcome::Duplicate
    );
    let dlq = m
        .dead_letters()
        .list(&ListQuery::new("payments").after(ago(86_400_000)).limit(100))
        .await
        .unwrap();
    assert_eq!(dlq.items.len(), 1);
    assert_eq!(
        (dlq.items[0].reason.as_str(), dlq.items[0].deliveries),
        ("max_retries_exceeded", 5)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_examples_on_every_backend() {
    let (stores, _dir) = common::stores().await;
    for (name, docs) in &stores {
        eprintln!("backend {name}");
        let m = common::handle(docs, "tenant-a");
        shared_memory(&m).await;
        topics_and_messages(&m).await;
        deliveries_and_dead_letters(&m).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_need_capture_deliveries() {
    let docs: std::sync::Arc<dyn chronos_core::DocumentStore> =
        std::sync::Arc::new(chronos_testkit::MemoryDocumentStore::new());
    let m = Messaging::new(docs, Settings::default(), "tenant-a").unwrap();
    assert!(m.deliveries().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_errors_naming_the_problem() {
    let (stores, _dir) = common::stores().await;
    for (name, docs) in &stores {
        eprintln!("backend {name}");
        assert_eq!(
            Messaging::new(docs.clone(), Settings::default(), "")
                .unwrap_err()
                .kind(),
            ErrorKind::Validation
        );
        let m = Messaging::new(
            docs.clone(),
            Settings {
                max_message_bytes: 1024,
                ..Settings::default()
            },
            "t",
        )
        .unwrap();
        let big = NewMessage::new("payments", "big", json!({"blob": "x".repeat(2000)}));
        let e = m.messages().save(&big).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation);
        assert!(e.to_string().contains("the limit is 1024"), "{e}");
        assert!(
            m.messages().get("payments", "big").await.unwrap().is_none(),
            "nothing half-written"
        );
        let e = m
            .shared()
            .save("ns", "k", &json!("x".repeat(2000)), Strategy::Append)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation);
        let mut deep = json!(1);
        for _ in 0..80 {
            deep = json!([deep]);
        }
        let e = m
            .messages()
            .save(&NewMessage::new("payments", "deep", deep))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
        for (field, r) in [
            ("topic", m.messages().get("", "x").await.map(|_| ())),
            (
                "msgId",
                m.messages().get("payments", "a\u{0}b").await.map(|_| ()),
            ),
            (
                "namespace",
                m.shared()
                    .load("", "k", Strategy::Latest, None)
                    .await
                    .map(|_| ()),
            ),
            ("shards", m.topics().ensure("payments", 0).await.map(|_| ())),
        ] {
            let e = r.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Validation);
            assert_eq!(e.context("field"), Some(field), "{e}");
        }
    }
}
