//! The records of the messaging database, as stored and as returned. Instants are UTC with
//! millisecond precision, written as ISO-8601 text (`2024-01-01T00:00:00.000Z`) in JSON;
//! MongoDB stores them as native dates.

use chronos_core::time::{now_ms, truncate_ms};
use chronos_core::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub(crate) use chronos_core::time::serde_instant as instant;

/// How shared memory keeps a key's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// One value per key; a save replaces it.
    Latest,
    /// Every save is a new version: 0, 1, 2 …
    Append,
}

impl Strategy {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Latest => "latest",
            Self::Append => "append",
        }
    }
}

/// What a shared-memory save stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Saved {
    /// The document id.
    pub id: String,
    /// The version `append` assigned (`None` for `latest`, which keeps no history).
    pub version: Option<u64>,
}

/// A shared-memory value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedValue {
    /// The tenant.
    pub tenant_id: String,
    /// The namespace.
    pub namespace: String,
    /// The key.
    pub key: String,
    /// How the key is kept.
    pub strategy: Strategy,
    /// The `append` version (`None` for `latest`).
    #[serde(default)]
    pub version: Option<u64>,
    /// The value.
    pub val: Value,
    /// When it was saved.
    #[serde(with = "instant")]
    pub updated_at: Timestamp,
}

/// What a tombstone removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstoned {
    /// Whether a `latest` value was removed.
    pub latest: bool,
    /// How many `append` versions were removed.
    pub versions: u64,
}

/// Topic metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Topic {
    /// The tenant.
    pub tenant_id: String,
    /// The topic.
    pub topic: String,
    /// Its shard count.
    pub shards: u32,
    /// When it was first ensured.
    #[serde(with = "instant")]
    pub created_at: Timestamp,
}

/// A message to save (`messages.save`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// The topic.
    pub topic: String,
    /// Its id within the topic (a Redis stream id, a ULID …): the idempotency key.
    pub msg_id: String,
    /// Headers.
    pub headers: Map<String, Value>,
    /// The payload.
    pub payload: Value,
    /// When it was first seen (default: now).
    pub first_seen_at: Option<Timestamp>,
    /// Its size as the publisher counts it (default: the payload's JSON length).
    pub size: Option<u64>,
}

impl NewMessage {
    /// A message with no headers, first seen now.
    pub fn new(topic: impl Into<String>, msg_id: impl Into<String>, payload: Value) -> Self {
        Self {
            topic: topic.into(),
            msg_id: msg_id.into(),
            headers: Map::new(),
            payload,
            first_seen_at: None,
            size: None,
        }
    }
    /// With these headers.
    pub fn headers(mut self, headers: Map<String, Value>) -> Self {
        self.headers = headers;
        self
    }
    /// First seen at `t`.
    pub fn first_seen_at(mut self, t: Timestamp) -> Self {
        self.first_seen_at = Some(t);
        self
    }
    /// With the publisher's size.
    pub fn size(mut self, size: u64) -> Self {
        self.size = Some(size);
        self
    }
}

/// What saving a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SaveOutcome {
    /// Stored.
    Saved,
    /// Already stored with the same headers and payload; nothing changed.
    Duplicate,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// The tenant.
    pub tenant_id: String,
    /// The topic.
    pub topic: String,
    /// Its id within the topic.
    pub msg_id: String,
    /// Headers.
    pub headers: Map<String, Value>,
    /// The payload.
    pub payload: Value,
    /// When it was first seen.
    #[serde(with = "instant")]
    pub first_seen_at: Timestamp,
    /// Its size.
    pub size: u64,
}

/// The state of a delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Handed to a consumer, no answer yet.
    Pending,
    /// Acknowledged.
    Ack,
    /// Refused by the consumer; it will be retried.
    Nack,
    /// Given up on (the message went to the dead letters).
    Dead,
}

impl DeliveryStatus {
    /// Whether the message still waits on this attempt (pending or nack).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Nack)
    }
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ack => "ack",
            Self::Nack => "nack",
            Self::Dead => "dead",
        }
    }
}

/// A delivery attempt to record (`deliveries.append`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The topic.
    pub topic: String,
    /// The subscription.
    pub subscription: String,
    /// The message.
    pub msg_id: String,
    /// The attempt number (from 1).
    pub attempt: u32,
    /// Its state.
    pub status: DeliveryStatus,
    /// Which consumer.
    pub consumer_id: Option<String>,
    /// When (default: now).
    pub ts: Option<Timestamp>,
}

/// A recorded delivery attempt: one per `(subscription, msgId, attempt)`, holding its newest
/// state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The tenant.
    pub tenant_id: String,
    /// The topic.
    pub topic: String,
    /// The subscription.
    pub subscription: String,
    /// The message.
    pub msg_id: String,
    /// The attempt number.
    pub attempt: u32,
    /// Its newest state.
    pub status: DeliveryStatus,
    /// Which consumer.
    #[serde(default)]
    pub consumer_id: Option<String>,
    /// When that state was reported.
    #[serde(with = "instant")]
    pub ts: Timestamp,
}

/// A dead letter to save (`deadLetters.save`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadLetter {
    /// The topic.
    pub topic: String,
    /// The subscription that gave up.
    pub subscription: String,
    /// The message.
    pub msg_id: String,
    /// Its headers.
    pub headers: Map<String, Value>,
    /// Its payload.
    pub payload: Value,
    /// How many deliveries were tried.
    pub deliveries: u32,
    /// Why it failed.
    pub reason: String,
    /// When (default: now).
    pub failed_at: Option<Timestamp>,
}

/// A stored dead letter: one per `(subscription, msgId, failedAt)`, so saving the same
/// failure twice stores it once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The tenant.
    pub tenant_id: String,
    /// The topic.
    pub topic: String,
    /// The subscription.
    pub subscription: String,
    /// The message.
    pub msg_id: String,
    /// Its headers.
    pub headers: Map<String, Value>,
    /// Its payload.
    pub payload: Value,
    /// How many deliveries were tried.
    pub deliveries: u32,
    /// Why it failed.
    pub reason: String,
    /// When.
    #[serde(with = "instant")]
    pub failed_at: Timestamp,
}

/// Page order of [`ListQuery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Newest first (the default).
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
}

/// A time-ordered list of one topic's messages or dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// The topic.
    pub topic: String,
    /// Only records strictly after this instant.
    pub after: Option<Timestamp>,
    /// Only records strictly before this instant.
    pub before: Option<Timestamp>,
    /// At most this many (1..=1000; default 100).
    pub limit: usize,
    /// Newest or oldest first.
    pub order: Order,
    /// Where the previous page ended ([`Page::next`]).
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The newest 100 of `topic`.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            after: None,
            before: None,
            limit: 100,
            order: Order::Newest,
            cursor: None,
        }
    }
    /// Only after `t`.
    pub fn after(mut self, t: Timestamp) -> Self {
        self.after = Some(t);
        self
    }
    /// Only before `t`.
    pub fn before(mut self, t: Timestamp) -> Self {
        self.before = Some(t);
        self
    }
    /// At most `n`.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }
    /// In this order.
    pub fn order(mut self, o: Order) -> Self {
        self.order = o;
        self
    }
    /// Continuing after a page.
    pub fn cursor(mut self, c: impl Into<String>) -> Self {
        self.cursor = Some(c.into());
        self
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The records.
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last.
    pub next: Option<String>,
}

/// `t`, or now, at millisecond precision.
pub(crate) fn at_or_now(t: Option<Timestamp>) -> Timestamp {
    t.map(truncate_ms).unwrap_or_else(now_ms)
}
