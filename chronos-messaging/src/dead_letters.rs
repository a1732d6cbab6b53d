//! Dead letters: messages a subscription gave up on, one document per
//! `(tenant, topic, subscription, msgId, failedAt)` — saving one failure twice stores it once.

use chronos_core::time::format_instant;
use chronos_core::{Document, ErrorKind, Result};
use serde_json::json;

use crate::collections::DEAD_LETTERS as COLL;
use crate::keys::{self, check_name};
use crate::model::{at_or_now, DeadLetter, ListQuery, NewDeadLetter, Page, SaveOutcome};
use crate::Messaging;

/// Dead letters of one tenant ([`Messaging::dead_letters`]).
#[derive(Debug, Clone, Copy)]
pub struct DeadLetters<'a> {
    pub(crate) m: &'a Messaging,
}

impl DeadLetters<'_> {
    /// Saves a dead letter (a repeat of the same failure is [`SaveOutcome::Duplicate`]).
    pub async fn save(&self, d: &NewDeadLetter) -> Result<SaveOutcome> {
        check_name("topic", &d.topic)?;
        check_name("subscription", &d.subscription)?;
        check_name("msgId", &d.msg_id)?;
        check_name("reason", &d.reason)?;
        let at = at_or_now(d.failed_at);
        let when = format_instant(at);
        let id = keys::id(
            "X",
            &[self.m.tenant(), &d.topic, &d.subscription, &d.msg_id, &when],
        );
        let body = self.m.body(
            "dead letter",
            json!({"topic": d.topic, "subscription": d.subscription, "msgId": d.msg_id,
                   "headers": d.headers, "payload": d.payload, "deliveries": d.deliveries,
                   "reason": d.reason, "failedAt": when,
                   "listKey": keys::list_key(at, &[&d.msg_id, &d.subscription, &d.topic])}),
        )?;
        match self
            .m
            .docs()
            .await?
            .insert(COLL, Document { id, body })
            .await
        {
            Ok(()) => Ok(SaveOutcome::Saved),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(SaveOutcome::Duplicate),
            Err(e) => Err(e),
        }
    }

    /// A page of a topic's dead letters by `failedAt`.
    pub async fn list(&self, q: &ListQuery) -> Result<Page<DeadLetter>> {
        crate::messages::list(self.m, COLL, "failedAt", q).await
    }
}
