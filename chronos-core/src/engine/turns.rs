//! Turns per record: writers of one record inside one process wait for each other, first
//! come first served, instead of racing each other at the store.
//!
//! Without them, n writers of one hot record each read the head, all but one lose the commit
//! race, and every loser pays its round trips again (16 writers on MongoDB collapsed to a
//! seventh of one writer's speed). With them, a write reads the head only when the previous
//! in-process write of that record is done, so it almost always wins; writers in other
//! processes are still handled by the lost-race retry (`commit.rs`).
//!
//! The queue is a map from record to the waiters behind the current holder, each a oneshot
//! channel. Dropping a [`Turn`] hands the turn to the first waiter still waiting; a waiter
//! whose future is dropped (a cancelled write) either is skipped or, if the turn had already
//! been handed to it, passes it on — both under the map's lock, so a turn is never lost.
//! Entries are removed when the last holder leaves, so the map holds only busy records.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures::channel::oneshot;

use crate::id::ItemId;

type Queues = HashMap<ItemId, VecDeque<oneshot::Sender<()>>>;

/// The turn queues of one collection.
#[derive(Debug, Default)]
pub(super) struct Turns {
    queues: Mutex<Queues>,
}

/// The right to write one record; the next waiter gets it when this is dropped.
#[derive(Debug)]
pub(super) struct Turn<'a> {
    turns: &'a Turns,
    id: ItemId,
}

/// A waiter's place in the queue; dropped unfinished, it gives up its place (or passes on a
/// turn it was handed but never saw).
struct Waiting<'a> {
    turns: &'a Turns,
    id: ItemId,
    rx: Option<oneshot::Receiver<()>>,
}

impl Turns {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        // Nothing panics while holding the lock; a poisoned map is still consistent.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until every earlier taker of `id`'s turn has dropped theirs.
    pub(super) async fn take(&self, id: ItemId) -> Turn<'_> {
        loop {
            let rx = {
                let mut q = self.lock();
                match q.get_mut(&id) {
                    None => {
                        q.insert(id, VecDeque::new());
                        return Turn { turns: self, id };
                    }
                    Some(waiters) => {
                        let (tx, rx) = oneshot::channel();
                        waiters.push_back(tx);
                        rx
                    }
                }
            };
            let mut waiting = Waiting {
                turns: self,
                id,
                rx: Some(rx),
            };
            let handed = waiting.rx.as_mut().expect("set above").await;
            // No await between receiving the turn and owning it: a cancellation cannot land
            // in between.
            waiting.rx = None;
            if handed.is_ok() {
                return Turn { turns: self, id };
            }
            // The sender was dropped without handing over (only if the holder's drop could
            // not run normally): queue again rather than write without the turn.
        }
    }

    /// Hands `id`'s turn to the first waiter still waiting, or frees the record.
    fn pass(q: &mut Queues, id: ItemId) {
        let Some(waiters) = q.get_mut(&id) else {
            return;
        };
        while let Some(tx) = waiters.pop_front() {
            if tx.send(()).is_ok() {
                return;
            }
        }
        q.remove(&id);
    }

    /// Records whose turn someone holds or waits for (tests).
    #[cfg(test)]
    fn busy(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        Turns::pass(&mut self.turns.lock(), self.id);
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        let mut q = self.turns.lock();
        // Under the lock no turn can be handed to this waiter any more: either it already was
        // (then pass it on) or the next hand-over finds the channel closed and skips it.
        if let Ok(Some(())) = rx.try_recv() {
            Turns::pass(&mut q, self.id);
        }
        drop(rx);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_holder_at_a_time_in_arrival_order() {
        let turns = Arc::new(Turns::default());
        let id = ItemId::generate();
        let first = turns.take(id).await;
        let inside = Arc::new(AtomicUsize::new(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (t, inside, order) = (turns.clone(), inside.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _t = t.take(id).await;
                assert_eq!(
                    inside.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two holders at once"
                );
                order.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(1)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
            // Let task i queue before task i + 1.
            while turns.lock()[&id].len() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..16).collect::<Vec<_>>());
        assert_eq!(turns.busy(), 0, "a record nobody writes stays in the map");
    }

    #[tokio::test]
    async fn records_do_not_wait_for_each_other() {
        let turns = Turns::default();
        let _a = turns.take(ItemId::generate()).await;
        let b = tokio::time::timeout(Duration::from_secs(5), turns.take(ItemId::generate()));
        assert!(b.await.is_ok(), "another record's writer waited");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_cancelled_waiter_never_loses_the_turn() {
        // Waiters are dropped at random moments, some just as the turn reaches them; every
        // later taker must still get it.
        let turns = Arc::new(Turns::default());
        let id = ItemId::generate();
        for round in 0..200u64 {
            let holder = turns.take(id).await;
            let mut waiters = Vec::new();
            for _ in 0..4 {
                let turns = turns.clone();
                waiters.push(tokio::spawn(async move {
                    let _t = turns.take(id).await;
                }));
            }
            tokio::task::yield_now().await;
            drop(holder);
            for (i, w) in waiters.into_iter().enumerate() {
                if (round + i as u64) % 2 == 0 {
                    w.abort();
                }
                let done = tokio::time::timeout(Duration::from_secs(5), w).await;
                assert!(done.is_ok(), "round {round}: waiter {i} never got the turn");
            }
            let last = tokio::time::timeout(Duration::from_secs(5), turns.take(id)).await;
            assert!(last.is_ok(), "round {round}: the turn was lost");
        }
        assert_eq!(turns.busy(), 0);
    }
}
