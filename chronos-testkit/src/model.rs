//! The model-based property test: random operation sequences run against an engine and a
//! pure model, with every read compared after every step.
//!
//! Backends reuse it: `model::run(stores, steps)` panics (so proptest shrinks) on the first
//! divergence. Steps pick records and versions by index modulo what exists, and
//! `expected_ov` is sometimes stale, so conflicts, deletes of deleted records, restores to
//! tombstones and collection restores all occur.

use chronos_core::merge::deep_merge;
use chronos_core::time::next_ms;
use chronos_core::{
    Collection, CollectionConfig, CollectionRestoreOptions, CreateOptions, Engine, EnrichOptions,
    ErrorKind, ItemId, ListOptions, Op, Point, ReadOptions, RestoreAction, RestoreTarget, Stores,
    Timestamp, WriteOptions, WriteResult,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// How a step chooses `expected_ov`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OvChoice {
    /// No check.
    Unchecked,
    /// The current ov.
    Current,
    /// The current ov minus (1 + n): always stale.
    Stale(u8),
}

/// One random operation.
#[derive(Debug, Clone)]
pub enum Step {
    /// Create a record.
    Create(Map<String, Value>),
    /// Replace a record's data.
    Update(usize, Map<String, Value>, OvChoice),
    /// Delete a record.
    Delete(usize, OvChoice),
    /// Enrich a record, maybe with a function id.
    Enrich(usize, Map<String, Value>, Option<u8>, OvChoice),
    /// Restore a record to one of its versions.
    Restore(usize, usize, OvChoice),
    /// Restore the collection to the cv after an earlier step.
    RestoreCollection(usize),
}

fn doc() -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::option::of(prop::sample::select(vec!["a", "b", "c"])),
        prop::option::of(0i64..5),
        prop::option::of(prop::collection::vec(
            prop::sample::select(vec!["x", "y", "z"]),
            0..3,
        )),
        prop::option::of(0i64..3),
    )
        .prop_map(|(status, score, tags, nested)| {
            let mut m = Map::new();
            if let Some(s) = status {
                m.insert("status".into(), json!(s));
            }
            if let Some(s) = score {
                m.insert("score".into(), json!(s));
            }
            if let Some(t) = tags {
                m.insert("tags".into(), json!(t));
            }
            if let Some(n) = nested {
                m.insert("nested".into(), json!({ format!("k{n}"): n }));
            }
            m
        })
}

fn ov_choice() -> impl Strategy<Value = OvChoice> {
    prop_oneof![
        2 => Just(OvChoice::Unchecked),
        3 => Just(OvChoice::Current),
        1 => (0u8..3).prop_map(OvChoice::Stale),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => doc().prop_map(Step::Create),
        3 => (any::<usize>(), doc(), ov_choice()).prop_map(|(r, d, o)| Step::Update(r, d, o)),
        1 => (any::<usize>(), ov_choice()).prop_map(|(r, o)| Step::Delete(r, o)),
        2 => (any::<usize>(), doc(), prop::option::of(0u8..3), ov_choice())
            .prop_map(|(r, d, f, o)| Step::Enrich(r, d, f, o)),
        1 => (any::<usize>(), any::<usize>(), ov_choice()).prop_map(|(r, v, o)| Step::Restore(r, v, o)),
        1 => any::<usize>().prop_map(Step::RestoreCollection),
    ]
}

/// Sequences of 1..=`max` steps.
pub fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 1..=max)
}

#[derive(Debug, Clone)]
struct MVersion {
    ov: u64,
    cv: u64,
    at: Timestamp,
    op: Op,
    data: Map<String, Value>,
    functions: Vec<String>,
}

impl MVersion {
    fn deleted(&self) -> bool {
        self.op == Op::Delete
    }
}

#[derive(Debug, Clone)]
struct MRecord {
    id: ItemId,
    versions: Vec<MVersion>,
}

impl MRecord {
    fn cur(&self) -> &MVersion {
        self.versions.last().expect("a record has a version")
    }
    fn at_cv(&self, cv: u64) -> Option<&MVersion> {
        self.versions.iter().rev().find(|v| v.cv <= cv)
    }
}

/// What the model expects of a write.
enum Expect {
    Ok(Op, Map<String, Value>, Vec<String>),
    Err(ErrorKind),
}

/// What a write on a record expects: deleted records are `NotFound`, a stale `expected_ov` is a
/// `Conflict`, otherwise the version `ok` describes.
fn expect_live(deleted: bool, stale: bool, ok: impl FnOnce() -> Expect) -> Expect {
    if deleted {
        Expect::Err(ErrorKind::NotFound)
    } else if stale {
        Expect::Err(ErrorKind::Conflict)
    } else {
        ok()
    }
}

fn expected_ov(choice: OvChoice, cur: u64) -> Option<u64> {
    match choice {
        OvChoice::Unchecked => None,
        OvChoice::Current => Some(cur),
        OvChoice::Stale(n) => Some(cur + 1 + n as u64),
    }
}

struct Runner {
    c: Collection,
    records: Vec<MRecord>,
    /// The collection's cv after each step.
    marks: Vec<u64>,
    last_cv: u64,
}

impl Runner {
    fn apply(
        &mut self,
        idx: usize,
        w: WriteResult,
        op: Op,
        data: Map<String, Value>,
        functions: Vec<String>,
    ) {
        assert_eq!(w.op, op);
        assert!(w.cv > self.last_cv, "cv must increase in commit order");
        self.last_cv = w.cv;
        let r = &mut self.records[idx];
        assert_eq!(w.ov, r.cur().ov + 1, "ov must be dense");
        assert!(w.at > r.cur().at, "at must strictly increase");
        r.versions.push(MVersion {
            ov: w.ov,
            cv: w.cv,
            at: w.at,
            op,
            data,
            functions,
        });
    }

    async fn step(&mut self, s: &Step) {
        if let Step::Create(d) = s {
            let w = self
                .c
                .create(d, CreateOptions::new())
                .await
                .expect("create");
            assert!(w.cv > self.last_cv);
            self.last_cv = w.cv;
            assert_eq!(w.ov, 0);
            self.records.push(MRecord {
                id: w.id,
                versions: vec![MVersion {
                    ov: 0,
                    cv: w.cv,
                    at: w.at,
                    op: Op::Create,
                    data: d.clone(),
                    functions: vec![],
                }],
            });
            return;
        }
        if let Step::RestoreCollection(m) = s {
            return self.restore_collection(*m).await;
        }
        if self.records.is_empty() {
            return;
        }
        let (r, choice) = match s {
            Step::Update(r, _, o)
            | Step::Delete(r, o)
            | Step::Enrich(r, _, _, o)
            | Step::Restore(r, _, o) => (*r, *o),
            _ => unreachable!("handled above"),
        };
        let idx = r % self.records.len();
        let rec = self.records[idx].clone();
        let cur = rec.cur();
        let exp_ov = expected_ov(choice, cur.ov);
        let stale = exp_ov.is_some_and(|e| e != cur.ov);
        let (result, expect) = match s {
            Step::Update(_, d, _) => {
                let res = self
                    .c
                    .update(
                        rec.id,
                        d,
                        WriteOptions {
                            expected_ov: exp_ov,
                            ..Default::default()
                        },
                    )
                    .await;
                let e = expect_live(cur.deleted(), stale, || {
                    Expect::Ok(Op::Update, d.clone(), cur.functions.clone())
                });
                (res, e)
            }
            Step::Delete(..) => {
                let res = self
                    .c
                    .delete(
                        rec.id,
                        WriteOptions {
                            expected_ov: exp_ov,
                            ..Default::default()
                        },
                    )
                    .await;
                let e = expect_live(cur.deleted(), stale, || {
                    Expect::Ok(Op::Delete, cur.data.clone(), cur.functions.clone())
                });
                (res, e)
            }
            Step::Enrich(_, patch, f, _) => {
                let mut opts = EnrichOptions {
                    expected_ov: exp_ov,
                    ..Default::default()
                };
                opts.function_id = f.map(|f| format!("fn{f}"));
                let res = self.c.enrich(rec.id, patch, opts.clone()).await;
                let e = expect_live(cur.deleted(), stale, || {
                    let mut data = cur.data.clone();
                    deep_merge(&mut data, patch);
                    let mut fs = cur.functions.clone();
                    if let Some(f) = opts.function_id {
                        if !fs.contains(&f) {
                            fs.push(f);
                        }
                    }
                    Expect::Ok(Op::Update, data, fs)
                });
                (res, e)
            }
            Step::Restore(_, v, _) => {
                let target = &rec.versions[v % rec.versions.len()];
                let res = self
                    .c
                    .restore_object(
                        rec.id,
                        RestoreTarget::Ov(target.ov),
                        WriteOptions {
                            expected_ov: exp_ov,
                            ..Default::default()
                        },
                    )
                    .await;
                let e = if target.deleted() {
                    Expect::Err(ErrorKind::Validation)
                } else if stale {
                    Expect::Err(ErrorKind::Conflict)
                } else {
                    Expect::Ok(Op::Restore, target.data.clone(), target.functions.clone())
                };
                (res, e)
            }
            _ => unreachable!("handled above"),
        };
        match (result, expect) {
            (Ok(w), Expect::Ok(op, data, fs)) => self.apply(idx, w, op, data, fs),
            (Err(e), Expect::Err(kind)) => assert_eq!(e.kind(), kind, "{s:?}: {e}"),
            (Ok(w), Expect::Err(kind)) => panic!("{s:?}: expected {kind:?}, got success {w:?}"),
            (Err(e), Expect::Ok(..)) => panic!("{s:?}: expected success, got {e}"),
        }
    }

    async fn restore_collection(&mut self, m: usize) {
        if self.marks.is_empty() {
            return;
        }
        let mark = self.marks[m % self.marks.len()];
        // The model's plan: every record changed after the mark whose state differs.
        let mut expected: Vec<(ItemId, RestoreAction)> = Vec::new();
        for r in &self.records {
            let cur = r.cur();
            if cur.cv <= mark {
                continue;
            }
            match r.at_cv(mark) {
                Some(t) if !t.deleted() => {
                    let same = !cur.deleted() && cur.data == t.data && cur.functions == t.functions;
                    if t.ov != cur.ov && !same {
                        expected.push((r.id, RestoreAction::Restore { to_ov: t.ov }));
                    }
                }
                _ if cur.deleted() => {}
                _ => expected.push((r.id, RestoreAction::Delete)),
            }
        }
        expected.sort_by_key(|(id, _)| *id);
        let report = self
            .c
            .restore_collection(Point::Cv(mark), CollectionRestoreOptions::new())
            .await
            .expect("restore_collection");
        let planned: Vec<(ItemId, RestoreAction)> =
            report.planned.iter().map(|p| (p.id, p.action)).collect();
        assert_eq!(planned, expected, "restore_collection plan to cv {mark}");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        for w in report.applied {
            let idx = self
                .records
                .iter()
                .position(|r| r.id == w.id)
                .expect("known record");
            let (op, data, fs) = match expected.iter().find(|(id, _)| *id == w.id).map(|(_, a)| *a)
            {
                Some(RestoreAction::Delete) => {
                    let c = self.records[idx].cur();
                    (Op::Delete, c.data.clone(), c.functions.clone())
                }
                Some(RestoreAction::Restore { to_ov }) => {
                    let t = &self.records[idx].versions[to_ov as usize];
                    (Op::Restore, t.data.clone(), t.functions.clone())
                }
                None => panic!("applied a change that was not planned: {w:?}"),
            };
            self.apply(idx, w, op, data, fs);
        }
    }

    /// Compares every read of every record with the model.
    async fn check(&self) {
        let ro = ReadOptions::new;
        for r in &self.records {
            let cur = r.cur();
            let latest = self
                .c
                .get_latest(r.id, ro().include_deleted(true))
                .await
                .unwrap()
                .expect("head");
            assert_eq!(latest.data, cur.data, "latest data of {}", r.id);
            assert_eq!(
                (latest.system.ov, latest.system.cv, latest.system.deleted),
                (cur.ov, cur.cv, cur.deleted())
            );
            assert_eq!(latest.system.lineage.function_ids, cur.functions);
            assert_eq!(latest.system.inserted_at, r.versions[0].at);
            assert_eq!(
                self.c.get_latest(r.id, ro()).await.unwrap().is_none(),
                cur.deleted()
            );

            let hist = self
                .c
                .history(r.id, Default::default())
                .await
                .unwrap()
                .versions;
            let got: Vec<(u64, u64, Op, Timestamp)> =
                hist.iter().map(|v| (v.ov, v.cv, v.op, v.at)).collect();
            let want: Vec<(u64, u64, Op, Timestamp)> = r
                .versions
                .iter()
                .map(|v| (v.ov, v.cv, v.op, v.at))
                .collect();
            assert_eq!(got, want, "history of {}", r.id);

            let before =
                Timestamp::from_millisecond(r.versions[0].at.as_millisecond() - 1).unwrap();
            assert!(self
                .c
                .get_as_of(r.id, before, ro())
                .await
                .unwrap()
                .is_none());
            for (i, v) in r.versions.iter().enumerate() {
                let got = self
                    .c
                    .get_version(r.id, v.ov, ro().include_deleted(true))
                    .await
                    .unwrap()
                    .expect("version");
                assert_eq!(
                    (&got.data, got.system.deleted),
                    (&v.data, v.deleted()),
                    "v{} of {}",
                    v.ov,
                    r.id
                );
                // Just before the next version, this one is still current.
                let probe = match r.versions.get(i + 1) {
                    Some(n) => Timestamp::from_millisecond(n.at.as_millisecond() - 1).unwrap(),
                    None => next_ms(v.at),
                };
                for t in [v.at, probe] {
                    let asof = self.c.get_as_of(r.id, t, ro()).await.unwrap();
                    match asof {
                        Some(rec) => {
                            assert!(!v.deleted());
                            assert_eq!((rec.system.ov, &rec.data), (v.ov, &v.data));
                        }
                        None => assert!(v.deleted(), "as-of {t} of {} lost v{}", r.id, v.ov),
                    }
                }
            }
        }
        for status in ["a", "b"] {
            let mut want: Vec<ItemId> = self
                .records
                .iter()
                .filter(|r| {
                    !r.cur().deleted() && r.cur().data.get("status") == Some(&json!(status))
                })
                .map(|r| r.id)
                .collect();
            want.sort();
            let mut got = Vec::new();
            let mut opts = ListOptions::new()
                .filter(json!({"status": status}))
                .limit(3);
            loop {
                let page = self.c.list_by_meta(opts.clone()).await.unwrap();
                got.extend(page.items.iter().map(|r| r.id));
                match page.next_cursor {
                    Some(cur) => opts.cursor = Some(cur),
                    None => break,
                }
            }
            assert_eq!(got, want, "list_by_meta status={status}");
        }
    }
}

/// Runs `steps` against a fresh collection on `stores`, checking every read after every step.
pub fn run(stores: Stores, steps: Vec<Step>) {
    run_on(|| async move { stores }, steps)
}

/// Like [`run`], with the stores made inside the test's runtime (for drivers whose clients
/// belong to the runtime that created them).
pub fn run_on<F, Fut>(make: F, steps: Vec<Step>)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Stores>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let stores = make().await;
        let c = Engine::new(stores)
            .collection(CollectionConfig::new(crate::conformance::Harness::unique(
                "model",
            )))
            .await
            .expect("collection");
        let mut runner = Runner {
            c,
            records: Vec::new(),
            marks: Vec::new(),
            last_cv: 0,
        };
        for s in &steps {
            runner.step(s).await;
            runner.check().await;
            runner.marks.push(runner.last_cv);
        }
    });
}
