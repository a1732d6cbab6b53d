//! Idempotency keys: a write that may be sent more than once — a queued write replayed after
//! an outage, a client retrying after a lost acknowledgement — carries a key, and every
//! payload blob its attempts store names that key (see `attempt`). So
//! [`Collection::find_committed`] recognises the write's own version from the version log
//! alone, without reading a payload, on every backend.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Collection;
use crate::error::{Error, Result};
use crate::id::ItemId;
use crate::index::Point;
use crate::model::WriteResult;
use crate::time::Timestamp;

/// Characters in a key: 16 lower-case hex digits (64 random bits).
const KEY_LEN: usize = 16;

/// A write's idempotency key: 16 lower-case hex characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(super::random_hex(KEY_LEN / 2))
    }

    /// Parses a key: `Validation` naming the rule unless `s` is 16 lower-case hex digits.
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() == KEY_LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_string()))
        } else {
            Err(Error::validation(format!(
                "idempotency key '{}' is not {KEY_LEN} lower-case hex digits",
                s.escape_debug()
            ))
            .with("field", "idempotencyKey"))
        }
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({})", self.0)
    }
}

impl FromStr for IdempotencyKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> String {
        k.0
    }
}

/// Versions read per page while looking for a key.
const PAGE: usize = 100;

impl Collection {
    /// The version of record `id` that a write with idempotency key `key` committed, if any.
    /// `since` bounds the search: no version older than it is read (pass an instant before
    /// the write's first attempt began, less the clock-skew margin when attempts run on
    /// several machines). One point lookup, then the versions after it by pages.
    ///
    /// Together with the write deadline this settles a write whose outcome is unknown: once
    /// every attempt is past its deadline plus the skew margin none can still commit, so
    /// `None` then means it never will.
    pub async fn find_committed(
        &self,
        id: ItemId,
        key: &IdempotencyKey,
        since: Timestamp,
    ) -> Result<Option<WriteResult>> {
        let idx = &self.stores().index;
        // The latest version before `since` was committed before any attempt began:
        // start after it.
        let before =
            Timestamp::from_millisecond(since.as_millisecond().saturating_sub(1)).unwrap_or(since);
        let mut after = idx
            .version_at(self.name(), id, Point::At(before))
            .await?
            .map(|v| v.ov);
        loop {
            let page = idx.versions(self.name(), id, after, PAGE).await?;
            if let Some(v) = page
                .iter()
                .find(|v| super::attempt::carries_key(&v.blob_key, key))
            {
                return Ok(Some(WriteResult {
                    id,
                    ov: v.ov,
                    cv: v.cv,
                    at: v.at,
                    op: v.op,
                }));
            }
            if page.len() < PAGE {
                return Ok(None);
            }
            after = page.last().map(|v| v.ov);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_strictly() {
        let k = IdempotencyKey::generate();
        assert_eq!(IdempotencyKey::parse(k.as_str()).unwrap(), k);
        for bad in [
            "",
            "0123",
            "0123456789ABCDEF",
            "0123456789abcdeg",
            "0123456789abcdef0",
        ] {
            let e = IdempotencyKey::parse(bad).unwrap_err();
            assert!(e.to_string().contains("idempotency key"), "{e}");
        }
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<IdempotencyKey>(&json).unwrap(), k);
        assert!(serde_json::from_str::<IdempotencyKey>("\"x\"").is_err());
    }
}
