//! Canonical sort keys for the paths MongoDB would sort by its own rules: for heads
//! (`metaIndexed`) and for the document store's bodies (`_c`).
//!
//! The canonical order ([`chronos_core::filter::canonical_cmp`]) gives a path through an
//! array no value (it sorts among the nulls) and orders an array or an object by its
//! canonical JSON text. MongoDB sorts a path through an array by the least (or greatest)
//! value it reaches, an array by its least or greatest element and an object field by
//! field, so its order on `metaIndexed.<p>` is the canonical one only for records that
//! reach a scalar (or nothing) through objects alone. Every head therefore carries, beside
//! `metaIndexed`, for each container that a path reaches through objects alone:
//! - `metaOdd`: a tag — `a:<path>` for an array, `o:<path>` for an object, and also
//!   `x:<path>` when its key below is truncated;
//! - `metaSortKeys.<path>`: a string that MongoDB orders as the canonical order orders the
//!   containers: `3` (objects) or `4` (arrays), then the canonical text, at most
//!   [`KEY_BYTES`] of it.
//!
//! Both are absent on heads without containers (`metaOdd` has a sparse index). Documents
//! carry the same as `_s: {o: tags, k: keys}`. A sort by
//! `p` then reads two streams and merges them: the *plain* heads (no tag for `p` or a
//! prefix of it) by `metaIndexed.<p>`, in MongoDB's order, which is canonical for them; and
//! the *odd* heads by `metaSortKeys.<p>`, which is missing (null) exactly when the path
//! passes through an array. Paths are stored encoded ([`encode`]): segments never hold
//! `.`, so a path is injective, and the encoding keeps `$` and `.` out of field names.
//!
//! A truncated key orders its record after every key sharing its prefix; the store refuses
//! a page that holds such a record (`Unsupported`) rather than guess its place, and no
//! page can pass it silently (its stored key is never below its canonical place).

use chronos_core::filter::canonical_text;
use chronos_core::Result;
use futures::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Bson, Document};
use mongodb::Collection;
use serde_json::{Map, Value};

use crate::conv;
use crate::error::map_err;

/// The longest sort key kept whole, in bytes of canonical text.
pub(crate) const KEY_BYTES: usize = 1024;
/// The sort-key text one head may hold; containers beyond it get truncated keys, so a
/// payload of many nested objects never makes its head much larger than its metadata.
const HEAD_BUDGET: usize = 64 * 1024;
/// Follows a truncated key: above every character a canonical text can hold there.
const TRUNCATED: char = '\u{10FFFF}';

/// The field holding the tags.
pub(crate) const TAGS: &str = "metaOdd";
/// The document holding the keys.
pub(crate) const KEYS: &str = "metaSortKeys";

/// A path as a field-name-safe, injective string: `[A-Za-z0-9_-]` kept, every other byte
/// as `~XX`.
pub(crate) fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out
}

/// Whether a metadata key can be a segment of a sort path (`filter::check_path`).
fn reachable(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with('$')
        && !k.contains(['.', '"'])
        && !k.chars().any(char::is_control)
        && !k.bytes().all(|b| b.is_ascii_digit())
}

/// The sort key of a container: its rank digit and canonical text, whole if that holds at
/// most `room` bytes (then `true`), else cut to fit and followed by [`TRUNCATED`].
fn key_of(v: &Value, room: usize) -> (String, bool) {
    let rank = if v.is_array() { '4' } else { '3' };
    let text = canonical_text(v);
    let mut key = String::with_capacity(text.len().min(room) + 5);
    key.push(rank);
    if text.len() <= room {
        key.push_str(&text);
        return (key, true);
    }
    let mut cut = room;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    key.push_str(&text[..cut]);
    key.push(TRUNCATED);
    (key, false)
}

/// The sort key a cursor value has among the odd heads (`None` for scalars).
fn cursor_key(v: &Value) -> Option<String> {
    (v.is_array() || v.is_object()).then(|| key_of(v, KEY_BYTES).0)
}

/// Adds `metaOdd` and `metaSortKeys` for the containers of `meta` to a head document.
pub(crate) fn annotate(meta: &Map<String, Value>, head: &mut Document) {
    annotate_as(meta, head, TAGS, KEYS);
}

/// Adds the tags and keys for the containers of `meta` to `out` as fields `tags` and
/// `keys`; nothing when `meta` holds no container.
pub(crate) fn annotate_as(meta: &Map<String, Value>, out: &mut Document, tags: &str, keys: &str) {
    let (mut found, mut sort_keys) = (Vec::new(), Document::new());
    let mut budget = HEAD_BUDGET;
    walk(meta, "", &mut found, &mut sort_keys, &mut budget);
    if !found.is_empty() {
        out.insert(tags, found);
        out.insert(keys, sort_keys);
    }
}

fn walk(
    m: &Map<String, Value>,
    prefix: &str,
    tags: &mut Vec<Bson>,
    keys: &mut Document,
    budget: &mut usize,
) {
    for (k, v) in m {
        if !reachable(k) || !(v.is_array() || v.is_object()) {
            continue;
        }
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        // Longer paths cannot be sorted by (`check_path`), nor can anything below them.
        if path.len() > 512 {
            continue;
        }
        let enc = encode(&path);
        let (key, whole) = key_of(v, KEY_BYTES.min(*budget));
        *budget -= (key.len() - 1).min(*budget);
        let kind = if v.is_array() { "a" } else { "o" };
        tags.push(Bson::String(format!("{kind}:{enc}")));
        if !whole {
            tags.push(Bson::String(format!("x:{enc}")));
        }
        keys.insert(enc, key);
        if let Value::Object(inner) = v {
            walk(inner, &path, tags, keys, budget);
        }
    }
}

/// The tags that make a head odd for a sort by `path`: an array at `path` or at any prefix
/// of it, or an object at `path`.
pub(crate) fn odd_tags(path: &str) -> Vec<Bson> {
    let mut tags: Vec<Bson> = path
        .match_indices('.')
        .map(|(i, _)| &path[..i])
        .chain([path])
        .map(|p| Bson::String(format!("a:{}", encode(p))))
        .collect();
    tags.push(Bson::String(format!("o:{}", encode(path))));
    tags
}

/// `Unsupported` for a sort by `path` that would place `what` (a record, a document) by a
/// truncated key.
pub(crate) fn too_long(path: &str, what: &str) -> chronos_core::Error {
    chronos_core::Error::unsupported(format!(
        "cannot sort by '{path}' here: {what} holds an array or object there whose canonical \
         text is longer than {KEY_BYTES} bytes, which this store orders only by its \
         beginning; sort by a field holding scalars or shorter containers"
    ))
    .with("field", path)
}

/// The tag of a head whose key for `path` is truncated.
pub(crate) fn truncated_tag(path: &str) -> String {
    format!("x:{}", encode(path))
}

/// The field an odd head sorts by for `path`.
pub(crate) fn key_field(path: &str) -> String {
    key_field_in(KEYS, path)
}

/// The field under `keys` that an odd document sorts by for `path`.
pub(crate) fn key_field_in(keys: &str, path: &str) -> String {
    format!("{keys}.{}", encode(path))
}

/// "Strictly after `(value, id)`" among the odd heads, whose keys are strings (containers)
/// or missing (a path through an array: null). `None` when no odd head can come after.
pub(crate) fn keyset(field: &str, value: &Value, id: ObjectId, desc: bool) -> Option<Document> {
    let (cmp, eq_id) = if desc {
        ("$lt", doc! {"$lt": id})
    } else {
        ("$gt", doc! {"$gt": id})
    };
    let with = |cond: Bson| {
        let mut d = Document::new();
        d.insert(field, cond);
        d
    };
    let missing = || with(Bson::Document(doc! {"$exists": false}));
    let present = || with(Bson::Document(doc! {"$exists": true}));
    let null_after = || {
        let mut d = missing();
        d.insert("_id", eq_id.clone());
        d
    };
    Some(match (value, cursor_key(value)) {
        (Value::Null, _) if desc => null_after(),
        (Value::Null, _) => doc! {"$or": [null_after(), present()]},
        (Value::Bool(_), _) if desc => Document::new(),
        (Value::Bool(_), _) => return None,
        (_, Some(k)) => {
            let mut same = with(Bson::String(k.clone()));
            same.insert("_id", eq_id);
            let mut branches = vec![with(Bson::Document(doc! {cmp: k})), same];
            if desc {
                branches.push(missing());
            }
            doc! {"$or": branches}
        }
        // Numbers and strings: every container sorts after them, every null before.
        _ if desc => missing(),
        _ => present(),
    })
}

/// What the `sortKeys` document of `<c>_counter` says once every head has its keys.
const BACKFILLED: i32 = 1;

/// Makes sure every head of the collection carries its sort keys before the first sort by
/// a metadata path: heads written by the TypeScript library, or by Chronos before it kept
/// them, get theirs once (recorded in `<c>_counter`), and `metaOdd` gets its sparse index.
/// A head rewritten meanwhile is left alone: its writer gave it keys.
pub(crate) async fn backfill(
    head: &Collection<Document>,
    counter: &Collection<Document>,
    c: &str,
) -> Result<()> {
    let ctx = |e: mongodb::error::Error, op: &'static str| map_err(e, op).with("collection", c);
    let state = counter
        .find_one(doc! {"_id": "sortKeys"})
        .await
        .map_err(|e| ctx(e, "read sort-key state"))?;
    if state.is_some_and(|d| d.get_i32("version").is_ok_and(|v| v >= BACKFILLED)) {
        return Ok(());
    }
    crate::index::create_missing_indexes(head, c, &[(doc! {TAGS: 1}, TAGS, false)], true).await?;
    let mut cursor = head
        .find(doc! {TAGS: {"$exists": false}})
        .projection(doc! {"metaIndexed": 1, "ov": 1})
        .await
        .map_err(|e| ctx(e, "read heads for sort keys"))?;
    let mut given = 0u64;
    while let Some(d) = cursor
        .try_next()
        .await
        .map_err(|e| ctx(e, "read heads for sort keys"))?
    {
        let meta = d
            .get_document("metaIndexed")
            .map(conv::from_doc)
            .unwrap_or_default();
        let mut keys = Document::new();
        annotate(&meta, &mut keys);
        if keys.is_empty() {
            continue;
        }
        let (Some(id), Some(ov)) = (d.get("_id"), d.get("ov")) else {
            continue;
        };
        head.update_one(doc! {"_id": id, "ov": ov}, doc! {"$set": keys})
            .await
            .map_err(|e| ctx(e, "write sort keys"))?;
        given += 1;
    }
    counter
        .update_one(
            doc! {"_id": "sortKeys"},
            doc! {"$set": {"version": BACKFILLED}},
        )
        .upsert(true)
        .await
        .map_err(|e| ctx(e, "record sort-key state"))?;
    if given > 0 {
        tracing::info!(
            collection = c,
            heads = given,
            "gave heads written without sort keys theirs"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
