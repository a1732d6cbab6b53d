//! Entity relationships: `insert_with_entities` upserts each embedded entity into its own
//! collection by its key property (never duplicating it, never losing a field) and stores the
//! main record; `get_with_entities` returns the main record with the related records.
//!
//! A new entity gets an id derived from its collection and key, so two writers creating the
//! same entity at once (even in two processes) collide on the id instead of duplicating it.

use std::collections::BTreeMap;

use chronos_core::filter::json_eq;
use chronos_core::merge::deep_merge;
use chronos_core::{
    Collection, CreateOptions, Error, ErrorKind, ItemId, ListOptions, ReadOptions, Record, Result,
    WriteOptions, WriteResult,
};
use serde_json::{json, Map, Value};

use crate::{Chronos, DatabaseType, Route, Tier};

/// How an embedded object maps to its own collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityMapping {
    /// Property of the main record holding the entity object.
    pub property: String,
    /// The entity's collection.
    pub collection: String,
    /// The entity's key field (unique within the collection).
    pub key_property: String,
    /// Database type of the entity collection (default: the main record's).
    pub database_type: Option<DatabaseType>,
    /// Tier of the entity collection (default: the main record's).
    pub tier: Option<Tier>,
}

impl EntityMapping {
    /// A mapping into the main record's database.
    pub fn new(
        property: impl Into<String>,
        collection: impl Into<String>,
        key_property: impl Into<String>,
    ) -> Self {
        Self {
            property: property.into(),
            collection: collection.into(),
            key_property: key_property.into(),
            database_type: None,
            tier: None,
        }
    }
    /// Puts the entity collection in another database type and tier.
    pub fn in_database(mut self, db: DatabaseType, tier: Tier) -> Self {
        self.database_type = Some(db);
        self.tier = Some(tier);
        self
    }
}

/// What happened to one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityOperation {
    /// A new entity record.
    Created,
    /// New or changed fields were merged into the existing record.
    Updated,
    /// The existing record already had every field.
    Unchanged,
}

/// One entity's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityOutcome {
    /// The entity record's id.
    pub id: ItemId,
    /// What happened.
    pub operation: EntityOperation,
}

/// Result of [`Chronos::insert_with_entities`].
#[derive(Debug, Clone, PartialEq)]
pub struct EntityInsert {
    /// The main record's write.
    pub main: WriteResult,
    /// Per mapped property.
    pub entities: BTreeMap<String, EntityOutcome>,
}

/// Result of [`Chronos::get_with_entities`].
#[derive(Debug, Clone, PartialEq)]
pub struct WithEntities {
    /// The main record.
    pub main: Record,
    /// Per mapped property: the related record, if the main record names one that exists.
    pub entities: BTreeMap<String, Option<Record>>,
}

fn entity_route(main: &Route, m: &EntityMapping) -> Route {
    let db = m.database_type.unwrap_or(main.database_type);
    let tier = m.tier.unwrap_or(main.tier);
    Route {
        database_type: db,
        tier,
        tenant_id: if tier == Tier::Tenant {
            main.tenant_id.clone()
        } else {
            None
        },
        domain: if tier == Tier::Domain {
            main.domain.clone()
        } else {
            None
        },
        collection: m.collection.clone(),
    }
}

fn derived_id(collection: &str, key: &Value) -> ItemId {
    use sha2::{Digest, Sha256};
    // A stable hash (same id in every process and release) of the collection and the key's
    // canonical text.
    let digest = Sha256::digest(
        format!(
            "{collection}\u{0}{}",
            chronos_core::filter::canonical_text(key)
        )
        .as_bytes(),
    );
    let mut bytes = [0u8; 12];
    bytes.copy_from_slice(&digest[..12]);
    ItemId::from_bytes(bytes)
}

fn entity_of<'a>(
    record: &'a Map<String, Value>,
    m: &EntityMapping,
) -> Result<Option<(&'a Map<String, Value>, &'a Value)>> {
    let Some(v) = record.get(&m.property) else {
        return Ok(None);
    };
    let obj = v.as_object().ok_or_else(|| {
        Error::validation(format!(
            "entity property '{}' must be an object",
            m.property
        ))
        .with("field", &m.property)
    })?;
    let key = obj
        .get(&m.key_property)
        .filter(|k| !k.is_null() && !k.is_object() && !k.is_array())
        .ok_or_else(|| {
            Error::validation(format!(
                "entity '{}' needs a scalar key '{}'",
                m.property, m.key_property
            ))
            .with("field", format!("{}.{}", m.property, m.key_property))
        })?;
    Ok(Some((obj, key)))
}

async fn find_by_key(c: &Collection, key_property: &str, key: &Value) -> Result<Option<Record>> {
    let page = c
        .list_by_meta(
            ListOptions::new()
                .filter(json!({ key_property: {"$eq": key} }))
                .limit(2),
        )
        .await?;
    if page.items.len() > 1 {
        return Err(Error::conflict(format!(
            "more than one record in '{}' has {key_property} = {key}",
            c.name()
        ))
        .with("collection", c.name()));
    }
    Ok(page.items.into_iter().next())
}

/// Whether every field of `new` is already in `old` with the same value (objects recursively,
/// arrays as sets).
fn contains(old: &Map<String, Value>, new: &Map<String, Value>) -> bool {
    new.iter().all(|(k, v)| match (old.get(k), v) {
        (Some(Value::Object(o)), Value::Object(n)) => contains(o, n),
        (Some(Value::Array(o)), Value::Array(n)) => {
            n.iter().all(|x| o.iter().any(|y| json_eq(x, y)))
        }
        (Some(o), n) => json_eq(o, n),
        (None, _) => false,
    })
}

async fn upsert(
    c: &Collection,
    m: &EntityMapping,
    obj: &Map<String, Value>,
    key: &Value,
    opts: &CreateOptions,
) -> Result<EntityOutcome> {
    for _ in 0..8 {
        if let Some(existing) = find_by_key(c, &m.key_property, key).await? {
            if contains(&existing.data, obj) {
                return Ok(EntityOutcome {
                    id: existing.id,
                    operation: EntityOperation::Unchanged,
                });
            }
            let mut merged = existing.data.clone();
            deep_merge(&mut merged, obj);
            let w = WriteOptions {
                expected_ov: Some(existing.system.ov),
                actor: opts.actor.clone(),
                reason: opts.reason.clone(),
                idempotency_key: None,
            };
            match c.update(existing.id, &merged, w).await {
                Ok(r) => {
                    return Ok(EntityOutcome {
                        id: r.id,
                        operation: EntityOperation::Updated,
                    })
                }
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        let create = CreateOptions {
            id: Some(derived_id(c.name(), key)),
            actor: opts.actor.clone(),
            reason: opts.reason.clone(),
            ..Default::default()
        };
        match c.create(obj, create).await {
            Ok(r) => {
                return Ok(EntityOutcome {
                    id: r.id,
                    operation: EntityOperation::Created,
                })
            }
            // Someone created it at the same moment: go round and merge into theirs.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict(format!(
        "entity {key} in '{}' kept changing; try again",
        c.name()
    )))
}

impl Chronos {
    /// Upserts each mapped entity into its collection by key, then creates the main record
    /// (with the entity objects embedded, as given).
    pub async fn insert_with_entities<T: serde::Serialize + Sync + ?Sized>(
        &self,
        route: &Route,
        record: &T,
        mappings: &[EntityMapping],
        opts: CreateOptions,
    ) -> Result<EntityInsert> {
        let data = chronos_core::model::to_payload(record)?;
        let mut entities = BTreeMap::new();
        for m in mappings {
            // Owned copies: references into `data` held across awaits trip a compiler limitation
            // (higher-ranked lifetimes) when the future is spawned.
            let Some((obj, key)) = entity_of(&data, m)?.map(|(o, k)| (o.clone(), k.clone())) else {
                continue;
            };
            let c = self.with(&entity_route(route, m)).await?;
            entities.insert(m.property.clone(), upsert(&c, m, &obj, &key, &opts).await?);
        }
        let main = self.with(route).await?.create(&data, opts).await?;
        Ok(EntityInsert { main, entities })
    }

    /// The main record and, per mapping, the entity record its embedded key names.
    pub async fn get_with_entities(
        &self,
        route: &Route,
        id: ItemId,
        mappings: &[EntityMapping],
        opts: ReadOptions,
    ) -> Result<Option<WithEntities>> {
        let Some(main) = self.with(route).await?.get_latest(id, opts.clone()).await? else {
            return Ok(None);
        };
        let mut entities = BTreeMap::new();
        for m in mappings {
            let key = entity_of(&main.data, m)
                .ok()
                .flatten()
                .map(|(_, k)| k.clone());
            let related = match key {
                Some(key) => {
                    find_by_key(
                        &self.with(&entity_route(route, m)).await?,
                        &m.key_property,
                        &key,
                    )
                    .await?
                }
                None => None,
            };
            entities.insert(m.property.clone(), related);
        }
        Ok(Some(WithEntities { main, entities }))
    }
}
