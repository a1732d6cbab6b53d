//! The change feed: a collection's committed versions in one total order (cv), in pages,
//! from a cursor a consumer stores and resumes from.
//!
//! Gap- and duplicate-freedom come from the index store ([`IndexStore::feed`]): it hands out
//! a version only once nothing with a lower cv can still commit. SQLite and the memory
//! store assign cvs inside the commit, so every committed version qualifies at once;
//! MongoDB reserves cvs before committing and waits out reservations that may still land
//! (`chronos-store-mongo`'s `feed` docs). This module adds the cursor: opaque, bound to
//! its collection and database, and refused anywhere else.
//!
//! [`IndexStore::feed`]: crate::IndexStore::feed

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use super::Collection;
use crate::error::{Error, Result};
use crate::index::VersionEntry;

/// The most versions one page of the feed returns.
pub const MAX_FEED_PAGE: usize = 1000;

/// A position in a collection's change feed. Serialise it with `to_string()` (or serde) and
/// parse it back with `str::parse`; its text is opaque.
///
/// [`ChangeCursor::start`] reads a feed from its beginning; every cursor a page returns is
/// bound to its collection and index database, so resuming it elsewhere is an error.
///
/// ```
/// use chronos_core::ChangeCursor;
/// let start = ChangeCursor::start();
/// let text = start.to_string();
/// assert_eq!(text.parse::<ChangeCursor>().unwrap(), start);
/// assert!("not a cursor".parse::<ChangeCursor>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChangeCursor {
    /// The index database and collection it was handed out for (`None` for the start).
    owner: Option<(String, String)>,
    /// Every version with a cv up to this one was handed out.
    cv: u64,
}

const CURSOR_TAG: &str = "cf1";

impl ChangeCursor {
    /// The beginning of any collection's feed.
    pub fn start() -> Self {
        Self { owner: None, cv: 0 }
    }

    /// Every version with a cv up to this one precedes the cursor.
    pub fn cv(&self) -> u64 {
        self.cv
    }
}

impl fmt::Display for ChangeCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.owner {
            Some((db, coll)) => write!(f, "{CURSOR_TAG}:{db}:{}:{coll}", self.cv),
            None => write!(f, "{CURSOR_TAG}::{}:", self.cv),
        }
    }
}

impl FromStr for ChangeCursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::validation("invalid change cursor: not one a change feed page returned")
                .with("field", "cursor")
        };
        let mut parts = s.splitn(4, ':');
        let (Some(CURSOR_TAG), Some(db), Some(cv), Some(coll)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let cv: u64 = cv.parse().map_err(|_| bad())?;
        let owner = match (db.is_empty(), coll.is_empty()) {
            (true, true) if cv == 0 => None,
            (false, false) if super::attempt::is_database_id(db) => {
                super::validate_collection_name(coll).map_err(|_| bad())?;
                Some((db.to_string(), coll.to_string()))
            }
            _ => return Err(bad()),
        };
        Ok(Self { owner, cv })
    }
}

impl serde::Serialize for ChangeCursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ChangeCursor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One page of a change feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePage {
    /// Committed versions after the cursor, ascending cv (each exactly once across pages).
    pub changes: Vec<VersionEntry>,
    /// Where the next page starts. It moves on even when `changes` is empty, so a consumer
    /// that stores it never rereads what it has seen.
    pub cursor: ChangeCursor,
}

impl Collection {
    /// The committed versions after `cursor`, in cv order, at most `limit` (1–1,000).
    ///
    /// Gap-free and duplicate-free: a consumer that feeds each page's `cursor` back sees
    /// every committed version exactly once, in one total order, even while cvs commit out
    /// of order. A version may appear a little after its write returned (MongoDB waits out
    /// cv reservations that could still commit). Errors: `Validation` for a cursor of
    /// another collection or database, `Gone` for one older than the versions the
    /// collection keeps (with versioning off, superseded versions are pruned at once).
    pub async fn changes(&self, cursor: &ChangeCursor, limit: usize) -> Result<ChangePage> {
        if limit == 0 || limit > MAX_FEED_PAGE {
            return Err(Error::validation(format!(
                "limit must be between 1 and {MAX_FEED_PAGE}, got {limit}"
            ))
            .with("field", "limit"));
        }
        if let Some((db, coll)) = &cursor.owner {
            if db != self.database_id() || coll != self.name() {
                return Err(Error::validation(format!(
                    "change cursor belongs to collection '{coll}' of another database or \
                     collection; start from ChangeCursor::start() here"
                ))
                .with("collection", self.name())
                .with("field", "cursor"));
            }
        }
        let page = self
            .stores()
            .index
            .feed(self.name(), cursor.cv, limit)
            .await
            .map_err(|e| e.with("collection", self.name()))?;
        Ok(ChangePage {
            changes: page.versions,
            cursor: self.cursor_at(page.next),
        })
    }

    /// A cursor of this collection positioned after cv `cv` (0: the beginning).
    pub fn cursor_at(&self, cv: u64) -> ChangeCursor {
        ChangeCursor {
            owner: Some((self.database_id().to_string(), self.name().to_string())),
            cv,
        }
    }

    /// The data a change's version stored (externalised properties as their refs; for a
    /// tombstone the content it deleted), checked against its checksum. An erased version
    /// (and an ERASE) has none: an empty object, so a consumer that reads the feed after an
    /// erase sees its entries without content instead of stopping at them.
    pub async fn change_data(&self, change: &VersionEntry) -> Result<Map<String, Value>> {
        if change.is_erased() {
            return Ok(Map::new());
        }
        self.load(&change.blob_key, &change.checksum)
            .await
            .map(|d| d.data)
            .map_err(|e| e.with("id", change.item_id).with("ov", change.ov))
    }
}
