//! `find` sorted by a body path, in the canonical order: documents without a container on
//! the path by `_c.<p>` (MongoDB's order is canonical for them), the others by their stored
//! key `_s.k.<p>`, merged ([`crate::sortkey`]); when no document has a container there, the
//! plain page alone is the answer.

use std::cmp::Ordering;

use chronos_core::docs::{DocQuery, Document};
use chronos_core::filter::{canonical, canonical_cmp, get_path};
use chronos_core::{Error, Result};
use futures::TryStreamExt;
use mongodb::bson::{self, doc, Bson};
use mongodb::{Collection, IndexModel};

use super::{decode, sort_keys, MongoDocumentStore, CANON, SORT, SORT_INDEX};
use crate::error::map_err;
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
        let known = self
            .sortable
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(coll);
        if !known {
            backfill(&c, coll).await?;
            self.sortable
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(coll.to_string());
        }
        let dir = if desc { -1 } else { 1 };
        let tags = Bson::Array(sortkey::odd_tags(p));
        let base = filter::translate(&q.filter, &format!("{CANON}."));
        let tag_field = format!("{SORT}.o");
        let (plain_field, key_field) = (
            format!("{CANON}.{p}"),
            sortkey::key_field_in(&format!("{SORT}.k"), p),
        );
        let mut plain = doc! {"$and": [base.clone()]};
        let mut odd = doc! {"$and": [base]};
        let mut cond = bson::Document::new();
        cond.insert(&tag_field, doc! {"$nin": tags.clone()});
        push(&mut plain, cond);
        let mut cond = bson::Document::new();
        cond.insert(&tag_field, doc! {"$in": tags});
        push(&mut odd, cond);
        let wanted = q.skip.saturating_add(q.limit);
        let (mut plain_sort, mut odd_sort) = (bson::Document::new(), bson::Document::new());
        plain_sort.insert(plain_field, dir);
        plain_sort.insert("_id", dir);
        odd_sort.insert(key_field, dir);
        odd_sort.insert("_id", dir);
        // Most collections hold no container on a sorted path: the odd stream comes back
        // empty, and the plain page (skipped on the server) is the answer. Otherwise the
        // plain stream is read again from its start, to merge the first `skip + limit`.
        let (page, b) = futures::try_join!(
            read(&c, plain.clone(), plain_sort.clone(), q.skip, q.limit),
            read(&c, odd, odd_sort, 0, wanted)
        )
        .map_err(|e| e.with("collection", coll))?;
        if b.is_empty() {
            return page.into_iter().map(decode).collect();
        }
        let a = read(&c, plain, plain_sort, 0, wanted)
            .await
            .map_err(|e| e.with("collection", coll))?;
        let cut = Bson::String(sortkey::truncated_tag(p));
        let mut rows: Vec<(Document, bool)> = Vec::with_capacity(a.len() + b.len());
        for d in a {
            rows.push((decode(d)?, false));
        }
        for d in b {
            let truncated = d
                .get_document(SORT)
                .and_then(|s| s.get_array("o"))
                .is_ok_and(|t| t.contains(&cut));
            rows.push((decode(d)?, truncated));
        }
        let key =
            |d: &Document| canonical(get_path(&d.body, p).unwrap_or(&serde_json::Value::Null));
        rows.sort_by(|(x, _), (y, _)| {
            let o: Ordering = canonical_cmp(Some(&key(x)), Some(&key(y))).then(x.id.cmp(&y.id));
            if desc {
                o.reverse()
            } else {
                o
            }
        });
        rows.truncate(wanted);
        if let Some((d, _)) = rows.iter().find(|(_, t)| *t) {
            return Err(Error::unsupported(format!(
                "cannot sort by '{p}' here: document '{}' holds an array or object there whose \
                 canonical text is longer than {} bytes, which this store orders only by its \
                 beginning",
                d.id,
                sortkey::KEY_BYTES
            ))
            .with("collection", coll)
            .with("field", p)
            .with("id", &d.id));
        }
        Ok(rows.into_iter().skip(q.skip).map(|(d, _)| d).collect())
    }
}

fn push(and: &mut bson::Document, cond: bson::Document) {
    if let Ok(a) = and.get_array_mut("$and") {
        a.push(Bson::Document(cond));
    }
}

async fn read(
    c: &Collection<bson::Document>,
    filter: bson::Document,
    sort: bson::Document,
    skip: usize,
    limit: usize,
) -> Result<Vec<bson::Document>> {
    c.find(filter)
        .sort(sort)
        .skip(skip as u64)
        .limit(limit.min(i64::MAX as usize) as i64)
        .await
        .map_err(|e| map_err(e, "find documents"))?
        .try_collect()
        .await
        .map_err(|e| map_err(e, "find documents"))
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
