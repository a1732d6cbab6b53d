//! Deep merge with array union: the semantics of `enrich` and of tiered merges.
//!
//! Objects merge recursively; arrays become the union of both (existing order first, new
//! elements appended, duplicates by JSON value skipped); anything else is replaced by the
//! patch's value (including `null`).

use serde_json::{Map, Value};

use crate::filter::json_eq;

/// Merges `patch` into `base` in place.
pub fn deep_merge(base: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, pv) in patch {
        match (base.get_mut(k), pv) {
            (Some(Value::Object(bo)), Value::Object(po)) => deep_merge(bo, po),
            (Some(Value::Array(ba)), Value::Array(pa)) => union_into(ba, pa),
            _ => {
                base.insert(k.clone(), pv.clone());
            }
        }
    }
}

/// Appends each element of `extra` not already in `target` (by JSON value).
pub fn union_into(target: &mut Vec<Value>, extra: &[Value]) {
    for v in extra {
        if !target.iter().any(|t| json_eq(t, v)) {
            target.push(v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_objects_unions_arrays_replaces_scalars() {
        let mut base = json!({"theme": "light", "features": ["basic", "standard"], "settings": {"timeout": 30}})
            .as_object()
            .cloned()
            .unwrap();
        for patch in [
            json!({"features": ["advanced"], "settings": {"maxRetries": 3}}),
            json!({"theme": "dark", "features": ["premium", "basic"], "settings": {"timeout": 60}}),
        ] {
            deep_merge(&mut base, patch.as_object().unwrap());
        }
        assert_eq!(
            Value::Object(base),
            json!({"theme": "dark", "features": ["basic", "standard", "advanced", "premium"],
                   "settings": {"timeout": 60, "maxRetries": 3}})
        );
    }

    #[test]
    fn type_changes_replace() {
        let mut base = json!({"a": [1], "b": {"x": 1}})
            .as_object()
            .cloned()
            .unwrap();
        deep_merge(
            &mut base,
            json!({"a": {"y": 1}, "b": null}).as_object().unwrap(),
        );
        assert_eq!(Value::Object(base), json!({"a": {"y": 1}, "b": null}));
    }
}
