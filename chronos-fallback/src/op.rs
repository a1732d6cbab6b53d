//! What the spool keeps: queued operations and the entries that record their fate.

use chronos_core::{IdempotencyKey, ItemId, Op, Origin, RecordRef, Timestamp, WriteResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What kind of write an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// `create` (the record's id is assigned before the operation is queued).
    Create,
    /// `update`.
    Update,
    /// `enrich`.
    Enrich,
    /// `delete`.
    Delete,
}

impl OpKind {
    /// The lower-case name (`create`, `update` …).
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Update => "update",
            OpKind::Enrich => "enrich",
            OpKind::Delete => "delete",
        }
    }
}

/// One queued write: everything needed to apply it later, in any process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedOp {
    /// The operation id, also the idempotency key its versions carry.
    pub op_id: IdempotencyKey,
    /// Spool order (increasing).
    pub seq: u64,
    /// Where it goes: the target string the caller's resolver understands.
    pub target: String,
    /// The collection's name, for listings.
    pub collection: String,
    /// What kind of write.
    pub kind: OpKind,
    /// The record.
    pub id: ItemId,
    /// The data (create, update) or the patches (enrich, an array); none for delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// `expected_ov`, when the caller pinned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_ov: Option<u64>,
    /// Who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Create only: the parent record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<RecordRef>,
    /// Create only: the explicit origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Enrich only: the function id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_id: Option<String>,
    /// When the caller's first attempt began (epoch ms): no version of this operation can
    /// be older.
    pub first_started_ms: i64,
    /// When it was queued.
    pub queued_at: Timestamp,
}

/// How far an operation's replay has got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Replay attempts so far.
    pub attempts: u32,
    /// Not replayed before this instant (epoch ms): the backoff.
    pub next_at_ms: i64,
    /// Not re-applied before this instant (epoch ms) unless its own version is found: the
    /// latest attempt's commit deadline plus the clock-skew margin, after which no commit of
    /// that attempt can land.
    pub settled_at_ms: i64,
    /// The last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The compact form of a committed write kept in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Committed {
    pub(crate) ov: u64,
    pub(crate) cv: u64,
    pub(crate) at: Timestamp,
    pub(crate) op: Op,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "camelCase")]
pub(crate) enum Entry {
    /// A new queued operation.
    Add { op: Box<QueuedOp> },
    /// A replay attempt failed; when to try again.
    Progress { id: IdempotencyKey, p: Progress },
    /// Applied (by a replay, or found committed by an earlier attempt): leaves the spool.
    Done { id: IdempotencyKey, c: Committed },
    /// Moved to the dead letters with its last error.
    Dead { id: IdempotencyKey, error: String },
    /// A dead letter put back in the queue (attempts start again).
    Revive { id: IdempotencyKey },
    /// Removed by the operator; never applied.
    Cancel { id: IdempotencyKey },
}

impl Committed {
    pub(crate) fn of(r: &WriteResult) -> Self {
        Self {
            ov: r.ov,
            cv: r.cv,
            at: r.at,
            op: r.op,
        }
    }
}
