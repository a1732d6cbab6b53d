//! The document store: plain, non-versioned collections (messaging, identities, analytics).

use std::fmt::Debug;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::filter::{get_path, Filter};
use crate::index::SortField;
use crate::model::json_type_name;

/// A stored document: its id and body (the body never contains `_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The document id.
    pub id: String,
    /// The fields.
    pub body: Map<String, Value>,
}

/// An atomic field update: `$set`-like assignments, then `$inc`-like increments, by dotted
/// path (intermediate objects are created).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocUpdate {
    /// Paths to assign.
    pub set: Vec<(String, Value)>,
    /// Paths to increment by a number (a missing path counts from 0).
    pub inc: Vec<(String, serde_json::Number)>,
}

impl DocUpdate {
    /// Applies the update to a body: assignments first, then increments. Fails, naming the
    /// path, when a path crosses a non-object or an increment meets a non-number.
    pub fn apply(&self, doc: &mut Map<String, Value>) -> Result<()> {
        for (p, v) in &self.set {
            set_path(doc, p, v.clone())?;
        }
        for (p, by) in &self.inc {
            let next = add_numbers(get_path(doc, p), by, p)?;
            set_path(doc, p, next)?;
        }
        Ok(())
    }
}

fn set_path(doc: &mut Map<String, Value>, path: &str, v: Value) -> Result<()> {
    match path.split_once('.') {
        None => {
            doc.insert(path.to_string(), v);
            Ok(())
        }
        Some((head, rest)) => {
            let slot = doc
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            match slot {
                Value::Object(m) => set_path(m, rest, v),
                _ => Err(Error::validation(format!(
                    "cannot set '{path}': '{head}' is not an object"
                ))
                .with("field", path)),
            }
        }
    }
}

fn add_numbers(a: Option<&Value>, by: &serde_json::Number, path: &str) -> Result<Value> {
    let base = match a {
        None | Some(Value::Null) => serde_json::Number::from(0),
        Some(Value::Number(n)) => n.clone(),
        Some(other) => {
            return Err(Error::validation(format!(
                "cannot increment '{path}': it holds {}",
                json_type_name(other)
            ))
            .with("field", path))
        }
    };
    let sum = match (base.as_i64(), by.as_i64()) {
        (Some(x), Some(y)) => x.checked_add(y).map(Value::from),
        _ => None,
    };
    Ok(sum
        .unwrap_or_else(|| Value::from(base.as_f64().unwrap_or(0.0) + by.as_f64().unwrap_or(0.0))))
}

/// A query over documents.
#[derive(Debug, Clone)]
pub struct DocQuery {
    /// Filter over the body.
    pub filter: Filter,
    /// Order: a body path (or `SortField::Id`); ascending unless `descending`.
    pub sort: Option<(SortField, bool)>,
    /// Skip this many.
    pub skip: usize,
    /// At most this many.
    pub limit: usize,
}

/// How a document collection is queried: declared once per process before use, so that a
/// backend can build secondary indexes and store instants natively.
///
/// Declaring a layout never changes what a call returns: filters, sorts and bodies behave
/// exactly as without it (the conformance suite checks this).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocLayout {
    /// Compound secondary indexes, each a list of body paths (ascending).
    pub indexes: Vec<Vec<String>>,
    /// Top-level fields that hold instants in [`crate::time::format_instant`]'s form
    /// (`2024-01-01T00:00:00.000Z`). MongoDB stores such values as native dates (so that
    /// the database's own tools, and TTL indexes, see dates); a value of another form is
    /// stored as given. Every backend reads back exactly the string written.
    pub dates: Vec<String>,
    /// A date field after whose instant the store may delete the document by itself
    /// (MongoDB: a TTL index). Callers must still treat such documents as gone once the
    /// instant passed (TTL deletion lags) and sweep them on backends without TTL.
    pub expire_at: Option<String>,
}

impl DocLayout {
    /// A layout with these indexes and date fields.
    pub fn new<I, P>(indexes: I, dates: &[&str]) -> Self
    where
        I: IntoIterator<Item = P>,
        P: IntoIterator,
        P::Item: Into<String>,
    {
        Self {
            indexes: indexes
                .into_iter()
                .map(|ix| ix.into_iter().map(Into::into).collect())
                .collect(),
            dates: dates.iter().map(|d| d.to_string()).collect(),
            expire_at: None,
        }
    }

    /// With documents expiring at the instant in date field `field`.
    pub fn expire_at(mut self, field: &str) -> Self {
        self.expire_at = Some(field.to_string());
        self
    }
}

/// Decodes a stored document's body into a record type; a body that is not one (written by
/// something else) is `Internal`, naming the collection and id.
pub fn decode_body<T: serde::de::DeserializeOwned>(collection: &str, doc: Document) -> Result<T> {
    serde_json::from_value(Value::Object(doc.body)).map_err(|e| {
        Error::internal(format!(
            "stored {collection} document is not one Chronos wrote: {e}"
        ))
        .with("collection", collection)
        .with("id", &doc.id)
    })
}

/// The distinct string values of `field` in `collection`, ascending, at most `max` of them:
/// one query per value (a skip scan — each asks for the least value above the last), so
/// with an index on `field` it reads one document per value, never the documents between.
/// Documents whose `field` is missing or not a string are not counted.
pub async fn distinct_strings(
    docs: &dyn DocumentStore,
    collection: &str,
    field: &str,
    max: usize,
) -> Result<Vec<String>> {
    const PAGE: usize = 16;
    let mut out: Vec<String> = Vec::new();
    'values: while out.len() < max {
        // `$gte ""` selects the strings (comparisons are type-bracketed on every store).
        let bound = match out.last() {
            Some(last) => serde_json::json!({ field: { "$gt": last } }),
            None => serde_json::json!({ field: { "$gte": "" } }),
        };
        let filter = crate::Filter::parse(&bound)?;
        // MongoDB also matches arrays holding such a string (sorted by their least element):
        // those are passed over until a string comes.
        for skip in (0..).step_by(PAGE) {
            let q = DocQuery {
                filter: filter.clone(),
                sort: Some((crate::SortField::Meta(field.to_string()), false)),
                skip,
                limit: PAGE,
            };
            let page = docs.find(collection, &q).await?;
            let n = page.len();
            let next = page
                .into_iter()
                .find_map(|d| d.body.get(field)?.as_str().map(str::to_string));
            if let Some(v) = next {
                out.push(v);
                continue 'values;
            }
            if n < PAGE {
                break 'values;
            }
        }
    }
    Ok(out)
}

/// The longest part of a document key built by [`doc_key`] (bytes).
pub const MAX_KEY_PART_BYTES: usize = 512;

/// Checks a caller-given part of a document key (a tenant id, a topic, a message id …):
/// non-empty, at most [`MAX_KEY_PART_BYTES`], no control characters. The error names
/// `field`.
pub fn check_key_part(field: &str, v: &str) -> Result<()> {
    let bad = if v.is_empty() {
        Some("must not be empty".to_string())
    } else if v.len() > MAX_KEY_PART_BYTES {
        Some(format!(
            "is {} bytes; the limit is {MAX_KEY_PART_BYTES}",
            v.len()
        ))
    } else if v.chars().any(char::is_control) {
        Some("contains a control character".to_string())
    } else {
        None
    };
    match bad {
        Some(msg) => Err(Error::validation(format!("{field} {msg}")).with("field", field)),
        None => Ok(()),
    }
}

/// Escapes a key part: `%` and `|` become `%25` and `%7C`.
pub fn escape_key_part(part: &str) -> String {
    part.replace('%', "%25").replace('|', "%7C")
}

/// A document id from a natural key: `kind|part|part…`, each part escaped
/// ([`escape_key_part`]), so distinct keys never share an id. Ids built from natural keys
/// make the store's create-only insert the arbiter of uniqueness.
pub fn doc_key(kind: &str, parts: &[&str]) -> String {
    let mut s = String::from(kind);
    for p in parts {
        s.push('|');
        s.push_str(&escape_key_part(p));
    }
    s
}

/// Non-versioned document collections.
///
/// # Contract (checked by the conformance suite on every backend)
/// - [`DocumentStore::insert`] is create-only (`AlreadyExists` naming collection and id).
/// - [`DocumentStore::update`] applies every assignment and increment atomically with
///   respect to concurrent updates of the same document (no lost increments across
///   processes); with `upsert` a missing document is created from the update alone.
/// - [`DocumentStore::update_where`] checks its precondition and applies its update as one
///   atomic step: of concurrent conditional updates expecting one state, one applies.
/// - [`DocumentStore::delete_where`] removes exactly the documents [`DocumentStore::find`]
///   would return for its filter at that moment.
/// - [`DocumentStore::prepare`] is idempotent, may be called by several processes at once,
///   and changes no observable result.
/// - Filters have exactly [`Filter::matches`] semantics; sort uses the canonical order.
#[async_trait]
pub trait DocumentStore: Send + Sync + Debug {
    /// Inserts a new document.
    async fn insert(&self, collection: &str, doc: Document) -> Result<()>;
    /// Reads one document.
    async fn get(&self, collection: &str, id: &str) -> Result<Option<Document>>;
    /// Replaces a document's body; returns false when it does not exist (and `upsert` is off).
    async fn replace(&self, collection: &str, doc: Document, upsert: bool) -> Result<bool>;
    /// Applies an atomic update; returns the document after it, or `None` when missing and
    /// `upsert` is off.
    async fn update(
        &self,
        collection: &str,
        id: &str,
        update: DocUpdate,
        upsert: bool,
    ) -> Result<Option<Document>>;
    /// [`DocumentStore::update`] guarded by a precondition: applied only if the document
    /// exists and its body matches `expect` at the moment it is applied (atomically, as a
    /// compare-and-set); returns the document after it, or `None` when it is missing or did
    /// not match (nothing changed).
    async fn update_where(
        &self,
        collection: &str,
        id: &str,
        expect: &Filter,
        update: DocUpdate,
    ) -> Result<Option<Document>>;
    /// Deletes a document; returns whether it existed.
    async fn delete(&self, collection: &str, id: &str) -> Result<bool>;
    /// Documents matching the query.
    async fn find(&self, collection: &str, query: &DocQuery) -> Result<Vec<Document>>;
    /// How many documents match.
    async fn count(&self, collection: &str, filter: &Filter) -> Result<u64>;
    /// Deletes every document matching `filter`; returns how many were deleted.
    async fn delete_where(&self, collection: &str, filter: &Filter) -> Result<u64>;
    /// Declares `collection`'s layout (indexes, date fields). Backends without secondary
    /// indexes or native dates accept and ignore it.
    async fn prepare(&self, collection: &str, layout: &DocLayout) -> Result<()> {
        let _ = (collection, layout);
        Ok(())
    }
}
