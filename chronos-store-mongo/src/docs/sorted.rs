//! `find` sorted by a body path, in the canonical order: documents without a container on
//! the path by `_c.<p>` (MongoDB's order is canonical for them), the others by their stored
//! key `_s.k.<p>`, merged ([`crate::sortkey`]); when no document has a container there, the
//! plain page alone is the answer.

use std::cmp::Ordering;

use chronos_core::docs::{DocQuery, Document};
use chronos_core::filter::{canonical, canonical_cmp, get_path};
use chronos_core::Result;
use futures::TryStreamExt;
use mongodb::bson::{self, doc, Bson};
use mongodb::{Collection, IndexModel};
use serde_json::Value;

use super::{decode, sort_keys, MongoDocumentStore, CANON, SORT, SORT_INDEX};
use crate::error::map_err;
use crate::index::find_sorted;
use crate::{filter, sortkey};

impl MongoDocumentStore {
    pub(super) async fn find_sorted(
        &self,
        coll: &str,
        q: &DocQuery,
        p: &str,
        desc: bool,
    ) -> Result<Vec<Document>> {
        let c = self.coll(coll)?;
        if !self.sortable.contains(coll) {
            backfill(&c, coll).await?;
            self.sortable.insert(coll);
        }
        let dir = if desc { -1 } else { 1 };
        let tags = Bson::Array(sortkey::odd_tags(p));
        let base = filter::translate(&q.filter, &format!("{CANON}."));
        let tag_field = format!("{SORT}.o");
        let (plain_field, key_field) = (
            format!("{CANON}.{p}"),
            sortkey::key_field_in(&format!("{SORT}.k"), p),
        );
        let mut plain_tags = bson::Document::new();
        plain_tags.insert(&tag_field, doc! {"$nin": tags.clone()});
        let plain = doc! {"$and": [base.clone(), plain_tags]};
        let mut odd_tags = bson::Document::new();
        odd_tags.insert(&tag_field, doc! {"$in": tags});
        let odd = doc! {"$and": [base, odd_tags]};
        let wanted = q.skip.saturating_add(q.limit);
        let (mut plain_sort, mut odd_sort) = (bson::Document::new(), bson::Document::new());
        plain_sort.insert(plain_field, dir);
        plain_sort.insert("_id", dir);
        odd_sort.insert(key_field, dir);
        odd_sort.insert("_id", dir);
        const OP: &str = "find documents";
        // Most collections hold no container on a sorted path: the odd stream comes back
        // empty, and the plain page (skipped on the server) is the answer. Otherwise the
        // plain stream is read again from its start, to merge the first `skip + limit`.
        let (page, b) = futures::try_join!(
            find_sorted(&c, plain.clone(), plain_sort.clone(), q.skip, q.limit, OP),
            find_sorted(&c, odd, odd_sort, 0, wanted, OP)
        )
        .map_err(|e| e.with("collection", coll))?;
        if b.is_empty() {
            return page.into_iter().map(decode).collect();
        }
        let a = find_sorted(&c, plain, plain_sort, 0, wanted, OP)
            .await
            .map_err(|e| e.with("collection", coll))?;
        let cut = Bson::String(sortkey::truncated_tag(p));
        // Each row with its canonical sort value, computed once.
        let mut rows: Vec<(Value, Document, bool)> = Vec::with_capacity(a.len() + b.len());
        let odd_start = a.len();
        for (n, d) in a.into_iter().chain(b).enumerate() {
            let truncated = n >= odd_start
                && d.get_document(SORT)
                    .and_then(|s| s.get_array("o"))
                    .is_ok_and(|t| t.contains(&cut));
            let d = decode(d)?;
            let key = canonical(get_path(&d.body, p).unwrap_or(&Value::Null));
            rows.push((key, d, truncated));
        }
        rows.sort_by(|(kx, x, _), (ky, y, _)| {
            let o: Ordering = canonical_cmp(Some(kx), Some(ky)).then(x.id.cmp(&y.id));
            if desc {
                o.reverse()
            } else {
                o
            }
        });
        rows.truncate(wanted);
        if let Some((_, d, _)) = rows.iter().find(|(_, _, t)| *t) {
            return Err(sortkey::too_long(p, &format!("document '{}'", d.id))
                .with("collection", coll)
                .with("id", &d.id));
        }
        Ok(rows.into_iter().skip(q.skip).map(|(_, d, _)| d).collect())
    }
}

/// Gives the documents written without sort keys (before Chronos kept them) theirs, once
/// per collection: the sparse index on `_s.o`, created last, says it is done. A document
/// rewritten meanwhile is left alone (the update is conditional on `_c`).
async fn backfill(c: &Collection<bson::Document>, coll: &str) -> Result<()> {
    let ctx = |e: mongodb::error::Error, op: &'static str| map_err(e, op).with("collection", coll);
    let names = match c.list_index_names().await {
        Ok(n) => n,
        // No collection yet: nothing to give keys to; the index comes with the first sort
        // after documents exist.
        Err(e) if matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(ce) if ce.code == 26) => {
            return Ok(())
        }
        Err(e) => return Err(ctx(e, "list document indexes")),
    };
    if names.iter().any(|n| n == SORT_INDEX) {
        return Ok(());
    }
    let mut cursor = c
        .find(doc! {SORT: {"$exists": false}})
        .projection(doc! {CANON: 1})
        .await
        .map_err(|e| ctx(e, "read documents for sort keys"))?;
    let mut given = 0u64;
    while let Some(d) = cursor
        .try_next()
        .await
        .map_err(|e| ctx(e, "read documents for sort keys"))?
    {
        let (Some(id), Ok(canon)) = (d.get("_id"), d.get_document(CANON)) else {
            continue;
        };
        let Some(keys) = sort_keys(&crate::conv::from_doc(canon)) else {
            continue;
        };
        c.update_one(
            doc! {"_id": id, CANON: canon.clone()},
            doc! {"$set": {SORT: keys}},
        )
        .await
        .map_err(|e| ctx(e, "write sort keys"))?;
        given += 1;
    }
    let mut options = mongodb::options::IndexOptions::builder()
        .name(SORT_INDEX.to_string())
        .build();
    options.sparse = Some(true);
    c.create_index(
        IndexModel::builder()
            .keys(doc! {"_s.o": 1})
            .options(options)
            .build(),
    )
    .await
    .map_err(|e| ctx(e, "create sort-key index"))?;
    if given > 0 {
        tracing::info!(
            collection = coll,
            documents = given,
            "gave documents written without sort keys theirs"
        );
    }
    Ok(())
}
