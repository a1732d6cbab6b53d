//! Retention: library calls the worker schedules (and a user may call), one tenant at a
//! time.
//!
//! - Deliveries older than their window are removed once closed (`ack`, `dead`) or
//!   superseded by a later attempt; an open attempt stays — it is the evidence that a
//!   subscription still waits.
//! - Dead letters older than their window are removed.
//! - Messages older than their window are removed unless a subscription still waits on them
//!   (an open newest attempt) or a dead letter of theirs is still kept (newer than the dead
//!   letters' window, or any dead letter when that window is unset).
//! - Append-mode shared memory keeps the newest `maxVersions` versions of every key (the
//!   newest is never removed).

use std::time::Duration;

use chronos_core::time::format_instant;
use chronos_core::{DocQuery, Result, SortField, Timestamp};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::collections::{DEAD_LETTERS, DELIVERIES, MESSAGES, SHARED_MEMORY};
use crate::config::{RetentionConfig, DEFAULT_MAX_VERSIONS};
use crate::deliveries::{any_open, delivery_id, of_message};
use crate::model::{Delivery, Message};
use crate::Messaging;

/// Documents examined per page while applying retention.
const BATCH: usize = 500;

/// What retention removes. `None` windows keep everything of that kind.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionPolicy {
    /// Age after which closed deliveries go.
    pub deliveries: Option<Duration>,
    /// Age after which dead letters go.
    pub dead_letters: Option<Duration>,
    /// Age after which messages go.
    pub messages: Option<Duration>,
    /// Append-mode versions kept per key (at least 1).
    pub max_versions: u64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            deliveries: None,
            dead_letters: None,
            messages: None,
            max_versions: DEFAULT_MAX_VERSIONS,
        }
    }
}

impl RetentionPolicy {
    /// The policy of `databases.messaging.retention` (validated beforehand).
    pub fn from_config(c: Option<&RetentionConfig>) -> Self {
        let days = |d: Option<f64>| d.map(|d| Duration::from_secs_f64(d * 86_400.0));
        match c {
            None => Self::default(),
            Some(c) => Self {
                deliveries: days(c.deliveries_days),
                dead_letters: days(c.dead_letters_days),
                messages: days(c.messages_days),
                max_versions: c.max_versions.unwrap_or(DEFAULT_MAX_VERSIONS).max(1),
            },
        }
    }
}

/// What one retention run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionReport {
    /// Deliveries removed.
    pub deliveries: u64,
    /// Old deliveries kept because their attempt is still open.
    pub open_deliveries_kept: u64,
    /// Dead letters removed.
    pub dead_letters: u64,
    /// Messages removed.
    pub messages: u64,
    /// Old messages kept because a subscription waits on them or a dead letter is kept.
    pub messages_kept: u64,
    /// Append-mode versions removed.
    pub versions: u64,
}

fn cutoff(now: Timestamp, age: Duration) -> String {
    let span = jiff::SignedDuration::try_from(age).unwrap_or(jiff::SignedDuration::MAX);
    format_instant(now.checked_sub(span).unwrap_or(Timestamp::MIN))
}

fn conds(pairs: Value) -> Map<String, Value> {
    pairs.as_object().cloned().unwrap_or_default()
}

impl Messaging {
    /// Applies `policy` to this tenant's documents as of `now`.
    pub async fn apply_retention(
        &self,
        policy: &RetentionPolicy,
        now: Timestamp,
    ) -> Result<RetentionReport> {
        let mut report = RetentionReport::default();
        let docs = self.docs().await?;
        if let Some(age) = policy.deliveries {
            let old = cutoff(now, age);
            // Superseded attempts first: the later attempt that proves it is closed may
            // itself be old and removed next.
            self.prune_superseded(&old, &mut report).await?;
            report.deliveries += docs
                .delete_where(
                    DELIVERIES,
                    &self.filter(conds(
                        json!({"ts": {"$lt": old}, "status": {"$in": ["ack", "dead"]}}),
                    ))?,
                )
                .await?;
        }
        if let Some(age) = policy.dead_letters {
            let f = self.filter(conds(json!({"failedAt": {"$lt": cutoff(now, age)}})))?;
            report.dead_letters += docs.delete_where(DEAD_LETTERS, &f).await?;
        }
        if let Some(age) = policy.messages {
            self.prune_messages(
                &cutoff(now, age),
                policy.dead_letters.map(|a| cutoff(now, a)),
                &mut report,
            )
            .await?;
        }
        self.prune_versions(policy.max_versions.max(1), &mut report)
            .await?;
        tracing::debug!(tenant = %self.tenant(), ?report, "messaging retention applied");
        Ok(report)
    }

    /// Old open attempts: removed when a later attempt of theirs exists, else kept.
    async fn prune_superseded(&self, old: &str, report: &mut RetentionReport) -> Result<()> {
        let docs = self.docs().await?;
        let mut pages = Pager::new(
            DELIVERIES,
            conds(json!({"ts": {"$lt": old}, "status": {"$in": ["pending", "nack"]}})),
        );
        while let Some(page) = pages.next(self).await? {
            for d in page {
                let id = d.id.clone();
                let del: Delivery = crate::decode(DELIVERIES, d)?;
                let later = delivery_id(
                    self.tenant(),
                    &del.topic,
                    &del.subscription,
                    &del.msg_id,
                    del.attempt + 1,
                );
                if docs.get(DELIVERIES, &later).await?.is_some() {
                    report.deliveries += u64::from(docs.delete(DELIVERIES, &id).await?);
                } else {
                    report.open_deliveries_kept += 1;
                }
            }
        }
        Ok(())
    }

    async fn prune_messages(
        &self,
        old: &str,
        dead_letter_cutoff: Option<String>,
        report: &mut RetentionReport,
    ) -> Result<()> {
        let docs = self.docs().await?;
        // The kept ones stay, so a cursor (not an offset) moves past them.
        let mut pages = Pager::new(MESSAGES, conds(json!({"firstSeenAt": {"$lt": old}})));
        while let Some(page) = pages.next(self).await? {
            for d in page {
                let id = d.id.clone();
                let msg: Message = crate::decode(MESSAGES, d)?;
                if self
                    .still_needed(&msg, dead_letter_cutoff.as_deref())
                    .await?
                {
                    report.messages_kept += 1;
                } else {
                    report.messages += u64::from(docs.delete(MESSAGES, &id).await?);
                }
            }
        }
        Ok(())
    }

    async fn still_needed(&self, msg: &Message, dead_letter_cutoff: Option<&str>) -> Result<bool> {
        if self.settings().capture_deliveries
            && any_open(&of_message(self, &msg.topic, &msg.msg_id).await?)
        {
            return Ok(true);
        }
        let mut c = conds(json!({"topic": msg.topic, "msgId": msg.msg_id}));
        if let Some(cut) = dead_letter_cutoff {
            c.insert("failedAt".into(), json!({"$gte": cut}));
        }
        Ok(self
            .docs()
            .await?
            .count(DEAD_LETTERS, &self.filter(c)?)
            .await?
            > 0)
    }

    async fn prune_versions(&self, keep: u64, report: &mut RetentionReport) -> Result<()> {
        let docs = self.docs().await?;
        let mut skip = 0;
        loop {
            let q = DocQuery {
                filter: self.filter(conds(json!({"strategy": "head"})))?,
                sort: Some((SortField::Id, false)),
                skip,
                limit: BATCH,
            };
            let heads = docs.find(SHARED_MEMORY, &q).await?;
            skip += heads.len();
            for h in &heads {
                let next = h.body.get("next").and_then(Value::as_u64).unwrap_or(0);
                if next <= keep {
                    continue;
                }
                let f = self.filter(conds(json!({
                    "namespace": h.body.get("namespace"), "key": h.body.get("key"),
                    "strategy": "append", "version": {"$lt": next - keep}})))?;
                report.versions += docs.delete_where(SHARED_MEMORY, &f).await?;
            }
            if heads.len() < BATCH {
                break;
            }
        }
        Ok(())
    }
}

/// Pages of this tenant's documents matching `base`, in `listKey` order, resuming after the
/// last key seen (documents kept by the caller do not shift the next page).
struct Pager {
    coll: &'static str,
    base: Map<String, Value>,
    after: Option<String>,
    done: bool,
}

impl Pager {
    fn new(coll: &'static str, base: Map<String, Value>) -> Self {
        Self {
            coll,
            base,
            after: None,
            done: false,
        }
    }

    async fn next(&mut self, m: &Messaging) -> Result<Option<Vec<chronos_core::Document>>> {
        if self.done {
            return Ok(None);
        }
        let mut c = self.base.clone();
        if let Some(a) = &self.after {
            c.insert("listKey".into(), json!({"$gt": a}));
        }
        let q = DocQuery {
            filter: m.filter(c)?,
            sort: Some((SortField::Meta("listKey".into()), false)),
            skip: 0,
            limit: BATCH,
        };
        let page = m.docs().await?.find(self.coll, &q).await?;
        self.after = page
            .last()
            .and_then(|d| d.body.get("listKey"))
            .and_then(Value::as_str)
            .map(str::to_string);
        self.done = page.len() < BATCH || self.after.is_none();
        Ok((!page.is_empty()).then_some(page))
    }
}
