//! Invariant 8: random filters (and sorts) over random documents give identical results on
//! SQLite and on the in-memory reference, and both agree with `Filter::matches`.

use std::sync::Arc;

use chronos_core::filter::canonical;
use chronos_core::{
    CollectionConfig, CreateOptions, Engine, Filter, ItemId, ListOptions, SortField, Stores,
};
use chronos_store_sqlite::SqliteBackend;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const KEYS: &[&str] = &["a", "b", "c_d", "n1"];
const PATHS: &[&str] = &["a", "b", "c_d", "a.b", "a.c_d", "c_d.n1", "a.b.a", "n1"];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..4).prop_map(Value::from),
        prop::sample::select(vec![1.5f64, 2.0, -0.5, 3.0]).prop_map(Value::from),
        prop::sample::select(vec!["", "x", "xy", "Y", "é", "b"]).prop_map(Value::from),
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

fn doc() -> impl Strategy<Value = Map<String, Value>> {
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

fn filter() -> impl Strategy<Value = Value> {
    let leaf = (prop::sample::select(PATHS.to_vec()), cond()).prop_map(|(p, c)| json!({ p: c }));
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({"$and": v})),
            prop::collection::vec(inner, 1..3).prop_map(|v| json!({"$or": v})),
        ]
    })
}

async fn all_ids(c: &chronos_core::Collection, opts: ListOptions) -> Vec<ItemId> {
    let mut out = Vec::new();
    let mut opts = opts.limit(3);
    loop {
        let page = c.list_by_meta(opts.clone()).await.unwrap();
        out.extend(page.items.iter().map(|r| r.id));
        match page.next_cursor {
            Some(cur) => opts.cursor = Some(cur),
            None => return out,
        }
    }
}

fn check(docs: Vec<Map<String, Value>>, filters: Vec<Value>, sort_path: &'static str, desc: bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let db = SqliteBackend::open("sqlite::memory:").await.unwrap();
        let blob: Arc<dyn chronos_core::BlobStore> =
            Arc::new(chronos_testkit::MemoryBlobStore::new());
        let sqlite = Engine::new(Stores {
            index: db.index(),
            blob: blob.clone(),
            lock: db.lock(),
        });
        let memory = chronos_testkit::memory_engine();
        let cfg = CollectionConfig::new("diff");
        let (s, m) = (
            sqlite.collection(cfg.clone()).await.unwrap(),
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
            assert_eq!(got_s, want, "sqlite vs reference for {f}");
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
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn sqlite_filters_match_the_reference(
        docs in prop::collection::vec(doc(), 0..12),
        filters in prop::collection::vec(filter(), 1..5),
        sort_path in prop::sample::select(PATHS.to_vec()),
        desc in any::<bool>(),
    ) {
        check(docs, filters, sort_path, desc);
    }
}
