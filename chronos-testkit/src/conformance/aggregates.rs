//! Cases: aggregates over current records (`IndexStore::aggregate` through
//! `Collection::aggregate`) against a brute force over the same records.

use std::collections::BTreeMap;

use chronos_core::{
    AggregateOp, CollectionConfig, CreateOptions, ErrorKind, ItemId, Timestamp, Window,
    WriteOptions,
};
use serde_json::{json, Value};

use super::Harness;

const OPS: [AggregateOp; 7] = [
    AggregateOp::Count,
    AggregateOp::CountDistinct,
    AggregateOp::Sum,
    AggregateOp::Avg,
    AggregateOp::Min,
    AggregateOp::Max,
    AggregateOp::Median,
];

/// The brute force: the aggregate of `field` over `docs` (already filtered), written
/// independently of the library's own fold.
fn brute(op: AggregateOp, field: &str, docs: &[&Value]) -> Option<f64> {
    let vals: Vec<&Value> = docs
        .iter()
        .filter_map(|d| d.get(field))
        .filter(|v| !v.is_null())
        .collect();
    let mut nums: Vec<f64> = vals
        .iter()
        .filter(|v| v.is_number())
        .map(|v| v.as_f64().unwrap())
        .collect();
    nums.sort_by(|a, b| a.partial_cmp(b).unwrap());
    match op {
        AggregateOp::Count => Some(docs.len() as f64),
        AggregateOp::CountDistinct => {
            let mut keys: Vec<String> = vals
                .iter()
                .map(|v| match v.as_f64() {
                    Some(x) if v.is_number() => format!("n{x}"),
                    _ => format!("j{}", chronos_core::filter::canonical_text(v)),
                })
                .collect();
            keys.sort();
            keys.dedup();
            Some(keys.len() as f64)
        }
        AggregateOp::Sum => Some(nums.iter().sum()),
        AggregateOp::Avg => {
            (!nums.is_empty()).then(|| nums.iter().sum::<f64>() / nums.len() as f64)
        }
        AggregateOp::Min => nums.first().copied(),
        AggregateOp::Max => nums.last().copied(),
        AggregateOp::Median => match nums.len() {
            0 => None,
            n if n % 2 == 1 => Some(nums[n / 2]),
            n => Some((nums[n / 2 - 1] + nums[n / 2]) / 2.0),
        },
    }
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        (None, None) => true,
        _ => false,
    }
}

/// Every operation, with and without a filter and a creation window, equals the brute force
/// over the latest version of each live record: updated values count as updated, deleted
/// records not at all, non-numbers are ignored by numeric operations, `1` and `1.0` are one
/// distinct value and `true`, `"1"` and `1` three.
pub async fn aggregates_match_a_brute_force(h: Harness) {
    let c = h
        .collection(CollectionConfig::new("agg").indexed_props(["kind", "n", "tag"]))
        .await;
    let ns = [
        json!(3),
        json!(-1.5),
        json!(10),
        json!("7"),
        json!(null),
        json!(true),
        json!([1, 2]),
        json!(2.25),
        json!(1e6),
        json!(-40),
        json!(0),
        json!(3),
    ];
    let tags = [
        json!("a"),
        json!(1),
        json!(1.0),
        json!(true),
        json!("1"),
        json!({"x": 1}),
    ];
    // id -> (latest data, created at, live)
    let mut model: BTreeMap<ItemId, (Value, Timestamp, bool)> = BTreeMap::new();
    let mut order = Vec::new();
    for i in 0..36usize {
        let mut d =
            json!({"kind": if i % 3 == 0 { "x" } else { "y" }, "tag": tags[i % tags.len()]});
        if i % 11 != 4 {
            d["n"] = ns[i % ns.len()].clone();
        }
        let w = c.create(&d, CreateOptions::new()).await.unwrap();
        model.insert(w.id, (d, w.at, true));
        order.push(w.id);
    }
    // Updates change what counts; deletes remove records from every aggregate.
    for (k, id) in order.iter().enumerate() {
        let entry = model.get_mut(id).unwrap();
        if k % 5 == 1 {
            entry.0["n"] = json!(k as i64 * 7 - 50);
            c.update(*id, &entry.0, WriteOptions::default())
                .await
                .unwrap();
        } else if k % 7 == 2 {
            c.delete(*id, WriteOptions::default()).await.unwrap();
            entry.2 = false;
        }
    }
    let from = model[&order[8]].1;
    let to = model[&order[27]].1;
    let windows = [None, Some(Window { from, to })];
    let filters = [json!({}), json!({"kind": "y"}), json!({"kind": "none"})];
    for op in OPS {
        for filter in &filters {
            for w in windows {
                let expected_docs: Vec<&Value> = model
                    .values()
                    .filter(|(d, at, live)| {
                        *live
                            && (filter.get("kind").is_none() || d["kind"] == filter["kind"])
                            && w.is_none_or(|w| w.from <= *at && *at < w.to)
                    })
                    .map(|(d, _, _)| d)
                    .collect();
                for field in ["n", "tag"] {
                    let got = c.aggregate(filter, op, Some(field), w).await.unwrap();
                    let want = brute(op, field, &expected_docs);
                    assert!(
                        close(got, want),
                        "{op:?} of {field} where {filter} in {w:?}: got {got:?}, want {want:?}"
                    );
                }
            }
        }
    }
    // The window's start is inclusive, its end exclusive, to the millisecond.
    let exact = Window {
        from: model[&order[0]].1,
        to: model[&order[0]].1,
    };
    assert_eq!(
        c.aggregate(&json!({}), AggregateOp::Count, None, Some(exact))
            .await
            .unwrap(),
        Some(0.0)
    );
    // Bad input names what is wrong.
    let e = c
        .aggregate(&json!({}), AggregateOp::Sum, None, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert!(e.to_string().contains("needs a field"), "{e}");
    let e = c
        .aggregate(&json!({}), AggregateOp::Sum, Some("secret"), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("'secret' is not indexed"), "{e}");
    let e = c
        .aggregate(&json!({"n": {"$bogus": 1}}), AggregateOp::Count, None, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
}
