//! Canonical messages: one document per `(tenant, topic, msgId)`, forever.
//!
//! The id is the natural key, so the store's create-only insert decides: the first save
//! stores, a repeat with the same headers and payload is reported as a duplicate, and a
//! repeat with other content is a `Conflict` naming the message — a publisher bug that must
//! not silently rewrite the audit trail.

use chronos_core::filter::canonical;
use chronos_core::time::format_instant;
use chronos_core::{DocQuery, Document, Error, ErrorKind, Result, SortField};
use serde_json::{json, Map, Value};

use crate::collections::MESSAGES as COLL;
use crate::keys::{self, check_name};
use crate::model::{at_or_now, ListQuery, Message, NewMessage, Order, Page, SaveOutcome};
use crate::Messaging;

/// The largest page.
pub const MAX_PAGE: usize = 1000;

pub(crate) fn check_limit(limit: usize) -> Result<()> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(
            Error::validation(format!("limit must be 1..={MAX_PAGE}, not {limit}"))
                .with("field", "limit"),
        );
    }
    Ok(())
}

/// Messages of one tenant ([`Messaging::messages`]).
#[derive(Debug, Clone, Copy)]
pub struct Messages<'a> {
    pub(crate) m: &'a Messaging,
}

impl Messages<'_> {
    fn id(&self, topic: &str, msg_id: &str) -> Result<String> {
        check_name("topic", topic)?;
        check_name("msgId", msg_id)?;
        Ok(keys::id("M", &[self.m.tenant(), topic, msg_id]))
    }

    /// Saves a message once (see the module docs).
    pub async fn save(&self, msg: &NewMessage) -> Result<SaveOutcome> {
        let id = self.id(&msg.topic, &msg.msg_id)?;
        let at = at_or_now(msg.first_seen_at);
        let size = msg
            .size
            .unwrap_or_else(|| serde_json::to_vec(&msg.payload).map_or(0, |v| v.len() as u64));
        let body = self.m.body(
            "message",
            json!({"topic": msg.topic, "msgId": msg.msg_id, "headers": msg.headers,
                   "payload": msg.payload, "firstSeenAt": format_instant(at), "size": size,
                   "listKey": keys::list_key(at, &[&msg.msg_id, &msg.topic])}),
        )?;
        let docs = self.m.docs().await?;
        match docs
            .insert(
                COLL,
                Document {
                    id: id.clone(),
                    body,
                },
            )
            .await
        {
            Ok(()) => Ok(SaveOutcome::Saved),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let Some(old) = docs.get(COLL, &id).await? else {
                    // Removed by retention in between: the caller may save again.
                    return Err(Error::unavailable(
                        "the message was removed while being saved; retry",
                    )
                    .with("msgId", &msg.msg_id));
                };
                let same = |field: &str, new: &Value| {
                    old.body.get(field).map(canonical) == Some(canonical(new))
                };
                if same("headers", &Value::Object(msg.headers.clone()))
                    && same("payload", &msg.payload)
                {
                    Ok(SaveOutcome::Duplicate)
                } else {
                    Err(Error::conflict(format!(
                        "message '{}' of topic '{}' is already stored with other content; a msgId names one message forever",
                        msg.msg_id, msg.topic
                    ))
                    .with("topic", &msg.topic)
                    .with("msgId", &msg.msg_id))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A message by id.
    pub async fn get(&self, topic: &str, msg_id: &str) -> Result<Option<Message>> {
        let id = self.id(topic, msg_id)?;
        let d = self.m.docs().await?.get(COLL, &id).await?;
        d.map(|d| crate::decode(COLL, d)).transpose()
    }

    /// A page of a topic's messages by `firstSeenAt` (then msgId).
    pub async fn list(&self, q: &ListQuery) -> Result<Page<Message>> {
        list(self.m, COLL, "firstSeenAt", q).await
    }
}

/// A keyset page of `coll` ordered by `listKey`, within `(after, before)` on `time_field`.
pub(crate) async fn list<T: serde::de::DeserializeOwned>(
    m: &Messaging,
    coll: &str,
    time_field: &str,
    q: &ListQuery,
) -> Result<Page<T>> {
    check_name("topic", &q.topic)?;
    check_limit(q.limit)?;
    let mut f = Map::new();
    f.insert("topic".into(), q.topic.clone().into());
    let mut range = Map::new();
    if let Some(a) = q.after {
        range.insert("$gt".into(), format_instant(a).into());
    }
    if let Some(b) = q.before {
        range.insert("$lt".into(), format_instant(b).into());
    }
    if !range.is_empty() {
        f.insert(time_field.into(), Value::Object(range));
    }
    let desc = q.order == Order::Newest;
    if let Some(c) = &q.cursor {
        let key = parse_cursor(c, q.order)?;
        f.insert(
            "listKey".into(),
            json!({ if desc { "$lt" } else { "$gt" }: key }),
        );
    }
    let query = DocQuery {
        filter: m.filter(f)?,
        sort: Some((SortField::Meta("listKey".into()), desc)),
        skip: 0,
        limit: q.limit + 1,
    };
    let mut docs = m.docs().await?.find(coll, &query).await?;
    let more = docs.len() > q.limit;
    docs.truncate(q.limit);
    let next = match (more, docs.last()) {
        (true, Some(d)) => d
            .body
            .get("listKey")
            .and_then(Value::as_str)
            .map(|k| cursor(k, q.order)),
        _ => None,
    };
    let items = docs
        .into_iter()
        .map(|d| crate::decode(coll, d))
        .collect::<Result<_>>()?;
    Ok(Page { items, next })
}

fn cursor(key: &str, order: Order) -> String {
    let o = if order == Order::Newest { "n" } else { "o" };
    format!("l1:{o}:{key}")
}

fn parse_cursor(c: &str, order: Order) -> Result<String> {
    let bad = |why: &str| Error::validation(format!("cursor '{c}' {why}")).with("field", "cursor");
    let rest = c
        .strip_prefix("l1:")
        .ok_or_else(|| bad("is not a list cursor"))?;
    let (o, key) = rest
        .split_once(':')
        .ok_or_else(|| bad("is not a list cursor"))?;
    let want = if order == Order::Newest { "n" } else { "o" };
    if o != want {
        return Err(bad("belongs to a list in the other order"));
    }
    Ok(key.to_string())
}
