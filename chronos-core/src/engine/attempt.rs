//! Write attempts: which database wrote a blob, and when — carried in the blob's own key.
//!
//! Every blob a write attempt stores (its payload, its externalised properties) is named
//! `<stem>-<owner>-<started>-<tag><ext>`: `owner` is the index database's
//! [`IndexStore::database_id`](crate::IndexStore::database_id), `started` the attempt's start
//! (epoch milliseconds on the writer's clock), `tag` random. The sweep uses the first two as
//! proof: it deletes only blobs whose owner is its own database (so a bucket shared with
//! another database, another configuration or another application is safe whatever the
//! prefixes say), and it deletes a blob whose version slot is still free only once the
//! attempt is past its commit deadline plus a clock-skew margin (so a write still being
//! acknowledged keeps its payload). Keys without these parts (upstream's `item.json`, keys of
//! releases before this scheme) are never swept.

use std::time::Duration;

use super::idempotency::IdempotencyKey;
use crate::time::{now_ms, Timestamp};

/// One write attempt's identity.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    owner: String,
    started: Timestamp,
    tag: String,
}

/// What a blob's file name says about the attempt that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) owner: String,
    pub(crate) started_ms: i64,
    pub(crate) tag: String,
}

impl Attempt {
    /// A new attempt of the database `owner`, starting now. A write with an idempotency key
    /// names it in its tag (the key, then 8 random hex characters), so every attempt's blobs
    /// stay unique and [`carries_key`] recognises the write's versions from their keys.
    pub(crate) fn start(owner: &str, key: Option<&IdempotencyKey>) -> Self {
        Self {
            owner: owner.to_string(),
            started: now_ms(),
            tag: match key {
                Some(k) => format!("{k}{}", random_hex(4)),
                None => random_hex(8),
            },
        }
    }

    /// The file name of a blob of this attempt: `<stem>-<owner>-<started>-<tag><ext>`.
    pub(crate) fn file(&self, stem: &str, ext: &str) -> String {
        format!(
            "{stem}-{}-{}-{}{ext}",
            self.owner,
            self.started.as_millisecond(),
            self.tag
        )
    }

    /// Whether the attempt may still send its commit: the engine refuses to commit after
    /// `deadline`, which is what lets the sweep bound how long an unreferenced blob may still
    /// become referenced.
    pub(crate) fn expired(&self, deadline: Duration) -> bool {
        now_ms() > self.deadline(deadline)
    }

    /// The last instant at which this attempt may commit.
    pub(crate) fn deadline(&self, deadline: Duration) -> Timestamp {
        let ms = self
            .started
            .as_millisecond()
            .saturating_add(deadline.as_millis().min(i64::MAX as u128) as i64);
        Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
    }
}

/// Parses the file name (the part after the last `/`) of a blob written by an attempt with
/// the given stem; `None` for any other name.
pub(crate) fn parse_file(key: &str, stem: &str) -> Option<Written> {
    let name = key.rsplit('/').next()?;
    let rest = name.strip_prefix(stem)?.strip_prefix('-')?;
    let rest = &rest[..rest.find('.')?];
    let mut parts = rest.split('-');
    let (owner, started, tag) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || !is_database_id(owner)
        || tag.is_empty()
        || !tag.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    Some(Written {
        owner: owner.to_string(),
        started_ms: started.parse().ok()?,
        tag: tag.to_string(),
    })
}

/// Whether the payload blob `key` was written by an attempt of the write with idempotency
/// key `k`.
pub(crate) fn carries_key(key: &str, k: &IdempotencyKey) -> bool {
    parse_file(key, super::payload::PAYLOAD_STEM)
        .is_some_and(|w| w.tag.len() == k.as_str().len() + 8 && w.tag.starts_with(k.as_str()))
}

/// Whether `s` can be a database id: 1–64 characters of `0-9a-z`. Ids become part of blob
/// file names, so nothing else is accepted from a store.
pub(crate) fn is_database_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// `n` random bytes as lower-case hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).expect("operating system random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh database id for a store to keep (see
/// [`IndexStore::database_id`](crate::IndexStore::database_id)): 16 random hex characters.
pub fn new_database_id() -> String {
    random_hex(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_parse_back() {
        let a = Attempt::start("0123abcd", None);
        let f = a.file("item", ".json.gz");
        assert!(f.starts_with("item-0123abcd-"), "{f}");
        let w = parse_file(&format!("db/users/x/v0/{f}"), "item").unwrap();
        assert_eq!(w.owner, "0123abcd");
        assert_eq!(w.started_ms, a.started.as_millisecond());
        assert_eq!(parse_file(&f, "blob"), None);
        // Older layouts carry no owner: never parsed as ours.
        for legacy in ["item.json", "item-0011223344556677.json", "item--1-ab.json"] {
            assert_eq!(parse_file(legacy, "item"), None, "{legacy}");
        }
        assert_eq!(parse_file("item-A-1-ab.json", "item"), None);
        assert_eq!(parse_file("item-a-1-ab-c.json", "item"), None);
    }

    #[test]
    fn keyed_attempts_name_their_key() {
        let k = IdempotencyKey::generate();
        let a = Attempt::start("0123abcd", Some(&k));
        let b = Attempt::start("0123abcd", Some(&k));
        let (fa, fb) = (a.file("item", ".json"), b.file("item", ".json"));
        assert_ne!(fa, fb, "two attempts of one write never share a key");
        assert!(carries_key(&format!("c/x/v0/{fa}"), &k));
        assert!(!carries_key(
            &format!("c/x/v0/{fa}"),
            &IdempotencyKey::generate()
        ));
        let plain = Attempt::start("0123abcd", None).file("item", ".json");
        assert!(!carries_key(&plain, &k));
        assert!(
            !carries_key(&a.file("blob", ".json"), &k),
            "payload blobs only"
        );
    }

    #[test]
    fn deadlines_expire() {
        let a = Attempt::start("a", None);
        assert!(!a.expired(Duration::from_secs(60)));
        let old = Attempt {
            started: Timestamp::from_millisecond(0).unwrap(),
            ..a
        };
        assert!(old.expired(Duration::from_secs(60)));
        assert!(!old.expired(Duration::MAX));
    }

    #[test]
    fn database_ids_are_checked() {
        assert!(is_database_id(&new_database_id()));
        assert!(!is_database_id(""));
        assert!(!is_database_id("a-b"));
        assert!(!is_database_id("A"));
        assert!(!is_database_id(&"a".repeat(65)));
    }
}
