//! Stored payloads: the JSON bytes of one version, their checksum, key and metadata.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::attempt::Attempt;
use crate::error::{Error, Result};
use crate::filter::get_path;
use crate::id::ItemId;
use crate::model::{Lineage, SYSTEM_FIELD};
use crate::time::Timestamp;

/// The `_system` object inside a stored payload (upstream-compatible field names).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredSystem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) inserted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) updated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deleted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) deleted: bool,
    #[serde(flatten)]
    pub(crate) lineage: Lineage,
}

/// A decoded payload: user data plus stored system fields.
#[derive(Debug, Clone)]
pub(crate) struct Decoded {
    pub(crate) data: Map<String, Value>,
    pub(crate) system: StoredSystem,
}

/// Serialized payload ready to put.
pub(crate) struct Encoded {
    pub(crate) bytes: Bytes,
    pub(crate) checksum: String,
}

/// The stored document: the user's fields, then `_system` (the user's data never holds
/// `_system`: it is a reserved field). Serialized in place, without a copy of the data.
struct WithSystem<'a> {
    data: &'a Map<String, Value>,
    system: &'a StoredSystem,
}

impl Serialize for WithSystem<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.data.len() + 1))?;
        for (k, v) in self.data.iter().filter(|(k, _)| k.as_str() != SYSTEM_FIELD) {
            m.serialize_entry(k, v)?;
        }
        m.serialize_entry(SYSTEM_FIELD, self.system)?;
        m.end()
    }
}

/// A buffer that refuses to grow past its limit: serialization stops there, so a payload
/// over the limit never takes its whole size in memory a second time.
struct Bounded {
    buf: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > self.limit {
            return Err(std::io::Error::other("payload over its limit"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serializes a version's payload; `None` once it passes `limit` bytes.
pub(crate) fn encode(
    data: &Map<String, Value>,
    system: &StoredSystem,
    limit: u64,
) -> Option<Encoded> {
    let mut out = Bounded {
        buf: Vec::new(),
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
    };
    // The only error a map of JSON values can meet here is the limit.
    serde_json::to_writer(&mut out, &WithSystem { data, system }).ok()?;
    let bytes = Bytes::from(out.buf);
    let checksum = sha256_hex(&bytes);
    Some(Encoded { bytes, checksum })
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    // Not `format!` per byte: every read of a payload checks its checksum.
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

/// Key suffix of gzip-compressed payloads: the key records the encoding.
pub(crate) const GZIP_SUFFIX: &str = ".gz";

/// gzip `json` if compression is on, the payload is big enough and it shrinks; returns the
/// bytes to store and whether they are compressed.
pub(crate) fn maybe_compress(json: &Bytes, on: bool) -> (Bytes, bool) {
    use std::io::Write;
    if !on || json.len() < super::options::COMPRESS_MIN_BYTES {
        return (json.clone(), false);
    }
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(json).expect("writing to memory");
    let gz = enc.finish().expect("writing to memory");
    if gz.len() < json.len() {
        (Bytes::from(gz), true)
    } else {
        (json.clone(), false)
    }
}

/// The JSON of a stored payload: gunzipped when its key says it is compressed.
fn stored_json<'a>(bytes: &'a [u8], key: &str) -> Result<std::borrow::Cow<'a, [u8]>> {
    use std::io::Read;
    if !key.ends_with(GZIP_SUFFIX) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| {
            Error::internal(format!(
                "compressed payload cannot be decompressed: blob is corrupted or truncated ({} bytes read): {e}",
                bytes.len()
            ))
            .with("key", key)
        })?;
    Ok(std::borrow::Cow::Owned(out))
}

/// Verifies and parses payload bytes read from `key` (decompressing them if the key says
/// so; the checksum is of the JSON).
pub(crate) fn decode(bytes: &[u8], key: &str, checksum: &str) -> Result<Decoded> {
    let bytes = stored_json(bytes, key)?;
    let bytes = bytes.as_ref();
    if !checksum.is_empty() && sha256_hex(bytes) != checksum {
        return Err(Error::internal(format!(
            "payload checksum mismatch: blob is corrupted or truncated ({} bytes read)",
            bytes.len()
        ))
        .with("key", key));
    }
    let mut data: Map<String, Value> = serde_json::from_slice(bytes).map_err(|e| {
        Error::internal(format!("payload is not a JSON object: {e}")).with("key", key)
    })?;
    let system = match data.shift_remove(SYSTEM_FIELD) {
        Some(v) => serde_json::from_value(v).map_err(|e| {
            Error::internal(format!("payload has a malformed _system: {e}")).with("key", key)
        })?,
        None => StoredSystem::default(),
    };
    Ok(Decoded { data, system })
}

/// A blob key unique to this write attempt, under the collection's prefix; the `v<ov>` part
/// keeps upstream's layout recognisable and lets a sweep find the version that should
/// reference it, the file name says which database wrote it and when (see
/// [`super::attempt`]). Compressed payloads end in `.json.gz`.
pub(crate) fn blob_key(
    prefix: &str,
    collection: &str,
    id: ItemId,
    ov: u64,
    attempt: &Attempt,
    gz: bool,
) -> String {
    let ext = if gz { ".json.gz" } else { ".json" };
    format!(
        "{prefix}{collection}/{id}/v{ov}/{}",
        attempt.file(PAYLOAD_STEM, ext)
    )
}

/// The file-name stem of payload blobs.
pub(crate) const PAYLOAD_STEM: &str = "item";

/// Parses `<prefix><collection>/<id>/v<ov>/…` back into `(id, ov)`.
pub(crate) fn parse_blob_key(prefix: &str, collection: &str, key: &str) -> Option<(ItemId, u64)> {
    let rest = key
        .strip_prefix(prefix)?
        .strip_prefix(collection)?
        .strip_prefix('/')?;
    let mut parts = rest.splitn(3, '/');
    let id = ItemId::parse(parts.next()?).ok()?;
    let ov = parts.next()?.strip_prefix('v')?.parse().ok()?;
    parts.next()?;
    Some((id, ov))
}

/// The indexed metadata of a document: the indexed props, or everything when none are set,
/// in canonical form (see [`crate::filter::canonical`]).
pub(crate) fn extract_meta(data: &Map<String, Value>, indexed: &[String]) -> Map<String, Value> {
    let meta = if indexed.is_empty() {
        data.clone()
    } else {
        project(data, indexed)
    };
    match crate::filter::canonical(&Value::Object(meta)) {
        Value::Object(m) => m,
        _ => unreachable!("canonical keeps objects objects"),
    }
}

/// Copies the given dotted paths (those present) into a new nested object.
pub(crate) fn project(data: &Map<String, Value>, paths: &[String]) -> Map<String, Value> {
    let mut out = Map::new();
    for p in paths {
        if let Some(v) = get_path(data, p) {
            insert_path(&mut out, p, v.clone());
        }
    }
    out
}

fn insert_path(target: &mut Map<String, Value>, path: &str, v: Value) {
    match path.split_once('.') {
        None => {
            target.insert(path.to_string(), v);
        }
        Some((head, rest)) => {
            let slot = target
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = slot {
                insert_path(m, rest, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checksums_are_lowercase_hex_sha256() {
        // FIPS 180-2's test vectors: upstream's checksums are this hex form, so stored
        // versions of either library verify.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn keys_are_unique_and_parse_back() {
        let id = ItemId::generate();
        let at = Attempt::start("ab12", None);
        let a = blob_key("", "users", id, 3, &at, false);
        assert_ne!(
            a,
            blob_key("", "users", id, 3, &Attempt::start("ab12", None), false)
        );
        assert_eq!(parse_blob_key("", "users", &a), Some((id, 3)));
        assert_eq!(parse_blob_key("", "user", &a), None);
        assert_eq!(parse_blob_key("", "users", "users/xyz/v1/item.json"), None);
        let p = blob_key("db_a/", "users", id, 3, &at, true);
        assert!(
            p.starts_with("db_a/users/") && p.ends_with(".json.gz"),
            "{p}"
        );
        assert_eq!(parse_blob_key("db_a/", "users", &p), Some((id, 3)));
        assert_eq!(parse_blob_key("", "users", &p), None);
        assert_eq!(parse_blob_key("db_b/", "users", &p), None);
        // Upstream's layout parses too, so a sweep recognises it.
        assert_eq!(
            parse_blob_key("", "users", &format!("users/{id}/v0/item.json")),
            Some((id, 0))
        );
    }

    #[test]
    fn checksum_mismatch_names_key() {
        let data = json!({"a": 1}).as_object().cloned().unwrap();
        let enc = encode(&data, &StoredSystem::default(), u64::MAX).unwrap();
        assert!(decode(&enc.bytes, "k", &enc.checksum).is_ok());
        let e = decode(
            &enc.bytes[..enc.bytes.len() - 1],
            "users/x/v0/item.json",
            &enc.checksum,
        )
        .unwrap_err();
        assert_eq!(e.context("key"), Some("users/x/v0/item.json"));
    }

    #[test]
    fn encoding_appends_the_system_object_and_stops_at_the_limit() {
        let data = json!({"z": 1, "a": [1, "x"], "m": {"k": null}})
            .as_object()
            .cloned()
            .unwrap();
        let system = StoredSystem {
            deleted: true,
            ..StoredSystem::default()
        };
        let enc = encode(&data, &system, u64::MAX).unwrap();
        let mut whole = data.clone();
        whole.insert(SYSTEM_FIELD.into(), serde_json::to_value(&system).unwrap());
        assert_eq!(enc.bytes, serde_json::to_vec(&whole).unwrap());
        let n = enc.bytes.len() as u64;
        assert!(encode(&data, &system, n).is_some(), "exactly at the limit");
        assert!(encode(&data, &system, n - 1).is_none());
        assert!(encode(&data, &system, 0).is_none());
    }

    #[test]
    fn meta_copies_dotted_paths() {
        let data = json!({"a": {"b": 1, "c": 2}, "d": 3})
            .as_object()
            .cloned()
            .unwrap();
        let meta = extract_meta(&data, &["a.b".into(), "missing".into()]);
        assert_eq!(Value::Object(meta), json!({"a": {"b": 1}}));
        assert_eq!(extract_meta(&data, &[]), data);
        let floats = json!({"b": 1.0, "a": 2}).as_object().cloned().unwrap();
        assert_eq!(
            serde_json::to_string(&extract_meta(&floats, &[])).unwrap(),
            r#"{"a":2,"b":1}"#
        );
    }
}
