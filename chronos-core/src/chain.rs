//! Tamper evidence: every version carries a [`Seal`], a SHA-256 hash chained to the seal of
//! the version before it in its record.
//!
//! A seal holds four values:
//! - `salt`: 16 random bytes (hex), drawn when the version is written;
//! - `digest = SHA-256(["chronos.digest.v1", salt, checksum, size, meta])`, a commitment to
//!   the payload (its checksum and size) and the indexed metadata (in canonical form, see
//!   [`crate::filter::canonical`]) that reveals nothing about them without the salt;
//! - `prev`: the previous version's `hash` (`None` for a record's first version, and for the
//!   first version written after versions that carry no seal, such as upstream data);
//! - `hash = SHA-256(["chronos.chain.v1", prev, id, ov, cv, op, at, actor, reason, digest])`.
//!
//! The bracketed lists are hashed as their compact JSON text (`serde_json`'s, which is
//! deterministic for strings, integers and `null`), so an outside tool can recompute every
//! hash from the stored fields: `at` as epoch milliseconds, `op` as its upper-case name, an
//! absent `prev`, `actor` or `reason` as `null`.
//!
//! **Why a salted digest.** Erase ([`Collection::erase`](crate::Collection::erase)) must leave
//! history verifiable without a trace of the content. The chain covers the digest, not the
//! checksum: erase removes the salt (with the checksum, payload and metadata) and keeps the
//! digest, which without its 128-bit salt is a commitment nobody can test a guessed payload
//! against. The hashes are not keyed: they show any change to a stored version that is not
//! followed by recomputing every later hash of the record, and the head carries the latest
//! hash, so a copy of the heads' hashes kept elsewhere pins the whole history.
//!
//! Stores compute the seal when they assign the `cv` ([`crate::NewVersion::into_entry`]), so
//! every backend writes the same hashes.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::id::ItemId;
use crate::index::VersionEntry;
use crate::model::Op;
use crate::time::Timestamp;

/// The tamper-evidence fields of one version (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// The digest's salt; removed when the version is erased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// The salted commitment to the payload's checksum and size.
    pub digest: String,
    /// The previous version's `hash`, if that version is sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    /// This version's link in the chain.
    pub hash: String,
}

/// What a writer hands the store so that it can seal the version when it assigns the `cv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    /// A fresh salt ([`ChainLink::after`] draws one).
    pub salt: String,
    /// The hash of the version this one follows (the head's [`HeadEntry::chain`](crate::HeadEntry::chain)).
    pub prev: Option<String>,
}

impl ChainLink {
    /// A link following the version whose hash is `prev`, with a fresh random salt.
    pub fn after(prev: Option<String>) -> ChainLink {
        ChainLink {
            salt: crate::engine::random_hex(16),
            prev,
        }
    }
}

/// The fields of a version the chain covers.
#[derive(Clone, Copy)]
pub(crate) struct Linked<'a> {
    pub(crate) id: ItemId,
    pub(crate) ov: u64,
    pub(crate) cv: u64,
    pub(crate) op: Op,
    pub(crate) at: Timestamp,
    pub(crate) actor: Option<&'a str>,
    pub(crate) reason: Option<&'a str>,
}

impl<'a> Linked<'a> {
    pub(crate) fn of(v: &'a VersionEntry) -> Self {
        Linked {
            id: v.item_id,
            ov: v.ov,
            cv: v.cv,
            op: v.op,
            at: v.at,
            actor: v.actor.as_deref(),
            reason: v.reason.as_deref(),
        }
    }
}

fn sha256_json(v: &serde_json::Value) -> String {
    crate::engine::sha256_hex(v.to_string().as_bytes())
}

/// The salted commitment to a version's checksum, size and indexed metadata.
pub fn digest(salt: &str, checksum: &str, size: u64, meta: &Map<String, Value>) -> String {
    let meta = crate::filter::canonical(&Value::Object(meta.clone()));
    sha256_json(&json!(["chronos.digest.v1", salt, checksum, size, meta]))
}

/// The chain hash of a version with these fields, following `prev`.
pub(crate) fn link(prev: Option<&str>, f: &Linked<'_>, digest: &str) -> String {
    sha256_json(&json!([
        "chronos.chain.v1",
        prev,
        f.id.to_string(),
        f.ov,
        f.cv,
        f.op.as_str(),
        f.at.as_millisecond(),
        f.actor,
        f.reason,
        digest
    ]))
}

impl Seal {
    /// The seal of a version with these fields and this payload.
    pub(crate) fn new(
        l: ChainLink,
        f: &Linked<'_>,
        checksum: &str,
        size: u64,
        meta: &Map<String, Value>,
    ) -> Seal {
        let digest = digest(&l.salt, checksum, size, meta);
        let hash = link(l.prev.as_deref(), f, &digest);
        Seal {
            salt: Some(l.salt),
            digest,
            prev: l.prev,
            hash,
        }
    }

    /// What is wrong with `v`'s seal, judged from `v` alone: the digest against the checksum
    /// and size (while the salt is there), the hash against the fields.
    pub fn check(&self, v: &VersionEntry) -> Option<String> {
        if let Some(salt) = &self.salt {
            if digest(salt, &v.checksum, v.size, &v.meta) != self.digest {
                return Some(
                    "the seal's digest does not match the version's checksum, size and \
                     metadata"
                        .into(),
                );
            }
        }
        if link(self.prev.as_deref(), &Linked::of(v), &self.digest) != self.hash {
            return Some("the seal's hash does not match the version's fields".into());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_depends_on_every_covered_field() {
        let id = ItemId::generate();
        let at = Timestamp::from_millisecond(1_700_000_000_000).unwrap();
        let base = Linked {
            id,
            ov: 3,
            cv: 9,
            op: Op::Update,
            at,
            actor: Some("ada"),
            reason: None,
        };
        let h = link(Some("p"), &base, "d");
        assert_eq!(h.len(), 64);
        assert_eq!(h, link(Some("p"), &base, "d"), "deterministic");
        let variants = [
            link(None, &base, "d"),
            link(Some("q"), &base, "d"),
            link(Some("p"), &base, "e"),
            link(Some("p"), &Linked { ov: 4, ..base }, "d"),
            link(Some("p"), &Linked { cv: 8, ..base }, "d"),
            link(
                Some("p"),
                &Linked {
                    op: Op::Delete,
                    ..base
                },
                "d",
            ),
            link(
                Some("p"),
                &Linked {
                    actor: None,
                    ..base
                },
                "d",
            ),
            link(
                Some("p"),
                &Linked {
                    reason: Some(""),
                    ..base
                },
                "d",
            ),
            link(
                Some("p"),
                &Linked {
                    id: ItemId::generate(),
                    ..base
                },
                "d",
            ),
            link(
                Some("p"),
                &Linked {
                    at: Timestamp::from_millisecond(1_700_000_000_001).unwrap(),
                    ..base
                },
                "d",
            ),
        ];
        for v in variants {
            assert_ne!(v, h);
        }
        let m = Map::new();
        let d = digest("s", "c", 1, &m);
        assert_ne!(d, digest("s", "c", 2, &m));
        assert_ne!(d, digest("t", "c", 1, &m));
        assert_ne!(d, digest("s", "d", 1, &m));
        let one = json!({"a": 1}).as_object().cloned().unwrap();
        assert_ne!(d, digest("s", "c", 1, &one));
        // Canonical: key order and integral floats do not change the digest.
        let a = json!({"x": 1.0, "y": {"b": 2, "a": 1}});
        let b = json!({"y": {"a": 1, "b": 2}, "x": 1});
        assert_eq!(
            digest("s", "c", 1, a.as_object().unwrap()),
            digest("s", "c", 1, b.as_object().unwrap())
        );
    }
}
