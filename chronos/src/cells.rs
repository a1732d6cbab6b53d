//! A map of lazily created values, one creation per key: concurrent first uses of one key
//! create one value, while first uses of different keys never wait for each other (the
//! map's lock is held only to find a key's cell, never across the creation).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use tokio::sync::{Mutex, OnceCell};

/// Values by key, each created at most once (a failed creation is retried by the next use).
#[derive(Debug)]
pub(crate) struct Cells<K, V> {
    map: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for Cells<K, V> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Send + Sync, V: Clone + Send + Sync> Cells<K, V> {
    /// The value of `key`, created by `create` if no use created it yet.
    pub(crate) async fn get_or_try_init<E, F, Fut>(&self, key: K, create: F) -> Result<V, E>
    where
        E: Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<V, E>> + Send,
    {
        let cell = self.map.lock().await.entry(key).or_default().clone();
        cell.get_or_try_init(create).await.cloned()
    }

    /// The value of `key` if some use created it (never creates).
    pub(crate) async fn peek(&self, key: &K) -> Option<V> {
        let cell = self.map.lock().await.get(key).cloned()?;
        cell.get().cloned()
    }

    /// How many values exist.
    pub(crate) async fn len(&self) -> usize {
        self.map
            .lock()
            .await
            .values()
            .filter(|c| c.initialized())
            .count()
    }

    /// Removes every value and returns those that existed.
    pub(crate) async fn drain(&self) -> Vec<V> {
        self.map
            .lock()
            .await
            .drain()
            .filter_map(|(_, c)| c.get().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_slow_key_does_not_block_another() {
        let cells: Arc<Cells<&str, u32>> = Arc::default();
        let slow = {
            let cells = cells.clone();
            tokio::spawn(async move {
                cells
                    .get_or_try_init("slow", || async {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Ok::<_, ()>(1)
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let fast = tokio::time::timeout(
            Duration::from_secs(5),
            cells.get_or_try_init("fast", || async { Ok::<_, ()>(2) }),
        )
        .await
        .expect("the fast key waited for the slow one");
        assert_eq!(fast, Ok(2));
        assert_eq!(cells.len().await, 1);
        slow.abort();
    }

    #[tokio::test]
    async fn one_creation_per_key_and_failures_retry() {
        let cells: Arc<Cells<&str, u32>> = Arc::default();
        let made = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cells, made) = (cells.clone(), made.clone());
                tokio::spawn(async move {
                    cells
                        .get_or_try_init("k", || async {
                            made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, ()>(7)
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            cells.get_or_try_init("e", || async { Err("down") }).await,
            Err("down")
        );
        assert_eq!(
            cells
                .get_or_try_init("e", || async { Ok::<_, &str>(3) })
                .await,
            Ok(3)
        );
    }
}
