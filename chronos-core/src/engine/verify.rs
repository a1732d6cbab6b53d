//! Integrity check: [`Collection::verify`] reads every head, every version entry and every
//! payload of a collection and reports what does not agree — read-only, and never stopping
//! at the first problem.
//!
//! What it checks, per record: the version log is well formed (ovs dense from the oldest
//! kept one, `prev_ov` pointing at the version before, `at` and `cv` strictly increasing);
//! the head agrees with the latest version (ov, cv, blob key, checksum, size, `updatedAt`,
//! metadata, deletion, chain hash); every
//! payload a version refers to exists and matches its checksum (and parses); every
//! externalised property blob a payload refers to exists. Then the collection's blob prefix
//! is listed: blobs of this database that nothing refers to are reported as orphans (a sweep
//! removes those that are provably garbage; a write still in flight can own a young one);
//! unreferenced blobs that do not name this database are only counted. Erased versions have
//! no payload to check. Every version's seal is checked against its fields and linked to the
//! version before it ([`crate::chain`]); unsealed versions (upstream data) are counted.

use std::collections::{HashMap, HashSet};

use futures::stream::{self, StreamExt};

use super::payload;
use super::Collection;
use crate::error::{ErrorKind, Result};
use crate::filter::Filter;
use crate::id::ItemId;
use crate::index::{HeadQuery, Sort, SortKey, VersionEntry};

/// Heads per page.
const PAGE: usize = 500;
/// Payloads of one record checked at once.
const CONCURRENCY: usize = 16;
/// Records checked at once.
const RECORDS_AT_ONCE: usize = 8;
/// Version entries per page of the log.
const SCAN_PAGE: usize = 1_000;

/// What kind of disagreement [`Collection::verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The head does not match the latest version (or is missing, or has no versions).
    Head,
    /// The version log is malformed (a gap in ovs, a wrong `prev_ov`, `at` or `cv` not
    /// increasing).
    History,
    /// A payload or property blob a version refers to does not exist.
    MissingBlob,
    /// A payload does not match its checksum, or does not parse.
    Corrupt,
    /// A version's seal does not match its fields, or does not link to the version before
    /// it ([`crate::chain`]).
    Chain,
}

impl ProblemKind {
    /// A stable, lower-case name (`head`, `history`, `missing_blob`, `corrupt`, `chain`).
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::Head => "head",
            ProblemKind::History => "history",
            ProblemKind::MissingBlob => "missing_blob",
            ProblemKind::Corrupt => "corrupt",
            ProblemKind::Chain => "chain",
        }
    }
}

/// One disagreement, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// The record.
    pub id: ItemId,
    /// The version, when one is concerned.
    pub ov: Option<u64>,
    /// The blob, when one is concerned.
    pub key: Option<String>,
    /// What exactly disagrees.
    pub detail: String,
}

/// What [`Collection::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Records examined (with versions or a head).
    pub records: u64,
    /// Version entries examined.
    pub versions: u64,
    /// Blobs read and checked.
    pub blobs_checked: u64,
    /// Everything that disagrees, in record order.
    pub problems: Vec<Problem>,
    /// Blobs this database wrote (their key names its
    /// [`Collection::database_id`](super::Collection::database_id)) under the collection's
    /// prefix that nothing refers to: garbage of failed or killed writes, which
    /// [`Collection::sweep`](super::Collection::sweep) removes once past its grace period.
    pub orphans: Vec<String>,
    /// Unreferenced blobs under the prefix that do not name this database: another
    /// database's or application's (a shared bucket), upstream's layout, keys written
    /// before blob keys named their database. Never swept; counted, not listed.
    pub not_owned: u64,
    /// Version entries without a seal (written by upstream, or before seals existed): their
    /// fields are checked as above, but nothing shows whether they were changed.
    pub unchained: u64,
}

impl VerifyReport {
    /// No problem found (orphans are garbage, not damage).
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One payload's check: the property blobs it refers to, or the problem.
type Checked = std::result::Result<Vec<String>, (ProblemKind, String)>;

/// What a head says, kept while the versions are walked.
struct HeadFacts {
    ov: u64,
    cv: u64,
    blob_key: String,
    checksum: String,
    deleted: bool,
    chain: Option<String>,
    size: u64,
    updated_at: crate::time::Timestamp,
    /// The metadata's canonical text (what queries run on must be the version's).
    meta: String,
}

impl Collection {
    /// Checks the collection (see the [module docs](self)); `progress` is called with the
    /// number of records checked so far after each page. Store errors (`Unavailable`) fail
    /// the call; everything found in the data is reported.
    pub async fn verify(&self, mut progress: impl FnMut(u64) + Send) -> Result<VerifyReport> {
        let idx = &self.stores().index;
        let mut report = VerifyReport::default();
        let mut referenced: HashSet<String> = HashSet::new();
        // The blob listing runs beside the walk (a directory walk or a paged S3 listing is
        // as long as the walk's reads).
        let prefix = format!("{}{}/", self.inner.config.blob_prefix, self.name());
        let listing = self.stores().blob.list_all(&prefix);
        let walk = async {
            let mut heads = self.head_facts().await?;
            // The log in (id, ov) order, a page at a time; a record cut by the page's end
            // waits for the rest in the next.
            let mut carry: Vec<VersionEntry> = Vec::new();
            let mut page = idx.scan_versions(self.name(), None, SCAN_PAGE).await?;
            loop {
                let done = page.len() < SCAN_PAGE;
                let after = page.last().map(|last| (last.item_id, last.ov));
                let mut records: Vec<Vec<VersionEntry>> = Vec::new();
                let mut cur = std::mem::take(&mut carry);
                for v in page {
                    if cur.first().is_some_and(|c| c.item_id != v.item_id) {
                        records.push(std::mem::take(&mut cur));
                    }
                    cur.push(v);
                }
                if !done {
                    carry = cur;
                } else if !cur.is_empty() {
                    records.push(cur);
                }
                // Records of a page at once: verify is bound by reading, not by round trips.
                let work: Vec<(Option<HeadFacts>, Vec<VersionEntry>)> = records
                    .into_iter()
                    .map(|vs| (heads.remove(&vs[0].item_id), vs))
                    .collect();
                // The next page is read while this one's payloads are.
                let next = async {
                    if done {
                        Ok(Vec::new())
                    } else {
                        idx.scan_versions(self.name(), after, SCAN_PAGE).await
                    }
                };
                let checked = stream::iter(work)
                    .map(|(head, versions)| self.verify_record(head, versions))
                    .buffered(RECORDS_AT_ONCE)
                    .collect::<Vec<Result<(VerifyReport, HashSet<String>)>>>();
                let (outcomes, next) = futures::future::join(checked, next).await;
                for outcome in outcomes {
                    let (r, refs) = outcome?;
                    report.records += r.records;
                    report.versions += r.versions;
                    report.blobs_checked += r.blobs_checked;
                    report.unchained += r.unchained;
                    report.problems.extend(r.problems);
                    referenced.extend(refs);
                }
                progress(report.records);
                if done {
                    break;
                }
                page = next?;
            }
            Ok::<_, crate::Error>(heads)
        };
        let (walked, listed) = futures::future::join(walk, listing).await;
        for (id, h) in walked? {
            report.records += 1;
            report.problems.push(Problem {
                kind: ProblemKind::Head,
                id,
                ov: Some(h.ov),
                key: None,
                detail: "a head without any version in the log".into(),
            });
        }
        // Only blobs whose key names this database are its orphans: a bucket shared with
        // another database or application holds their committed payloads too.
        for b in listed? {
            if referenced.contains(&b.key) {
                continue;
            }
            match self.classify(&b.key) {
                Some((.., w)) if w.owner == self.inner.owner => report.orphans.push(b.key),
                _ => report.not_owned += 1,
            }
        }
        progress(report.records);
        Ok(report)
    }

    /// Every head, as verify compares it (read while the blob listing runs).
    async fn head_facts(&self) -> Result<HashMap<ItemId, HeadFacts>> {
        let idx = &self.stores().index;
        let mut heads: HashMap<ItemId, HeadFacts> = HashMap::new();
        let mut after: Option<SortKey> = None;
        loop {
            let q = HeadQuery {
                filter: Filter::parse(&serde_json::json!({}))?,
                include_deleted: true,
                sort: Sort::default(),
                after: after.take(),
                limit: PAGE,
            };
            let page = idx.query_heads(self.name(), &q).await?;
            let n = page.len();
            if let Some(last) = page.last() {
                after = Some(SortKey {
                    value: serde_json::Value::String(last.item_id.to_string()),
                    id: last.item_id,
                });
            }
            for h in page {
                heads.insert(
                    h.item_id,
                    HeadFacts {
                        ov: h.ov,
                        cv: h.cv,
                        blob_key: h.blob_key,
                        checksum: h.checksum,
                        deleted: h.deleted_at.is_some(),
                        chain: h.chain,
                        size: h.size,
                        updated_at: h.updated_at,
                        meta: crate::filter::canonical_text(&serde_json::Value::Object(h.meta)),
                    },
                );
            }
            if n < PAGE {
                break;
            }
        }
        Ok(heads)
    }

    /// One record's findings (`versions`: all of its entries, ascending, at least one), and
    /// the blobs its versions refer to.
    async fn verify_record(
        &self,
        head: Option<HeadFacts>,
        versions: Vec<VersionEntry>,
    ) -> Result<(VerifyReport, HashSet<String>)> {
        let id = versions[0].item_id;
        let mut referenced = HashSet::new();
        let mut own = VerifyReport::default();
        let report = &mut own;
        report.records += 1;
        report.versions += versions.len() as u64;
        let problem = |kind, ov, key: Option<&str>, detail: String| Problem {
            kind,
            id,
            ov,
            key: key.map(str::to_string),
            detail,
        };
        // `prevOv` is the ov before, on every version that has one (upstream may omit it).
        for v in versions.iter() {
            if v.prev_ov.is_some() && v.prev_ov != v.ov.checked_sub(1) {
                report.problems.push(problem(
                    ProblemKind::History,
                    Some(v.ov),
                    None,
                    format!("prevOv {:?} is not the ov before {}", v.prev_ov, v.ov),
                ));
            }
        }
        for pair in versions.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let mut bad = Vec::new();
            if b.ov != a.ov + 1 {
                bad.push(format!("ov {} follows ov {}", b.ov, a.ov));
            }
            if b.at <= a.at {
                bad.push(format!("at {} is not after {}", b.at, a.at));
            }
            if b.cv <= a.cv {
                bad.push(format!("cv {} is not above {}", b.cv, a.cv));
            }
            for d in bad {
                report
                    .problems
                    .push(problem(ProblemKind::History, Some(b.ov), None, d));
            }
        }
        self.verify_chain(id, &versions, report);
        let latest = versions.last();
        match (&head, latest) {
            (Some(h), Some(v)) => {
                let mut bad = Vec::new();
                if (h.ov, h.cv) != (v.ov, v.cv) {
                    bad.push(format!(
                        "head is at ov {} / cv {}, the log's latest at ov {} / cv {}",
                        h.ov, h.cv, v.ov, v.cv
                    ));
                } else {
                    if h.blob_key != v.blob_key || h.checksum != v.checksum || h.size != v.size {
                        bad.push("head's payload reference differs from its version's".into());
                    }
                    if h.updated_at != v.at {
                        bad.push(format!(
                            "head's updatedAt {} is not its version's at {}",
                            h.updated_at, v.at
                        ));
                    }
                    if h.meta
                        != crate::filter::canonical_text(&serde_json::Value::Object(v.meta.clone()))
                    {
                        bad.push("head's indexed metadata differs from its version's".into());
                    }
                    if h.chain != v.seal.as_ref().map(|s| s.hash.clone()) {
                        bad.push("head's chain hash differs from its version's seal".into());
                    }
                    if h.deleted != v.is_tombstone() {
                        bad.push(format!(
                            "head says deleted={}, its version is a {}",
                            h.deleted, v.op
                        ));
                    }
                }
                for d in bad {
                    report
                        .problems
                        .push(problem(ProblemKind::Head, Some(h.ov), None, d));
                }
            }
            (None, Some(v)) if !v.is_tombstone() || self.inner.config.logical_delete => {
                report.problems.push(problem(
                    ProblemKind::Head,
                    Some(v.ov),
                    None,
                    "no head, though the latest version is not a hard delete".into(),
                ));
            }
            _ => {}
        }
        // Payloads, concurrently; then the property blobs they refer to.
        let checks: Vec<(u64, String, Result<Checked>)> = stream::iter(
            versions
                .iter()
                .filter(|v| !v.is_erased() && !v.blob_key.is_empty()),
        )
        .map(|v| async move { (v.ov, v.blob_key.clone(), self.check_payload(v).await) })
        .buffered(CONCURRENCY)
        .collect()
        .await;
        let mut props: Vec<(u64, String)> = Vec::new();
        for (ov, key, outcome) in checks {
            report.blobs_checked += 1;
            referenced.insert(key.clone());
            match outcome? {
                Ok(refs) => props.extend(refs.into_iter().map(|r| (ov, r))),
                Err((kind, detail)) => {
                    report
                        .problems
                        .push(problem(kind, Some(ov), Some(&key), detail));
                }
            }
        }
        props.sort();
        props.dedup_by(|a, b| a.1 == b.1);
        for (ov, key) in props {
            if !referenced.insert(key.clone()) {
                continue;
            }
            report.blobs_checked += 1;
            match self.stores().blob.get(&key).await {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => report.problems.push(problem(
                    ProblemKind::MissingBlob,
                    Some(ov),
                    Some(&key),
                    "a property blob the payload refers to does not exist".into(),
                )),
                Err(e) => return Err(e),
            }
        }
        Ok((own, referenced))
    }

    /// The seals of `versions` (one record's, ascending): each against its own fields, each
    /// linked to the one before. The oldest kept version after retention has no predecessor
    /// to link to; it is the anchor.
    fn verify_chain(&self, id: ItemId, versions: &[VersionEntry], report: &mut VerifyReport) {
        let mut push = |ov, detail: String| {
            report.problems.push(Problem {
                kind: ProblemKind::Chain,
                id,
                ov: Some(ov),
                key: None,
                detail,
            })
        };
        let mut unchained = 0;
        for (i, v) in versions.iter().enumerate() {
            let before = i.checked_sub(1).map(|b| &versions[b]);
            let prev_hash = before
                .and_then(|b| b.seal.as_ref())
                .map(|s| s.hash.as_str());
            let Some(seal) = &v.seal else {
                unchained += 1;
                // Nothing writes an unsealed version after a sealed one, nor links a sealed
                // one to an unsealed one: a seal was removed.
                let next_links = versions
                    .get(i + 1)
                    .and_then(|n| n.seal.as_ref())
                    .is_some_and(|s| s.prev.is_some());
                if prev_hash.is_some() || next_links {
                    push(
                        v.ov,
                        "an unsealed version among sealed ones (its seal was removed)".into(),
                    );
                }
                continue;
            };
            if let Some(detail) = seal.check(v) {
                push(v.ov, detail);
            }
            match before {
                // Reported at the unsealed version itself.
                Some(b) if b.seal.is_none() && seal.prev.is_some() => {}
                Some(_) if seal.prev.as_deref() != prev_hash => push(
                    v.ov,
                    format!(
                        "the seal links to {}, the previous version's hash is {}",
                        seal.prev.as_deref().unwrap_or("nothing"),
                        prev_hash.unwrap_or("absent")
                    ),
                ),
                None if v.ov == 0 && seal.prev.is_some() => push(
                    v.ov,
                    "the record's first version links to a predecessor".into(),
                ),
                _ => {}
            }
        }
        report.unchained += unchained;
    }

    /// Every version entry of `id`, ascending (erased ones included).
    pub(super) async fn every_version(&self, id: ItemId) -> Result<Vec<VersionEntry>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .stores()
                .index
                .versions(self.name(), id, after, 1000)
                .await?;
            let n = page.len();
            after = page.last().map(|v| v.ov);
            out.extend(page);
            if n < 1000 {
                return Ok(out);
            }
        }
    }

    /// The payload of `v` read and checked: the property blobs it refers to, or what is
    /// wrong with it; `Err` only when the blob store fails.
    async fn check_payload(&self, v: &VersionEntry) -> Result<Checked> {
        let bytes = match self.stores().blob.get(&v.blob_key).await {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Ok(Err((
                    ProblemKind::MissingBlob,
                    "the payload does not exist".into(),
                )))
            }
            Err(e) => return Err(e),
        };
        Ok(match payload::decode(&bytes, &v.blob_key, &v.checksum) {
            Ok(d) => Ok(self.prop_refs(&d.data)),
            Err(e) => Err((ProblemKind::Corrupt, e.to_string())),
        })
    }
}
