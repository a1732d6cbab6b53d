//! Cases: metadata queries (filter, sort, keyset pagination, validation) and isolation.

use chronos_core::{
    CollectionConfig, CreateOptions, ErrorKind, ItemId, ListOptions, ReadOptions, SortField,
    WriteOptions,
};
use serde_json::{json, Value};

use super::{data, Harness};

async fn all_pages(c: &chronos_core::Collection, opts: ListOptions) -> Vec<chronos_core::Record> {
    let mut out = Vec::new();
    let mut opts = opts;
    let mut pages = 0;
    loop {
        let p = c.list_by_meta(opts.clone()).await.unwrap();
        assert!(p.items.len() <= opts.limit);
        out.extend(p.items);
        pages += 1;
        assert!(pages < 1000, "pagination does not terminate");
        match p.next_cursor {
            Some(cur) => opts.cursor = Some(cur),
            None => return out,
        }
    }
}

/// Filters run on indexed metadata; sort and keyset pagination return every match exactly
/// once, in order, across pages.
pub async fn list_filters_sorts_and_pages(h: Harness) {
    let c = h
        .collection(CollectionConfig::new("people").indexed_props(["status", "score", "addr.city"]))
        .await;
    let cities = ["Oslo", "Lima", "Rome"];
    let mut docs = Vec::new();
    for i in 0..25i64 {
        let status = if i % 2 == 0 { "active" } else { "inactive" };
        // Scores repeat so that ties exercise the id tie-break.
        let doc = json!({"status": status, "score": i % 7, "addr": {"city": cities[i as usize % 3]}, "secret": i});
        let w = c.create(&doc, CreateOptions::new()).await.unwrap();
        docs.push((w.id, doc));
    }
    let filter =
        json!({"status": "active", "score": {"$gte": 2}, "addr.city": {"$in": ["Oslo", "Rome"]}});
    let mut expected: Vec<(ItemId, Value)> = docs
        .iter()
        .filter(|(_, d)| {
            d["status"] == "active"
                && d["score"].as_i64().unwrap() >= 2
                && d["addr"]["city"] != "Lima"
        })
        .cloned()
        .collect();
    expected.sort_by(|(ia, a), (ib, b)| {
        b["score"]
            .as_i64()
            .cmp(&a["score"].as_i64())
            .then(ib.cmp(ia))
    });
    assert!(expected.len() >= 4, "the fixture must span several pages");
    let got = all_pages(
        &c,
        ListOptions::new()
            .filter(filter.clone())
            .sort_by_meta("score", true)
            .limit(2),
    )
    .await;
    let got_ids: Vec<ItemId> = got.iter().map(|r| r.id).collect();
    let exp_ids: Vec<ItemId> = expected.iter().map(|(id, _)| *id).collect();
    assert_eq!(got_ids, exp_ids);
    assert_eq!(data(&got[0]), expected[0].1, "list returns full records");

    // Default order is by id ascending; every record exactly once.
    let all = all_pages(&c, ListOptions::new().limit(7)).await;
    let mut ids: Vec<ItemId> = docs.iter().map(|(id, _)| *id).collect();
    ids.sort();
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), ids);

    // Built-in sort fields and projection.
    let by_created = all_pages(
        &c,
        ListOptions::new()
            .sort(SortField::CreatedAt, true)
            .limit(10),
    )
    .await;
    assert_eq!(by_created.len(), 25);
    for w in by_created.windows(2) {
        assert!(w[0].system.inserted_at >= w[1].system.inserted_at);
    }
    let projected = c
        .list_by_meta(
            ListOptions::new()
                .filter(json!({"score": 6}))
                .projection(["score"]),
        )
        .await
        .unwrap();
    assert!(!projected.items.is_empty());
    for r in &projected.items {
        assert_eq!(data(r), json!({"score": 6}));
    }
    let q = c
        .query(
            json!({"status": {"$ne": "active"}}),
            ListOptions::new().limit(100),
        )
        .await
        .unwrap();
    assert_eq!(q.items.len(), 12);
    assert!(q.next_cursor.is_none());
}

/// Bad queries are validation errors naming what is wrong.
pub async fn list_validates_inputs(h: Harness) {
    let c = h
        .collection(CollectionConfig::new("strict").indexed_props(["status"]))
        .await;
    for i in 0..3 {
        c.create(&json!({"status": "s", "other": i}), CreateOptions::new())
            .await
            .unwrap();
    }
    let cases = [
        (
            ListOptions::new().filter(json!({"other": 1})),
            "field 'other' is not indexed",
        ),
        (
            ListOptions::new().filter(json!({"status": {"$where": "x"}})),
            "'$where'",
        ),
        (
            ListOptions::new().sort_by_meta("other", false),
            "field 'other' is not indexed",
        ),
        (ListOptions::new().limit(0), "between 1 and 1000"),
        (ListOptions::new().limit(1001), "between 1 and 1000"),
        (
            ListOptions::new().cursor(Some("not-a-cursor!".into())),
            "invalid cursor",
        ),
    ];
    for (opts, needle) in cases {
        let e = c.list_by_meta(opts).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
    let page = c.list_by_meta(ListOptions::new().limit(1)).await.unwrap();
    let cursor = page.next_cursor.expect("more pages");
    let e = c
        .list_by_meta(
            ListOptions::new()
                .limit(1)
                .sort_by_meta("status", true)
                .cursor(Some(cursor)),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("different sort"), "{e}");
}

/// Queries see the latest version's metadata only, and skip deleted records by default.
pub async fn list_sees_latest_metadata_only(h: Harness) {
    let c = h.default_collection("latest").await;
    let a = c
        .create(&json!({"status": "draft"}), CreateOptions::new())
        .await
        .unwrap();
    let b = c
        .create(&json!({"status": "draft"}), CreateOptions::new())
        .await
        .unwrap();
    c.update(a.id, &json!({"status": "published"}), WriteOptions::new())
        .await
        .unwrap();
    c.delete(b.id, WriteOptions::new()).await.unwrap();
    let drafts = c
        .list_by_meta(ListOptions::new().filter(json!({"status": "draft"})))
        .await
        .unwrap();
    assert!(drafts.items.is_empty());
    let drafts = c
        .list_by_meta(
            ListOptions::new()
                .filter(json!({"status": "draft"}))
                .include_deleted(true),
        )
        .await
        .unwrap();
    assert_eq!(
        drafts.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [b.id]
    );
    let published = c
        .list_by_meta(ListOptions::new().filter(json!({"status": "published"})))
        .await
        .unwrap();
    assert_eq!(published.items.len(), 1);
    assert_eq!(published.items[0].system.ov, 1);
}

/// Two collections on the same stores never see each other's records.
pub async fn collections_are_isolated(h: Harness) {
    let a = h.default_collection("iso").await;
    let b = h.default_collection("iso").await;
    assert_ne!(a.name(), b.name());
    let w = a
        .create(&json!({"k": 1}), CreateOptions::new())
        .await
        .unwrap();
    assert!(b
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    assert!(b
        .list_by_meta(ListOptions::new())
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        b.update(w.id, &json!({"k": 2}), WriteOptions::new())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        a.list_by_meta(ListOptions::new())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

/// Collection names that differ only in case (or that start with a prefix a backend
/// reserves) are distinct collections on every backend: each sees only its own records, and
/// the same explicit id can exist in each.
pub async fn collection_names_are_case_sensitive(h: Harness) {
    let base = Harness::unique("case");
    let names = [
        base.clone(),
        base.to_uppercase(),
        format!("C{}", &base[1..]),
        format!("sqlite_{base}"),
        format!("SQLITE_{base}"),
    ];
    let id = chronos_core::ItemId::generate();
    let mut colls = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let c = h
            .engine()
            .collection(chronos_core::CollectionConfig::new(name.clone()))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        c.create(&json!({"n": n}), CreateOptions::new().id(id))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        c.create(&json!({"n": n, "second": true}), CreateOptions::new())
            .await
            .unwrap();
        colls.push(c);
    }
    for (n, c) in colls.iter().enumerate() {
        let got = c.get_latest(id, ReadOptions::new()).await.unwrap().unwrap();
        assert_eq!(got.data["n"], json!(n), "{}", c.name());
        let page = c.list_by_meta(ListOptions::new()).await.unwrap();
        assert_eq!(page.items.len(), 2, "{}", c.name());
        assert!(
            page.items.iter().all(|r| r.data["n"] == json!(n)),
            "{}",
            c.name()
        );
    }
}

/// Hostile filters and sorts: bad paths are validation errors naming them, filters above
/// the documented limits are validation errors naming the limit, and large ones within the
/// limits (a `$in` of 4,000 values, an `$or` of 1,500 terms) run and answer correctly.
pub async fn hostile_filters_get_clear_errors_or_work(h: Harness) {
    use chronos_core::filter::{MAX_FILTER_DEPTH, MAX_FILTER_TERMS};
    let c = h.default_collection("hostile").await;
    for n in 0..3 {
        c.create(
            &json!({"n": n, "tag": format!("t{n}")}),
            CreateOptions::new(),
        )
        .await
        .unwrap();
    }
    let bad_paths = ["a\u{0}b", "a\"b", "", "$x", "a..b", &"p".repeat(600)];
    for p in bad_paths {
        let e = c
            .list_by_meta(ListOptions::new().filter(json!({ p: 1 })))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation, "filter {p:?}: {e}");
        let e = c
            .list_by_meta(ListOptions::new().sort_by_meta(p, false))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation, "sort {p:?}: {e}");
    }
    let ids = |page: chronos_core::Page| {
        let mut v: Vec<i64> = page
            .items
            .iter()
            .map(|r| r.data["n"].as_i64().unwrap())
            .collect();
        v.sort();
        v
    };
    let mut many: Vec<serde_json::Value> = (1000..5000).map(|i| json!(i)).collect();
    many.push(json!(2));
    let page = c
        .list_by_meta(ListOptions::new().filter(json!({"n": {"$in": many}})))
        .await
        .unwrap();
    assert_eq!(ids(page), [2]);
    let ors: Vec<serde_json::Value> = (0..1500).map(|i| json!({"tag": format!("t{i}")})).collect();
    let page = c
        .list_by_meta(ListOptions::new().filter(json!({"$or": ors})))
        .await
        .unwrap();
    assert_eq!(ids(page), [0, 1, 2]);

    let too_many: Vec<serde_json::Value> = (0..MAX_FILTER_TERMS + 1).map(|i| json!(i)).collect();
    let e = c
        .list_by_meta(ListOptions::new().filter(json!({"n": {"$in": too_many}})))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    assert!(e.to_string().contains(&MAX_FILTER_TERMS.to_string()), "{e}");
    let mut deep = json!({"n": 1});
    for _ in 0..MAX_FILTER_DEPTH + 2 {
        deep = json!({ "$and": [deep] });
    }
    let e = c
        .list_by_meta(ListOptions::new().filter(deep))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    assert!(e.to_string().contains(&MAX_FILTER_DEPTH.to_string()), "{e}");
}
