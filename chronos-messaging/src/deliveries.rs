//! Delivery attempts (only with `captureDeliveries`): one document per
//! `(tenant, topic, subscription, msgId, attempt)` holding the attempt's newest state.
//!
//! Reports can arrive out of order (an `ack` overtaking its `pending`): a report older than
//! the stored one is ignored, so an attempt never goes back to looking open.

use chronos_core::time::format_instant;
use chronos_core::{DocQuery, DocUpdate, Document, Error, ErrorKind, Filter, Result, SortField};
use serde_json::{json, Map};

use crate::collections::DELIVERIES as COLL;
use crate::keys::{self, check_name};
use crate::model::{at_or_now, Delivery, DeliveryStatus, NewDelivery};
use crate::Messaging;

/// The most attempts [`Deliveries::list_by_message`] returns.
pub const MAX_ATTEMPTS_LISTED: usize = 10_000;

/// Delivery attempts of one tenant ([`Messaging::deliveries`]).
#[derive(Debug, Clone, Copy)]
pub struct Deliveries<'a> {
    pub(crate) m: &'a Messaging,
}

pub(crate) fn delivery_id(
    tenant: &str,
    topic: &str,
    subscription: &str,
    msg_id: &str,
    attempt: u32,
) -> String {
    keys::id(
        "D",
        &[
            tenant,
            topic,
            subscription,
            msg_id,
            &format!("{attempt:010}"),
        ],
    )
}

impl Deliveries<'_> {
    /// Records an attempt's state; returns what is stored for the attempt afterwards (the
    /// newest report by `ts`).
    pub async fn append(&self, d: &NewDelivery) -> Result<Delivery> {
        check_name("topic", &d.topic)?;
        check_name("subscription", &d.subscription)?;
        check_name("msgId", &d.msg_id)?;
        if let Some(c) = &d.consumer_id {
            check_name("consumerId", c)?;
        }
        if d.attempt == 0 {
            return Err(Error::validation("attempt numbers start at 1").with("field", "attempt"));
        }
        let id = delivery_id(
            self.m.tenant(),
            &d.topic,
            &d.subscription,
            &d.msg_id,
            d.attempt,
        );
        let ts = format_instant(at_or_now(d.ts));
        let body = self.m.body(
            "delivery",
            json!({"topic": d.topic, "subscription": d.subscription, "msgId": d.msg_id,
                   "attempt": d.attempt, "status": d.status.as_str(), "consumerId": d.consumer_id,
                   "ts": ts,
                   // Orders a message's attempts; unique within the tenant (retention pages by it).
                   "listKey": format!("{}|{:010}|{}|{}", keys::escape(&d.subscription), d.attempt,
                                      keys::escape(&d.msg_id), keys::escape(&d.topic))}),
        )?;
        let docs = self.m.docs().await?;
        let not_newer = Filter::parse(&json!({"ts": {"$lte": ts}}))?;
        for _ in 0..100 {
            let step = DocUpdate {
                set: body.clone().into_iter().collect(),
                inc: vec![],
            };
            if let Some(after) = docs.update_where(COLL, &id, &not_newer, step).await? {
                return crate::decode(COLL, after);
            }
            match docs.get(COLL, &id).await? {
                // A newer report is stored: it stays.
                Some(cur) => return crate::decode(COLL, cur),
                None => match docs
                    .insert(
                        COLL,
                        Document {
                            id: id.clone(),
                            body: body.clone(),
                        },
                    )
                    .await
                {
                    Ok(()) => return crate::decode(COLL, Document { id, body }),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                },
            }
        }
        Err(Error::unavailable("delivery update kept conflicting").with("collection", COLL))
    }

    /// Every recorded attempt of a message, by subscription then attempt.
    pub async fn list_by_message(&self, topic: &str, msg_id: &str) -> Result<Vec<Delivery>> {
        check_name("topic", topic)?;
        check_name("msgId", msg_id)?;
        of_message(self.m, topic, msg_id).await
    }
}

pub(crate) async fn of_message(m: &Messaging, topic: &str, msg_id: &str) -> Result<Vec<Delivery>> {
    let mut f = Map::new();
    f.insert("topic".into(), topic.into());
    f.insert("msgId".into(), msg_id.into());
    let q = DocQuery {
        filter: m.filter(f)?,
        sort: Some((SortField::Meta("listKey".into()), false)),
        skip: 0,
        limit: MAX_ATTEMPTS_LISTED,
    };
    let docs = m.docs().await?.find(COLL, &q).await?;
    docs.into_iter().map(|d| crate::decode(COLL, d)).collect()
}

/// Whether any subscription still waits on the message: its newest attempt is open.
pub(crate) fn any_open(deliveries: &[Delivery]) -> bool {
    let mut newest: std::collections::HashMap<&str, (u32, DeliveryStatus)> = Default::default();
    for d in deliveries {
        let e = newest
            .entry(&d.subscription)
            .or_insert((d.attempt, d.status));
        if d.attempt >= e.0 {
            *e = (d.attempt, d.status);
        }
    }
    newest.values().any(|(_, s)| s.is_open())
}
