//! Shared memory: key-value snapshots per `(tenant, namespace, key)`.
//!
//! `latest` keeps one document (`L|tenant|namespace|key`), replaced whole by one atomic
//! replace. `append` stores version `n` as its own create-only document
//! (`A|…|n`) and keeps a head (`H|…`, the next version). An appender reads the head, inserts
//! version `next`, then advances the head from `next` to `next + 1` by compare-and-set. The
//! insert is what assigns the version: two appenders of one `next` cannot both insert it, and
//! the loser (after helping the head along) retries with the next one. A version is only
//! ever tried once the one before it exists, so there are no gaps — also when an appender
//! dies between its insert and its head update: the next appender finds the version taken,
//! advances the head for it, and goes on.
//!
//! A tombstone deletes every `append` version and clears the `latest` value, recording its
//! reason and time in the head and the `latest` document; version numbers are never reused
//! (an append after a tombstone continues the count).

use chronos_core::time::format_instant;
use chronos_core::{DocUpdate, Document, Error, ErrorKind, Filter, Result};
use serde_json::{json, Map, Value};

use crate::collections::SHARED_MEMORY as COLL;
use crate::keys::{self, check_name};
use crate::model::{at_or_now, Saved, SharedValue, Strategy, Tombstoned};
use crate::Messaging;

/// Appends retried this often at most before giving up (only under pathological contention).
const MAX_APPEND_ATTEMPTS: usize = 10_000;

/// Shared memory of one tenant ([`Messaging::shared`]).
#[derive(Debug, Clone, Copy)]
pub struct SharedMemory<'a> {
    pub(crate) m: &'a Messaging,
}

impl SharedMemory<'_> {
    fn ids(&self, namespace: &str, key: &str) -> Result<Ids> {
        check_name("namespace", namespace)?;
        check_name("key", key)?;
        let t = self.m.tenant();
        Ok(Ids {
            latest: keys::id("L", &[t, namespace, key]),
            head: keys::id("H", &[t, namespace, key]),
            version: keys::id("A", &[t, namespace, key]),
        })
    }

    /// Saves `val` under `(namespace, key)`.
    pub async fn save(
        &self,
        namespace: &str,
        key: &str,
        val: &Value,
        strategy: Strategy,
    ) -> Result<Saved> {
        let ids = self.ids(namespace, key)?;
        let now = format_instant(at_or_now(None));
        let fields = json!({"namespace": namespace, "key": key, "strategy": strategy.as_str(),
                            "val": val, "updatedAt": now});
        let body = self.m.body("shared value", fields)?;
        let docs = self.m.docs().await?;
        match strategy {
            Strategy::Latest => {
                // One replace: the whole body, so a tombstone mark goes with the old value.
                let doc = Document {
                    id: ids.latest.clone(),
                    body,
                };
                docs.replace(COLL, doc, true).await?;
                Ok(Saved {
                    id: ids.latest,
                    version: None,
                })
            }
            Strategy::Append => self.append(&ids, body).await,
        }
    }

    async fn append(&self, ids: &Ids, body: Map<String, Value>) -> Result<Saved> {
        let docs = self.m.docs().await?;
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let next = match docs.get(COLL, &ids.head).await? {
                Some(h) => h.body.get("next").and_then(Value::as_u64).unwrap_or(0),
                None => 0,
            };
            let id = format!("{}|{}", ids.version, keys::version(next));
            let mut b = body.clone();
            b.insert("version".into(), next.into());
            let inserted = match docs
                .insert(
                    COLL,
                    Document {
                        id: id.clone(),
                        body: b,
                    },
                )
                .await
            {
                Ok(()) => true,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
                Err(e) => return Err(e),
            };
            self.advance(ids, &body, next).await?;
            if inserted {
                return Ok(Saved {
                    id,
                    version: Some(next),
                });
            }
        }
        Err(Error::unavailable(format!(
            "append kept losing to concurrent appenders ({MAX_APPEND_ATTEMPTS} attempts)"
        ))
        .with("collection", COLL))
    }

    /// Moves the head from `next` (version `next` exists now) to `next + 1`, unless someone
    /// already did.
    async fn advance(&self, ids: &Ids, body: &Map<String, Value>, next: u64) -> Result<()> {
        let docs = self.m.docs().await?;
        if next == 0 {
            let mut head: Map<String, Value> = ["tenantId", "namespace", "key"]
                .iter()
                .map(|k| (k.to_string(), body[*k].clone()))
                .collect();
            head.insert("strategy".into(), "head".into());
            head.insert("next".into(), 1.into());
            return match docs
                .insert(
                    COLL,
                    Document {
                        id: ids.head.clone(),
                        body: head,
                    },
                )
                .await
            {
                Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(e),
                _ => Ok(()),
            };
        }
        let at = Filter::parse(&json!({"next": next}))?;
        let step = DocUpdate {
            set: vec![("next".into(), (next + 1).into())],
            inc: vec![],
        };
        docs.update_where(COLL, &ids.head, &at, step).await?;
        Ok(())
    }

    /// Loads a value: `latest`'s current one, or an `append` version (`None`: the newest).
    /// `None` when there is none (never saved, tombstoned, or removed by retention).
    pub async fn load(
        &self,
        namespace: &str,
        key: &str,
        strategy: Strategy,
        version: Option<u64>,
    ) -> Result<Option<SharedValue>> {
        let ids = self.ids(namespace, key)?;
        let docs = self.m.docs().await?;
        let doc = match (strategy, version) {
            (Strategy::Latest, Some(_)) => {
                return Err(Error::validation(
                    "version is only for the append strategy: latest keeps one value",
                )
                .with("field", "version"))
            }
            (Strategy::Latest, None) => match docs.get(COLL, &ids.latest).await? {
                Some(d) if d.body.get("tombstone").is_none_or(Value::is_null) => Some(d),
                _ => None,
            },
            (Strategy::Append, Some(v)) => {
                docs.get(COLL, &format!("{}|{}", ids.version, keys::version(v)))
                    .await?
            }
            (Strategy::Append, None) => {
                let next = match docs.get(COLL, &ids.head).await? {
                    Some(h) => h.body.get("next").and_then(Value::as_u64).unwrap_or(0),
                    None => 0,
                };
                // The head trails by one when its appender has not advanced it yet.
                let ahead = format!("{}|{}", ids.version, keys::version(next));
                match docs.get(COLL, &ahead).await? {
                    Some(d) => Some(d),
                    None if next == 0 => None,
                    None => {
                        docs.get(
                            COLL,
                            &format!("{}|{}", ids.version, keys::version(next - 1)),
                        )
                        .await?
                    }
                }
            }
        };
        let Some(mut d) = doc else { return Ok(None) };
        if strategy == Strategy::Latest {
            let saves = d.body.get("saves").and_then(Value::as_u64).unwrap_or(1);
            d.body
                .insert("version".into(), saves.saturating_sub(1).into());
        }
        crate::decode(COLL, d).map(Some)
    }

    /// Removes every value of `(namespace, key)` — the `latest` one and all `append`
    /// versions — recording `reason`. Later loads return `None`.
    pub async fn tombstone(&self, namespace: &str, key: &str, reason: &str) -> Result<Tombstoned> {
        let ids = self.ids(namespace, key)?;
        check_name("reason", reason)?;
        let docs = self.m.docs().await?;
        let mark = json!({"reason": reason, "at": format_instant(at_or_now(None))});
        let live = Filter::parse(&json!({"tombstone": null}))?;
        let clear = DocUpdate {
            set: vec![
                ("tombstone".into(), mark.clone()),
                ("val".into(), Value::Null),
            ],
            inc: vec![],
        };
        let latest = docs
            .update_where(COLL, &ids.latest, &live, clear)
            .await?
            .is_some();
        let mut f = Map::new();
        f.insert("namespace".into(), namespace.into());
        f.insert("key".into(), key.into());
        f.insert("strategy".into(), "append".into());
        let versions = docs.delete_where(COLL, &self.m.filter(f)?).await?;
        let note = DocUpdate {
            set: vec![("tombstone".into(), mark)],
            inc: vec![],
        };
        docs.update(COLL, &ids.head, note, false).await?;
        tracing::debug!(tenant = %self.m.tenant(), namespace, key, reason, latest, versions, "shared memory tombstoned");
        Ok(Tombstoned { latest, versions })
    }
}

struct Ids {
    latest: String,
    head: String,
    /// The prefix of version ids (`…|<version>`).
    version: String,
}
