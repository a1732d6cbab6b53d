//! Case: `Collection::diff` — the patch between two versions turns one into the other, in
//! both directions, across updates, enrichments, a delete and a restore; missing versions
//! are `NotFound` naming the ov.

use chronos_core::{
    json_patch, CreateOptions, EnrichOptions, ErrorKind, ReadOptions, RestoreTarget, WriteOptions,
};
use serde_json::{json, Value};

use super::Harness;

/// Every pair of versions of one record diffs into a patch that applies exactly.
pub async fn diff_patches_turn_one_version_into_another(h: Harness) {
    let c = h.default_collection("diff").await;
    let w = c
        .create(
            &json!({"name": "Ada", "tags": ["a"], "addr": {"city": "London"}}),
            CreateOptions::new(),
        )
        .await
        .unwrap();
    c.update(
        w.id,
        &json!({"name": "Ada L.", "tags": ["a", "b"], "addr": {"city": "Paris", "zip": "75"}}),
        WriteOptions::new(),
    )
    .await
    .unwrap();
    c.enrich(
        w.id,
        &json!({"score": 1.5, "tags": ["c"]}),
        EnrichOptions::new(),
    )
    .await
    .unwrap();
    c.delete(w.id, WriteOptions::new()).await.unwrap();
    c.restore_object(w.id, RestoreTarget::Ov(0), WriteOptions::new())
        .await
        .unwrap();
    let mut data = Vec::new();
    for ov in 0..=4 {
        let r = c
            .get_version(w.id, ov, ReadOptions::new().include_deleted(true))
            .await
            .unwrap()
            .unwrap();
        data.push(Value::Object(r.data));
    }
    for from in 0..=4u64 {
        for to in 0..=4u64 {
            let patch = c.diff(w.id, from, to).await.unwrap();
            let mut doc = data[from as usize].clone();
            json_patch::patch(&mut doc, &patch).unwrap();
            assert_eq!(doc, data[to as usize], "diff {from} → {to}: {patch:?}");
            if from == to {
                assert!(patch.0.is_empty());
            }
        }
    }
    // A known patch, in the RFC's form.
    let p = serde_json::to_value(c.diff(w.id, 0, 1).await.unwrap()).unwrap();
    assert!(
        p.as_array()
            .unwrap()
            .contains(&json!({"op": "replace", "path": "/addr/city", "value": "Paris"})),
        "{p}"
    );
    for (from, to) in [(0, 9), (9, 0), (7, 7)] {
        let e = c.diff(w.id, from, to).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert_eq!(
            e.context("ov"),
            Some(from.max(to).to_string().as_str()),
            "{e}"
        );
    }
}
