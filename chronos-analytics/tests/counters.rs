//! Exact counters on every backend (memory, SQLite, MongoDB): the spec's `getTotals`
//! example, 8 concurrent writers with every counter write and every commit acknowledgement
//! failing once, recovery of writes no observer counted, debouncing, and 100,000 distinct
//! values without a large document.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chronos_analytics::{CounterRule, Counters, Rules, TotalsKey};
use chronos_core::{
    CollectionConfig, CreateOptions, DocQuery, DocUpdate, Document, DocumentStore, Engine, Error,
    Filter, ItemId, Result, WriteOptions,
};
use chronos_testkit::conformance::Harness;
use chronos_testkit::fault::{faulty, FaultMode, FaultPlan};
use serde_json::{json, Value};

fn spec_rules() -> Vec<CounterRule> {
    serde_json::from_value(json!([
        { "name": "user_logins", "on": ["CREATE"], "scope": "meta",
          "when": { "action": "login" }, "countUnique": ["sessionId"] },
        { "name": "product_views", "on": ["CREATE"], "scope": "meta",
          "when": { "action": "view" }, "countUnique": ["productId", "category", "brand"] },
        { "name": "premium_purchases", "on": ["CREATE"], "scope": "meta",
          "when": { "userTier": "premium", "action": "purchase", "amount": { "$gte": 100 } },
          "countUnique": ["productId", "category"] }
    ]))
    .unwrap()
}

/// The spec's events: 150 logins over 45 sessions, 650 views over 150 products / 25
/// categories / 12 brands, 200 premium purchases of at least 100 over 75 products / 15
/// categories (the spec's own numbers add up to 1,150 creates for three disjoint rules;
/// these keep its unique counts with 1,000 creates).
fn event(i: usize) -> Value {
    match i {
        0..150 => json!({"action": "login", "sessionId": format!("s{}", i % 45)}),
        150..800 => json!({"action": "view", "productId": format!("p{}", i % 150),
            "category": format!("c{}", i % 25), "brand": format!("b{}", i % 12)}),
        _ => json!({"action": "purchase", "userTier": "premium", "amount": 100 + i,
            "productId": format!("p{}", i % 75), "category": format!("c{}", i % 15)}),
    }
}

/// A rule, how many creates it counts, and its distinct values per property.
type Expected = (&'static str, u64, Vec<(&'static str, usize)>);

/// What `spec_rules` must count for the first `n` of [`event`]: (rule, created, unique per
/// property) — an oracle computed from the events themselves.
fn oracle(n: usize) -> Vec<Expected> {
    let evs: Vec<Value> = (0..n).map(event).collect();
    oracle_of(&evs)
}

#[test]
fn the_oracle_reproduces_the_spec_numbers() {
    let o = oracle(1000);
    assert_eq!(o[0], ("user_logins", 150, vec![("sessionId", 45)]));
    assert_eq!(
        o[1],
        (
            "product_views",
            650,
            vec![("productId", 150), ("category", 25), ("brand", 12)]
        )
    );
    assert_eq!(
        o[2],
        (
            "premium_purchases",
            200,
            vec![("productId", 75), ("category", 15)]
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_get_totals_example_on_every_backend() {
    let (backends, _dir) = common::harnesses().await;
    for (name, h) in backends {
        // The full example on the embedded backends; a tenth of it on the MongoDB test
        // server, whose writes slow down as its data grows (see the closing notes).
        let scale = if name == "mongodb" { 10 } else { 1 };
        let (creates, updates, deletes) = (1000 / scale, 500 / scale, 50 / scale);
        let counters = Counters::new(h.docs.clone(), Rules::compile(&spec_rules()).unwrap(), None);
        let (c, key) = common::counted(h.engine(), &counters, &Harness::unique("events")).await;
        // Events in the order of `event`, spread over 8 writers.
        let order: Vec<usize> = (0..1000).step_by(scale).collect();
        let tasks: Vec<_> = (0..8)
            .map(|w| {
                let c = c.clone();
                let mine: Vec<usize> = order.iter().copied().skip(w).step_by(8).collect();
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for i in mine {
                        ids.push(c.create(&event(i), CreateOptions::new()).await.unwrap().id);
                    }
                    ids
                })
            })
            .collect();
        let mut ids: Vec<ItemId> = Vec::new();
        for t in tasks {
            ids.extend(t.await.unwrap());
        }
        for id in &ids[..updates] {
            c.update(*id, &json!({"action": "seen"}), WriteOptions::new())
                .await
                .unwrap();
        }
        for id in &ids[updates..updates + deletes] {
            c.delete(*id, WriteOptions::new()).await.unwrap();
        }
        let evs: Vec<Value> = order.iter().map(|i| event(*i)).collect();
        let expected = |t: &chronos_analytics::Totals| {
            let n = |v: usize| v as u64;
            assert_eq!(
                (t.counts.created, t.counts.updated, t.counts.deleted),
                (n(creates), n(updates), n(deletes)),
                "{name}"
            );
            for (rule, created, uniques) in oracle_of(&evs) {
                assert_eq!(t.rules[rule].counts.created, created, "{name} {rule}");
                for (p, u) in uniques {
                    assert_eq!(t.rules[rule].unique[p], u as u64, "{name} {rule}.{p}");
                }
            }
            assert!(t.last_at.is_some());
        };
        // Visible when the writes returned, before any fold finished.
        let t = counters.get_totals(&key, true).await.unwrap();
        expected(&t);
        assert_eq!(
            t.id,
            format!(
                "tenant:tenant-a|db:chronos_runtime_tenant_a|coll:{}",
                key.collection
            )
        );
        let shown = serde_json::to_value(&t).unwrap();
        assert_eq!(shown["created"], json!(creates));
        if scale == 1 {
            assert_eq!(
                shown["rules"]["user_logins"]["unique"]["sessionId"],
                json!(45)
            );
            assert_eq!(shown["rules"]["product_views"]["created"], json!(650));
        }
        // Folding and rebuilding from the version log change nothing.
        counters.catch_up(&key, &c).await.unwrap();
        expected(&counters.get_totals(&key, true).await.unwrap());
        let rebuilt = counters.recount(&key, &c).await.unwrap();
        assert_eq!(
            rebuilt.versions as usize,
            creates + updates + deletes,
            "{name}"
        );
        expected(&counters.get_totals(&key, true).await.unwrap());
        let brands = oracle_of(&evs)[1].2[2].1;
        let u = counters
            .get_unique_analytics(&key, "product_views", "brand", 5)
            .await
            .unwrap();
        assert_eq!((u.count as usize, u.values.len()), (brands, brands.min(5)));
        let e = counters
            .get_unique_analytics(&key, "product_views", "nope", 1)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        counters.reset_totals(&key).await.unwrap();
        let zero = counters.get_totals(&key, true).await.unwrap();
        assert_eq!(zero.counts, Default::default(), "{name}");
        assert_eq!(zero.rules["product_views"].unique["brand"], 0);
        c.create(&event(0), CreateOptions::new()).await.unwrap();
        assert_eq!(
            counters
                .get_totals(&key, false)
                .await
                .unwrap()
                .counts
                .created,
            1
        );
    }
}

/// [`oracle`] over given events.
fn oracle_of(evs: &[Value]) -> Vec<Expected> {
    let pick = |action: &str| {
        evs.iter()
            .filter(|e| e["action"] == action)
            .collect::<Vec<_>>()
    };
    let distinct = |es: &[&Value], p: &str| {
        es.iter()
            .map(|e| e[p].to_string())
            .collect::<HashSet<_>>()
            .len()
    };
    let (l, v, p) = (pick("login"), pick("view"), pick("purchase"));
    vec![
        (
            "user_logins",
            l.len() as u64,
            vec![("sessionId", distinct(&l, "sessionId"))],
        ),
        (
            "product_views",
            v.len() as u64,
            vec![
                ("productId", distinct(&v, "productId")),
                ("category", distinct(&v, "category")),
                ("brand", distinct(&v, "brand")),
            ],
        ),
        (
            "premium_purchases",
            p.len() as u64,
            vec![
                ("productId", distinct(&p, "productId")),
                ("category", distinct(&p, "category")),
            ],
        ),
    ]
}

/// A document store that fails every write once *after* doing it (the acknowledgement is
/// lost): each insert of a new id, and every other conditional update.
#[derive(Debug)]
struct LosesAcks {
    inner: Arc<dyn DocumentStore>,
    seen: Mutex<HashSet<String>>,
    updates: Mutex<u64>,
}

fn lost() -> Error {
    Error::unavailable("injected: acknowledgement lost")
}

#[async_trait]
impl DocumentStore for LosesAcks {
    async fn insert(&self, c: &str, d: Document) -> Result<()> {
        let first = self.seen.lock().unwrap().insert(format!("{c}/{}", d.id));
        let r = self.inner.insert(c, d).await;
        if first && r.is_ok() {
            return Err(lost());
        }
        r
    }
    async fn get(&self, c: &str, id: &str) -> Result<Option<Document>> {
        self.inner.get(c, id).await
    }
    async fn replace(&self, c: &str, d: Document, upsert: bool) -> Result<bool> {
        self.inner.replace(c, d, upsert).await
    }
    async fn update(
        &self,
        c: &str,
        id: &str,
        u: DocUpdate,
        upsert: bool,
    ) -> Result<Option<Document>> {
        self.inner.update(c, id, u, upsert).await
    }
    async fn update_where(
        &self,
        c: &str,
        id: &str,
        f: &Filter,
        u: DocUpdate,
    ) -> Result<Option<Document>> {
        let r = self.inner.update_where(c, id, f, u).await;
        let n = {
            let mut g = self.updates.lock().unwrap();
            *g += 1;
            *g
        };
        if n % 2 == 1 && r.is_ok() {
            return Err(lost());
        }
        r
    }
    async fn delete(&self, c: &str, id: &str) -> Result<bool> {
        self.inner.delete(c, id).await
    }
    async fn find(&self, c: &str, q: &DocQuery) -> Result<Vec<Document>> {
        self.inner.find(c, q).await
    }
    async fn count(&self, c: &str, f: &Filter) -> Result<u64> {
        self.inner.count(c, f).await
    }
    async fn delete_where(&self, c: &str, f: &Filter) -> Result<u64> {
        self.inner.delete_where(c, f).await
    }
    async fn prepare(&self, c: &str, l: &chronos_core::DocLayout) -> Result<()> {
        self.inner.prepare(c, l).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_writers_count_exactly_through_lost_acknowledgements() {
    let (backends, _dir) = common::harnesses().await;
    for (name, h) in backends {
        let docs = Arc::new(LosesAcks {
            inner: h.docs.clone(),
            seen: Mutex::default(),
            updates: Mutex::default(),
        });
        let rules: Vec<CounterRule> = serde_json::from_value(json!([
            {"name": "odd", "when": {"odd": true}, "countUnique": ["w"]}
        ]))
        .unwrap();
        let counters = Counters::new(docs, Rules::compile(&rules).unwrap(), None);
        // Every commit acknowledgement is lost once: the engine reads each version back.
        let plan = FaultPlan::new();
        plan.fail_every("commit_prepared", FaultMode::After);
        let engine = Engine::new(faulty(&h.stores, &plan));
        let (c, key) = common::counted(engine, &counters, &Harness::unique("writers")).await;
        let per = if name == "mongodb" { 40 } else { 500 };
        let tasks: Vec<_> = (0..8u64)
            .map(|w| {
                let c = c.clone();
                tokio::spawn(async move {
                    for i in 0..per {
                        c.create(&json!({"w": w, "odd": i % 2 == 1}), CreateOptions::new())
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        // Three more folders at once, as three other processes would run catch_up.
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let folders: Vec<_> = (0..3)
            .map(|_| {
                let (counters, key, c, done) =
                    (counters.clone(), key.clone(), c.clone(), done.clone());
                tokio::spawn(async move {
                    while !done.load(std::sync::atomic::Ordering::Acquire) {
                        counters.catch_up(&key, &c).await.unwrap();
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        for f in folders {
            f.await.unwrap();
        }
        let total = 8 * per;
        let t = counters.get_totals(&key, true).await.unwrap();
        assert_eq!(
            t.counts.created, total,
            "{name}: every write counted once on return"
        );
        assert_eq!(t.rules["odd"].counts.created, total / 2, "{name}");
        assert_eq!(t.rules["odd"].unique["w"], 8, "{name}");
        plan.clear();
        counters.catch_up(&key, &c).await.unwrap();
        let t = counters.get_totals(&key, true).await.unwrap();
        assert_eq!(t.counts.created, total, "{name}: folding keeps it exact");
        assert_eq!(t.rules["odd"].counts.created, total / 2, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_no_observer_counted_are_recovered_from_the_feed() {
    let (backends, _dir) = common::harnesses().await;
    for (name, h) in backends {
        let rules: Vec<CounterRule> = serde_json::from_value(json!([
            {"name": "big", "scope": "payload", "when": {"n": {"$gte": 5}}, "countUnique": ["tag"]}
        ]))
        .unwrap();
        let counters = Counters::new(h.docs.clone(), Rules::compile(&rules).unwrap(), None);
        let coll = Harness::unique("recover");
        // A process that died before counting: the same collection written with no observer.
        let uncounted = h
            .engine()
            .collection(CollectionConfig::new(&coll))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for n in 0..10 {
            ids.push(
                uncounted
                    .create(&json!({"n": n, "tag": n % 3}), CreateOptions::new())
                    .await
                    .unwrap()
                    .id,
            );
        }
        uncounted.delete(ids[0], WriteOptions::new()).await.unwrap();
        let (c, key) = common::counted(h.engine(), &counters, &coll).await;
        c.update(ids[1], &json!({"n": 7, "tag": 9}), WriteOptions::new())
            .await
            .unwrap();
        let before = counters.get_totals(&key, true).await.unwrap();
        assert_eq!(
            before.counts.updated, 1,
            "{name}: only the counted write so far"
        );
        let r = counters.catch_up(&key, &c).await.unwrap();
        assert_eq!((r.versions, r.recovered), (12, 11), "{name}");
        let t = counters.get_totals(&key, true).await.unwrap();
        assert_eq!(
            (t.counts.created, t.counts.updated, t.counts.deleted),
            (10, 1, 1),
            "{name}"
        );
        // n >= 5: creates 5..9 and the update of ids[1] to 7.
        assert_eq!(t.rules["big"].counts.created, 5, "{name}");
        assert_eq!(t.rules["big"].counts.updated, 1, "{name}");
        // Tags of n 5..9 are 2,0,1,2,0 → {0,1,2}; the update adds 9.
        assert_eq!(t.rules["big"].unique["tag"], 4, "{name}");
        // Catching up again finds nothing new.
        assert_eq!(counters.catch_up(&key, &c).await.unwrap().versions, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debounced_counters_fold_once_per_window() {
    let (backends, _dir) = common::harnesses().await;
    for (name, h) in backends {
        let counters = Counters::new(
            h.docs.clone(),
            Rules::default(),
            Some(Duration::from_millis(50)),
        );
        let (c, key) = common::counted(h.engine(), &counters, &Harness::unique("debounced")).await;
        for n in 0..40 {
            c.create(&json!({"n": n}), CreateOptions::new())
                .await
                .unwrap();
        }
        let mut seen = 0;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            seen = counters
                .get_totals(&key, false)
                .await
                .unwrap()
                .counts
                .created;
            if seen == 40 {
                break;
            }
        }
        assert_eq!(
            seen, 40,
            "{name}: the window's fold applied every write once"
        );
        // Nothing was recorded per write: no delta documents.
        let q = DocQuery {
            filter: Filter::parse(&Value::Null).unwrap(),
            sort: None,
            skip: 0,
            limit: 10,
        };
        assert!(h
            .docs
            .find(chronos_analytics::layout::DELTAS, &q)
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_distinct_values_stay_exact_and_small() {
    let h = chronos_testkit::memory_harness().await;
    let rules: Vec<CounterRule> = serde_json::from_value(json!([
        {"name": "sessions", "when": {}, "countUnique": ["sessionId"]}
    ]))
    .unwrap();
    let counters = Counters::new(h.docs.clone(), Rules::compile(&rules).unwrap(), None);
    let (c, key) = common::counted(h.engine(), &counters, "sessions").await;
    let tasks: Vec<_> = (0..4u64)
        .map(|w| {
            let c = c.clone();
            tokio::spawn(async move {
                for i in 0..25_000u64 {
                    let s = w * 25_000 + i;
                    c.create(
                        &json!({"sessionId": format!("sess-{s}")}),
                        CreateOptions::new(),
                    )
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // Values seen before add nothing.
    for s in 0..1_000 {
        c.create(
            &json!({"sessionId": format!("sess-{s}")}),
            CreateOptions::new(),
        )
        .await
        .unwrap();
    }
    counters.catch_up(&key, &c).await.unwrap();
    let u = counters
        .get_unique_analytics(&key, "sessions", "sessionId", 0)
        .await
        .unwrap();
    assert_eq!(u.count, 100_000, "distinct values, exactly");
    let t = counters.get_totals(&key, true).await.unwrap();
    assert_eq!(t.counts.created, 101_000);
    assert_eq!(t.rules["sessions"].unique["sessionId"], 100_000);
    // No stored document grows with the number of values.
    let mut largest: HashMap<String, usize> = HashMap::new();
    let all = |limit| DocQuery {
        filter: Filter::parse(&Value::Null).unwrap(),
        sort: None,
        skip: 0,
        limit,
    };
    for coll in [
        chronos_analytics::layout::TOTALS.to_string(),
        chronos_analytics::layout::DELTAS.to_string(),
        key.unique_collection("sessions", "sessionId"),
    ] {
        for d in h.docs.find(&coll, &all(200_000)).await.unwrap() {
            let n = serde_json::to_vec(&d.body).unwrap().len();
            let e = largest.entry(coll.clone()).or_default();
            *e = (*e).max(n);
        }
    }
    assert!(largest.values().all(|n| *n < 64 * 1024), "{largest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_folds_never_double_count() {
    let (backends, _dir) = common::harnesses().await;
    for (name, h) in backends {
        let counters = Counters::new(h.docs.clone(), Rules::default(), None);
        let coll = Harness::unique("folds");
        let uncounted = h
            .engine()
            .collection(CollectionConfig::new(&coll))
            .await
            .unwrap();
        for n in 0..300 {
            uncounted
                .create(&json!({"n": n}), CreateOptions::new())
                .await
                .unwrap();
        }
        let key = TotalsKey::new("tenant-a", "chronos_runtime_tenant_a", &coll);
        // Four processes recovering the same backlog at once.
        let folds: Vec<_> = (0..4)
            .map(|_| {
                let (counters, key, c) = (counters.clone(), key.clone(), uncounted.clone());
                tokio::spawn(async move { counters.catch_up(&key, &c).await.unwrap() })
            })
            .collect();
        let mut folded = 0;
        for f in folds {
            folded += f.await.unwrap().versions;
        }
        assert_eq!(
            folded, 300,
            "{name}: each version folded by exactly one of them"
        );
        let t = counters.get_totals(&key, false).await.unwrap();
        assert_eq!(t.counts.created, 300, "{name}");
    }
}
