//! The differential filter test (invariant 8): random filters and sorts over random
//! documents must select and order the same records on a backend as on the in-memory
//! reference, and both must agree with `Filter::matches`. Backend crates drive
//! [`check`] from a proptest with [`doc`] and [`filter`].

use chronos_core::filter::canonical;
use chronos_core::{
    CollectionConfig, CreateOptions, Engine, Filter, ItemId, ListOptions, SortField, Stores,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const KEYS: &[&str] = &["a", "b", "c_d", "n1"];
/// The paths filters and sorts use.
pub const PATHS: &[&str] = &["a", "b", "c_d", "a.b", "a.c_d", "c_d.n1", "a.b.a", "n1"];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..4).prop_map(Value::from),
        prop::sample::select(vec![1.5f64, 2.0, -0.5, 3.0]).prop_map(Value::from),
        // Where backends used to disagree: beyond 2^53 (exact integers against floats),
        // the ends of i64, and beyond i64 (doubles everywhere).
        prop::sample::select(vec![
            json!(9007199254740993i64),
            json!(9007199254740992.0),
            json!(-9007199254740993i64),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(18446744073709551615u64),
            json!(18446744073709551614u64),
            json!(1e300),
        ]),
        // "[x" sorts among arrays' JSON texts, where SQLite's index probe looks for arrays.
        prop::sample::select(vec!["", "x", "xy", "Y", "é", "b", "[x"]).prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(KEYS.to_vec()), inner, 0..3).prop_map(
                |m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            ),
        ]
    })
}

/// Random documents over a few keys, nested up to three levels.
pub fn doc() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(prop::sample::select(KEYS.to_vec()), value(), 0..4)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn cond() -> impl Strategy<Value = Value> {
    prop_oneof![
        value(),
        scalar().prop_map(|v| json!({"$eq": v})),
        value().prop_map(|v| json!({"$ne": v})),
        (
            prop::sample::select(vec!["$gt", "$gte", "$lt", "$lte"]),
            scalar()
        )
            .prop_map(|(op, v)| json!({ op: v })),
        prop::collection::vec(value(), 0..3).prop_map(|v| json!({"$in": v})),
        prop::collection::vec(scalar(), 0..3).prop_map(|v| json!({"$nin": v})),
        any::<bool>().prop_map(|b| json!({"$exists": b})),
        (
            prop::sample::select(vec!["^x", "y$", "^$", "é", "^[bx]"]),
            prop::sample::select(vec!["", "i"])
        )
            .prop_map(|(p, o)| if o.is_empty() {
                json!({"$regex": p})
            } else {
                json!({"$regex": p, "$options": o})
            }),
        scalar().prop_map(|v| json!({"$not": {"$gte": v}})),
    ]
}

/// Random filters over [`PATHS`] with every operator, `$and` / `$or` nested.
pub fn filter() -> impl Strategy<Value = Value> {
    let leaf = (prop::sample::select(PATHS.to_vec()), cond()).prop_map(|(p, c)| json!({ p: c }));
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({"$and": v})),
            prop::collection::vec(inner, 1..3).prop_map(|v| json!({"$or": v})),
        ]
    })
}

/// Every page of `opts`, three records at a time; panics when paging fails or does not end.
async fn all_ids(c: &chronos_core::Collection, opts: ListOptions) -> Vec<ItemId> {
    let mut out = Vec::new();
    let mut opts = opts.limit(3);
    for _ in 0..100 {
        let page = c
            .list_by_meta(opts.clone())
            .await
            .unwrap_or_else(|e| panic!("paging {opts:?}: {e}"));
        out.extend(page.items.iter().map(|r| r.id));
        match page.next_cursor {
            Some(cur) => opts.cursor = Some(cur),
            None => return out,
        }
    }
    panic!("paging did not end after 100 pages: {out:?}");
}

/// Creates `docs` in a fresh collection of `stores` and of the in-memory reference, then
/// checks that every filter selects the same records on both as `Filter::matches` does, and
/// that sorting by `sort_path` (and by creation) orders them alike.
pub async fn check(
    stores: Stores,
    docs: Vec<Map<String, Value>>,
    filters: Vec<Value>,
    sort_path: &'static str,
    desc: bool,
) {
    let backend = Engine::new(stores);
    let memory = crate::memory_engine();
    // Every top-level key indexed (and `n`, of the number edges): backends answer through their indexes (SQLite splits
    // an indexed equality into index walks), and the filters stay on indexed fields.
    let cfg = CollectionConfig::new(crate::conformance::Harness::unique("diff"))
        .indexed_props(KEYS.iter().copied().chain(["n"]));
    let (s, m) = (
        backend.collection(cfg.clone()).await.unwrap(),
        memory.collection(cfg).await.unwrap(),
    );
    let mut ids = Vec::new();
    for d in &docs {
        let id = ItemId::generate();
        s.create(d, CreateOptions::new().id(id)).await.unwrap();
        m.create(d, CreateOptions::new().id(id)).await.unwrap();
        ids.push(id);
    }
    for f in &filters {
        let parsed = Filter::parse(f).unwrap();
        let mut want: Vec<ItemId> = ids
            .iter()
            .zip(&docs)
            .filter(|(_, d)| {
                parsed.matches(canonical(&Value::Object((*d).clone())).as_object().unwrap())
            })
            .map(|(id, _)| *id)
            .collect();
        want.sort();
        let got_s = all_ids(&s, ListOptions::new().filter(f.clone())).await;
        let got_m = all_ids(&m, ListOptions::new().filter(f.clone())).await;
        assert_eq!(got_m, want, "memory vs reference for {f}");
        assert_eq!(got_s, want, "backend vs reference for {f}");
        let sorted = ListOptions::new()
            .filter(f.clone())
            .sort_by_meta(sort_path, desc);
        assert_eq!(
            all_ids(&s, sorted.clone()).await,
            all_ids(&m, sorted).await,
            "order by {sort_path} for {f}"
        );
    }
    let by_created = ListOptions::new().sort(SortField::CreatedAt, desc);
    assert_eq!(
        all_ids(&s, by_created.clone()).await,
        all_ids(&m, by_created).await
    );
}

/// The values on which backends once disagreed, each against each with every comparison:
/// integers beyond 2^53 against floats, the ends of i64, numbers beyond i64.
pub async fn check_number_edges(stores: Stores) {
    let values = [
        json!(9007199254740992i64),
        json!(9007199254740993i64),
        json!(9007199254740992.0),
        json!(9007199254740994.0),
        json!(-9007199254740993i64),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(18446744073709551615u64),
        json!(18446744073709551614u64),
        json!(9.3e18),
        json!(1e300),
        json!(2),
        json!(2.5),
    ];
    let docs: Vec<Map<String, Value>> = values
        .iter()
        .map(|v| json!({ "n": v }).as_object().cloned().unwrap())
        .collect();
    let mut filters = Vec::new();
    for v in &values {
        for op in ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"] {
            filters.push(json!({ "n": { op: v } }));
        }
        filters.push(json!({ "n": { "$in": [v] } }));
    }
    check(stores, docs, filters, "n", false).await;
}

/// Equalities and short `$in`s on an indexed property against the values an index-based plan
/// could confuse: strings that sort among arrays' JSON texts (`"[x"`), arrays holding the
/// value, `1` beside `1.0`, duplicates inside one `$in`, paged three at a time.
pub async fn check_equality_edges(stores: Stores) {
    let values = [
        json!("x"),
        json!("[x"),
        json!("["),
        json!("\\"),
        json!(["x"]),
        json!(["[x", "y"]),
        json!([]),
        json!({"b": "[x"}),
        json!(1),
        json!(1.0),
        json!([1, "x"]),
        json!(null),
    ];
    let docs: Vec<Map<String, Value>> = values
        .iter()
        .chain(values.iter())
        .map(|v| json!({ "a": v }).as_object().cloned().unwrap())
        .collect();
    let filters = vec![
        json!({"a": "x"}),
        json!({"a": "[x"}),
        json!({"a": "["}),
        json!({"a": "\\"}),
        json!({"a": 1}),
        json!({"a": 1.0}),
        json!({"a": {"$in": ["x", "x"]}}),
        json!({"a": {"$in": ["[x", "x", "["]}}),
        json!({"a": {"$in": [1, 1.0]}}),
        json!({"a": {"$in": [1, "x"]}}),
        json!({"$and": [{"a": "x"}, {"a": {"$ne": "y"}}]}),
    ];
    check(stores, docs, filters, "a", true).await;
}
