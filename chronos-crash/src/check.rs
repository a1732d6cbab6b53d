//! After the kills: every version in the store is attributed to the operation that wrote it,
//! and every acknowledged operation to its version.
//!
//! - **lost**: an acknowledged operation whose version is missing, or differs (ov, cv,
//!   kind, content); an operation queued in the fallback spool counts as acknowledged (any
//!   ov: it was not known yet);
//! - **duplicate**: one operation found in two versions;
//! - **phantom**: a version no operation can have written — its operation failed
//!   definitely, was never begun, or is of a kind the workload never makes;
//! - **wrong content**: a version whose data is not what its operation must produce (a
//!   replacement's data exactly; an enrichment's the merge of the previous version and its
//!   patch; a deletion's the previous version's data).

use std::collections::{BTreeSet, HashSet};

use chronos_core::merge::deep_merge;
use chronos_core::{Collection, HistoryOptions, ItemId, Op, ReadOptions, VersionEntry};
use serde_json::{Map, Value};

use crate::ledger::{Ledger, Outcome};
use crate::workload::{patch, replacement, Kind};

/// What the check found.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// Records read back.
    pub(crate) records: usize,
    /// Versions read back.
    pub(crate) versions: usize,
    /// Operations that committed without their acknowledgement reaching the parent.
    pub(crate) unacknowledged_commits: usize,
    /// Versions read back by kind: (creates, updates, deletes) — what exact counters say.
    pub(crate) by_op: (u64, u64, u64),
    pub(crate) lost: Vec<String>,
    pub(crate) duplicates: Vec<String>,
    pub(crate) phantoms: Vec<String>,
    pub(crate) wrong_content: Vec<String>,
}

impl Findings {
    pub(crate) fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.duplicates.is_empty()
            && self.phantoms.is_empty()
            && self.wrong_content.is_empty()
    }
}

/// Reads back every record the ledger names and attributes each version.
pub(crate) async fn check(c: &Collection, ledger: &Ledger) -> Result<Findings, String> {
    let mut f = Findings::default();
    let ids: BTreeSet<ItemId> = ledger.ops.values().map(|o| o.id).collect();
    let mut used: HashSet<u64> = HashSet::new();
    for id in ids {
        let versions = all_versions(c, id).await?;
        if versions.is_empty() {
            continue;
        }
        f.records += 1;
        let mut prev: Option<Map<String, Value>> = None;
        for v in versions {
            f.versions += 1;
            match v.op {
                Op::Create => f.by_op.0 += 1,
                Op::Delete => f.by_op.2 += 1,
                _ => f.by_op.1 += 1,
            }
            let data = c
                .get_version(id, v.ov, ReadOptions::new().include_deleted(true))
                .await
                .map_err(|e| format!("record {id} v{}: {e}", v.ov))?
                .ok_or_else(|| format!("record {id} v{}: listed but unreadable", v.ov))?
                .data;
            let at = format!("record {id} v{} (cv {}, {:?})", v.ov, v.cv, v.op);
            match attribute(ledger, &used, id, &v, &data) {
                Err(why) => f.phantoms.push(format!("{at}: {why}")),
                Ok(op) => {
                    if !used.insert(op) {
                        f.duplicates.push(format!("{at}: operation {op} again"));
                        prev = Some(data);
                        continue;
                    }
                    let o = &ledger.ops[&op];
                    match o.outcome {
                        Outcome::Acked { ov, cv } if (ov, cv) != (v.ov, v.cv) => f.lost.push(
                            format!("{at}: operation {op} was acknowledged as v{ov} cv {cv}"),
                        ),
                        Outcome::Acked { .. } | Outcome::Queued(_) => {}
                        _ => f.unacknowledged_commits += 1,
                    }
                    let expected = match o.kind {
                        Kind::Create | Kind::Update => Some(replacement(o.kind, op)),
                        Kind::Enrich => prev.clone().map(|mut p| {
                            deep_merge(&mut p, &patch(op));
                            p
                        }),
                        Kind::Delete => prev.clone(),
                    };
                    if expected.as_ref() != Some(&data) {
                        f.wrong_content.push(format!(
                            "{at}: not what operation {op} ({:?}) writes",
                            o.kind
                        ));
                    }
                }
            }
            prev = Some(data);
        }
    }
    for (n, o) in &ledger.ops {
        if o.outcome.must_be_there() && !used.contains(n) {
            f.lost.push(format!(
                "operation {n} ({:?} of {}) was acknowledged and is not in the store",
                o.kind, o.id
            ));
        }
    }
    Ok(f)
}

/// Which operation wrote version `v` of record `id`, whose data is `data`.
fn attribute(
    ledger: &Ledger,
    used: &HashSet<u64>,
    id: ItemId,
    v: &VersionEntry,
    data: &Map<String, Value>,
) -> Result<u64, String> {
    let may_be = |n: u64, kinds: &[Kind]| -> Result<u64, String> {
        let o = ledger
            .ops
            .get(&n)
            .ok_or_else(|| format!("operation {n} was never begun"))?;
        if o.id != id || !kinds.contains(&o.kind) {
            return Err(format!("operation {n} was a {:?} of {}", o.kind, o.id));
        }
        match &o.outcome {
            Outcome::Acked { .. } | Outcome::Queued(_) => Ok(n),
            out if out.may_have_committed() => Ok(n),
            out => Err(format!("operation {n} failed ({out:?})")),
        }
    };
    match v.op {
        Op::Create | Op::Update => {
            let n = data
                .get("last")
                .and_then(Value::as_u64)
                .ok_or("no operation number in the data")?;
            let kinds: &[Kind] = if v.op == Op::Create {
                &[Kind::Create]
            } else {
                &[Kind::Update, Kind::Enrich]
            };
            may_be(n, kinds)
        }
        // A deletion carries the previous content: it is the acknowledged delete of this
        // version, or else one not yet attributed that may have committed.
        Op::Delete => {
            let candidates = ledger
                .ops
                .iter()
                .filter(|(n, o)| o.id == id && o.kind == Kind::Delete && !used.contains(n));
            let (mut queued, mut unacked) = (None, None);
            for (n, o) in candidates {
                match o.outcome {
                    Outcome::Acked { ov, .. } if ov == v.ov => return Ok(*n),
                    Outcome::Acked { .. } => {}
                    // Queued: its ov was not known when it was acknowledged; it must be
                    // somewhere, so it is preferred over one that only may have committed.
                    Outcome::Queued(_) => {
                        queued.get_or_insert(*n);
                    }
                    ref out if out.may_have_committed() => {
                        unacked.get_or_insert(*n);
                    }
                    _ => {}
                }
            }
            queued
                .or(unacked)
                .ok_or_else(|| "no delete of this record may have written it".to_string())
        }
        other => Err(format!("the workload never writes {other:?} versions")),
    }
}

/// The record's whole version log.
async fn all_versions(c: &Collection, id: ItemId) -> Result<Vec<VersionEntry>, String> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = match c
            .history(
                id,
                HistoryOptions {
                    after_ov: after,
                    limit: 1000,
                },
            )
            .await
        {
            Ok(p) => p,
            Err(e) if e.kind() == chronos_core::ErrorKind::NotFound && after.is_none() => {
                return Ok(out)
            }
            Err(e) => return Err(format!("history of {id}: {e}")),
        };
        out.extend(page.versions);
        match page.next_after_ov {
            Some(a) => after = Some(a),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use chronos::Chronos;
    use chronos_core::{CreateOptions, EnrichOptions, WriteOptions};
    use serde_json::json;

    use super::*;
    use crate::workload::route;

    async fn store() -> (Chronos, Collection) {
        let cfg = json!({
            "dbConnections": { "m": { "mongoUri": "memory://" } },
            "spacesConnections": {},
            "databases": { "runtime": { "tenantDatabases": [
                { "tenantId": "t", "dbConnRef": "m", "dbName": "check" }
            ]}}
        });
        let chronos = Chronos::from_json(&cfg.to_string()).unwrap();
        let c = chronos.with(&route()).await.unwrap();
        (chronos, c)
    }

    /// Writes op `n` of `kind` on `id` as the child does and records its lines.
    async fn write(c: &Collection, l: &mut Ledger, n: u64, kind: Kind, id: ItemId, ack: bool) {
        l.record(&format!("BEGIN {n} {} {id}", kind.name()), false)
            .unwrap();
        let w = match kind {
            Kind::Create => {
                c.create(&replacement(kind, n), CreateOptions::new().id(id))
                    .await
            }
            Kind::Update => {
                c.update(id, &replacement(kind, n), WriteOptions::new())
                    .await
            }
            Kind::Enrich => c.enrich(id, &patch(n), EnrichOptions::new()).await,
            Kind::Delete => c.delete(id, WriteOptions::new()).await,
        }
        .unwrap();
        if ack {
            l.record(&format!("ACK {n} {} {}", w.ov, w.cv), false)
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_clean_history_passes_and_each_defect_is_named() {
        let (_chronos, c) = store().await;
        let mut l = Ledger::default();
        let (a, b) = (ItemId::generate(), ItemId::generate());
        write(&c, &mut l, 1, Kind::Create, a, true).await;
        write(&c, &mut l, 2, Kind::Enrich, a, true).await;
        write(&c, &mut l, 3, Kind::Update, a, true).await;
        write(&c, &mut l, 4, Kind::Enrich, a, false).await; // in flight at the kill
        write(&c, &mut l, 5, Kind::Delete, a, true).await;
        write(&c, &mut l, 6, Kind::Create, b, true).await;
        let f = check(&c, &l).await.unwrap();
        assert!(f.is_clean(), "{f:?}");
        assert_eq!((f.records, f.versions, f.unacknowledged_commits), (2, 6, 1));

        // An acknowledgement with no version behind it.
        let mut lost = l.clone();
        let ghost = ItemId::generate();
        lost.record(&format!("BEGIN 7 create {ghost}"), false)
            .unwrap();
        lost.record("ACK 7 0 99", false).unwrap();
        let f = check(&c, &lost).await.unwrap();
        assert_eq!(f.lost.len(), 1, "{f:?}");

        // A version whose operation failed definitely is a phantom.
        let mut phantom = l.clone();
        phantom.ops.get_mut(&4).unwrap().outcome = Outcome::Failed("CONFLICT".into());
        let f = check(&c, &phantom).await.unwrap();
        assert_eq!(f.phantoms.len(), 1, "{f:?}");

        // The same operation written twice.
        write(&c, &mut l, 8, Kind::Update, b, true).await;
        c.update(b, &replacement(Kind::Update, 8), WriteOptions::new())
            .await
            .unwrap();
        let f = check(&c, &l).await.unwrap();
        assert_eq!(f.duplicates.len(), 1, "{f:?}");
        assert_eq!(f.lost.len(), 0, "{f:?}");

        // Content that is not what the operation writes.
        let d = ItemId::generate();
        let mut wrong = Ledger::default();
        wrong.record(&format!("BEGIN 9 create {d}"), false).unwrap();
        let mut data = replacement(Kind::Create, 9);
        data.insert("pad".into(), json!("tampered"));
        let w = c.create(&data, CreateOptions::new().id(d)).await.unwrap();
        wrong
            .record(&format!("ACK 9 {} {}", w.ov, w.cv), false)
            .unwrap();
        let f = check(&c, &wrong).await.unwrap();
        assert_eq!(f.wrong_content.len(), 1, "{f:?}");
    }
}
