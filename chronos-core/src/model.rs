//! The record model as users see it: their JSON object plus `_id` and `_system`.
//!
//! A stored payload (the blob of one version) is the user's fields plus a `_system` object with
//! `insertedAt`, `updatedAt`, `deletedAt`, `deleted`, `functionIds` and lineage, exactly as the
//! TypeScript library writes it; `ov` and `cv` come from the index, never from the payload.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::id::ItemId;
use crate::time::Timestamp;

/// The name of the reserved system-fields property.
pub const SYSTEM_FIELD: &str = "_system";
/// The name of the reserved id property.
pub const ID_FIELD: &str = "_id";

/// The kind of change a version records (stored as upper-case text: `CREATE`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Op {
    /// The first version of a record.
    Create,
    /// A full replace or an enrichment.
    Update,
    /// A tombstone: the record reads as deleted from this version on.
    Delete,
    /// A copy of an earlier version's content, appended by a restore.
    Restore,
    /// A GDPR erase ([`Collection::erase`](crate::Collection::erase)): a content-free
    /// tombstone recording who erased the record, why and when. Every earlier version of the
    /// record is content-free from then on.
    Erase,
}

impl Op {
    /// The stored spelling (`CREATE`, `UPDATE`, `DELETE`, `RESTORE`, `ERASE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "CREATE",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
            Op::Restore => "RESTORE",
            Op::Erase => "ERASE",
        }
    }
    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Result<Op> {
        Ok(match s {
            "CREATE" => Op::Create,
            "UPDATE" => Op::Update,
            "DELETE" => Op::Delete,
            "RESTORE" => Op::Restore,
            "ERASE" => Op::Erase,
            other => return Err(Error::internal(format!("unknown version op '{other}'"))),
        })
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lineage and provenance carried inside every stored payload's `_system`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lineage {
    /// Enrichment function ids that have modified the record, in first-use order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub function_ids: Vec<String>,
    /// Parent record id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Parent record collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_collection: Option<String>,
    /// Root record id, preserved through the lineage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_id: Option<String>,
    /// Root record collection (`system:collection` for an external origin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_collection: Option<String>,
}

/// The `_system` object of a read record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemFields {
    /// Object version: 0 for the first version, +1 per change of this record.
    pub ov: u64,
    /// Collection version of the change that produced this version.
    pub cv: u64,
    /// When the record was created.
    pub inserted_at: Timestamp,
    /// When this version was written.
    pub updated_at: Timestamp,
    /// When the record was deleted, if this version is a tombstone.
    pub deleted_at: Option<Timestamp>,
    /// Whether this version is a tombstone.
    pub deleted: bool,
    /// Lineage and provenance.
    #[serde(flatten)]
    pub lineage: Lineage,
}

/// One version of a record as returned by reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The record id.
    pub id: ItemId,
    /// The user's fields (after projection).
    pub data: Map<String, Value>,
    /// System fields of this version.
    pub system: SystemFields,
    /// A presigned URL of this version's stored JSON, when the read asked for one
    /// ([`ReadOptions::presign`](crate::ReadOptions::presign)). It serves the bytes as stored:
    /// gzip when compression was on for this version (its key ends in `.gz`).
    pub presigned: Option<Presigned>,
}

/// A presigned GET URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Presigned {
    /// The URL; anyone holding it can read the blob until `expires_at`.
    pub url: String,
    /// When the URL stops working.
    pub expires_at: Timestamp,
}

impl Record {
    /// The document as the spec shows it: `_id`, the user's fields, then `_system` (and
    /// `_presigned` when the read asked for a URL).
    pub fn to_json(&self) -> Value {
        let mut m = Map::with_capacity(self.data.len() + 2);
        m.insert(ID_FIELD.into(), Value::String(self.id.to_string()));
        for (k, v) in &self.data {
            m.insert(k.clone(), v.clone());
        }
        m.insert(
            SYSTEM_FIELD.into(),
            serde_json::to_value(&self.system).expect("system fields serialize"),
        );
        if let Some(p) = &self.presigned {
            m.insert(
                "_presigned".into(),
                serde_json::to_value(p).expect("presigned serializes"),
            );
        }
        Value::Object(m)
    }

    /// Deserializes the document (with `_id` and `_system`, which `T` may ignore) into `T`.
    pub fn to_typed<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.to_json()).map_err(|e| {
            Error::validation(format!(
                "record does not deserialize into the requested type: {e}"
            ))
            .with("id", self.id)
        })
    }
}

/// What a successful write returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteResult {
    /// The record id.
    pub id: ItemId,
    /// The new object version.
    pub ov: u64,
    /// The collection version assigned to this change.
    pub cv: u64,
    /// When the change was committed (also the version's `at`).
    pub at: Timestamp,
    /// What kind of version was written.
    pub op: Op,
}

/// A reference to another record, for lineage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRef {
    /// The other record's id (any string; it may live in another system).
    pub id: String,
    /// Its collection.
    pub collection: String,
}

/// An explicit origin for lineage; `system` prefixes the stored collection as
/// `system:collection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The origin's id.
    pub id: String,
    /// The origin's collection.
    pub collection: String,
    /// An optional external system name (e.g. `stripe`).
    #[serde(default)]
    pub system: Option<String>,
}

/// Converts any serializable value into a user payload object, rejecting what is not one.
///
/// A payload must be a JSON object and must not contain `_system` (Chronos owns it) or `_id`
/// (ids are assigned by Chronos or passed as an option).
pub fn to_payload<T: Serialize + ?Sized>(data: &T) -> Result<Map<String, Value>> {
    let v = serde_json::to_value(data)
        .map_err(|e| Error::validation(format!("payload does not serialize to JSON: {e}")))?;
    payload_from_value(v)
}

/// The deepest nesting of objects and arrays a payload may have (the payload object itself
/// is level 1). Stored payloads must parse back, and JSON parsers (serde_json: 128) and BSON
/// (MongoDB: 100, where metadata sits a level deeper still) refuse deeper documents; a write
/// deeper than this is a validation error naming the limit.
pub const MAX_PAYLOAD_DEPTH: usize = 64;

/// `Validation` when the object `m` nests objects and arrays deeper than
/// [`MAX_PAYLOAD_DEPTH`] (`m` itself is level 1). Iterative, so no input can exhaust the
/// stack here. The engine checks every document it is about to store, merges and restores
/// included.
pub fn check_map_depth(m: &Map<String, Value>) -> Result<()> {
    let mut stack: Vec<(&Value, usize)> = m.values().map(|c| (c, 2)).collect();
    while let Some((v, depth)) = stack.pop() {
        if !(v.is_object() || v.is_array()) {
            continue;
        }
        if depth > MAX_PAYLOAD_DEPTH {
            return Err(Error::validation(format!(
                "payload nests objects/arrays deeper than the limit of {MAX_PAYLOAD_DEPTH} levels"
            ))
            .with("limit", MAX_PAYLOAD_DEPTH));
        }
        match v {
            Value::Object(m) => stack.extend(m.values().map(|c| (c, depth + 1))),
            Value::Array(a) => stack.extend(a.iter().map(|c| (c, depth + 1))),
            _ => {}
        }
    }
    Ok(())
}

/// Like [`to_payload`] for an already-built JSON value.
pub fn payload_from_value(v: Value) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => {
            for reserved in [SYSTEM_FIELD, ID_FIELD] {
                if m.contains_key(reserved) {
                    return Err(Error::validation(format!(
                        "payload sets reserved field '{reserved}'; Chronos manages it"
                    ))
                    .with("field", reserved));
                }
            }
            Ok(m)
        }
        other => Err(Error::validation(format!(
            "payload must be a JSON object, got {}",
            json_type_name(&other)
        ))),
    }
}

/// The JSON type name of a value, for error messages.
pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_validation_names_the_problem() {
        let e = payload_from_value(json!([1])).unwrap_err();
        assert!(
            e.to_string()
                .contains("must be a JSON object, got an array"),
            "{e}"
        );
        let e = payload_from_value(json!({"a": 1, "_system": {}})).unwrap_err();
        assert_eq!(e.context("field"), Some("_system"));
        let e = to_payload(&json!({"_id": "x"})).unwrap_err();
        assert_eq!(e.context("field"), Some("_id"));
        assert_eq!(to_payload(&json!({"a": 1})).unwrap()["a"], 1);
    }

    #[test]
    fn op_spelling_roundtrips() {
        for op in [Op::Create, Op::Update, Op::Delete, Op::Restore, Op::Erase] {
            assert_eq!(Op::parse(op.as_str()).unwrap(), op);
            assert_eq!(serde_json::to_value(op).unwrap(), json!(op.as_str()));
        }
    }
}
