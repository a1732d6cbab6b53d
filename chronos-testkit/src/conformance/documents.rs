//! Cases of the document store: conditional updates are compare-and-set, bulk deletes and
//! layouts change no result, and sorts follow the canonical order.

use chronos_core::{DocUpdate, Document, Filter};
use serde_json::{json, Map, Value};

use super::Harness;

fn body(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

fn set(path: &str, v: Value) -> DocUpdate {
    DocUpdate {
        set: vec![(path.into(), v)],
        inc: vec![],
    }
}

/// A matching precondition applies the update; a failing one or a missing document changes
/// nothing; 8 tasks advancing one version field by compare-and-set never both win a step.
pub async fn document_conditional_updates_are_compare_and_set(h: Harness) {
    let coll = Harness::unique("cas");
    let d = &h.docs;
    d.insert(
        &coll,
        Document {
            id: "a".into(),
            body: body(json!({"v": 0, "n": 0})),
        },
    )
    .await
    .unwrap();
    let at = |v: i64| Filter::parse(&json!({"v": v})).unwrap();
    let missing = d
        .update_where(&coll, "nope", &at(0), set("v", json!(1)))
        .await
        .unwrap();
    assert!(missing.is_none(), "a missing document is not created");
    assert!(d.get(&coll, "nope").await.unwrap().is_none());
    let stale = d
        .update_where(&coll, "a", &at(5), set("v", json!(6)))
        .await
        .unwrap();
    assert!(stale.is_none(), "a failed precondition reports None");
    assert_eq!(
        d.get(&coll, "a").await.unwrap().unwrap().body["v"],
        json!(0)
    );

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let d = d.clone();
            let coll = coll.clone();
            tokio::spawn(async move {
                let mut wins = 0u64;
                while wins < 5 {
                    let cur = d.get(&coll, "a").await.unwrap().unwrap();
                    let v = cur.body["v"].as_i64().unwrap();
                    let step = DocUpdate {
                        set: vec![("v".into(), json!(v + 1))],
                        inc: vec![("n".into(), 1.into())],
                    };
                    let expect = Filter::parse(&json!({"v": v})).unwrap();
                    if let Some(after) = d.update_where(&coll, "a", &expect, step).await.unwrap() {
                        assert_eq!(after.body["v"], json!(v + 1));
                        wins += 1;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let end = d.get(&coll, "a").await.unwrap().unwrap();
    assert_eq!(end.body["v"], json!(40), "every step won exactly once");
    assert_eq!(end.body["n"], json!(40), "no increment lost or doubled");
}

/// `delete_where` removes exactly what `find` returns for its filter and reports the count;
/// a declared layout (indexes, date fields) changes no result: dates read back as the text
/// written, compare and sort as that text, and a non-instant in a date field is kept as given.
pub async fn document_bulk_deletes_and_layouts(h: Harness) {
    use chronos_core::{DocLayout, DocQuery, SortField};
    let coll = Harness::unique("layout");
    let d = &h.docs;
    let layout = DocLayout::new([vec!["tenantId", "at"]], &["at", "other"]);
    d.prepare(&coll, &layout).await.unwrap();
    // Idempotent, also from a second caller at once.
    let (a, b) = tokio::join!(d.prepare(&coll, &layout), d.prepare(&coll, &layout));
    a.unwrap();
    b.unwrap();
    let at = |i: u64| format!("2026-01-02T03:04:{:02}.{:03}Z", i % 60, i * 7 % 1000);
    for i in 0..30u64 {
        let body = json!({"tenantId": if i % 3 == 0 { "a" } else { "b" }, "at": at(i), "i": i,
                          "other": if i == 5 { "not a date" } else { "2026-01-02T03:04:05Z" }});
        d.insert(
            &coll,
            Document {
                id: format!("d{i:02}"),
                body: body.as_object().cloned().unwrap(),
            },
        )
        .await
        .unwrap();
    }
    let got = d.get(&coll, "d07").await.unwrap().unwrap();
    assert_eq!(got.body["at"], json!(at(7)), "a date reads back as written");
    assert_eq!(
        got.body["other"],
        json!("2026-01-02T03:04:05Z"),
        "a non-canonical instant is kept as given"
    );
    let odd = d.get(&coll, "d05").await.unwrap().unwrap();
    assert_eq!(odd.body["other"], json!("not a date"));

    let q = |f: Value, desc: bool| DocQuery {
        filter: Filter::parse(&f).unwrap(),
        sort: Some((SortField::Meta("at".into()), desc)),
        skip: 0,
        limit: 100,
    };
    let ids = |docs: Vec<Document>| docs.into_iter().map(|d| d.id).collect::<Vec<_>>();
    let newest = ids(d
        .find(
            &coll,
            &q(json!({"tenantId": "a", "at": {"$gte": at(9)}}), true),
        )
        .await
        .unwrap());
    let mut expect: Vec<u64> = (0..30).filter(|i| i % 3 == 0 && at(*i) >= at(9)).collect();
    expect.sort_by_key(|i| std::cmp::Reverse(at(*i)));
    assert_eq!(
        newest,
        expect
            .iter()
            .map(|i| format!("d{i:02}"))
            .collect::<Vec<_>>(),
        "dates filter and sort as their text"
    );

    let stale = Filter::parse(&json!({"at": {"$lt": at(10)}})).unwrap();
    let doomed = d.count(&coll, &stale).await.unwrap();
    assert_eq!(doomed, 10);
    assert_eq!(
        d.delete_where(&coll, &stale).await.unwrap(),
        doomed,
        "reports how many it deleted"
    );
    assert_eq!(d.count(&coll, &stale).await.unwrap(), 0);
    assert_eq!(
        d.count(&coll, &Filter::All).await.unwrap(),
        20,
        "nothing else is touched"
    );
    assert!(d.get(&coll, "d09").await.unwrap().is_none());
    assert!(d.get(&coll, "d10").await.unwrap().is_some());
    assert_eq!(
        d.delete_where(&coll, &stale).await.unwrap(),
        0,
        "a second run deletes nothing"
    );
    let other = Harness::unique("layout-other");
    assert_eq!(
        d.delete_where(&other, &Filter::All).await.unwrap(),
        0,
        "a missing collection deletes nothing"
    );
}

/// `find` sorted by a body path orders every kind of value as the canonical order does
/// (`chronos_core::filter::canonical_cmp`, then the id) — arrays, objects and paths through
/// arrays included — and paging with `skip` visits each document once, in both directions.
pub async fn document_sorts_follow_the_canonical_order(h: Harness) {
    use chronos_core::filter::{canonical, canonical_cmp, get_path};
    use chronos_core::{DocQuery, SortField};
    let coll = Harness::unique("docsort");
    let d = &h.docs;
    let bodies = sort_edge_documents();
    let mut docs = Vec::new();
    for (n, b) in bodies.into_iter().enumerate() {
        let doc = Document {
            id: format!("d{n:02}"),
            body: body(b),
        };
        d.insert(&coll, doc.clone()).await.unwrap();
        docs.push(doc);
    }
    for path in ["t", "o.t", "o"] {
        for desc in [false, true] {
            let mut want: Vec<(String, Value)> = docs
                .iter()
                .map(|doc| {
                    let c = canonical(&Value::Object(doc.body.clone()));
                    let key = get_path(c.as_object().unwrap(), path)
                        .cloned()
                        .unwrap_or(Value::Null);
                    (doc.id.clone(), key)
                })
                .collect();
            want.sort_by(|(ia, a), (ib, b)| {
                let o = canonical_cmp(Some(a), Some(b)).then(ia.cmp(ib));
                if desc {
                    o.reverse()
                } else {
                    o
                }
            });
            let want: Vec<String> = want.into_iter().map(|(id, _)| id).collect();
            let mut got = Vec::new();
            loop {
                let page = d
                    .find(
                        &coll,
                        &DocQuery {
                            filter: Filter::parse(&json!({})).unwrap(),
                            sort: Some((SortField::Meta(path.into()), desc)),
                            skip: got.len(),
                            limit: 4,
                        },
                    )
                    .await
                    .unwrap();
                if page.is_empty() {
                    break;
                }
                got.extend(page.into_iter().map(|doc| doc.id));
                assert!(
                    got.len() <= want.len(),
                    "paging by {path} repeats documents"
                );
            }
            assert_eq!(got, want, "sorted by {path}, descending {desc}");
        }
    }
}

/// Bodies whose `t`, `o.t` and `o` hold every kind of value — scalars, arrays, objects,
/// arrays of arrays and of objects — reached through objects and through arrays: what a sort
/// by those paths must order as [`chronos_core::filter::canonical_cmp`] does on every backend.
pub fn sort_edge_documents() -> Vec<Value> {
    let values = [
        json!([3, 1]),
        json!([2]),
        json!([]),
        json!(["b", 1]),
        json!([[0]]),
        json!("m"),
        json!(5),
        json!(-1.5),
        json!(null),
        json!({"x": 1}),
        json!({"x": 10}),
        json!({"x": 9, "a": 2}),
        json!(true),
        json!([{"t": 4}, {"t": 0}]),
    ];
    let mut docs = Vec::new();
    for (i, v) in values.iter().enumerate() {
        docs.push(json!({ "t": v, "i": i }));
        docs.push(json!({ "o": { "t": v }, "t": [v], "i": i }));
        docs.push(json!({ "o": [{ "t": v }], "i": i }));
    }
    docs.push(json!({"i": 99}));
    docs
}
