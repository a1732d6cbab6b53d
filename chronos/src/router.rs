//! Key routing over several connections: rendezvous (highest random weight) and jump
//! consistent hashing, on a hash that is stable across processes and releases (SHA-256).
//!
//! Where it applies: a key (chosen by `routing.chooseKey` from a route: tenant, domain,
//! collection or database name) picks one of several candidate connections. Today every
//! database in the configuration names exactly one `dbConnRef`, so no route has several
//! candidates and `routing` changes nothing yet (it is reported by `unsupported_options`);
//! the algorithms are public for callers that shard their own keys.

use sha2::{Digest, Sha256};

use crate::config::{HashAlgo, RoutingConfig};
use crate::route::Route;

fn h64(parts: &[&str]) -> u64 {
    let mut hasher = Sha256::new();
    for p in parts {
        hasher.update(p.as_bytes());
        hasher.update([0u8]);
    }
    let d = hasher.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// Rendezvous hashing: the candidate with the highest `hash(candidate, key)`. Adding a
/// candidate moves only the keys it now wins (about 1/n of them).
pub fn rendezvous<'a, S: AsRef<str>>(key: &str, candidates: &'a [S]) -> Option<&'a S> {
    candidates
        .iter()
        .max_by_key(|c| (h64(&[c.as_ref(), key]), c.as_ref().to_string()))
}

/// Jump consistent hashing (Lamping & Veach): a bucket in `0..buckets` for `key`. Growing
/// from n to n+1 buckets moves about 1/(n+1) of the keys, all to the new bucket.
pub fn jump(key: &str, buckets: u32) -> u32 {
    let mut k = h64(&[key]);
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < buckets as i64 {
        b = j;
        k = k.wrapping_mul(2862933555777941757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((k >> 33) + 1) as f64)) as i64;
    }
    b.max(0) as u32
}

/// The configured router.
#[derive(Debug, Clone, Default)]
pub struct Router {
    algo: HashAlgo,
    choose_key: Option<String>,
}

impl Router {
    /// From `routing` (defaults: rendezvous on the tenant id).
    pub fn new(cfg: Option<&RoutingConfig>) -> Self {
        Self {
            algo: cfg.and_then(|c| c.hash_algo).unwrap_or_default(),
            choose_key: cfg.and_then(|c| c.choose_key.clone()),
        }
    }

    /// The routing key of a route.
    pub fn key(&self, route: &Route) -> String {
        match self.choose_key.as_deref() {
            Some("domain") => route.domain.clone().unwrap_or_default(),
            Some("collection") => route.collection.clone(),
            Some("dbName") | Some("tenantId") | None => route
                .tenant_id
                .clone()
                .or_else(|| route.domain.clone())
                .unwrap_or_default(),
            Some(other) => other.to_string(),
        }
    }

    /// The candidate a key maps to.
    pub fn choose<'a, S: AsRef<str>>(&self, key: &str, candidates: &'a [S]) -> Option<&'a S> {
        match self.algo {
            HashAlgo::Rendezvous => rendezvous(key, candidates),
            HashAlgo::Jump if candidates.is_empty() => None,
            HashAlgo::Jump => candidates.get(jump(key, candidates.len() as u32) as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<String> {
        (0..20_000).map(|i| format!("tenant-{i}")).collect()
    }

    #[test]
    fn rendezvous_moves_about_one_nth_when_a_connection_is_added() {
        let four: Vec<String> = (1..=4).map(|i| format!("mongo-{i}")).collect();
        let five: Vec<String> = (1..=5).map(|i| format!("mongo-{i}")).collect();
        let keys = keys();
        let mut moved = 0;
        let mut per_node = std::collections::HashMap::new();
        for k in &keys {
            let a = rendezvous(k, &four).unwrap();
            let b = rendezvous(k, &five).unwrap();
            *per_node.entry(b.clone()).or_insert(0usize) += 1;
            if a != b {
                moved += 1;
                assert_eq!(
                    b, "mongo-5",
                    "a moved key only ever moves to the new connection"
                );
            }
        }
        let frac = moved as f64 / keys.len() as f64;
        assert!(
            (0.17..0.23).contains(&frac),
            "moved {frac:.3} of keys, expected about 1/5"
        );
        for (node, n) in per_node {
            let share = n as f64 / keys.len() as f64;
            assert!((0.17..0.23).contains(&share), "{node} got {share:.3}");
        }
    }

    #[test]
    fn jump_moves_about_one_nth_and_only_to_the_new_bucket() {
        let keys = keys();
        let mut moved = 0;
        for k in &keys {
            let (a, b) = (jump(k, 4), jump(k, 5));
            assert!(a < 4 && b < 5);
            if a != b {
                moved += 1;
                assert_eq!(b, 4);
            }
        }
        let frac = moved as f64 / keys.len() as f64;
        assert!((0.17..0.23).contains(&frac), "moved {frac:.3}");
        assert_eq!(jump("x", 1), 0);
    }

    #[test]
    fn router_uses_the_configured_key_and_algorithm() {
        let cfg = RoutingConfig {
            hash_algo: Some(HashAlgo::Jump),
            choose_key: Some("collection".into()),
        };
        let r = Router::new(Some(&cfg));
        let route = Route::runtime("t1", "orders");
        assert_eq!(r.key(&route), "orders");
        let nodes = ["a", "b", "c"];
        assert_eq!(
            r.choose("orders", &nodes),
            Some(&nodes[jump("orders", 3) as usize])
        );
        assert_eq!(Router::new(None).key(&route), "t1");
        assert_eq!(
            Router::new(None).choose("t1", &nodes),
            rendezvous("t1", &nodes)
        );
        assert!(Router::new(None).choose::<&str>("t1", &[]).is_none());
    }
}
