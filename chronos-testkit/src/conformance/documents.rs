//! Case: the document store's conditional update (`update_where`) is a compare-and-set.

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
