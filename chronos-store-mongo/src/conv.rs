//! Conversions between Chronos values and BSON, lenient on read (upstream wrote `Int32`
//! counters and versions; we write `Int64`).

use chronos_core::{Error, ItemId, Result, Timestamp};
use mongodb::bson::{oid::ObjectId, Bson, DateTime, Document};
use serde_json::{Map, Value};

pub(crate) fn oid(id: ItemId) -> ObjectId {
    ObjectId::from_bytes(id.bytes())
}

pub(crate) fn item_id(b: &Bson) -> Result<ItemId> {
    match b {
        Bson::ObjectId(o) => Ok(ItemId::from_bytes(o.bytes())),
        Bson::String(s) => ItemId::parse(s),
        other => Err(Error::internal(format!(
            "stored itemId is not an ObjectId: {other}"
        ))),
    }
}

pub(crate) fn date(t: Timestamp) -> DateTime {
    DateTime::from_millis(t.as_millisecond())
}

pub(crate) fn ts(b: &Bson) -> Result<Timestamp> {
    let ms = match b {
        Bson::DateTime(d) => d.timestamp_millis(),
        Bson::Int64(n) => *n,
        Bson::String(s) => return chronos_core::time::parse_instant(s),
        other => {
            return Err(Error::internal(format!(
                "stored instant is not a date: {other}"
            )))
        }
    };
    Timestamp::from_millisecond(ms)
        .map_err(|e| Error::internal(format!("stored instant out of range: {e}")))
}

pub(crate) fn u64_of(b: &Bson) -> Result<u64> {
    match b {
        Bson::Int32(n) if *n >= 0 => Ok(*n as u64),
        Bson::Int64(n) if *n >= 0 => Ok(*n as u64),
        Bson::Double(f) if *f >= 0.0 && f.fract() == 0.0 => Ok(*f as u64),
        other => Err(Error::internal(format!(
            "stored counter is not a non-negative integer: {other}"
        ))),
    }
}

pub(crate) fn get<'a>(d: &'a Document, key: &str) -> Result<&'a Bson> {
    d.get(key)
        .ok_or_else(|| Error::internal(format!("stored document lacks '{key}'")))
}

pub(crate) fn opt_str(d: &Document, key: &str) -> Option<String> {
    d.get_str(key).ok().map(str::to_string)
}

/// JSON → BSON (integers as Int64, other numbers as Double).
pub(crate) fn to_bson(v: &Value) -> Bson {
    match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(a) => Bson::Array(a.iter().map(to_bson).collect()),
        Value::Object(m) => Bson::Document(to_doc(m)),
    }
}

pub(crate) fn to_doc(m: &Map<String, Value>) -> Document {
    m.iter().map(|(k, v)| (k.clone(), to_bson(v))).collect()
}

/// BSON → JSON (dates and ids as their relaxed extended-JSON forms).
pub(crate) fn to_json(b: &Bson) -> Value {
    match b {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(x) => Value::Bool(*x),
        Bson::Int32(n) => Value::from(*n),
        Bson::Int64(n) => Value::from(*n),
        Bson::Double(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Bson::String(s) => Value::String(s.clone()),
        Bson::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Bson::Document(d) => Value::Object(from_doc(d)),
        other => other.clone().into_relaxed_extjson(),
    }
}

pub(crate) fn from_doc(d: &Document) -> Map<String, Value> {
    d.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()
}
