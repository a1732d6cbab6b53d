//! # chronos-store-mongo
//!
//! Chronos's [`IndexStore`](chronos_core::IndexStore), [`Lock`](chronos_core::Lock) and
//! [`DocumentStore`](chronos_core::DocumentStore) on MongoDB (official driver 3.x), in the
//! storage layout of the TypeScript library: `<c>_head`, `<c>_ver` (unique `(itemId, ov)`),
//! `<c>_counter`, plus `chronos_locks` with a TTL index. Data written by that library reads
//! back unchanged.
//!
//! One [`MongoConnection`] per distinct URI: it owns the driver client (its own pool), detects
//! once whether the deployment supports transactions (replica set or mongos) and hands out
//! per-database stores. Without transactions the ordered, idempotent commit path keeps every
//! invariant (see `index`). URIs with credentials never appear in errors or `Debug`.

/// Runs a driver action in the session when there is one (a transaction), else directly.
macro_rules! exec {
    ($sess:expr, $action:expr) => {
        match $sess.as_deref_mut() {
            Some(s) => $action.session(s).await,
            None => $action.await,
        }
    };
}

mod aggregate;
mod conv;
mod docs;
mod error;
mod feed;
mod filter;
mod index;
mod lock;
mod prune;
mod repair;
mod seen;
mod sortkey;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use docs::MongoDocumentStore;
pub use feed::{reservation_ttl, RESERVATION_TTL, RESERVATION_TTL_VAR, SETTLE_MARGIN};
pub use index::MongoIndexStore;
pub use lock::MongoLock;
pub use repair::MovedVersion;

use chronos_core::{DocumentStore, Error, IndexStore, Lock, Result};
use mongodb::bson::doc;
use mongodb::options::ClientOptions;
use mongodb::Client;

/// Whether to use multi-document transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transactions {
    /// Use them when the deployment supports them (detected once per connection).
    #[default]
    Auto,
    /// Never: the ordered, idempotent path.
    Off,
    /// Always: connecting fails if the deployment cannot do transactions.
    Required,
}

/// One client for one URI, shared by every database and tenant that references it.
#[derive(Clone)]
pub struct MongoConnection {
    client: Client,
    redacted: String,
    transactions: bool,
    /// Commands sent, when counting ([`MongoConnection::connect_counting`]).
    requests: Option<Arc<AtomicU64>>,
}

impl fmt::Debug for MongoConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoConnection")
            .field("uri", &self.redacted)
            .field("transactions", &self.transactions)
            .finish()
    }
}

/// How long a pooled connection may sit idle when the URI does not say (`maxIdleTimeMS`).
/// The driver's own default keeps idle connections forever; servers, proxies and firewalls
/// that drop idle connections (SecantusDB after 5 minutes) then make the next operation on
/// one fail — and a standalone server has no retryable writes to hide it.
pub const DEFAULT_MAX_IDLE: Duration = Duration::from_secs(60);

/// The URI's client options, with [`DEFAULT_MAX_IDLE`] unless the URI sets `maxIdleTimeMS`.
async fn client_options(uri: &str) -> mongodb::error::Result<ClientOptions> {
    let mut opts = ClientOptions::parse(uri).await?;
    opts.max_idle_time.get_or_insert(DEFAULT_MAX_IDLE);
    Ok(opts)
}

impl MongoConnection {
    /// Connects and asks the server (`hello`) whether it supports transactions.
    pub async fn connect(uri: &str, mode: Transactions) -> Result<Self> {
        Self::open(uri, mode, None).await
    }

    /// [`MongoConnection::connect`], also counting every command the client sends
    /// ([`MongoConnection::requests_sent`]): for benchmarks and diagnostics. Not the default,
    /// because the driver then builds an event (a copy of the command) per request.
    pub async fn connect_counting(uri: &str, mode: Transactions) -> Result<Self> {
        Self::open(uri, mode, Some(Arc::default())).await
    }

    /// Commands sent to the server since connecting (retries and the `hello` included), when
    /// connected with [`MongoConnection::connect_counting`].
    pub fn requests_sent(&self) -> Option<u64> {
        self.requests.as_ref().map(|n| n.load(Ordering::Relaxed))
    }

    async fn open(uri: &str, mode: Transactions, requests: Option<Arc<AtomicU64>>) -> Result<Self> {
        let redacted = chronos_core::error::redact_uri(uri);
        let client = client_options(uri)
            .await
            .map(|mut opts| {
                if let Some(n) = &requests {
                    let n = n.clone();
                    opts.command_event_handler =
                        Some(mongodb::event::EventHandler::callback(move |e| {
                            if let mongodb::event::command::CommandEvent::Started(_) = e {
                                n.fetch_add(1, Ordering::Relaxed);
                            }
                        }));
                }
                opts
            })
            .and_then(Client::with_options)
            .map_err(|e| {
                // The driver's message can quote the URI: report only the kind of problem.
                let kind = error::map_err(e, "connect").kind();
                let what = if kind == chronos_core::ErrorKind::Validation {
                    "is not a valid MongoDB URI (a password with @ / : ? # must be percent-encoded)"
                } else {
                    "cannot be connected to"
                };
                Error::new(kind, format!("{redacted} {what}"))
            })?;
        let hello = client
            .database("admin")
            .run_command(doc! {"hello": 1})
            .await
            .map_err(|e| {
                // Wrong credentials and an unreachable server need different fixes: say which
                // (the driver's message is not passed on: it can quote the URI).
                let what = match e.kind.as_ref() {
                    // Code 18: AuthenticationFailed, as a server reports it.
                    mongodb::error::ErrorKind::Authentication { .. } => {
                        "authentication failed (check the user name, password and authSource)"
                    }
                    mongodb::error::ErrorKind::Command(c) if c.code == 18 => {
                        "authentication failed (check the user name, password and authSource)"
                    }
                    mongodb::error::ErrorKind::ServerSelection { .. }
                    | mongodb::error::ErrorKind::Io(_) => "is unreachable (no server answered)",
                    _ => "did not answer hello",
                };
                Error::new(
                    error::map_err(e, "hello").kind(),
                    format!("MongoDB at {redacted}: {what}"),
                )
            })?;
        let supports =
            hello.get_str("setName").is_ok() || hello.get_str("msg").is_ok_and(|m| m == "isdbgrid");
        if mode == Transactions::Required && !supports {
            return Err(Error::invalid_config(format!(
                "transactions are required (transactions.autoDetect is false) but MongoDB at {redacted} is not a replica set or mongos"
            )));
        }
        let transactions = mode != Transactions::Off && supports;
        tracing::debug!(uri = %redacted, transactions, "connected to MongoDB");
        Ok(Self {
            client,
            redacted,
            transactions,
            requests,
        })
    }

    /// Whether commits use transactions.
    pub fn uses_transactions(&self) -> bool {
        self.transactions
    }

    /// Whether index commits are single atomic transactions (the same as
    /// [`MongoConnection::uses_transactions`]).
    pub fn index_capabilities_atomic(&self) -> bool {
        self.transactions
    }

    /// The stores of database `name`.
    pub async fn database(&self, name: &str) -> Result<MongoStores> {
        let db = self.client.database(name);
        Ok(MongoStores {
            index: Arc::new(MongoIndexStore::new(
                self.client.clone(),
                db.clone(),
                self.transactions,
            )),
            lock: Arc::new(MongoLock::new(db.collection("chronos_locks")).await?),
            docs: Arc::new(MongoDocumentStore::new(db)),
        })
    }

    /// Closes the client's connections.
    pub async fn shutdown(&self) {
        self.client.clone().shutdown().await;
    }
}

/// The stores of one MongoDB database.
#[derive(Debug, Clone)]
pub struct MongoStores {
    index: Arc<MongoIndexStore>,
    lock: Arc<MongoLock>,
    docs: Arc<MongoDocumentStore>,
}

impl MongoStores {
    /// The index store.
    pub fn index(&self) -> Arc<dyn IndexStore> {
        self.index.clone()
    }
    /// The lease store.
    pub fn lock(&self) -> Arc<dyn Lock> {
        self.lock.clone()
    }
    /// The document store.
    pub fn docs(&self) -> Arc<dyn DocumentStore> {
        self.docs.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_connections_expire_unless_the_uri_says_otherwise() {
        let o = client_options("mongodb://127.0.0.1:1/").await.unwrap();
        assert_eq!(o.max_idle_time, Some(DEFAULT_MAX_IDLE));
        let o = client_options("mongodb://127.0.0.1:1/?maxIdleTimeMS=5000")
            .await
            .unwrap();
        assert_eq!(o.max_idle_time, Some(Duration::from_secs(5)));
    }
}
