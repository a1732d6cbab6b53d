//! Instants as Chronos stores them: UTC, millisecond precision, ISO-8601 text.
//!
//! Millisecond precision matches MongoDB dates and JavaScript, so every backend stores exactly
//! the value the engine computed and `get_as_of` comparisons agree everywhere.

use crate::error::{Error, Result};

pub use jiff::Timestamp;

/// The current instant truncated to milliseconds.
pub fn now_ms() -> Timestamp {
    truncate_ms(Timestamp::now())
}

/// Drops sub-millisecond precision.
pub fn truncate_ms(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond()).expect("a truncated timestamp is in range")
}

/// One millisecond after `t`.
pub fn next_ms(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond() + 1).expect("timestamp in range")
}

/// Parses an ISO-8601 / RFC 3339 instant (`2024-01-01T00:00:00Z`, offsets allowed).
pub fn parse_instant(s: &str) -> Result<Timestamp> {
    s.parse::<Timestamp>().map(truncate_ms).map_err(|e| {
        Error::validation(format!(
            "invalid instant '{s}': expected ISO-8601 like 2024-01-01T00:00:00Z ({e})"
        ))
    })
}

/// Parses a positive ISO-8601 duration (`PT1H`, `P1D`, `P1M`, `P1Y2M3DT4H`) with jiff:
/// calendar units stay calendar units (a month is not 30 days).
pub fn parse_duration(text: &str) -> Result<jiff::Span> {
    let bad = |why: String| {
        Error::validation(format!("'{text}' is not a usable ISO-8601 duration: {why}"))
    };
    if !text.starts_with(['P', 'p']) {
        return Err(bad("it must start with P (PT1H, P1D, P1M …)".into()));
    }
    let span: jiff::Span = text.parse().map_err(|e| bad(format!("{e}")))?;
    if span.is_negative() || span.is_zero() {
        return Err(bad("it must be positive".into()));
    }
    Ok(span)
}

/// Formats as ISO-8601 with millisecond precision: `2024-01-01T00:00:00.000Z`.
pub fn format_instant(t: Timestamp) -> String {
    format!("{:.3}", t)
}

/// Serde for instants as [`format_instant`]'s text (`#[serde(with = "…::serde_instant")]`):
/// what the non-versioned databases store, so text order is time order.
pub mod serde_instant {
    use super::{format_instant, parse_instant, Timestamp};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `t` as `2024-01-01T00:00:00.000Z`.
    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_instant(*t))
    }
    /// Reads an ISO-8601 instant.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        parse_instant(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_millis() {
        let t = parse_instant("2024-01-01T00:00:00.123456Z").unwrap();
        assert_eq!(format_instant(t), "2024-01-01T00:00:00.123Z");
        assert_eq!(format_instant(next_ms(t)), "2024-01-01T00:00:00.124Z");
        assert_eq!(
            parse_instant("2024-01-01T02:00:00+02:00")
                .unwrap()
                .as_second(),
            1704067200
        );
        let e = parse_instant("yesterday").unwrap_err();
        assert!(e.to_string().contains("yesterday"));
    }
}
