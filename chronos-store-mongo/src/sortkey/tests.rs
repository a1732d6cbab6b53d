//! Unit and property tests of the sort keys: encoding, tags, budget, and key order against
//! the canonical order (whole and truncated keys).

use std::cmp::Ordering;

use chronos_core::filter::canonical_cmp;
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn annotated(meta: Value) -> Document {
    let mut d = Document::new();
    annotate(meta.as_object().unwrap(), &mut d);
    d
}

fn strings(d: &Document, field: &str) -> Vec<String> {
    d.get_array(field)
        .map(|a| a.iter().map(|b| b.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn encoding_keeps_dots_and_dollars_out_of_field_names() {
    assert_eq!(encode("a_b-9"), "a_b-9");
    assert_eq!(encode("a.b"), "a~2Eb");
    assert_eq!(encode("$x~"), "~24x~7E");
    assert_eq!(encode("é"), "~C3~A9");
    // `~` itself is escaped, so no two paths share an encoding.
    assert_ne!(encode("a~2Eb"), encode("a.b"));
}

#[test]
fn containers_reached_through_objects_get_tags_and_keys() {
    let d = annotated(json!({
        "s": 1,
        "a": [2, {"z": [1]}],
        "b": {"c": {"d": 1}, "e": "x"},
        "x.y": [1],
        "$z": [1],
        "0": [2],
        "": {"k": []}
    }));
    // Arrays are not entered; unreachable keys (dots, `$`, numbers, empty) are skipped.
    assert_eq!(strings(&d, TAGS), ["a:a", "o:b", "o:b~2Ec"]);
    let keys = d.get_document(KEYS).unwrap();
    assert_eq!(keys.get_str("a").unwrap(), r#"4[2,{"z":[1]}]"#);
    assert_eq!(keys.get_str("b").unwrap(), r#"3{"c":{"d":1},"e":"x"}"#);
    assert_eq!(keys.get_str("b~2Ec").unwrap(), r#"3{"d":1}"#);
    assert_eq!(keys.len(), 3);
}

#[test]
fn heads_without_containers_carry_nothing() {
    assert!(annotated(json!({"a": 1, "b": "x", "c": null})).is_empty());
}

#[test]
fn odd_tags_name_every_prefix_array_and_the_object_at_the_path() {
    let t: Vec<String> = odd_tags("a.b.c")
        .into_iter()
        .map(|b| b.as_str().unwrap().to_string())
        .collect();
    assert_eq!(t, ["a:a", "a:a~2Eb", "a:a~2Eb~2Ec", "o:a~2Eb~2Ec"]);
    assert_eq!(key_field("a.b"), "metaSortKeys.a~2Eb");
}

#[test]
fn long_containers_get_truncated_keys_and_a_tag_saying_so() {
    let long = "y".repeat(KEY_BYTES + 10);
    let d = annotated(json!({"a": [long], "b": ["short"]}));
    assert_eq!(strings(&d, TAGS), ["a:a", "x:a", "a:b"]);
    let key = d
        .get_document(KEYS)
        .unwrap()
        .get_str("a")
        .unwrap()
        .to_string();
    assert!(key.ends_with(TRUNCATED));
    assert_eq!(key.len(), 1 + KEY_BYTES + TRUNCATED.len_utf8());
}

#[test]
fn one_head_spends_at_most_its_budget_on_keys() {
    // 100 objects of ~1000 bytes each: 100 KB of text, over the 64 KiB budget.
    let mut m = Map::new();
    for i in 0..100 {
        m.insert(format!("k{i:03}"), json!({ "v": "z".repeat(990) }));
    }
    let d = annotated(Value::Object(m));
    let keys = d.get_document(KEYS).unwrap();
    let spent: usize = keys.iter().map(|(_, v)| v.as_str().unwrap().len()).sum();
    assert!(spent <= HEAD_BUDGET + 100 * 5, "spent {spent}");
    let tags = strings(&d, TAGS);
    let cut = tags.iter().filter(|t| t.starts_with("x:")).count();
    assert!(cut > 30, "{cut} truncated keys");
    // The first keys are whole, the budget runs out later.
    assert!(!tags.contains(&"x:k000".to_string()));
}

/// Small containers, as the differential test builds them.
fn container() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-20i64..20).prop_map(Value::from),
        prop::sample::select(vec![0.5f64, -1.5, 2.0]).prop_map(Value::from),
        "[a-c\\[\\]{}\"]{0,3}".prop_map(Value::from),
    ];
    let tree = leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-c]", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        prop::collection::vec(tree.clone(), 0..3).prop_map(Value::Array),
        prop::collection::btree_map("[a-c]", tree, 0..3)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    ]
}

proptest! {
    /// Whole keys order containers exactly as the canonical order does (MongoDB compares
    /// strings bytewise, as `str` does).
    #[test]
    fn whole_keys_order_like_the_canonical_order(a in container(), b in container()) {
        let (ka, kb) = (key_of(&a, KEY_BYTES), key_of(&b, KEY_BYTES));
        prop_assert!(ka.1 && kb.1);
        let want = canonical_cmp(Some(&a), Some(&b));
        // Equal canonical texts are equal keys; different values can share a text only
        // when the canonical order says Equal too.
        prop_assert_eq!(ka.0.cmp(&kb.0), want);
    }

    /// A truncated key never sorts below a whole key that the canonical order puts after
    /// it: a cursor can never pass a truncated record without returning it.
    #[test]
    fn a_truncated_key_never_sorts_before_its_place(
        whole in container(),
        cut in container(),
        room in 0usize..12,
    ) {
        let (kw, _) = key_of(&whole, KEY_BYTES);
        let (kc, complete) = key_of(&cut, room);
        if !complete {
            if kw > kc {
                prop_assert_eq!(canonical_cmp(Some(&whole), Some(&cut)), Ordering::Greater);
            }
        } else {
            prop_assert_eq!(kw.cmp(&kc), canonical_cmp(Some(&whole), Some(&cut)));
        }
    }
}
