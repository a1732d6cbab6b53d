//! Tests of the filter language: parsing, errors and the reference semantics.

use super::*;
use serde_json::json;

fn m(f: Value, d: Value) -> bool {
    Filter::parse(&f).unwrap().matches(d.as_object().unwrap())
}

#[test]
fn big_numbers_compare_alike_everywhere() {
    // Integer against float: exact (2^53 + 1 is not 2^53).
    assert!(!m(
        json!({"n": 9007199254740992.0}),
        json!({"n": 9007199254740993i64})
    ));
    assert!(m(
        json!({"n": 9007199254740992.0}),
        json!({"n": 9007199254740992i64})
    ));
    assert!(m(
        json!({"n": {"$gt": 9007199254740992.0}}),
        json!({"n": 9007199254740993i64})
    ));
    assert!(m(json!({"n": {"$lt": 1e300}}), json!({"n": i64::MAX})));
    assert!(m(json!({"n": {"$gt": -1e300}}), json!({"n": i64::MIN})));
    assert!(m(json!({"n": {"$lt": 2.5}}), json!({"n": 2})));
    assert!(!m(json!({"n": {"$lt": 2.0}}), json!({"n": 2})));
    // Beyond i64: stored and compared as doubles (SQLite and MongoDB cannot hold them).
    let big = canonical(&json!(18446744073709551615u64));
    assert!(big.as_f64().is_some() && big.as_u64().is_none(), "{big}");
    assert_eq!(canonical(&json!(18446744073709551614u64)), big);
}

#[test]
fn numeric_path_segments_are_refused() {
    for p in ["arr.0", "0", "a.12.b"] {
        let e = check_path(p).unwrap_err();
        assert!(e.to_string().contains("is a number"), "{p}: {e}");
    }
    check_path("a.b0").unwrap();
    check_path("n1").unwrap();
}

#[test]
fn equality_and_arrays() {
    assert!(m(json!({"a": 1}), json!({"a": 1.0})));
    assert!(m(json!({"tags": "x"}), json!({"tags": ["y", "x"]})));
    assert!(m(json!({"tags": ["y", "x"]}), json!({"tags": ["y", "x"]})));
    assert!(!m(json!({"tags": ["x", "y"]}), json!({"tags": ["y", "x"]})));
    assert!(m(
        json!({"o": {"b": 2, "a": 1}}),
        json!({"o": {"a": 1, "b": 2}})
    ));
    assert!(m(json!({"a": null}), json!({})));
    assert!(!m(json!({"a": {"$ne": null}}), json!({})));
    assert!(m(json!({"a": {"$ne": 1}}), json!({})));
}

#[test]
fn dotted_paths_walk_arrays() {
    let d =
        json!({"items": [{"sku": "a", "n": 1}, {"sku": "b", "n": 5}], "addr": {"city": "Oslo"}});
    assert!(m(json!({"items.sku": "b"}), d.clone()));
    assert!(m(json!({"items.n": {"$gt": 4}}), d.clone()));
    assert!(m(
        json!({"addr.city": {"$regex": "^os", "$options": "i"}}),
        d.clone()
    ));
    assert!(!m(json!({"addr.zip": {"$exists": true}}), d.clone()));
    assert!(m(json!({"addr.zip": {"$exists": false}}), d));
}

/// What a MongoDB server answers (SecantusDB, checked by hand against these documents):
/// the missing branches of a walk through arrays.
#[test]
fn null_through_arrays_is_missing_as_mongodb_reads_it() {
    let ab = [
        (json!({"a": [{"b": 1}, {"c": 2}]}), true),
        (json!({"a": [{"b": 1}, {"b": null}]}), true),
        (json!({"a": [{"b": 1}, {"b": 2}]}), false),
        (json!({"a": [1, 2]}), false),
        (json!({"a": [1, {"b": 2}]}), false),
        (json!({"a": []}), false),
        (json!({"a": {"b": 1}}), false),
        (json!({"a": {"c": 1}}), true),
        (json!({"a": 5}), true),
        (json!({}), true),
        (json!({"a": [[{"b": 1}]]}), false),
        (json!({"a": [{"b": [1, 2]}, {"c": 1}]}), true),
    ];
    for (d, want) in ab {
        assert_eq!(m(json!({"a.b": null}), d.clone()), want, "a.b null on {d}");
        assert_eq!(
            m(json!({"a.b": {"$ne": null}}), d.clone()),
            !want,
            "$ne on {d}"
        );
        assert_eq!(
            m(json!({"a.b": {"$gte": null}}), d.clone()),
            want,
            "$gte on {d}"
        );
        assert_eq!(
            m(json!({"a.b": {"$in": [null]}}), d.clone()),
            want,
            "$in on {d}"
        );
    }
    let abc = [
        (json!({"a": [{"b": 5}]}), true),
        (json!({"a": [{"b": [5]}]}), false),
        (json!({"a": [{"b": [{"x": 1}]}]}), true),
        (json!({"a": {"b": []}}), false),
        (json!({"a": {"b": null}}), true),
        (json!({"a": null}), true),
        (json!({"a": [null]}), false),
        (json!({"a": [{"b": {"c": 1}}]}), false),
        (json!({"a": [[{"b": {"c": null}}]]}), false),
        (json!({"a": {"b": [[{"c": 1}]]}}), false),
    ];
    for (d, want) in abc {
        assert_eq!(
            m(json!({"a.b.c": null}), d.clone()),
            want,
            "a.b.c null on {d}"
        );
    }
}

#[test]
fn comparisons_respect_type_classes() {
    assert!(!m(json!({"a": {"$gt": 5}}), json!({"a": "9"})));
    assert!(m(
        json!({"a": {"$gte": "b", "$lt": "c"}}),
        json!({"a": "bb"})
    ));
    assert!(m(json!({"a": {"$gt": 2}}), json!({"a": 2.5})));
    assert!(m(json!({"a": {"$lte": null}}), json!({})));
    assert!(!m(json!({"a": {"$lt": null}}), json!({"a": null})));
    assert!(m(json!({"a": {"$not": {"$gt": 5}}}), json!({"a": 3})));
    assert!(m(json!({"a": {"$not": {"$gt": 5}}}), json!({})));
}

#[test]
fn logical_operators() {
    let f = json!({"$or": [{"a": 1}, {"b": {"$in": [2, 3]}}], "c": {"$nin": [9]}});
    assert!(m(f.clone(), json!({"b": 3})));
    assert!(!m(f.clone(), json!({"b": 3, "c": 9})));
    assert!(!m(f, json!({"a": 2})));
}

#[test]
fn errors_name_operator_and_path() {
    let cases = [
        (json!({"a": {"$foo": 1}}), "'$foo' on 'a'"),
        (json!({"$nor": []}), "'$nor'"),
        (json!({"a": {"$in": 1}}), "$in on 'a' needs an array"),
        (json!({"a": {"$gt": [1]}}), "$gt on 'a' needs a number"),
        (json!({"a": {"$regex": "("}}), "invalid $regex"),
        (
            json!({"a": {"$regex": "x", "$options": "q"}}),
            "unknown $options flag 'q'",
        ),
        (json!({"a": {"$options": "i"}}), "needs $regex"),
        (json!({"a": {"$gt": 1, "b": 2}}), "mixes operators"),
        (json!({"$and": []}), "non-empty array"),
        (json!({"a..b": 1}), "invalid field path"),
        (json!({"a": {"$not": 3}}), "$not on 'a'"),
        (json!([1]), "must be a JSON object"),
    ];
    for (f, needle) in cases {
        let e = Filter::parse(&f).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Validation);
        assert!(e.to_string().contains(needle), "{f}: {e}");
    }
}

#[test]
fn canonical_order() {
    let vals = [
        json!(null),
        json!(-1),
        json!(2.5),
        json!("a"),
        json!({"x": 1}),
        json!([1]),
        json!(false),
    ];
    for w in vals.windows(2) {
        assert_eq!(
            canonical_cmp(Some(&w[0]), Some(&w[1])),
            Ordering::Less,
            "{} < {}",
            w[0],
            w[1]
        );
    }
    assert_eq!(canonical_cmp(None, Some(&json!(null))), Ordering::Equal);
}

#[test]
fn canonical_form_sorts_keys_and_integralises_floats() {
    let v = json!({"b": [2.0, {"z": 1, "a": 1.5}], "a": -0.0});
    assert_eq!(canonical_text(&v), r#"{"a":0,"b":[2,{"a":1.5,"z":1}]}"#);
    assert!(json_eq(&canonical(&v), &v));
}
