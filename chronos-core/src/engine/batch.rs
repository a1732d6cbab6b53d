//! Batched writes: [`Collection::create_many`] and [`Collection::update_many`].
//!
//! A batch goes through the commit pipeline once for all its items: payloads put
//! concurrently, the index commits in one [`IndexStore::commit_many`](crate::IndexStore)
//! call (one transaction on SQLite). Each item keeps its own outcome — a bad item, a taken
//! id or a stale `expected_ov` fails that item only — and batches longer than
//! [`CollectionConfig::batch_size`](super::CollectionConfig::batch_size) run in chunks of
//! that size.

use std::collections::HashSet;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::{Map, Value};

use super::commit::Draft;
use super::state::{Current, HeadRead};
use super::write::lineage_for_create;
use super::{conflict, Collection, CreateOptions, WriteOptions};
use crate::error::{Error, Result};
use crate::id::ItemId;
use crate::model::{to_payload, Op, WriteResult};

/// Current states read at once for an update batch.
const READ_CONCURRENCY: usize = 16;

impl Collection {
    /// Creates several records; one result per item, in order (as [`Collection::create`]
    /// would give it). An id given twice in one batch fails the later items (`Validation`).
    ///
    /// ```
    /// # async fn demo(c: chronos_core::Collection) -> chronos_core::Result<()> {
    /// use chronos_core::CreateOptions;
    /// let docs = [serde_json::json!({"n": 1}), serde_json::json!({"n": 2})];
    /// let results = c.create_many(docs.iter().map(|d| (d, CreateOptions::new()))).await;
    /// for r in results {
    ///     println!("created {}", r?.id);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn create_many<T, I>(&self, items: I) -> Vec<Result<WriteResult>>
    where
        T: Serialize + Sync,
        I: IntoIterator<Item = (T, CreateOptions)>,
    {
        let mut seen = HashSet::new();
        let mut prepared: Vec<Result<Draft>> = items
            .into_iter()
            .enumerate()
            .map(|(i, (data, opts))| {
                self.create_draft(&data, opts)
                    .and_then(|d| {
                        if seen.insert(d.id) {
                            Ok(d)
                        } else {
                            Err(twice(d.id))
                        }
                    })
                    .map_err(|e| e.with("collection", self.name()).with("item", i))
            })
            .collect();
        let mut out = Vec::with_capacity(prepared.len());
        while !prepared.is_empty() {
            let rest = prepared.split_off(self.inner.config.batch_size.clamp(1, prepared.len()));
            let chunk = std::mem::replace(&mut prepared, rest);
            out.extend(self.create_chunk(chunk).await);
        }
        out
    }

    /// Replaces the data of several live records (each as [`Collection::update`] would);
    /// one result per item, in order. An item whose write loses a race to another writer
    /// is retried on its own unless it pinned `expected_ov`. A record named twice in one
    /// batch fails the later items (`Validation`).
    pub async fn update_many<T, I>(&self, items: I) -> Vec<Result<WriteResult>>
    where
        T: Serialize + Sync,
        I: IntoIterator<Item = (ItemId, T, WriteOptions)>,
    {
        let mut seen = HashSet::new();
        let parsed: Vec<Result<UpdateItem>> = items
            .into_iter()
            .enumerate()
            .map(|(i, (id, data, opts))| {
                let ctx = |e: Error| {
                    e.with("collection", self.name())
                        .with("id", id)
                        .with("item", i)
                };
                let data = to_payload(&data).map_err(ctx)?;
                self.check_required(&data, Some(id)).map_err(ctx)?;
                if !seen.insert(id) {
                    return Err(ctx(twice(id)));
                }
                Ok((id, data, opts))
            })
            .collect();
        let mut out = Vec::with_capacity(parsed.len());
        for chunk in parsed.chunks(self.inner.config.batch_size.max(1)) {
            out.extend(self.update_chunk(chunk).await);
        }
        out
    }

    fn create_draft<T: Serialize + Sync>(&self, data: &T, opts: CreateOptions) -> Result<Draft> {
        let data = to_payload(data)?;
        self.check_required(&data, None)?;
        let lineage = lineage_for_create(&opts)?;
        Ok(Draft {
            id: opts.id.unwrap_or_else(ItemId::generate),
            op: Op::Create,
            data,
            lineage,
            actor: opts.actor,
            reason: opts.reason,
            key: opts.idempotency_key,
        })
    }

    /// One chunk of `create_many`: the drafts that parsed go through the pipeline.
    async fn create_chunk(&self, chunk: Vec<Result<Draft>>) -> Vec<Result<WriteResult>> {
        let mut drafts = Vec::new();
        let mut slots = Vec::with_capacity(chunk.len());
        for item in chunk {
            match item {
                Ok(d) => {
                    slots.push(Ok(d.id));
                    drafts.push((None, d));
                }
                Err(e) => slots.push(Err(e)),
            }
        }
        let mut committed = self.append_many(drafts).await.into_iter();
        slots
            .into_iter()
            .map(|slot| {
                let id = slot?;
                committed
                    .next()
                    .expect("one result per draft")
                    .map_err(|e| {
                        if conflict::is_lost_race(&e) {
                            Error::already_exists(format!("record {id} already exists"))
                                .with("collection", self.name())
                                .with("id", id)
                        } else {
                            e
                        }
                    })
            })
            .collect()
    }

    /// One chunk of `update_many`: current states read concurrently, then one pipeline pass;
    /// lost races retried one by one through `update`.
    async fn update_chunk(&self, chunk: &[Result<UpdateItem>]) -> Vec<Result<WriteResult>> {
        let reading: Vec<_> = chunk.iter().map(|item| self.update_draft(item)).collect();
        let drafts: Vec<Result<(Current, Draft)>> = stream::iter(reading)
            .buffered(READ_CONCURRENCY)
            .collect()
            .await;
        let mut slots = Vec::with_capacity(drafts.len());
        let mut batch = Vec::new();
        for d in drafts {
            match d {
                Ok((cur, draft)) => {
                    slots.push(None);
                    batch.push((Some(cur), draft));
                }
                Err(e) => slots.push(Some(Err(e))),
            }
        }
        let mut committed = self.append_many(batch).await.into_iter();
        let mut out = Vec::with_capacity(slots.len());
        for (slot, item) in slots.into_iter().zip(chunk) {
            let r = match slot {
                Some(r) => r,
                None => committed.next().expect("one result per draft"),
            };
            out.push(match (r, item) {
                (Err(e), Ok((id, data, opts)))
                    if conflict::is_lost_race(&e) && opts.expected_ov.is_none() =>
                {
                    self.update(*id, data, opts.clone()).await
                }
                (r, _) => r,
            });
        }
        out
    }
}

impl Collection {
    /// The current state and the draft of one `update_many` item.
    async fn update_draft(&self, item: &Result<UpdateItem>) -> Result<(Current, Draft)> {
        let (id, data, opts) = match item {
            Ok(x) => x,
            Err(e) => return Err(e.replicate()),
        };
        let cur = self.current_live(*id, HeadRead::Checked).await?;
        self.check_expected(*id, opts.expected_ov, &cur)?;
        let lineage = match &cur.lineage {
            Some(l) => l.clone(),
            None => self.load_current(&cur).await?.system.lineage,
        };
        let draft = Draft {
            id: *id,
            op: Op::Update,
            data: data.clone(),
            lineage,
            actor: opts.actor.clone(),
            reason: opts.reason.clone(),
            key: opts.idempotency_key.clone(),
        };
        Ok((cur, draft))
    }
}

/// One parsed `update_many` item.
type UpdateItem = (ItemId, Map<String, Value>, WriteOptions);

/// The error of an item naming a record an earlier item of its batch already names.
fn twice(id: ItemId) -> Error {
    Error::validation(format!(
        "record {id} appears more than once in the batch; write it once per batch"
    ))
    .with("id", id)
}
