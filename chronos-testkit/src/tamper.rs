//! Tampering with stored index fields, for property tests of `Collection::verify` on each
//! backend: the fields that can be changed, the fixture they are changed in, and where
//! `verify` must report each change. The change itself is backend-specific (raw SQL, raw
//! BSON), so each backend's test applies it.

use chronos_core::{Collection, CreateOptions, ItemId, VerifyReport, WriteOptions};
use serde_json::json;

/// Which stored field is changed, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // the names say it: the field changed
pub enum Field {
    Ov,
    Cv,
    Op,
    At,
    Actor,
    Reason,
    BlobKey,
    Meta,
    Size,
    Checksum,
    PrevOv,
    SealSalt,
    SealDigest,
    SealPrev,
    SealHash,
    SealRemoved,
    RowRemoved,
    HeadOv,
    HeadCv,
    HeadBlobKey,
    HeadMeta,
    HeadSize,
    HeadChecksum,
    HeadUpdatedAt,
    HeadDeleted,
    HeadChain,
    HeadRemoved,
}

/// Every field, for a strategy to pick from.
pub const FIELDS: [Field; 27] = [
    Field::Ov,
    Field::Cv,
    Field::Op,
    Field::At,
    Field::Actor,
    Field::Reason,
    Field::BlobKey,
    Field::Meta,
    Field::Size,
    Field::Checksum,
    Field::PrevOv,
    Field::SealSalt,
    Field::SealDigest,
    Field::SealPrev,
    Field::SealHash,
    Field::SealRemoved,
    Field::RowRemoved,
    Field::HeadOv,
    Field::HeadCv,
    Field::HeadBlobKey,
    Field::HeadMeta,
    Field::HeadSize,
    Field::HeadChecksum,
    Field::HeadUpdatedAt,
    Field::HeadDeleted,
    Field::HeadChain,
    Field::HeadRemoved,
];

impl Field {
    /// Whether the change is to the head (not to a version entry).
    pub fn is_head(self) -> bool {
        matches!(
            self,
            Field::HeadOv
                | Field::HeadCv
                | Field::HeadBlobKey
                | Field::HeadMeta
                | Field::HeadSize
                | Field::HeadChecksum
                | Field::HeadUpdatedAt
                | Field::HeadDeleted
                | Field::HeadChain
                | Field::HeadRemoved
        )
    }

    /// The version a change of this field may be made to: removing ov 0 is what retention
    /// does and looks the same, so a removed row is one after the first.
    pub fn target_ov(self, ov: u64) -> u64 {
        if self == Field::RowRemoved {
            ov.max(1)
        } else {
            ov
        }
    }
}

/// Records in the fixture, and versions of each (ov 0 to `VERSIONS - 1`).
pub const RECORDS: usize = 6;
/// See [`RECORDS`].
pub const VERSIONS: u64 = 3;

/// Writes the fixture into `coll`: [`RECORDS`] records of [`VERSIONS`] versions each, later
/// versions with an actor and a reason. Returns the ids.
pub async fn fixture(coll: &Collection) -> Vec<ItemId> {
    let mut ids = Vec::new();
    for r in 0..RECORDS {
        let w = coll
            .create(&json!({"r": r, "n": 0}), CreateOptions::new())
            .await
            .unwrap();
        for n in 1..VERSIONS {
            let opts = WriteOptions::new().actor("ada").reason(format!("step {n}"));
            coll.update(w.id, &json!({"r": r, "n": n}), opts)
                .await
                .unwrap();
        }
        ids.push(w.id);
    }
    ids
}

/// Checks that `report` found the change of `field` made to record `id`'s version `ov`
/// (the fixture's latest ov for head fields): a problem on that record at that version — a
/// moved ov or a removed row may also be found at the version after it — and none on any
/// other record.
pub fn located(report: &VerifyReport, id: ItemId, ov: u64, field: Field) -> Result<(), String> {
    let latest = VERSIONS - 1;
    let mut at = vec![if field.is_head() { latest } else { ov }];
    match field {
        Field::Ov => at.push(ov + 100),
        Field::RowRemoved | Field::PrevOv | Field::SealHash => at.push(ov + 1),
        Field::HeadOv => at.extend(latest + 1..latest + 4),
        _ => {}
    }
    if report.problems.iter().any(|p| p.id != id) {
        return Err(format!(
            "{field:?}: a problem on another record: {report:?}"
        ));
    }
    if !report
        .problems
        .iter()
        .any(|p| p.ov.is_some_and(|o| at.contains(&o)))
    {
        return Err(format!(
            "{field:?} of {id} ov {ov}: not found at {at:?}: {report:?}"
        ));
    }
    Ok(())
}

/// Runs `case(record index, ov, field, n)` — `n` a random number for the change's value —
/// for `default_cases` random cases (`PROPTEST_CASES` overrides), with the target ov already
/// adjusted ([`Field::target_ov`]); panics with the first case that fails, shrunk.
#[cfg(feature = "proptest")]
pub fn run_cases(default_cases: u32, case: impl Fn(usize, u64, Field, i64) -> Result<(), String>) {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..RECORDS, 0..VERSIONS, 0..FIELDS.len(), 0..1_000_000i64);
    runner
        .run(&strategy, |(rec, ov, field, n)| {
            let field = FIELDS[field];
            case(rec, field.target_ov(ov), field, n).map_err(TestCaseError::fail)
        })
        .unwrap();
}
