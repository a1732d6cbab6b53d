//! [`RecentWrites`]: a [`BlobStore`] wrapper that remembers the blobs this process wrote
//! recently, so the next write of the same record (enrich, delete, restore read the current
//! payload) and reads right after a write skip a round trip to the blob store.
//!
//! Why it is safe: blob keys are immutable — a key is written once, create-only, and never
//! rewritten — so a remembered blob can only be stale by having been *deleted*. Deletes
//! through this wrapper forget the key; a delete by another process (the sweep of an orphan,
//! versioning-off pruning) concerns keys the index no longer references, which readers do not
//! ask for. The cached bytes are the stored bytes: readers still verify them against the
//! index's checksum, exactly as if they came from the store.
//!
//! Only writes fill the cache (reads of other data never evict it, and streaming a large
//! collection does not grow the process). One [`WriteCache`] can serve many stores (each
//! under its own namespace) within one budget of bytes, evicting the oldest first.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::blob::{BlobCapabilities, BlobMeta, BlobStore};
use crate::error::Result;

/// Default capacity of the facade's cache (shared by all its blob stores).
pub const DEFAULT_WRITE_CACHE_BYTES: usize = 16 << 20;

/// What one entry costs besides its bytes: the key twice (map and queue), the map slot and
/// the allocations' headers — counted so the budget bounds memory, not just payload bytes.
fn entry_cost(key: &str, bytes: &Bytes) -> usize {
    bytes.len() + 2 * key.len() + 96
}

#[derive(Default)]
struct State {
    /// Key → (bytes, generation of its insertion).
    map: HashMap<String, (Bytes, u64)>,
    /// Insertion order, for eviction; an entry whose generation no longer matches the map
    /// (forgotten, or remembered again later) is skipped.
    order: VecDeque<(String, u64)>,
    bytes: usize,
    generation: u64,
}

/// A budget of memory for recently written blobs, shared by any number of [`RecentWrites`].
pub struct WriteCache {
    capacity: usize,
    state: Mutex<State>,
}

impl fmt::Debug for WriteCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (blobs, bytes) = self.cached();
        f.debug_struct("WriteCache")
            .field("capacity", &self.capacity)
            .field("cached_blobs", &blobs)
            .field("cached_bytes", &bytes)
            .finish()
    }
}

impl WriteCache {
    /// A cache of at most `capacity` bytes.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity,
            state: Mutex::new(State::default()),
        })
    }

    /// How many blobs are remembered, and what they cost (bytes plus bookkeeping).
    pub fn cached(&self) -> (usize, usize) {
        let s = self.lock();
        (s.map.len(), s.bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, key: String, bytes: Bytes) {
        let cost = entry_cost(&key, &bytes);
        if cost > self.capacity / 4 {
            return; // one large blob must not flush everything else
        }
        let mut s = self.lock();
        s.generation += 1;
        let generation = s.generation;
        s.bytes += cost;
        if let Some((old, _)) = s.map.insert(key.clone(), (bytes, generation)) {
            s.bytes -= entry_cost(&key, &old);
        }
        s.order.push_back((key, generation));
        while s.bytes > self.capacity {
            let Some((k, g)) = s.order.pop_front() else {
                break;
            };
            if s.map.get(&k).is_some_and(|(_, current)| *current == g) {
                let (b, _) = s.map.remove(&k).expect("present");
                s.bytes -= entry_cost(&k, &b);
            }
        }
        // Keep the queue from growing without bound when keys are forgotten.
        if s.order.len() > 2 * s.map.len() + 64 {
            let State { map, order, .. } = &mut *s;
            order.retain(|(k, g)| map.get(k).is_some_and(|(_, current)| current == g));
        }
    }

    fn get(&self, key: &str) -> Option<Bytes> {
        self.lock().map.get(key).map(|(b, _)| b.clone())
    }

    fn forget(&self, key: &str) {
        let mut s = self.lock();
        if let Some((b, _)) = s.map.remove(key) {
            s.bytes -= entry_cost(key, &b);
        }
    }
}

/// Wraps a blob store; see the module docs.
pub struct RecentWrites {
    inner: Arc<dyn BlobStore>,
    cache: Arc<WriteCache>,
    /// Distinguishes this store's keys from other stores' in a shared cache.
    namespace: String,
}

impl fmt::Debug for RecentWrites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecentWrites")
            .field("inner", &self.inner)
            .field("cache", &self.cache)
            .finish()
    }
}

impl RecentWrites {
    /// Remembers blobs written to `inner` in `cache`; `namespace` must differ between the
    /// stores sharing one cache (their keys may coincide).
    pub fn new(
        inner: Arc<dyn BlobStore>,
        cache: Arc<WriteCache>,
        namespace: impl Into<String>,
    ) -> Self {
        Self {
            inner,
            cache,
            namespace: namespace.into(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}\u{0}{key}", self.namespace)
    }
}

#[async_trait]
impl BlobStore for RecentWrites {
    fn capabilities(&self) -> BlobCapabilities {
        self.inner.capabilities()
    }

    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<()> {
        // A compact copy: the caller's buffer may be larger than its contents.
        let copy = Bytes::copy_from_slice(&bytes);
        self.inner.put_if_absent(key, bytes).await?;
        self.cache.remember(self.key(key), copy);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        if let Some(b) = self.cache.get(&self.key(key)) {
            return Ok(b);
        }
        self.inner.get(key).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        // Forget first: a failed delete may still have removed the blob.
        self.cache.forget(&self.key(key));
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<BlobMeta>> {
        self.inner.list(prefix, after, limit).await
    }

    async fn list_all(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        self.inner.list_all(prefix).await
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String> {
        self.inner.presign_get(key, ttl).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// A blob store that counts gets, over a map.
    #[derive(Debug, Default)]
    struct Counting {
        blobs: Mutex<HashMap<String, Bytes>>,
        gets: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl BlobStore for Counting {
        fn capabilities(&self) -> BlobCapabilities {
            BlobCapabilities::default()
        }
        async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<()> {
            let mut m = self.blobs.lock().unwrap();
            if m.contains_key(key) {
                return Err(crate::Error::already_exists(key.to_string()));
            }
            m.insert(key.into(), bytes);
            Ok(())
        }
        async fn get(&self, key: &str) -> Result<Bytes> {
            self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.blobs
                .lock()
                .unwrap()
                .get(key)
                .cloned()
                .ok_or_else(|| crate::Error::not_found(key.to_string()))
        }
        async fn delete(&self, key: &str) -> Result<()> {
            self.blobs.lock().unwrap().remove(key);
            Ok(())
        }
        async fn list(&self, _: &str, _: Option<&str>, _: usize) -> Result<Vec<BlobMeta>> {
            Ok(Vec::new())
        }
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn remembers_writes_forgets_deletes_and_stays_bounded() {
        run(async {
            let inner = Arc::new(Counting::default());
            // Room for five 20-byte blobs with their bookkeeping.
            let cache =
                WriteCache::new(5 * entry_cost("a\u{0}k0", &Bytes::from(vec![0u8; 20])) + 10);
            let c = RecentWrites::new(inner.clone(), cache.clone(), "a");
            // Another store sharing the cache: same keys, separate entries.
            let other_inner = Arc::new(Counting::default());
            let other = RecentWrites::new(other_inner.clone(), cache.clone(), "b");
            let gets = || inner.gets.load(std::sync::atomic::Ordering::SeqCst);
            c.put_if_absent("a", Bytes::from(vec![1u8; 20]))
                .await
                .unwrap();
            assert_eq!(c.get("a").await.unwrap().len(), 20);
            assert_eq!(gets(), 0, "served from memory");
            // A failed put remembers nothing new.
            let e = c
                .put_if_absent("a", Bytes::from_static(b"x"))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AlreadyExists);
            assert_eq!(c.get("a").await.unwrap().len(), 20);
            // Deleting forgets: the next get asks the store (and finds nothing).
            c.delete("a").await.unwrap();
            assert_eq!(c.get("a").await.unwrap_err().kind(), ErrorKind::NotFound);
            assert_eq!(gets(), 1);
            // Bounded: oldest evicted first; blobs over a quarter of the capacity skipped.
            for i in 0..10 {
                c.put_if_absent(&format!("k{i}"), Bytes::from(vec![0u8; 20]))
                    .await
                    .unwrap();
            }
            let (n, bytes) = cache.cached();
            assert!(
                bytes <= cache.capacity && n == 5,
                "{n} blobs, {bytes} bytes"
            );
            c.get("k9").await.unwrap();
            assert_eq!(gets(), 1);
            c.get("k0").await.unwrap();
            assert_eq!(gets(), 2, "k0 was evicted");
            c.put_if_absent("big", Bytes::from(vec![0u8; 26]))
                .await
                .unwrap();
            assert_eq!(cache.cached().0, 5);
            other
                .put_if_absent("k9", Bytes::from_static(b"other"))
                .await
                .unwrap();
            assert_eq!(
                c.get("k9").await.unwrap().len(),
                20,
                "namespaces keep stores apart"
            );
            assert_eq!(other.get("k9").await.unwrap(), Bytes::from_static(b"other"));
            // Forgetting many keys does not grow the eviction queue without bound.
            for i in 0..1000 {
                let k = format!("t{i}");
                c.put_if_absent(&k, Bytes::from_static(b"t")).await.unwrap();
                c.delete(&k).await.unwrap();
            }
            assert!(
                cache.lock().order.len() < 200,
                "{}",
                cache.lock().order.len()
            );
        });
    }
}
