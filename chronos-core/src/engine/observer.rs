//! The post-commit seam: a hook that core calls after every committed version, so crates
//! above core (analytics counters) learn about writes without core depending on them. The
//! facade wires the implementations ([`Engine::observe`](super::Engine::observe)).

use std::fmt;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::error::Result;
use crate::id::ItemId;
use crate::model::Op;
use crate::time::Timestamp;

/// One committed version, as an observer sees it.
#[derive(Debug, Clone, Copy)]
pub struct CommitEvent<'a> {
    /// The collection.
    pub collection: &'a str,
    /// The index database's id ([`Collection::database_id`](super::Collection::database_id)).
    pub database_id: &'a str,
    /// The record.
    pub id: ItemId,
    /// Its new version.
    pub ov: u64,
    /// The collection version of the commit.
    pub cv: u64,
    /// What the version did.
    pub op: Op,
    /// When.
    pub at: Timestamp,
    /// Who, if the writer said.
    pub actor: Option<&'a str>,
    /// The version's indexed metadata (what `meta`-scoped filters see).
    pub meta: &'a Map<String, Value>,
    /// The version's data as stored (externalised properties already refs; for a delete the
    /// last content the tombstone keeps).
    pub data: &'a Map<String, Value>,
}

/// Called once per committed version, after the commit and before the write returns.
///
/// Contract: the version is committed whatever the observer does — an error is logged (with
/// the collection, id and ov) and never fails or undoes the write; a write whose outcome was
/// unknown and then resolved as committed is reported once, a write that did not commit never.
/// A process crash between commit and call loses the call: an observer that must be exact
/// catches up from the committed history, not from this hook alone. Observers run inline on
/// the writer's task; slow work belongs on a queue of the observer's own.
#[async_trait]
pub trait CommitObserver: Send + Sync + fmt::Debug {
    /// A version was committed.
    async fn committed(&self, event: CommitEvent<'_>) -> Result<()>;
}
