//! Topic metadata: one document per `(tenant, topic)`.

use chronos_core::time::format_instant;
use chronos_core::{DocQuery, Document, Error, ErrorKind, Result, SortField};
use serde_json::{json, Map};

use crate::collections::TOPICS as COLL;
use crate::keys::{self, check_name};
use crate::model::{at_or_now, Topic};
use crate::Messaging;

/// The most shards a topic may declare.
pub const MAX_SHARDS: u32 = 4096;

/// Topics of one tenant ([`Messaging::topics`]).
#[derive(Debug, Clone, Copy)]
pub struct Topics<'a> {
    pub(crate) m: &'a Messaging,
}

impl Topics<'_> {
    /// Makes sure `topic` exists: creates it with `shards` (1..=4096), or returns it as it is
    /// — an existing topic's shard count is never changed by `ensure`.
    pub async fn ensure(&self, topic: &str, shards: u32) -> Result<Topic> {
        check_name("topic", topic)?;
        if shards == 0 || shards > MAX_SHARDS {
            return Err(Error::validation(format!(
                "shards must be 1..={MAX_SHARDS}, not {shards}"
            ))
            .with("field", "shards"));
        }
        let id = keys::id("T", &[self.m.tenant(), topic]);
        let body = self.m.body(
            "topic",
            json!({"topic": topic, "shards": shards, "createdAt": format_instant(at_or_now(None))}),
        )?;
        let docs = self.m.docs().await?;
        match docs
            .insert(
                COLL,
                Document {
                    id: id.clone(),
                    body: body.clone(),
                },
            )
            .await
        {
            Ok(()) => crate::decode(COLL, Document { id, body }),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let d = docs.get(COLL, &id).await?.ok_or_else(|| {
                    Error::unavailable("topic was deleted while being ensured").with("topic", topic)
                })?;
                crate::decode(COLL, d)
            }
            Err(e) => Err(e),
        }
    }

    /// A topic's metadata.
    pub async fn get(&self, topic: &str) -> Result<Option<Topic>> {
        check_name("topic", topic)?;
        let id = keys::id("T", &[self.m.tenant(), topic]);
        let d = self.m.docs().await?.get(COLL, &id).await?;
        d.map(|d| crate::decode(COLL, d)).transpose()
    }

    /// The tenant's topics by name, at most `limit` (1..=1000) after `after` (a topic name).
    pub async fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<Topic>> {
        crate::messages::check_limit(limit)?;
        let mut f = Map::new();
        if let Some(a) = after {
            f.insert("topic".into(), json!({"$gt": a}));
        }
        let q = DocQuery {
            filter: self.m.filter(f)?,
            sort: Some((SortField::Meta("topic".into()), false)),
            skip: 0,
            limit,
        };
        let docs = self.m.docs().await?.find(COLL, &q).await?;
        docs.into_iter().map(|d| crate::decode(COLL, d)).collect()
    }
}
