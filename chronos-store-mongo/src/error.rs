//! Mapping driver errors to Chronos errors. Messages never include the connection URI.

use chronos_core::{Error, ErrorKind};
use mongodb::error::{ErrorKind as MKind, WriteFailure};

pub(crate) const DUPLICATE_KEY: i32 = 11000;

pub(crate) fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        MKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        MKind::Command(c) => c.code == DUPLICATE_KEY,
        MKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|ws| ws.iter().any(|w| w.code == DUPLICATE_KEY)),
        _ => false,
    }
}

pub(crate) fn is_transient(e: &mongodb::error::Error) -> bool {
    e.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR)
}

pub(crate) fn is_unknown_commit(e: &mongodb::error::Error) -> bool {
    e.contains_label(mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT)
}

/// Network, selection and transient errors are retryable; duplicate keys are `AlreadyExists`.
pub(crate) fn map_err(e: mongodb::error::Error, op: &str) -> Error {
    let kind = if is_duplicate_key(&e) {
        ErrorKind::AlreadyExists
    } else {
        match e.kind.as_ref() {
            MKind::Io(_) | MKind::ConnectionPoolCleared { .. } | MKind::ServerSelection { .. } => {
                ErrorKind::Unavailable
            }
            MKind::InvalidArgument { .. } => ErrorKind::Validation,
            MKind::Authentication { .. } => ErrorKind::InvalidConfig,
            _ if is_transient(&e) || e.contains_label("RetryableWriteError") => {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Internal,
        }
    };
    Error::new(kind, format!("MongoDB {op} failed: {}", describe(&e)))
}

/// What went wrong, without the driver's appendix of labels and raw server-response bytes
/// (the `Display` of its error type prints a kilobyte of hex): the server's code, name and
/// message, or the kind of failure.
fn describe(e: &mongodb::error::Error) -> String {
    match e.kind.as_ref() {
        MKind::Command(c) => format!("error {} ({}): {}", c.code, c.code_name, c.message),
        MKind::Write(WriteFailure::WriteError(w)) => {
            format!("write error {}: {}", w.code, w.message)
        }
        MKind::Write(WriteFailure::WriteConcernError(w)) => {
            format!(
                "write concern error {} ({}): {}",
                w.code, w.code_name, w.message
            )
        }
        MKind::Authentication { .. } => "authentication failed".to_string(),
        other => other.to_string(),
    }
}
