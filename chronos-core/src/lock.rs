//! Leases: time-bounded, store-backed mutual exclusion across processes.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::time::Timestamp;

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What is locked.
    pub key: String,
    /// Unique per acquisition; only its holder can release it.
    pub token: String,
    /// When the lease lapses unless released before.
    pub expires_at: Timestamp,
}

/// When a lease taken at `now` for `ttl` lapses; a `ttl` beyond the representable range is a
/// validation error.
pub fn lease_expiry(now: Timestamp, ttl: Duration) -> crate::Result<Timestamp> {
    let ms = i64::try_from(ttl.as_millis())
        .ok()
        .and_then(|t| now.as_millisecond().checked_add(t));
    ms.and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .ok_or_else(|| crate::Error::validation(format!("lease ttl out of range: {ttl:?}")))
}

/// Store-backed leases (`C_locks` in MongoDB).
///
/// # Contract (checked by the conformance suite on every backend)
/// - At most one unexpired lease per key exists at any time, across processes.
/// - [`Lock::try_acquire`] returns `Ok(None)` while another unexpired lease holds the key; an
///   expired lease may be taken over.
/// - [`Lock::release`] removes the lease only if `lease.token` still holds it and returns
///   whether it did; releasing twice, or after a takeover, returns `false`.
/// - [`Lock::renew`] extends a lease that `lease.token` still holds and that has not expired
///   to `now + ttl`, returning the renewed lease; `Ok(None)` when it was lost (expired,
///   released or taken over) — the holder must then stop what the lease protected.
#[async_trait]
pub trait Lock: Send + Sync + Debug {
    /// Takes the key for `ttl` if it is free or its lease has expired.
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>>;

    /// Gives the lease back.
    async fn release(&self, lease: &Lease) -> Result<bool>;

    /// Extends a held lease (a heartbeat), so long work can hold a short lease that lapses
    /// soon after its holder dies. See the trait contract.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>>;
}
