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
    /// Failed with an error code. A definite failure (not found, conflict, validation …)
    /// must have left no version; `UNAVAILABLE` and `INTERNAL` may hide a commit.
    Failed(String),
}

impl Outcome {
    /// Whether the operation may have committed without saying so.
    pub(crate) fn may_have_committed(&self) -> bool {
        match self {
            Outcome::InFlight => true,
            Outcome::Acked { .. } => false,
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
        self.ops.values().filter_map(|o| {
            (o.kind == Kind::Create && matches!(o.outcome, Outcome::Acked { .. })).then_some(o.id)
        })
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

    /// Counts by outcome: (acknowledged, in flight at a kill, failed).
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for o in self.ops.values() {
            match o.outcome {
                Outcome::Acked { .. } => c.0 += 1,
                Outcome::InFlight => c.1 += 1,
                Outcome::Failed(_) => c.2 += 1,
            }
        }
        c
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
        assert!(!l.ops[&8].outcome.may_have_committed());
        assert_eq!(l.created().collect::<Vec<_>>(), vec![id]);
        assert_eq!(l.counts(), (1, 0, 1));
        assert_eq!(
            l.failures().into_iter().collect::<Vec<_>>(),
            [("NOT_FOUND", 1)]
        );
    }
}
