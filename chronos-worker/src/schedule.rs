//! Periods: UTC-aligned windows of an ISO-8601 duration (`PT1H`, `P1D`, `P1M`,
//! `P1Y2M3DT4H`), parsed by jiff — calendar months and years included.
//!
//! Period `k` of a duration `d` is `[origin + k·d, origin + (k+1)·d)` with the origin at
//! 1970-01-01T00:00:00Z, computed in UTC civil time: `PT1H` periods start on the hour, `P1D`
//! at midnight, `P1M` on the first of the month (February has 28 or 29 days), and the periods
//! of any duration tile time with no gap and no overlap. Durations of whole weeks only
//! (`P1W`, `P2W`) count from Monday 1969-12-29 instead, so weeks start on Monday (ISO).

use chronos_core::{Error, Result, Timestamp};
use jiff::tz::TimeZone;
use jiff::Span;
use serde::Serialize;

/// A half-open window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Period {
    /// Index since the origin.
    pub index: i64,
    /// Inclusive start.
    pub start: Timestamp,
    /// Exclusive end.
    pub end: Timestamp,
}

impl Period {
    /// Whether `t` is inside.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// An ISO-8601 duration that periods are cut from.
#[derive(Debug, Clone)]
pub struct Every {
    span: Span,
    text: String,
    /// Seconds of an average period (for estimates only).
    approx_secs: f64,
    /// Where period 0 starts.
    origin: Timestamp,
}

/// Equal when written the same way (`P1D` and `PT24H` differ: they are different spans).
impl PartialEq for Every {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// Monday before the epoch: the origin of week periods.
const MONDAY_ORIGIN_SECS: i64 = -3 * 86_400;

impl Every {
    /// Parses an ISO-8601 duration; it must be positive and at least one second.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::validation(format!("'{text}' is not a usable ISO-8601 duration: {why}"))
        };
        let span = chronos_core::time::parse_duration(text)?;
        let weeks_only = span.get_weeks() != 0
            && span.get_years() == 0
            && span.get_months() == 0
            && span.get_days() == 0
            && span.get_hours() == 0
            && span.get_minutes() == 0
            && span.get_seconds() == 0
            && span.get_milliseconds() == 0
            && span.get_microseconds() == 0
            && span.get_nanoseconds() == 0;
        let origin = if weeks_only {
            Timestamp::from_second(MONDAY_ORIGIN_SECS).expect("in range")
        } else {
            Timestamp::UNIX_EPOCH
        };
        let o = origin.to_zoned(TimeZone::UTC);
        let thousand = span
            .checked_mul(1000)
            .and_then(|s| o.checked_add(s))
            .map_err(|e| bad(format!("{e}")))?;
        let approx_secs = thousand
            .timestamp()
            .duration_since(o.timestamp())
            .as_secs_f64()
            / 1000.0;
        if approx_secs < 1.0 {
            return Err(bad("periods shorter than a second are not supported".into()));
        }
        Ok(Self {
            span,
            text: text.to_string(),
            approx_secs,
            origin,
        })
    }

    /// The duration as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Period `k`.
    pub fn period(&self, k: i64) -> Result<Period> {
        let at = |k: i64| -> Result<Timestamp> {
            self.span
                .checked_mul(k)
                .and_then(|s| self.origin.to_zoned(TimeZone::UTC).checked_add(s))
                .map(|z| z.timestamp())
                .map_err(|e| {
                    Error::validation(format!("period {k} of {} is out of range: {e}", self.text))
                })
        };
        Ok(Period {
            index: k,
            start: at(k)?,
            end: at(k + 1)?,
        })
    }

    /// The period that contains `t`.
    pub fn period_containing(&self, t: Timestamp) -> Result<Period> {
        let secs = t.duration_since(self.origin).as_secs_f64();
        let mut k = (secs / self.approx_secs).floor() as i64;
        for _ in 0..10_000 {
            let p = self.period(k)?;
            if t < p.start {
                k -= 1;
            } else if t >= p.end {
                k += 1;
            } else {
                return Ok(p);
            }
        }
        Err(Error::internal(format!(
            "no period of {} found for {t}",
            self.text
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn periods_are_calendar_aligned() {
        let m = Every::parse("P1M").unwrap();
        let feb = m.period_containing(t("2024-02-29T12:00:00Z")).unwrap();
        assert_eq!(
            (feb.start, feb.end),
            (t("2024-02-01T00:00:00Z"), t("2024-03-01T00:00:00Z"))
        );
        let jan31 = m.period_containing(t("2025-01-31T23:59:59Z")).unwrap();
        assert_eq!(jan31.end, t("2025-02-01T00:00:00Z"));
        assert_eq!(
            m.period(jan31.index + 1).unwrap().end,
            t("2025-03-01T00:00:00Z"),
            "28 days in 2025"
        );
        let d = Every::parse("P1D")
            .unwrap()
            .period_containing(t("2024-02-29T23:00:00Z"))
            .unwrap();
        assert_eq!(
            (d.start, d.end),
            (t("2024-02-29T00:00:00Z"), t("2024-03-01T00:00:00Z"))
        );
        let h = Every::parse("PT1H")
            .unwrap()
            .period_containing(t("2026-12-02T14:59:59.999Z"))
            .unwrap();
        assert_eq!(h.start, t("2026-12-02T14:00:00Z"));
    }

    #[test]
    fn weeks_start_on_monday() {
        let w = Every::parse("P1W").unwrap();
        // 2026-12-02 is a Wednesday.
        let p = w.period_containing(t("2026-12-02T14:00:00Z")).unwrap();
        assert_eq!(
            (p.start, p.end),
            (t("2026-11-30T00:00:00Z"), t("2026-12-07T00:00:00Z"))
        );
        // Mixed spans keep the epoch origin.
        let d = Every::parse("P7D").unwrap();
        assert_eq!(
            d.period_containing(t("2026-12-02T14:00:00Z"))
                .unwrap()
                .start,
            t("2026-11-26T00:00:00Z"),
            "a Thursday, like the epoch"
        );
    }

    #[test]
    fn any_duration_tiles_time() {
        for text in ["PT15M", "P1Y2M3DT4H", "P1W", "PT90M", "P3M"] {
            let e = Every::parse(text).unwrap();
            for probe in [
                "1999-12-31T23:59:59Z",
                "2024-02-29T00:00:00Z",
                "2026-12-02T14:19:11Z",
            ] {
                let p = e.period_containing(t(probe)).unwrap();
                assert!(p.contains(t(probe)), "{text} {probe}");
                assert_eq!(
                    e.period(p.index + 1).unwrap().start,
                    p.end,
                    "{text}: no gap, no overlap"
                );
            }
        }
    }

    #[test]
    fn bad_durations_are_refused() {
        for bad in ["", "1h", "P", "PT0S", "-P1D", "PT0.5S", "every day"] {
            let e = Every::parse(bad).unwrap_err();
            assert!(e.to_string().contains("ISO-8601"), "{bad}: {e}");
        }
    }
}
