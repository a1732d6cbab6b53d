//! Property: for random histories of random documents, `diff(from, to)` applied to version
//! `from` gives version `to`, for every pair (in-memory backend).

use chronos_core::{json_patch, CollectionConfig, CreateOptions, ReadOptions, WriteOptions};
use proptest::prelude::*;
use serde_json::Value;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn diff_applies_exactly(docs in prop::collection::vec(chronos_testkit::differential::doc(), 2..5)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let c = chronos_testkit::memory_engine()
                .collection(CollectionConfig::new("p"))
                .await
                .unwrap();
            let id = c.create(&docs[0], CreateOptions::new()).await.unwrap().id;
            for d in &docs[1..] {
                c.update(id, d, WriteOptions::new()).await.unwrap();
            }
            let mut stored = Vec::new();
            for ov in 0..docs.len() as u64 {
                let r = c.get_version(id, ov, ReadOptions::new()).await.unwrap().unwrap();
                stored.push(Value::Object(r.data));
            }
            for from in 0..docs.len() {
                for to in 0..docs.len() {
                    let patch = c.diff(id, from as u64, to as u64).await.unwrap();
                    let mut v = stored[from].clone();
                    json_patch::patch(&mut v, &patch).unwrap();
                    assert_eq!(v, stored[to], "{from} → {to}");
                    assert_eq!(stored[to], Value::Object(docs[to].clone()));
                }
            }
        });
    }
}
