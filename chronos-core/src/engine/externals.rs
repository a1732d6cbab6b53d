//! Externalised properties (`collectionMaps.<c>.base64Props`): large binary content sent as
//! base64 strings is stored as its own blobs, and the version's JSON keeps a small ref.
//!
//! On write, a configured property holding a base64 string is decoded and stored at
//! `<prefix><coll>/<prop>/<id>/v<ov>/blob-<attempt>.bin` (plus `text-<attempt>.txt` for text
//! content), create-only and under keys unique to the attempt, like payloads; the property is
//! replaced by `{"ref": {blobKey, textKey?, contentType, size, sha256, textCharset?}}` — the
//! shape upstream stored (`{ref: {contentBucket, blobKey, textKey?}}`, which reads too), plus
//! what it takes to verify the content. A ref read earlier may be written back unchanged (it
//! must point into the same record's property); anything else in the property is a
//! validation error naming it.
//!
//! On read, refs come back as they are ([`Externals::Ref`]), with presigned URLs when the
//! read asks for them, or with the content inlined as base64 ([`Externals::Inline`]),
//! verified against the stored size and SHA-256.
//!
//! The sweep treats a property blob as referenced when the version that wrote it, or the
//! current head, refers to it (later versions carry refs forward unchanged).

use std::time::Duration;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::attempt::Attempt;
use super::payload::sha256_hex;
use super::{Collection, Externals, ReadOptions};
use crate::error::{Error, Result};
use crate::id::ItemId;
use crate::time::{now_ms, Timestamp};

/// How one property is externalised (`base64Props.<prop>` in the spec's config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base64Prop {
    /// MIME type of the decoded content, e.g. `application/pdf` or `text/plain`.
    pub content_type: String,
    /// Also store the content as `text.txt` (implied by a `text/*` content type).
    pub preferred_text: bool,
    /// Charset of the text (default UTF-8, in which case the content must be valid UTF-8).
    pub text_charset: Option<String>,
}

impl Base64Prop {
    /// Content of the given MIME type.
    pub fn new(content_type: impl Into<String>) -> Self {
        Self {
            content_type: content_type.into(),
            preferred_text: false,
            text_charset: None,
        }
    }
    /// Sets `preferredText`.
    pub fn preferred_text(mut self, on: bool) -> Self {
        self.preferred_text = on;
        self
    }
    /// Sets `textCharset`.
    pub fn text_charset(mut self, charset: impl Into<String>) -> Self {
        self.text_charset = Some(charset.into());
        self
    }
    fn stores_text(&self) -> bool {
        self.preferred_text || self.content_type.to_ascii_lowercase().starts_with("text/")
    }
    fn is_utf8(&self) -> bool {
        self.text_charset
            .as_deref()
            .is_none_or(|c| matches!(c.to_ascii_lowercase().as_str(), "utf-8" | "utf8"))
    }
}

/// The ref object stored in place of an externalised property.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlobRef {
    blob_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text_charset: Option<String>,
}

const REF: &str = "ref";

/// Standard alphabet; padding optional (senders differ).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn parse_ref(v: &Value) -> Option<BlobRef> {
    let inner = v.as_object()?.get(REF)?;
    serde_json::from_value(inner.clone()).ok()
}

/// File-name stems of externalised content and its text copy.
pub(super) const PROP_BLOB_STEM: &str = "blob";
pub(super) const PROP_TEXT_STEM: &str = "text";

/// Checks a `base64Props` property name: one top-level field of `A-Za-z0-9_-`, not starting
/// with `_` or `$` (it becomes a blob key segment).
pub fn validate_base64_prop_name(collection: &str, prop: &str) -> Result<()> {
    let ok = !prop.is_empty()
        && !prop.starts_with(['_', '$'])
        && prop
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_config(format!(
            "invalid base64Props property '{prop}': a top-level field name of A-Z a-z 0-9 _ -, \
             not starting with _ or $"
        ))
        .with("collection", collection))
    }
}

impl Collection {
    /// `<prefix><coll>/<prop>/<id>/`: where a record's property blobs live.
    fn prop_dir(&self, prop: &str, id: ItemId) -> String {
        format!(
            "{}{}/{prop}/{id}/",
            self.inner.config.blob_prefix,
            self.name()
        )
    }

    /// Replaces configured base64 properties of a document about to become version `ov` of
    /// `id` by refs, storing their content first. Every property is checked before anything
    /// is stored, so a bad one leaves nothing behind.
    pub(super) async fn externalize(
        &self,
        data: &mut Map<String, Value>,
        id: ItemId,
        ov: u64,
        attempt: &Attempt,
    ) -> Result<()> {
        let mut decoded: Vec<(&String, &Base64Prop, Vec<u8>)> = Vec::new();
        for (prop, spec) in &self.inner.config.base64_props {
            let err = |msg: String| {
                Error::validation(format!("property '{prop}': {msg}"))
                    .with("collection", self.name())
                    .with("id", id)
                    .with("field", prop)
            };
            match data.get(prop) {
                None | Some(Value::Null) => {}
                Some(Value::String(text)) => {
                    let content = LENIENT
                        .decode(text.trim())
                        .map_err(|e| err(format!("is not valid base64: {e}")))?;
                    if spec.stores_text()
                        && spec.is_utf8()
                        && std::str::from_utf8(&content).is_err()
                    {
                        return Err(err(
                            "content is declared as UTF-8 text but is not valid UTF-8".into(),
                        ));
                    }
                    decoded.push((prop, spec, content));
                }
                Some(value @ Value::Object(_)) => {
                    let r = parse_ref(value).ok_or_else(|| {
                        err("must be a base64 string or a ref read from this record".into())
                    })?;
                    let dir = self.prop_dir(prop, id);
                    let own = |k: &str| k.starts_with(&dir) && !k.contains("..");
                    if !own(&r.blob_key) || r.text_key.as_deref().is_some_and(|k| !own(k)) {
                        return Err(err(format!(
                            "the ref points outside this record's '{prop}' content ({dir}…)"
                        )));
                    }
                }
                Some(other) => {
                    return Err(err(format!(
                        "must be a base64 string, got {}",
                        crate::model::json_type_name(other)
                    )))
                }
            }
        }
        for (prop, spec, content) in decoded {
            let stored = self
                .store_content(prop, spec, id, ov, attempt, content)
                .await
                .map_err(|e| e.with("field", prop))?;
            data.insert(prop.clone(), stored);
        }
        Ok(())
    }

    async fn store_content(
        &self,
        prop: &str,
        spec: &Base64Prop,
        id: ItemId,
        ov: u64,
        attempt: &Attempt,
        content: Vec<u8>,
    ) -> Result<Value> {
        let dir = format!("{}v{ov}/", self.prop_dir(prop, id));
        let text = spec.stores_text();
        let r = BlobRef {
            blob_key: format!("{dir}{}", attempt.file(PROP_BLOB_STEM, ".bin")),
            text_key: text.then(|| format!("{dir}{}", attempt.file(PROP_TEXT_STEM, ".txt"))),
            content_type: Some(spec.content_type.clone()),
            size: Some(content.len() as u64),
            sha256: Some(sha256_hex(&content)),
            text_charset: spec.text_charset.clone().filter(|_| text),
        };
        let bytes = Bytes::from(content);
        self.put_unique(&r.blob_key, bytes.clone()).await?;
        if let Some(k) = &r.text_key {
            self.put_unique(k, bytes).await?;
        }
        let mut m = Map::new();
        m.insert(
            REF.into(),
            serde_json::to_value(&r).expect("ref serializes"),
        );
        Ok(Value::Object(m))
    }

    /// Turns refs of configured properties into what the read asked for.
    pub(super) async fn resolve_externals(
        &self,
        data: &mut Map<String, Value>,
        id: ItemId,
        opts: &ReadOptions,
    ) -> Result<()> {
        let props = &self.inner.config.base64_props;
        if props.is_empty() || (opts.externals == Externals::Ref && opts.presign.is_none()) {
            return Ok(());
        }
        for prop in props.keys() {
            let Some(r) = data.get(prop).and_then(parse_ref) else {
                continue;
            };
            let ctx = |e: Error| {
                e.with("collection", self.name())
                    .with("id", id)
                    .with("field", prop)
            };
            let value = match opts.externals {
                Externals::Inline => {
                    let bytes = self.stores().blob.get(&r.blob_key).await.map_err(ctx)?;
                    let intact = r.size.is_none_or(|s| s == bytes.len() as u64)
                        && r.sha256.as_deref().is_none_or(|h| h == sha256_hex(&bytes));
                    if !intact {
                        return Err(ctx(Error::internal(format!(
                            "content of property '{prop}' is corrupted or truncated ({} bytes read)",
                            bytes.len()
                        ))
                        .with("key", &r.blob_key)));
                    }
                    Value::String(STANDARD.encode(&bytes))
                }
                Externals::Ref => {
                    let ttl = opts.presign.expect("checked above");
                    let mut v = data[prop].clone();
                    let inner = v[REF].as_object_mut().expect("parsed as a ref");
                    let (url, expires_at) = self.presign(&r.blob_key, ttl).await.map_err(ctx)?;
                    inner.insert("url".into(), Value::String(url));
                    if let Some(k) = &r.text_key {
                        let (url, _) = self.presign(k, ttl).await.map_err(ctx)?;
                        inner.insert("textUrl".into(), Value::String(url));
                    }
                    inner.insert(
                        "expiresAt".into(),
                        serde_json::to_value(expires_at).expect("instant serializes"),
                    );
                    v
                }
            };
            data.insert(prop.clone(), value);
        }
        Ok(())
    }

    /// A presigned GET URL for `key` and when it expires.
    pub(super) async fn presign(&self, key: &str, ttl: Duration) -> Result<(String, Timestamp)> {
        let url = self.stores().blob.presign_get(key, ttl).await?;
        let expires = Timestamp::from_millisecond(
            now_ms()
                .as_millisecond()
                .saturating_add(ttl.as_millis() as i64),
        )
        .unwrap_or(Timestamp::MAX);
        Ok((url, expires))
    }

    /// If `key` is a property blob of this collection, the `(id, ov)` that wrote it.
    pub(super) fn parse_prop_key(&self, key: &str) -> Option<(ItemId, u64)> {
        let rest = key
            .strip_prefix(&self.inner.config.blob_prefix)?
            .strip_prefix(self.name())?
            .strip_prefix('/')?;
        let mut parts = rest.splitn(4, '/');
        let prop = parts.next()?;
        if !self.inner.config.base64_props.contains_key(prop) {
            return None;
        }
        let id = ItemId::parse(parts.next()?).ok()?;
        let ov = parts.next()?.strip_prefix('v')?.parse().ok()?;
        parts.next()?;
        Some((id, ov))
    }

    /// The blob keys a document refers to from its configured properties.
    pub(super) fn prop_refs(&self, data: &Map<String, Value>) -> Vec<String> {
        let mut out = Vec::new();
        for p in self.inner.config.base64_props.keys() {
            if let Some(r) = data.get(p).and_then(parse_ref) {
                out.extend(r.text_key.clone());
                out.push(r.blob_key);
            }
        }
        out
    }

    /// Whether a document refers to `key` from one of the configured properties.
    pub(super) fn refers_to(&self, data: &Map<String, Value>, key: &str) -> bool {
        self.inner.config.base64_props.keys().any(|p| {
            data.get(p)
                .and_then(parse_ref)
                .is_some_and(|r| r.blob_key == key || r.text_key.as_deref() == Some(key))
        })
    }
}
