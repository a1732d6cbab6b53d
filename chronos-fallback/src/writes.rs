//! Writes through the spool: tried on the store first; queued (durably, before the call
//! returns) only when the store is unavailable.

use chronos_core::model::{payload_from_value, to_payload};
use chronos_core::time::now_ms;
use chronos_core::{
    check_map_depth, Collection, CreateOptions, EnrichOptions, Error, IdempotencyKey, ItemId,
    Result, WriteOptions, WriteResult,
};
use serde::Serialize;
use serde_json::Value;

use crate::op::{OpKind, Progress, QueuedOp};
use crate::replay::settle_after;
use crate::spool::Spool;

/// What a write through the spool did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a queued write is not committed yet"]
pub enum Outcome {
    /// Committed now.
    Committed(WriteResult),
    /// Not committed: kept in the spool, replayed later (exactly once).
    Queued(Queued),
}

impl Outcome {
    /// The committed result, if the write committed now.
    pub fn committed(&self) -> Option<&WriteResult> {
        match self {
            Outcome::Committed(r) => Some(r),
            Outcome::Queued(_) => None,
        }
    }
    /// The record's id (assigned before queueing, for creates).
    pub fn id(&self) -> ItemId {
        match self {
            Outcome::Committed(r) => r.id,
            Outcome::Queued(q) => q.id,
        }
    }
}

/// A write kept in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The operation's id (also the idempotency key its version will carry): for
    /// [`Spool::retry`], [`Spool::cancel`] and finding it in [`Spool::pending`].
    pub op_id: IdempotencyKey,
    /// The record's id.
    pub id: ItemId,
    /// Why it was queued: the store's error, or that earlier writes of the record are
    /// queued (a write never overtakes them).
    pub reason: String,
}

/// A collection written through the spool: [`Spool::collection`].
#[derive(Debug, Clone)]
pub struct SpooledCollection {
    spool: Spool,
    target: String,
    name: String,
}

impl Spool {
    /// Writes to the collection `name` that the resolver finds at `target`, through the
    /// spool.
    pub fn collection(
        &self,
        target: impl Into<String>,
        name: impl Into<String>,
    ) -> SpooledCollection {
        SpooledCollection {
            spool: self.clone(),
            target: target.into(),
            name: name.into(),
        }
    }
}

impl SpooledCollection {
    /// `create`; the id is assigned (unless given) before the first attempt, so a queued
    /// create already names its record.
    pub async fn create<T: Serialize + Sync + ?Sized>(
        &self,
        data: &T,
        opts: CreateOptions,
    ) -> Result<Outcome> {
        let data = to_payload(data)?;
        check_map_depth(&data)?;
        let op = self.op(
            OpKind::Create,
            opts.id.unwrap_or_else(ItemId::generate),
            opts.idempotency_key.clone(),
            Some(Value::Object(data)),
            opts.actor.clone(),
            opts.reason.clone(),
            None,
        );
        let op = QueuedOp {
            parent: opts.parent,
            origin: opts.origin,
            ..op
        };
        self.run(op).await
    }

    /// `update`.
    pub async fn update<T: Serialize + Sync + ?Sized>(
        &self,
        id: ItemId,
        data: &T,
        opts: WriteOptions,
    ) -> Result<Outcome> {
        let data = to_payload(data).map_err(|e| e.with("id", id))?;
        check_map_depth(&data)?;
        let op = self.op(
            OpKind::Update,
            id,
            opts.idempotency_key,
            Some(Value::Object(data)),
            opts.actor,
            opts.reason,
            opts.expected_ov,
        );
        self.run(op).await
    }

    /// `enrich` (one patch object or an array of them).
    pub async fn enrich<T: Serialize + Sync + ?Sized>(
        &self,
        id: ItemId,
        patches: &T,
        opts: EnrichOptions,
    ) -> Result<Outcome> {
        let v = serde_json::to_value(patches)
            .map_err(|e| Error::validation(format!("patch does not serialize to JSON: {e}")))?;
        let list = match v {
            Value::Array(a) if a.is_empty() => {
                return Err(Error::validation("enrich needs at least one patch"))
            }
            Value::Array(a) => a,
            one => vec![one],
        };
        for (i, p) in list.iter().enumerate() {
            let m = payload_from_value(p.clone()).map_err(|e| e.with("patch", i))?;
            check_map_depth(&m)?;
        }
        let op = self.op(
            OpKind::Enrich,
            id,
            opts.idempotency_key,
            Some(Value::Array(list)),
            opts.actor,
            opts.reason,
            opts.expected_ov,
        );
        let op = QueuedOp {
            function_id: opts.function_id,
            ..op
        };
        self.run(op).await
    }

    /// `delete`.
    pub async fn delete(&self, id: ItemId, opts: WriteOptions) -> Result<Outcome> {
        let op = self.op(
            OpKind::Delete,
            id,
            opts.idempotency_key,
            None,
            opts.actor,
            opts.reason,
            opts.expected_ov,
        );
        self.run(op).await
    }

    #[allow(clippy::too_many_arguments)]
    fn op(
        &self,
        kind: OpKind,
        id: ItemId,
        key: Option<IdempotencyKey>,
        data: Option<Value>,
        actor: Option<String>,
        reason: Option<String>,
        expected_ov: Option<u64>,
    ) -> QueuedOp {
        let now = now_ms();
        QueuedOp {
            op_id: key.unwrap_or_else(IdempotencyKey::generate),
            seq: 0,
            target: self.target.clone(),
            collection: self.name.clone(),
            kind,
            id,
            data,
            expected_ov,
            actor,
            reason,
            parent: None,
            origin: None,
            function_id: None,
            first_started_ms: now.as_millisecond(),
            queued_at: now,
        }
    }

    /// Tries the write, queues it when the store is unavailable.
    async fn run(&self, op: QueuedOp) -> Result<Outcome> {
        let ctx = |e: Error| e.with("collection", &self.name);
        if self.spool.has_pending(&self.target, op.id) {
            let reason =
                "earlier writes of this record are queued; it goes behind them".to_string();
            return self
                .queue(op, Progress::default(), reason)
                .await
                .map_err(ctx);
        }
        let c = match self.spool.inner.resolver.collection(&self.target).await {
            Ok(c) => c,
            Err(e) if e.is_retryable() => {
                return self
                    .queue(op, Progress::default(), e.to_string())
                    .await
                    .map_err(ctx)
            }
            Err(e) => return Err(e),
        };
        match apply(&c, &op).await {
            Ok(r) => Ok(Outcome::Committed(r)),
            Err(e) if e.is_retryable() => {
                // This attempt may still commit until its deadline: the replay looks for it
                // first and applies the operation again only after that.
                let p = Progress {
                    settled_at_ms: settle_after(now_ms().as_millisecond(), &c),
                    last_error: Some(e.to_string()),
                    ..Progress::default()
                };
                self.queue(op, p, e.to_string()).await.map_err(ctx)
            }
            Err(e) => Err(e),
        }
    }

    async fn queue(&self, op: QueuedOp, p: Progress, reason: String) -> Result<Outcome> {
        let (op_id, id) = (op.op_id.clone(), op.id);
        tracing::info!(operation = %op_id, collection = self.name, %id, kind = op.kind.name(),
            reason, "fallback: write queued in the spool");
        self.spool.enqueue(op, p).await?;
        Ok(Outcome::Queued(Queued { op_id, id, reason }))
    }
}

/// Applies a queued operation to its collection (with its id and idempotency key).
pub(crate) async fn apply(c: &Collection, op: &QueuedOp) -> Result<WriteResult> {
    let data = op.data.clone().unwrap_or(Value::Null);
    let w = WriteOptions {
        expected_ov: op.expected_ov,
        actor: op.actor.clone(),
        reason: op.reason.clone(),
        idempotency_key: Some(op.op_id.clone()),
    };
    match op.kind {
        OpKind::Create => {
            let opts = CreateOptions {
                actor: op.actor.clone(),
                reason: op.reason.clone(),
                id: Some(op.id),
                parent: op.parent.clone(),
                origin: op.origin.clone(),
                idempotency_key: Some(op.op_id.clone()),
            };
            c.create(&data, opts).await
        }
        OpKind::Update => c.update(op.id, &data, w).await,
        OpKind::Enrich => {
            let opts = EnrichOptions {
                expected_ov: op.expected_ov,
                function_id: op.function_id.clone(),
                actor: op.actor.clone(),
                reason: op.reason.clone(),
                idempotency_key: Some(op.op_id.clone()),
            };
            c.enrich(op.id, &data, opts).await
        }
        OpKind::Delete => c.delete(op.id, w).await,
    }
}
