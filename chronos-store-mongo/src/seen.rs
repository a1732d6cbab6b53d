//! The collections this process has done a one-time step for (index preparation, the sort
//! keys' backfill): asked before the step, recorded after it succeeded.

use std::collections::HashSet;
use std::sync::Mutex;

/// A set of collection names, shared by the store's tasks.
#[derive(Debug, Default)]
pub(crate) struct Seen(Mutex<HashSet<String>>);

impl Seen {
    /// Whether the step is done for `c`.
    pub(crate) fn contains(&self, c: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).contains(c)
    }

    /// Records that the step is done for `c`.
    pub(crate) fn insert(&self, c: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.to_string());
    }
}
