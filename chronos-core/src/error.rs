//! The one public error type of Chronos and its stable kinds.
//!
//! Every backend maps its driver errors into [`Error`]; callers branch on [`Error::kind`], never
//! on message text. Messages name the collection, record id and field involved, and never
//! contain secrets (backends redact URIs and keys before building an error).

use std::fmt;

/// Stable classification of an [`Error`]. New kinds may be added; match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The record, version, blob or document does not exist.
    NotFound,
    /// An optimistic-concurrency check failed (`expected_ov`, a CAS, a held lock).
    Conflict,
    /// A create-only write found the key already taken.
    AlreadyExists,
    /// The caller's input (payload, id, filter, option) is invalid.
    Validation,
    /// The configuration is invalid.
    InvalidConfig,
    /// The operation names a tenant or domain that the configuration does not have.
    TenantNotConfigured,
    /// A store could not be reached or failed transiently; retrying may succeed.
    Unavailable,
    /// The backend cannot do what was asked.
    Unsupported,
    /// A broken invariant or corrupted data (e.g. a checksum mismatch).
    Internal,
    /// What was asked for existed but was removed by pruning or retention (a change-feed
    /// cursor older than the versions the collection still keeps).
    Gone,
    /// The record was erased ([`Collection::erase`](crate::Collection::erase)): its
    /// versions still exist as content-free entries, their content is gone for good.
    Erased,
}

impl ErrorKind {
    /// A stable, upper-snake-case code for logs and scripts (e.g. `NOT_FOUND`).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::Conflict => "CONFLICT",
            ErrorKind::AlreadyExists => "ALREADY_EXISTS",
            ErrorKind::Validation => "VALIDATION_ERROR",
            ErrorKind::InvalidConfig => "INVALID_CONFIG",
            ErrorKind::TenantNotConfigured => "TENANT_NOT_CONFIGURED",
            ErrorKind::Unavailable => "UNAVAILABLE",
            ErrorKind::Unsupported => "UNSUPPORTED",
            ErrorKind::Internal => "INTERNAL",
            ErrorKind::Gone => "GONE",
            ErrorKind::Erased => "ERASED",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a write failed with [`ErrorKind::Conflict`] ([`Error::conflict_cause`]). Callers can
/// tell a stale view of their own (re-read, then decide) from contention (try again later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConflictCause {
    /// The caller's `expected_ov` is not the record's ov: someone wrote since the caller
    /// read it. Never retried by Chronos; nothing was written.
    StaleExpectedOv,
    /// Another writer committed the same version first while this write was in flight. A
    /// write without `expected_ov` retries this internally, so callers see it only with
    /// `expected_ov` (their view became stale during the write).
    LostRace,
    /// A write without `expected_ov` lost the race on a hot record more times than its
    /// retry budget allows ([`Error::context`] `attempts` says how many).
    RetriesExhausted,
}

impl ConflictCause {
    /// A stable snake-case code (shown as `cause=…` in the error's context).
    pub fn code(self) -> &'static str {
        match self {
            Self::StaleExpectedOv => "stale_expected_ov",
            Self::LostRace => "lost_race",
            Self::RetriesExhausted => "retries_exhausted",
        }
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error returned by every fallible Chronos operation.
///
/// Display shows `CODE: message (key=value, …)`, e.g.
/// `CONFLICT: expected ov 2 but record is at ov 3 (collection=users, id=65f…)`.
#[derive(thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    context: Vec<(&'static str, String)>,
    indeterminate: bool,
    conflict_cause: Option<ConflictCause>,
    #[source]
    source: Option<Source>,
}

/// Shorthand for `std::result::Result<T, chronos_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A source error kept as its text (see [`Error::replicate`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SourceText(String);

impl Error {
    /// A copy of this error for each of several operations that one failure decided (every
    /// commit of a batch whose transaction failed): kind, message, context and flags are
    /// kept, the source as its text.
    pub fn replicate(&self) -> Self {
        Self {
            kind: self.kind,
            message: self.message.clone(),
            context: self.context.clone(),
            indeterminate: self.indeterminate,
            conflict_cause: self.conflict_cause,
            source: self
                .source
                .as_ref()
                .map(|s| Box::new(SourceText(s.to_string())) as Source),
        }
    }

    /// A new error of `kind` with a human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            context: Vec::new(),
            indeterminate: false,
            conflict_cause: None,
            source: None,
        }
    }
    /// [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// [`ErrorKind::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// A [`ErrorKind::Conflict`] with its cause (also shown as `cause=…`).
    pub fn conflict_because(cause: ConflictCause, message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::Conflict, message).with("cause", cause.code());
        e.conflict_cause = Some(cause);
        e
    }
    /// [`ErrorKind::AlreadyExists`].
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }
    /// [`ErrorKind::Validation`].
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }
    /// [`ErrorKind::InvalidConfig`].
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message)
    }
    /// [`ErrorKind::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    /// [`ErrorKind::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }
    /// [`ErrorKind::Gone`].
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Gone, message)
    }
    /// [`ErrorKind::Erased`].
    pub fn erased(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Erased, message)
    }
    /// [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Adds a `key=value` pair (collection, id, field, key, …) shown after the message.
    pub fn with(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        if !self.context.iter().any(|(k, _)| *k == key) {
            self.context.push((key, value.to_string()));
        }
        self
    }
    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
    /// Marks the error as "outcome unknown": the write may or may not have been committed.
    pub fn set_indeterminate(mut self) -> Self {
        self.indeterminate = true;
        self
    }

    /// The stable kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The message without context.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The value of a context key, if set.
    pub fn context(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
    /// Why a conflict happened, for conflicts raised by the engine's writes (`None` for other
    /// kinds, and for conflicts of leases and document stores).
    pub fn conflict_cause(&self) -> Option<ConflictCause> {
        self.conflict_cause
    }
    /// True when retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Unavailable
    }
    /// True when a write failed in a way that leaves its outcome unknown (it may be committed).
    /// Read the record to find out; Chronos already tried once before returning this.
    pub fn is_indeterminate(&self) -> bool {
        self.indeterminate
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if !self.context.is_empty() {
            f.write_str(" (")?;
            for (i, (k, v)) in self.context.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{k}={v}")?;
            }
            f.write_str(")")?;
        }
        if self.indeterminate {
            f.write_str(" [outcome unknown]")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if !self.context.is_empty() {
            d.field("context", &self.context);
        }
        if let Some(s) = &self.source {
            d.field("source", &s.to_string());
        }
        d.finish()
    }
}

/// A URI with everything secret replaced by `***`: the password of the user info (all of
/// the user info when it has no `user:` part), and the values of query parameters that carry
/// secrets (`password`, `secret`, `token`, `key`, `credential`, `signature` in their name,
/// and `authMechanismProperties`). Used for every connection URI that reaches an error,
/// `Debug` or a log.
///
/// Passwords with unescaped `@`, `/`, `?`, `#` or `:` are still hidden: the user info ends
/// at the *last* `@`, so at worst more is hidden, never a secret shown.
pub fn redact_uri(uri: &str) -> String {
    let (scheme, rest) = match uri.split_once("://") {
        Some(parts) => parts,
        None => return redact_query(uri),
    };
    // The user info ends at the last '@' anywhere: a password may hold '@', '/', '?', '#'
    // or ':' unescaped, and hiding too much is the safe way to be wrong.
    match rest.rfind('@') {
        Some(at) => {
            let (user_info, after) = (&rest[..at], &rest[at + 1..]);
            let user = match user_info.split_once(':') {
                Some((user, _)) if !user.is_empty() && !user.contains(['/', '?', '#']) => {
                    format!("{user}:***")
                }
                _ => "***".to_string(),
            };
            format!("{scheme}://{user}@{}", redact_query(after))
        }
        None => format!("{scheme}://{}", redact_query(rest)),
    }
}

/// Redacts the values of secret-bearing `key=value` pairs in a query string (or anything
/// after the first `?`).
fn redact_query(s: &str) -> String {
    let Some((head, query)) = s.split_once('?') else {
        return s.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_name(k) => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{head}?{}", pairs.join("&"))
}

/// Whether a configuration field or URI parameter name holds a secret (case-insensitive):
/// passwords, secrets, tokens, keys, credentials, signatures, `authMechanismProperties`,
/// connection URIs and strings (which embed passwords).
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "key",
        "credential",
        "signature",
        "sig",
        "authmechanismproperties",
        "uri",
        "connectionstring",
    ]
    .iter()
    .any(|w| n.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_message_and_context() {
        let e = Error::conflict("expected ov 2 but record is at ov 3")
            .with("collection", "users")
            .with("id", "abc");
        assert_eq!(
            e.to_string(),
            "CONFLICT: expected ov 2 but record is at ov 3 (collection=users, id=abc)"
        );
        assert_eq!(e.context("id"), Some("abc"));
        assert!(!e.is_retryable());
        assert!(Error::unavailable("down").is_retryable());
    }

    #[test]
    fn uri_passwords_are_redacted() {
        assert_eq!(
            redact_uri("mongodb://u:secret@h:1/db"),
            "mongodb://u:***@h:1/db"
        );
        assert_eq!(redact_uri("mongodb://h:1"), "mongodb://h:1");
        assert_eq!(redact_uri("sqlite://data"), "sqlite://data");
        // A password with unescaped '@', ':' and '/' in it.
        let r = redact_uri("mongodb://admin:PW@SECRET:x/y#?z@host:27017/db?w=1");
        assert_eq!(r, "mongodb://admin:***@host:27017/db?w=1");
        // User info without a user part, and secrets in the query string.
        assert_eq!(redact_uri("http://TOKEN@host/x"), "http://***@host/x");
        let r = redact_uri(
            "mongodb://h/db?tlsCertificateKeyFilePassword=S1&authMechanismProperties=AWS_SESSION_TOKEN:S2&w=1",
        );
        assert!(
            !r.contains("S1") && !r.contains("S2") && r.ends_with("&w=1"),
            "{r}"
        );
        assert_eq!(redact_uri("no scheme?password=S"), "no scheme?password=***");
    }

    #[test]
    fn context_keys_are_not_duplicated() {
        let e = Error::not_found("x").with("id", "1").with("id", "2");
        assert_eq!(e.to_string(), "NOT_FOUND: x (id=1)");
    }
}
