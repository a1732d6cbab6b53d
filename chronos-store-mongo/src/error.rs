//! Mapping driver errors to Chronos errors. Messages never include the connection URI.

use chronos_core::{Error, ErrorKind};
use mongodb::error::{ErrorKind as MKind, WriteFailure};

const DUPLICATE_KEY: i32 = 11000;

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
    Error::new(kind, format!("MongoDB {op} failed: {e}"))
}
