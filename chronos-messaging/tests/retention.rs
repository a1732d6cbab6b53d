//! Retention on every backend: closed deliveries, dead letters and messages older than their
//! windows go; a message a subscription still waits on, or whose dead letter is still kept,
//! stays; append-mode keys keep their newest `maxVersions` versions.

mod common;

use std::time::Duration;

use chronos_core::Timestamp;
use chronos_messaging::{
    DeliveryStatus, ListQuery, NewDeadLetter, NewDelivery, NewMessage, Order, RetentionPolicy,
    Strategy,
};
use serde_json::{json, Map};

const DAY: i64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_only_what_is_no_longer_needed() {
    let (stores, _dir) = common::stores().await;
    let now = Timestamp::from_millisecond(1_767_225_600_000 + 40 * DAY).unwrap();
    let days_ago = |d: i64| Timestamp::from_millisecond(now.as_millisecond() - d * DAY).unwrap();
    for (name, docs) in &stores {
        eprintln!("backend {name}");
        let m = common::handle(docs, "tenant-a");
        let other = m.for_tenant("tenant-b").unwrap();
        // Messages: m-old-* 20 days old, m-new 1 day old.
        for (id, age) in [
            ("old-acked", 20),
            ("old-open", 20),
            ("old-dead-recent", 20),
            ("old-dead-stale", 20),
            ("old-plain", 20),
            ("new", 1),
        ] {
            let msg = NewMessage::new("orders", id, json!({"id": id})).first_seen_at(days_ago(age));
            m.messages().save(&msg).await.unwrap();
            other.messages().save(&msg).await.unwrap();
        }
        let d = m.deliveries().unwrap();
        let delivery = |msg: &str, attempt, status, age| NewDelivery {
            topic: "orders".into(),
            subscription: "billing".into(),
            msg_id: msg.into(),
            attempt,
            status,
            consumer_id: None,
            ts: Some(days_ago(age)),
        };
        d.append(&delivery("old-acked", 1, DeliveryStatus::Nack, 19))
            .await
            .unwrap();
        d.append(&delivery("old-acked", 2, DeliveryStatus::Ack, 19))
            .await
            .unwrap();
        d.append(&delivery("old-open", 1, DeliveryStatus::Pending, 19))
            .await
            .unwrap();
        d.append(&delivery("new", 1, DeliveryStatus::Ack, 1))
            .await
            .unwrap();
        let dead = |msg: &str, age| NewDeadLetter {
            topic: "orders".into(),
            subscription: "billing".into(),
            msg_id: msg.into(),
            headers: Map::new(),
            payload: json!({}),
            deliveries: 5,
            reason: "max_retries_exceeded".into(),
            failed_at: Some(days_ago(age)),
        };
        m.dead_letters()
            .save(&dead("old-dead-recent", 2))
            .await
            .unwrap();
        m.dead_letters()
            .save(&dead("old-dead-stale", 31))
            .await
            .unwrap();
        for i in 0..10 {
            m.shared()
                .save("events", "session", &json!(i), Strategy::Append)
                .await
                .unwrap();
            m.shared()
                .save("events", "short", &json!(i), Strategy::Append)
                .await
                .unwrap();
            other
                .shared()
                .save("events", "session", &json!(i), Strategy::Append)
                .await
                .unwrap();
        }

        let policy = RetentionPolicy {
            deliveries: Some(Duration::from_secs(7 * 86_400)),
            dead_letters: Some(Duration::from_secs(30 * 86_400)),
            messages: Some(Duration::from_secs(14 * 86_400)),
            max_versions: 4,
        };
        let r = m.apply_retention(&policy, now).await.unwrap();
        assert_eq!(
            r.deliveries, 2,
            "{name}: the ack and the nack it superseded: {r:?}"
        );
        assert_eq!(r.open_deliveries_kept, 1, "{name}: {r:?}");
        assert_eq!(r.dead_letters, 1, "{name}: the 31-day-old one: {r:?}");
        assert_eq!(
            r.messages, 3,
            "{name}: acked, plain and the one whose dead letter expired: {r:?}"
        );
        assert_eq!(r.messages_kept, 2, "{name}: {r:?}");
        assert_eq!(r.versions, 12, "{name}: 6 of each of two keys: {r:?}");

        let left: Vec<String> = m
            .messages()
            .list(&ListQuery::new("orders").order(Order::Oldest))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|x| x.msg_id)
            .collect();
        let mut left = left;
        left.sort();
        assert_eq!(left, ["new", "old-dead-recent", "old-open"], "{name}");
        assert_eq!(
            other
                .messages()
                .list(&ListQuery::new("orders"))
                .await
                .unwrap()
                .items
                .len(),
            6,
            "{name}: the other tenant is untouched"
        );
        let ds = d.list_by_message("orders", "old-open").await.unwrap();
        assert_eq!(ds.len(), 1, "{name}: the open attempt stays");
        assert!(
            d.list_by_message("orders", "old-acked")
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        let sh = m.shared();
        assert!(
            sh.load("events", "session", Strategy::Append, Some(5))
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        assert_eq!(
            sh.load("events", "session", Strategy::Append, Some(6))
                .await
                .unwrap()
                .unwrap()
                .val,
            json!(6),
            "{name}"
        );
        assert_eq!(
            sh.load("events", "session", Strategy::Append, None)
                .await
                .unwrap()
                .unwrap()
                .version,
            Some(9),
            "{name}"
        );
        assert!(
            other
                .shared()
                .load("events", "session", Strategy::Append, Some(0))
                .await
                .unwrap()
                .is_some(),
            "{name}"
        );

        // Closing the open attempt lets its message go on the next run.
        d.append(&delivery("old-open", 1, DeliveryStatus::Ack, 1))
            .await
            .unwrap();
        let again = m.apply_retention(&policy, now).await.unwrap();
        assert_eq!(
            (again.messages, again.versions),
            (1, 0),
            "{name}: {again:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_pages_past_kept_messages() {
    // More old messages than one retention page (500), every third still needed: pages must
    // move past the kept ones without skipping or repeating any.
    let (stores, _dir) = common::stores().await;
    let now = Timestamp::from_millisecond(1_767_225_600_000 + 40 * DAY).unwrap();
    for (name, docs) in &stores {
        let m = common::handle(docs, "tenant-a");
        let n = 1_200;
        for i in 0..n {
            let t = Timestamp::from_millisecond(now.as_millisecond() - 20 * DAY + i).unwrap();
            let msg = NewMessage::new(["a", "b"][i as usize % 2], format!("m{i:05}"), json!(i))
                .first_seen_at(t);
            m.messages().save(&msg).await.unwrap();
            if i % 3 == 0 {
                let d = NewDelivery {
                    topic: msg.topic.clone(),
                    subscription: "s".into(),
                    msg_id: msg.msg_id.clone(),
                    attempt: 1,
                    status: DeliveryStatus::Pending,
                    consumer_id: None,
                    ts: Some(t),
                };
                m.deliveries().unwrap().append(&d).await.unwrap();
            }
        }
        let policy = RetentionPolicy {
            messages: Some(Duration::from_secs(14 * 86_400)),
            ..RetentionPolicy::default()
        };
        let r = m.apply_retention(&policy, now).await.unwrap();
        assert_eq!((r.messages, r.messages_kept), (800, 400), "{name}: {r:?}");
        let left = docs
            .count(
                "messages",
                &chronos_core::Filter::parse(&json!({"tenantId": "tenant-a"})).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(left, 400, "{name}");
    }
}
