//! The in-memory [`Lock`]: leases with expiry, released or renewed only by their holder.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chronos_core::time::now_ms;
use chronos_core::{ItemId, Lease, Lock, Result};

use crate::lock;

/// The in-memory [`Lock`].
#[derive(Debug, Default)]
pub struct MemoryLock {
    leases: Mutex<HashMap<String, Lease>>,
}

impl MemoryLock {
    /// No leases held.
    pub fn new() -> Self {
        Self::default()
    }
}

/// A random token for leases.
fn token() -> String {
    ItemId::generate().to_string()
}

#[async_trait]
impl Lock for MemoryLock {
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>> {
        let now = now_ms();
        let mut g = lock(&self.leases);
        if g.get(key).is_some_and(|l| l.expires_at > now) {
            return Ok(None);
        }
        let expires_at = chronos_core::lock::lease_expiry(now, ttl)?;
        let lease = Lease {
            key: key.to_string(),
            token: token(),
            expires_at,
        };
        g.insert(key.to_string(), lease.clone());
        Ok(Some(lease))
    }

    async fn release(&self, lease: &Lease) -> Result<bool> {
        let mut g = lock(&self.leases);
        if g.get(&lease.key).is_some_and(|l| l.token == lease.token) {
            g.remove(&lease.key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>> {
        let now = now_ms();
        let mut g = lock(&self.leases);
        match g.get_mut(&lease.key) {
            Some(l) if l.token == lease.token && l.expires_at > now => {
                l.expires_at = chronos_core::lock::lease_expiry(now, ttl)?;
                Ok(Some(l.clone()))
            }
            _ => Ok(None),
        }
    }
}
