//! What the children said: every operation begun, and how each ended (if it did).

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use chronos_core::ItemId;

use crate::workload::Kind;

/// How an operation ended, as far as the child got to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Begun, and the child died before the call returned: it may or may not have committed.
    InFlight,
    /// Acknowledged with this version: it must be there.
    Acked { ov: u64, cv: u64 },
    /// Queued in the fallback spool with this operation id: once the spool is drained it must
    /// be there exactly once (unless it became a dead letter).
    Queued(String),
    /// Failed with an error code. A definite failure (not found, conflict, validation …)
    /// must have left no version; `UNAVAILABLE` and `INTERNAL` may hide a commit.
    Failed(String),
}

impl Outcome {
    /// Whether the operation must be in the store (acknowledged, or queued in the spool).
    pub(crate) fn must_be_there(&self) -> bool {
        matches!(self, Outcome::Acked { .. } | Outcome::Queued(_))
    }

    /// Whether the operation may have committed without saying so.
    pub(crate) fn may_have_committed(&self) -> bool {
        match self {
            Outcome::InFlight => true,
            Outcome::Acked { .. } | Outcome::Queued(_) => false,
            Outcome::Failed(code) => matches!(code.as_str(), "UNAVAILABLE" | "INTERNAL"),
        }
    }
}

/// One operation.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub(crate) kind: Kind,
    pub(crate) id: ItemId,
    pub(crate) outcome: Outcome,
}

/// Every operation of the run, by number.
#[derive(Debug, Default, Clone)]
pub(crate) struct Ledger {
    pub(crate) ops: BTreeMap<u64, Operation>,
    /// The messages of failures whose outcome is unknown (`UNAVAILABLE`, `INTERNAL`).
    pub(crate) unknown: Vec<String>,
}

impl Ledger {
    /// Records one line of a child's output; anything else than the three line kinds (and
    /// `READY`) is an error, so a garbled protocol cannot pass unnoticed. A kill can cut the
    /// last line short: `last` says the line is the final one of a killed child, and then a
    /// partial line is ignored.
    pub(crate) fn record(&mut self, line: &str, last: bool) -> Result<(), String> {
        // `ERR` lines end with the error's message, which may hold spaces.
        let parts: Vec<&str> = line.splitn(4, ' ').collect();
        let bad = || format!("unexpected child output {line:?}");
        let op = |s: &str| s.parse::<u64>().map_err(|_| bad());
        let result = match parts.as_slice() {
            ["READY"] => Ok(()),
            ["BEGIN", n, kind, id] => {
                let kind = Kind::parse(kind).ok_or_else(bad)?;
                let id = ItemId::parse(id).map_err(|_| bad())?;
                match self.ops.entry(op(n)?) {
                    Entry::Occupied(_) => Err(format!("operation {n} begun twice")),
                    Entry::Vacant(v) => {
                        v.insert(Operation {
                            kind,
                            id,
                            outcome: Outcome::InFlight,
                        });
                        Ok(())
                    }
                }
            }
            ["ACK", n, ov, cv] => self.end(
                op(n)?,
                Outcome::Acked {
                    ov: op(ov)?,
                    cv: op(cv)?,
                },
            ),
            ["QUEUED", n, op_id] => self.end(op(n)?, Outcome::Queued((*op_id).to_string())),
            ["ERR", n, code, message] => {
                let n = op(n)?;
                if matches!(*code, "UNAVAILABLE" | "INTERNAL") {
                    self.unknown.push(format!("operation {n}: {message}"));
                }
                self.end(n, Outcome::Failed((*code).to_string()))
            }
            _ => Err(bad()),
        };
        match result {
            Err(_) if last => Ok(()),
            r => r,
        }
    }

    fn end(&mut self, n: u64, outcome: Outcome) -> Result<(), String> {
        match self.ops.get_mut(&n) {
            Some(o) if o.outcome == Outcome::InFlight => {
                o.outcome = outcome;
                Ok(())
            }
            Some(_) => Err(format!("operation {n} ended twice")),
            None => Err(format!("operation {n} ended without beginning")),
        }
    }

    /// Ids of records that were acknowledged as created (the pool of the next child).
    pub(crate) fn created(&self) -> impl Iterator<Item = ItemId> + '_ {
        self.ops
            .values()
            .filter_map(|o| (o.kind == Kind::Create && o.outcome.must_be_there()).then_some(o.id))
    }

    /// Failed operations by error code.
    pub(crate) fn failures(&self) -> BTreeMap<&str, usize> {
        let mut m = BTreeMap::new();
        for o in self.ops.values() {
            if let Outcome::Failed(code) = &o.outcome {
                *m.entry(code.as_str()).or_default() += 1;
            }
        }
        m
    }

    /// Counts by outcome: (acknowledged, in flight at a kill, failed); queued operations
    /// count as acknowledged (see [`Ledger::queued`]).
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for o in self.ops.values() {
            match o.outcome {
                Outcome::Acked { .. } | Outcome::Queued(_) => c.0 += 1,
                Outcome::InFlight => c.1 += 1,
                Outcome::Failed(_) => c.2 += 1,
            }
        }
        c
    }

    /// Operations acknowledged as queued in the spool.
    pub(crate) fn queued(&self) -> usize {
        self.ops
            .values()
            .filter(|o| matches!(o.outcome, Outcome::Queued(_)))
            .count()
    }

    /// Marks the operations whose spool entries became dead letters as of unknown outcome: a
    /// dead letter is never applied by the spool, but an attempt made before may have been.
    pub(crate) fn dead_lettered(&mut self, op_ids: &std::collections::HashSet<String>) -> usize {
        let mut n = 0;
        for o in self.ops.values_mut() {
            if matches!(&o.outcome, Outcome::Queued(k) if op_ids.contains(k)) {
                o.outcome = Outcome::InFlight;
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_make_a_ledger() {
        let id = ItemId::generate();
        let mut l = Ledger::default();
        l.record("READY", false).unwrap();
        l.record(&format!("BEGIN 7 create {id}"), false).unwrap();
        l.record(&format!("BEGIN 8 delete {id}"), false).unwrap();
        l.record("ACK 7 0 1", false).unwrap();
        assert_eq!(l.ops[&7].outcome, Outcome::Acked { ov: 0, cv: 1 });
        assert_eq!(l.ops[&8].outcome, Outcome::InFlight);
        assert!(l.record("ACK 7 0 1", false).is_err(), "acknowledged twice");
        assert!(l.record("ACK 9 0 1", false).is_err(), "never begun");
        assert!(l.record(&format!("BEGIN 7 create {id}"), false).is_err());
        assert!(l.record("AC", false).is_err());
        l.record("AC", true).unwrap();
        l.record("ERR 8 NOT_FOUND record gone", false).unwrap();
        let other = ItemId::generate();
        l.record(&format!("BEGIN 9 create {other}"), false).unwrap();
        l.record("QUEUED 9 0123456789abcdef", false).unwrap();
        assert_eq!(
            l.ops[&9].outcome,
            Outcome::Queued("0123456789abcdef".into())
        );
        assert_eq!(l.queued(), 1);
        assert_eq!(l.created().count(), 2, "queued creates join the pool");
        let dead = ["0123456789abcdef".to_string()].into_iter().collect();
        assert_eq!(l.dead_lettered(&dead), 1);
        assert!(l.ops[&9].outcome.may_have_committed());
        assert!(!l.ops[&8].outcome.may_have_committed());
        assert_eq!(l.created().collect::<Vec<_>>()[0], id);
        assert_eq!(l.counts(), (1, 1, 1));
        assert_eq!(
            l.failures().into_iter().collect::<Vec<_>>(),
            [("NOT_FOUND", 1)]
        );
    }
}
