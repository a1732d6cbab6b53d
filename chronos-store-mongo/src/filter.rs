//! Translation of the filter language to MongoDB queries on a field prefix (`metaIndexed.`).
//!
//! MongoDB's own semantics are the model of the reference evaluator (array traversal, `null`
//! matching missing fields, type-bracketed comparisons), so most operators map one to one.
//! Container equality is exact because indexed metadata is stored canonical (sorted keys,
//! integral floats as integers) and operands are canonicalised the same way. `$not` becomes
//! `$nor` over the conjunction, which is exactly the reference's negation.

use chronos_core::filter::{canonical, Cond, Filter};
use mongodb::bson::{doc, Bson, Document};

use crate::conv::to_bson;

/// Translates `f` for documents whose fields live under `prefix` (e.g. `"metaIndexed."`).
pub(crate) fn translate(f: &Filter, prefix: &str) -> Document {
    match f {
        Filter::All => Document::new(),
        Filter::And(fs) => conjoin(fs.iter().map(|f| translate(f, prefix))),
        Filter::Or(fs) => {
            doc! { "$or": fs.iter().map(|f| Bson::Document(translate(f, prefix))).collect::<Vec<_>>() }
        }
        Filter::Field { path, cond } => cond_doc(&format!("{prefix}{path}"), cond),
    }
}

/// The conjunction of `clauses` as one query document: their fields side by side while no
/// field repeats (an implicit AND, which every query planner reads as such — SecantusDB, the
/// test server, only picks an index for that shape), `$and` of them otherwise. Empty
/// clauses match everything and drop out.
pub(crate) fn conjoin(clauses: impl IntoIterator<Item = Document>) -> Document {
    let clauses: Vec<Document> = clauses.into_iter().filter(|d| !d.is_empty()).collect();
    let mut merged = Document::new();
    for c in &clauses {
        if c.keys().any(|k| merged.contains_key(k)) {
            let all: Vec<Bson> = clauses.into_iter().map(Bson::Document).collect();
            return doc! { "$and": all };
        }
        merged.extend(c.clone());
    }
    merged
}

fn val(v: &serde_json::Value) -> Bson {
    to_bson(&canonical(v))
}

fn cond_doc(field: &str, c: &Cond) -> Document {
    let op = |name: &str, v: Bson| {
        let mut d = Document::new();
        d.insert(field, doc! { name: v });
        d
    };
    match c {
        Cond::Eq(x) => op("$eq", val(x)),
        Cond::Ne(x) => op("$ne", val(x)),
        Cond::Gt(x) => op("$gt", val(x)),
        Cond::Gte(x) => op("$gte", val(x)),
        Cond::Lt(x) => op("$lt", val(x)),
        Cond::Lte(x) => op("$lte", val(x)),
        Cond::In(xs) => op("$in", Bson::Array(xs.iter().map(val).collect())),
        Cond::Nin(xs) => op("$nin", Bson::Array(xs.iter().map(val).collect())),
        Cond::Exists(b) => op("$exists", Bson::Boolean(*b)),
        Cond::Regex(p) => {
            let mut d = Document::new();
            d.insert(
                field,
                doc! { "$regex": p.source.clone(), "$options": p.options.clone() },
            );
            d
        }
        Cond::Not(cs) => {
            let all: Vec<Bson> = cs
                .iter()
                .map(|c| Bson::Document(cond_doc(field, c)))
                .collect();
            doc! { "$nor": [ { "$and": all } ] }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conjunctions_flatten_unless_a_field_repeats() {
        let flat = conjoin([
            doc! {"a": {"$eq": 1}},
            Document::new(),
            doc! {"b": {"$gt": 2}, "c": null},
        ]);
        assert_eq!(flat, doc! {"a": {"$eq": 1}, "b": {"$gt": 2}, "c": null});
        let nested = conjoin([doc! {"a": {"$gt": 1}}, doc! {"a": {"$lt": 5}}]);
        assert_eq!(
            nested,
            doc! {"$and": [{"a": {"$gt": 1}}, {"a": {"$lt": 5}}]}
        );
        assert_eq!(conjoin([Document::new()]), Document::new());
    }
}
