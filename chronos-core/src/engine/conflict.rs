//! The conflict errors of writes, made in one place, each with its documented
//! [`ConflictCause`] so callers can tell a stale view from contention.

use crate::error::{ConflictCause, Error};
use crate::id::ItemId;

/// The caller's `expected_ov` is behind (or ahead of) the record.
pub(super) fn stale_expected(collection: &str, id: ItemId, expected: u64, actual: u64) -> Error {
    Error::conflict_because(
        ConflictCause::StaleExpectedOv,
        format!("expected ov {expected} but record {id} is at ov {actual}"),
    )
    .with("collection", collection)
    .with("id", id)
}

/// Another writer committed version `ov` of the record first.
pub(super) fn lost_race(collection: &str, id: ItemId, ov: u64) -> Error {
    Error::conflict_because(
        ConflictCause::LostRace,
        format!("record {id} was changed concurrently (ov {ov} is already taken)"),
    )
    .with("collection", collection)
    .with("id", id)
}

/// A write without `expected_ov` lost `attempts` races in a row.
pub(super) fn retries_exhausted(collection: &str, id: ItemId, attempts: usize) -> Error {
    Error::conflict_because(
        ConflictCause::RetriesExhausted,
        format!(
            "record {id} is changed by other writers faster than this write can commit: gave \
             up after {attempts} attempts"
        ),
    )
    .with("collection", collection)
    .with("id", id)
    .with("attempts", attempts)
}

/// Whether an error is a lost race the retry loop may retry.
pub(super) fn is_lost_race(e: &Error) -> bool {
    e.conflict_cause() == Some(ConflictCause::LostRace)
}
