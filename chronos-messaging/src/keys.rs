//! Document ids, list keys and input checks.
//!
//! Every id is built from its record's natural key — `(tenant, namespace, key)`,
//! `(tenant, topic, msgId)`, … — so the store's create-only insert is what makes saves
//! idempotent and appends unique, on every backend. Parts are joined with `|` after escaping
//! `%` and `|`, so distinct keys never share an id.

use chronos_core::time::format_instant;
use chronos_core::Timestamp;

pub use chronos_core::docs::MAX_KEY_PART_BYTES as MAX_NAME_BYTES;
pub(crate) use chronos_core::{
    check_key_part as check_name, doc_key as id, escape_key_part as escape,
};

/// A version number as fixed-width text, so ids order like the numbers.
pub(crate) fn version(v: u64) -> String {
    format!("{v:020}")
}

/// The list key of a timed record: the instant's fixed-width text then the escaped tie
/// breakers. Its text order is the page order (time, then the tie breakers), so one
/// comparison on it is a keyset cursor. The parts end with the topic, which makes the key
/// unique within a tenant (retention pages across topics).
pub(crate) fn list_key(at: Timestamp, parts: &[&str]) -> String {
    id(&format_instant(at), parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_distinct_keys_differ() {
        assert_ne!(id("M", &["a|b", "c"]), id("M", &["a", "b|c"]));
        assert_ne!(id("M", &["a%7Cb"]), id("M", &["a|b"]));
        assert_eq!(id("M", &["t", "x"]), "M|t|x");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("topic", "payments").is_ok());
        let e = check_name("topic", "").unwrap_err();
        assert!(e.to_string().contains("topic must not be empty"), "{e}");
        assert!(check_name("msgId", "a\nb").is_err());
        assert!(check_name("key", &"k".repeat(513)).is_err());
    }

    #[test]
    fn versions_order_as_text() {
        assert!(version(9) < version(10));
    }
}
