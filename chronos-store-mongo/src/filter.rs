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
        Filter::And(fs) => {
            doc! { "$and": fs.iter().map(|f| Bson::Document(translate(f, prefix))).collect::<Vec<_>>() }
        }
        Filter::Or(fs) => {
            doc! { "$or": fs.iter().map(|f| Bson::Document(translate(f, prefix))).collect::<Vec<_>>() }
        }
        Filter::Field { path, cond } => cond_doc(&format!("{prefix}{path}"), cond),
    }
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
