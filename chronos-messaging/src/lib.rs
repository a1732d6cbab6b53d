//! Chronos messaging: the spec's messaging database (Chronow's warm, durable tier) — shared
//! memory snapshots (`latest` and `append`), topics, idempotent canonical messages, delivery
//! attempts and dead letters — in one database shared by every tenant, each document and
//! each query carrying its `tenantId`.
//!
//! Built on core only: everything is stored through [`chronos_core::DocumentStore`], so the
//! same code runs on the in-memory store, SQLite and MongoDB. Guarantees, on every backend:
//! - [`SharedMemory::save`] with [`Strategy::Latest`] keeps one document per key and replaces
//!   it atomically; with [`Strategy::Append`] it assigns versions 0, 1, 2 … with no gap and
//!   no duplicate, also across processes (see [`shared`]);
//! - [`Messages::save`] is idempotent on `(tenant, topic, msgId)` forever: the same content
//!   again is [`SaveOutcome::Duplicate`], different content is a `Conflict` — never an
//!   overwrite;
//! - a handle never reads or writes another tenant's documents: the tenant is part of every
//!   id and every filter;
//! - nothing above [`Settings::max_message_bytes`] (default 256 KiB) is stored: the write is
//!   a validation error naming the limit. Large payloads belong in a versioned collection,
//!   with the message carrying its id.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use chronos_messaging::{Messaging, NewMessage, SaveOutcome, Settings, Strategy};
//! use chronos_testkit::MemoryDocumentStore;
//! use serde_json::json;
//!
//! let messaging = Messaging::new(Arc::new(MemoryDocumentStore::new()), Settings::default(), "tenant-a")?;
//! let v = messaging.shared().save("events", "user-session", &json!({"action": "login"}), Strategy::Append).await?;
//! assert_eq!(v.version, Some(0));
//!
//! let msg = NewMessage::new("payments", "171223123-0", json!({"orderId": "123", "amount": 100}));
//! assert_eq!(messaging.messages().save(&msg).await?, SaveOutcome::Saved);
//! assert_eq!(messaging.messages().save(&msg).await?, SaveOutcome::Duplicate);
//! # Ok::<(), chronos_core::Error>(())
//! # }).unwrap();
//! ```

pub mod config;
pub mod dead_letters;
pub mod deliveries;
mod keys;
pub mod messages;
pub mod model;
pub mod retention;
pub mod shared;
pub mod topics;

use std::sync::Arc;

use chronos_core::{check_map_depth, DocLayout, DocumentStore, Error, Result};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

pub use config::{MessagingDatabase, RetentionConfig, Settings};
pub use dead_letters::DeadLetters;
pub use deliveries::Deliveries;
pub use keys::MAX_NAME_BYTES;
pub use messages::Messages;
pub use model::{
    DeadLetter, Delivery, DeliveryStatus, ListQuery, Message, NewDeadLetter, NewDelivery,
    NewMessage, Order, Page, SaveOutcome, Saved, SharedValue, Strategy, Tombstoned, Topic,
};
pub use retention::{RetentionPolicy, RetentionReport};
pub use shared::SharedMemory;
pub use topics::Topics;

/// The collections of the messaging database (the spec's names).
pub mod collections {
    /// Shared memory snapshots.
    pub const SHARED_MEMORY: &str = "shared_memory";
    /// Topic metadata.
    pub const TOPICS: &str = "topics";
    /// Canonical messages.
    pub const MESSAGES: &str = "messages";
    /// Delivery attempts.
    pub const DELIVERIES: &str = "deliveries";
    /// Dead letters.
    pub const DEAD_LETTERS: &str = "dead_letters";
}

/// The messaging database as seen by one tenant (`chronos.messaging(tenant)`).
#[derive(Clone)]
pub struct Messaging {
    inner: Arc<Inner>,
    tenant: String,
}

/// The tenant and settings; never the store (whose `Debug` a backend may fill with data).
impl std::fmt::Debug for Messaging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messaging")
            .field("tenant", &self.tenant)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Inner {
    docs: Arc<dyn DocumentStore>,
    settings: Settings,
    /// The collections' layouts are declared once per store, on first use.
    prepared: OnceCell<()>,
}

impl Messaging {
    /// A tenant's handle on the messaging database stored in `docs`. Handles made with
    /// [`Messaging::for_tenant`] share one store declaration.
    pub fn new(docs: Arc<dyn DocumentStore>, settings: Settings, tenant: &str) -> Result<Self> {
        keys::check_name("tenantId", tenant)?;
        Ok(Self {
            inner: Arc::new(Inner {
                docs,
                settings,
                prepared: OnceCell::new(),
            }),
            tenant: tenant.to_string(),
        })
    }

    /// Another tenant's handle on the same store.
    pub fn for_tenant(&self, tenant: &str) -> Result<Self> {
        keys::check_name("tenantId", tenant)?;
        Ok(Self {
            inner: self.inner.clone(),
            tenant: tenant.to_string(),
        })
    }

    /// Every tenant with a document in this messaging database, sorted, at most `max`
    /// (any tenant's handle sees them all): what the worker's retention job runs over. One
    /// indexed query per tenant and collection.
    pub async fn tenants(&self, max: usize) -> Result<Vec<String>> {
        use collections::*;
        let docs = self.docs().await?;
        let mut all = std::collections::BTreeSet::new();
        for c in [SHARED_MEMORY, TOPICS, MESSAGES, DELIVERIES, DEAD_LETTERS] {
            all.extend(chronos_core::distinct_strings(docs, c, "tenantId", max).await?);
        }
        Ok(all.into_iter().take(max).collect())
    }

    /// The tenant this handle reads and writes.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Shared memory snapshots.
    pub fn shared(&self) -> SharedMemory<'_> {
        SharedMemory { m: self }
    }

    /// Topic metadata.
    pub fn topics(&self) -> Topics<'_> {
        Topics { m: self }
    }

    /// Canonical messages.
    pub fn messages(&self) -> Messages<'_> {
        Messages { m: self }
    }

    /// Delivery attempts: `None` unless `captureDeliveries` is on.
    pub fn deliveries(&self) -> Option<Deliveries<'_>> {
        self.inner
            .settings
            .capture_deliveries
            .then_some(Deliveries { m: self })
    }

    /// Dead letters.
    pub fn dead_letters(&self) -> DeadLetters<'_> {
        DeadLetters { m: self }
    }

    /// The store, its layouts declared.
    pub(crate) async fn docs(&self) -> Result<&dyn DocumentStore> {
        let docs = &*self.inner.docs;
        self.inner
            .prepared
            .get_or_try_init(|| async {
                use collections::*;
                let layouts = [
                    (
                        SHARED_MEMORY,
                        DocLayout::new(
                            [vec!["tenantId", "namespace", "key", "strategy", "version"]],
                            &["updatedAt"],
                        ),
                    ),
                    (
                        TOPICS,
                        DocLayout::new([vec!["tenantId", "topic"]], &["createdAt"]),
                    ),
                    (
                        MESSAGES,
                        DocLayout::new(
                            [
                                vec!["tenantId", "topic", "listKey"],
                                vec!["tenantId", "firstSeenAt"],
                            ],
                            &["firstSeenAt"],
                        ),
                    ),
                    (
                        DELIVERIES,
                        DocLayout::new(
                            [vec!["tenantId", "topic", "msgId"], vec!["tenantId", "ts"]],
                            &["ts"],
                        ),
                    ),
                    (
                        DEAD_LETTERS,
                        DocLayout::new(
                            [
                                vec!["tenantId", "topic", "listKey"],
                                vec!["tenantId", "topic", "msgId"],
                                vec!["tenantId", "failedAt"],
                            ],
                            &["failedAt"],
                        ),
                    ),
                ];
                for (coll, layout) in &layouts {
                    docs.prepare(coll, layout).await?;
                }
                Ok::<(), Error>(())
            })
            .await?;
        Ok(docs)
    }

    /// A document body for this tenant: `tenantId` first, then `fields`; checked against the
    /// size and depth limits (`what` names the record in the error).
    pub(crate) fn body(&self, what: &str, fields: Value) -> Result<Map<String, Value>> {
        let mut body = Map::new();
        body.insert("tenantId".into(), Value::String(self.tenant.clone()));
        if let Value::Object(m) = fields {
            body.extend(m);
        }
        self.check_size(what, &body)?;
        Ok(body)
    }

    pub(crate) fn check_size(&self, what: &str, body: &Map<String, Value>) -> Result<()> {
        check_map_depth(body).map_err(|e| e.with("record", what))?;
        let limit = self.inner.settings.max_message_bytes;
        let size = serde_json::to_vec(body)
            .map(|v| v.len() as u64)
            .unwrap_or(u64::MAX);
        if size > limit {
            return Err(Error::validation(format!(
                "{what} is {size} bytes of JSON; the limit is {limit} (databases.messaging.maxMessageBytes)"
            ))
            .with("limit", limit)
            .with("record", what));
        }
        Ok(())
    }

    /// A filter on this tenant's documents: `tenantId` and the given equalities / conditions.
    pub(crate) fn filter(&self, mut conds: Map<String, Value>) -> Result<chronos_core::Filter> {
        conds.insert("tenantId".into(), Value::String(self.tenant.clone()));
        chronos_core::Filter::parse(&Value::Object(conds))
    }
}

pub(crate) use chronos_core::docs::decode_body as decode;
