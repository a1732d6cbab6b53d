//! [`IndexStore::aggregate`](chronos_core::IndexStore::aggregate) as MongoDB aggregation over
//! the head collection: `$match` (filter, not deleted, creation window, numbers only for the
//! numeric operations), then `$group` — or `$count` for distinct values, and for the exact
//! median a count followed by `$sort`/`$skip`/`$limit` of the middle one or two values.
//! Nothing but the answer leaves the server.

use chronos_core::{AggregateOp, AggregateQuery, Error, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;

use crate::conv::date;
use crate::error::map_err;
use crate::filter;

/// The value of `d[key]` as a number (`None` for null or missing).
fn number(d: &Document, key: &str) -> Result<Option<f64>> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Double(x)) => Ok(Some(*x)),
        Some(Bson::Int32(x)) => Ok(Some(f64::from(*x))),
        Some(Bson::Int64(x)) => Ok(Some(*x as f64)),
        Some(Bson::Decimal128(x)) => x
            .to_string()
            .parse()
            .map(Some)
            .map_err(|_| Error::internal(format!("aggregate returned a bad decimal {x}"))),
        Some(other) => Err(Error::internal(format!(
            "aggregate returned {other} where a number belongs"
        ))),
    }
}

async fn pipeline(head: &Collection<Document>, stages: Vec<Document>) -> Result<Vec<Document>> {
    head.aggregate(stages)
        .await
        .map_err(|e| map_err(e, "aggregate"))?
        .try_collect()
        .await
        .map_err(|e| map_err(e, "aggregate"))
}

/// Computes `q` over `head`.
pub(crate) async fn run(head: &Collection<Document>, q: &AggregateQuery) -> Result<Option<f64>> {
    let mut clauses = vec![
        filter::translate(&q.filter, "metaIndexed."),
        doc! {"deletedAt": null},
    ];
    if let Some(w) = q.created {
        clauses.push(doc! {"createdAt": {"$gte": date(w.from), "$lt": date(w.to)}});
    }
    let field = format!("metaIndexed.{}", q.field.as_deref().unwrap_or("_"));
    let value = format!("${field}");
    // A number itself, not an array holding one (which `$type` alone would also match).
    let mut numeric = Document::new();
    numeric.insert(&field, doc! {"$type": "number", "$not": {"$type": "array"}});
    let group = |acc: &str| doc! {"$group": {"_id": null, "v": {acc: &value}}};
    let matched = filter::conjoin(clauses.clone());
    let numbers = filter::conjoin(clauses.into_iter().chain([numeric]));
    match q.op {
        AggregateOp::Count => head
            .count_documents(matched)
            .await
            .map(|n| Some(n as f64))
            .map_err(|e| map_err(e, "aggregate")),
        AggregateOp::CountDistinct => {
            let mut present = Document::new();
            present.insert(&field, doc! {"$ne": null});
            let stages = vec![
                doc! {"$match": filter::conjoin([matched, present])},
                doc! {"$group": {"_id": &value}},
                doc! {"$count": "n"},
            ];
            let out = pipeline(head, stages).await?;
            Ok(Some(match out.first() {
                Some(d) => number(d, "n")?.unwrap_or(0.0),
                None => 0.0,
            }))
        }
        AggregateOp::Sum | AggregateOp::Avg | AggregateOp::Min | AggregateOp::Max => {
            let acc = match q.op {
                AggregateOp::Sum => "$sum",
                AggregateOp::Avg => "$avg",
                AggregateOp::Min => "$min",
                _ => "$max",
            };
            let out = pipeline(head, vec![doc! {"$match": numbers}, group(acc)]).await?;
            match out.first() {
                Some(d) => number(d, "v"),
                None if q.op == AggregateOp::Sum => Ok(Some(0.0)),
                None => Ok(None),
            }
        }
        AggregateOp::Median => {
            let n = head
                .count_documents(numbers.clone())
                .await
                .map_err(|e| map_err(e, "aggregate"))?;
            if n == 0 {
                return Ok(None);
            }
            let mut sort = Document::new();
            sort.insert(&field, 1);
            sort.insert("_id", 1);
            let stages = vec![
                doc! {"$match": numbers},
                doc! {"$sort": sort},
                doc! {"$skip": ((n - 1) / 2) as i64},
                doc! {"$limit": (2 - n % 2) as i64},
                group("$avg"),
            ];
            let out = pipeline(head, stages).await?;
            match out.first() {
                Some(d) => number(d, "v"),
                None => Ok(None),
            }
        }
    }
}
