//! Record ids: 12-byte, ObjectId-compatible identifiers shown as 24 lower-case hex digits.
//!
//! The layout matches MongoDB's ObjectId (4-byte big-endian seconds, 5 random bytes fixed per
//! process, 3-byte counter), so ids written by the TypeScript library and by Chronos are the
//! same kind of value and sort roughly by creation time.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The id of a versioned record (`_id` / `itemId`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemId([u8; 12]);

impl ItemId {
    /// A fresh id: unique within this process and, with overwhelming probability, across
    /// processes (40 random bits per process plus a counter per second).
    pub fn generate() -> Self {
        static PROCESS: OnceLock<([u8; 5], AtomicU32)> = OnceLock::new();
        let (rand5, counter) = PROCESS.get_or_init(|| {
            let mut seed = [0u8; 8];
            // A failing OS RNG is unrecoverable for id generation; fail loudly once.
            getrandom::getrandom(&mut seed).expect("operating system random source");
            let mut r = [0u8; 5];
            r.copy_from_slice(&seed[..5]);
            (
                r,
                AtomicU32::new(u32::from_le_bytes([seed[5], seed[6], seed[7], 0])),
            )
        });
        let secs = jiff::Timestamp::now().as_second() as u32;
        let n = counter.fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff;
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&secs.to_be_bytes());
        b[4..9].copy_from_slice(rand5);
        b[9..].copy_from_slice(&n.to_be_bytes()[1..]);
        ItemId(b)
    }

    /// Parses 24 hex digits (either case).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::validation(format!(
                "invalid record id '{}': expected 24 hexadecimal characters",
                truncate(s)
            ))
        };
        if s.len() != 24 {
            return Err(bad());
        }
        let mut b = [0u8; 12];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hi = hex_val(chunk[0]).ok_or_else(bad)?;
            let lo = hex_val(chunk[1]).ok_or_else(bad)?;
            b[i] = hi << 4 | lo;
        }
        Ok(ItemId(b))
    }

    /// The raw 12 bytes.
    pub fn bytes(&self) -> [u8; 12] {
        self.0
    }

    /// Builds an id from raw bytes (e.g. a BSON ObjectId).
    pub fn from_bytes(b: [u8; 12]) -> Self {
        ItemId(b)
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ItemId({self})")
    }
}

impl FromStr for ItemId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ItemId::parse(s)
    }
}

impl Serialize for ItemId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ItemId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ItemId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_and_is_unique() {
        let a = ItemId::generate();
        let b = ItemId::generate();
        assert_ne!(a, b);
        assert_eq!(ItemId::parse(&a.to_string()).unwrap(), a);
        assert_eq!(a.to_string().len(), 24);
        assert_eq!(
            ItemId::parse("507F1F77BCF86CD799439011")
                .unwrap()
                .to_string(),
            "507f1f77bcf86cd799439011"
        );
    }

    #[test]
    fn rejects_bad_ids_naming_them() {
        for bad in [
            "",
            "xyz",
            "507f1f77bcf86cd79943901g",
            "507f1f77bcf86cd7994390111",
        ] {
            let e = ItemId::parse(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Validation);
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
