//! Head queries of the MongoDB index store: filter, sort and keyset paging, with sorts by a
//! metadata path in the canonical order (plain heads by `metaIndexed`, the others by their
//! stored sort keys, merged: [`super::sortkey`]).

use std::collections::HashSet;

use chronos_core::{Error, HeadEntry, HeadQuery, Result, SortField};
use mongodb::bson::{doc, oid::ObjectId, Bson, Document};

use super::{find_sorted, head_from, MongoIndexStore};
use crate::conv::{self, oid};
use crate::filter;
use crate::sortkey;

/// MongoDB `$type` names per canonical sort rank (1 numbers … 5 booleans).
const RANK_TYPES: [&[&str]; 6] = [
    &[],
    &["double", "int", "long", "decimal"],
    &["string"],
    &["object"],
    &["array"],
    &["bool"],
];

fn rank_of(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Null => 0,
        serde_json::Value::Number(_) => 1,
        serde_json::Value::String(_) => 2,
        serde_json::Value::Object(_) => 3,
        serde_json::Value::Array(_) => 4,
        serde_json::Value::Bool(_) => 5,
    }
}

/// "Strictly after `(value, id)`" for a metadata sort, type order included.
fn keyset_meta(field: &str, value: &serde_json::Value, id: ObjectId, desc: bool) -> Document {
    let (cmp, idcmp) = if desc { ("$lt", "$lt") } else { ("$gt", "$gt") };
    let r = rank_of(value);
    let v = conv::to_bson(&chronos_core::filter::canonical(value));
    let mut branches: Vec<Bson> = Vec::new();
    // A null sort key: null, missing, or no value at all — `{a.b: null}` alone misses
    // `a: []` and `a: [1]`, which MongoDB sorts among the nulls.
    let nullish = || {
        let (mut null, mut absent) = (Document::new(), Document::new());
        null.insert(field, Bson::Null);
        absent.insert(field, doc! {"$exists": false});
        Bson::Array(vec![Bson::Document(null), Bson::Document(absent)])
    };
    let mut same = Document::new();
    if r == 0 {
        same.insert("$or", nullish());
    } else {
        same.insert(field, doc! { "$eq": v.clone() });
        let mut beyond = Document::new();
        beyond.insert(field, doc! { cmp: v });
        branches.push(Bson::Document(beyond));
    }
    same.insert("_id", doc! { idcmp: id });
    branches.push(Bson::Document(same));
    let others: Vec<usize> = if desc {
        (1..r).collect()
    } else {
        (r + 1..=5).collect()
    };
    let types: Vec<Bson> = others
        .iter()
        .flat_map(|i| RANK_TYPES[*i].iter().map(|t| Bson::String(t.to_string())))
        .collect();
    if !types.is_empty() {
        let mut d = Document::new();
        d.insert(field, doc! { "$type": types });
        branches.push(Bson::Document(d));
    }
    if desc && r > 0 {
        branches.push(Bson::Document(doc! {"$or": nullish()}));
    }
    doc! { "$or": branches }
}

impl MongoIndexStore {
    /// [`chronos_core::IndexStore::query_heads`] once the collection is prepared.
    pub(super) async fn heads_page(&self, c: &str, q: &HeadQuery) -> Result<Vec<HeadEntry>> {
        let mut clauses = vec![filter::translate(&q.filter, "metaIndexed.")];
        if !q.include_deleted {
            clauses.push(doc! {"deletedAt": null});
        }
        let dir = if q.sort.descending { -1 } else { 1 };
        let (sort_field, sort) = match &q.sort.field {
            SortField::Id => ("_id".to_string(), doc! {"_id": dir}),
            SortField::CreatedAt => ("createdAt".to_string(), doc! {"createdAt": dir, "_id": dir}),
            SortField::UpdatedAt => ("updatedAt".to_string(), doc! {"updatedAt": dir, "_id": dir}),
            SortField::Meta(p) => return self.query_heads_by_meta(c, q, p, clauses).await,
        };
        if let Some(after) = &q.after {
            let id = oid(after.id);
            let cmp = if q.sort.descending { "$lt" } else { "$gt" };
            let cond = match &q.sort.field {
                SortField::Id => doc! {"_id": {cmp: id}},
                // Instants (metadata sorts returned above).
                _ => {
                    let ms = after
                        .value
                        .as_i64()
                        .ok_or_else(|| Error::validation("invalid cursor: bad instant"))?;
                    let d = mongodb::bson::DateTime::from_millis(ms);
                    let mut beyond = Document::new();
                    beyond.insert(&sort_field, doc! {cmp: d});
                    let mut same = Document::new();
                    same.insert(&sort_field, d);
                    same.insert("_id", doc! {cmp: id});
                    doc! {"$or": [beyond, same]}
                }
            };
            clauses.push(cond);
        }
        let docs = find_sorted(
            &self.colls(c).head,
            filter::conjoin(clauses),
            sort,
            0,
            q.limit,
            "query heads",
        )
        .await
        .map_err(|e| e.with("collection", c))?;
        docs.iter().map(head_from).collect()
    }

    /// A page sorted by metadata path `p`, in the canonical order: the plain heads by
    /// `metaIndexed.<p>` and the odd ones by their stored keys ([`sortkey`]), two queries
    /// at once, merged.
    async fn query_heads_by_meta(
        &self,
        c: &str,
        q: &HeadQuery,
        p: &str,
        clauses: Vec<Document>,
    ) -> Result<Vec<HeadEntry>> {
        let cs = self.colls(c);
        if !self.sortable.contains(c) {
            sortkey::backfill(&cs.head, &cs.counter, c).await?;
            self.sortable.insert(c);
        }
        let desc = q.sort.descending;
        let dir = if desc { -1 } else { 1 };
        let odd = sortkey::odd_tags(p);
        let (plain_field, key_field) = (format!("metaIndexed.{p}"), sortkey::key_field(p));
        let mut plain = clauses.clone();
        plain.push(doc! {sortkey::TAGS: {"$nin": odd.clone()}});
        let mut others = clauses;
        others.push(doc! {sortkey::TAGS: {"$in": odd}});
        let mut others_reach = true;
        if let Some(after) = &q.after {
            let id = oid(after.id);
            plain.push(keyset_meta(&plain_field, &after.value, id, desc));
            match sortkey::keyset(&key_field, &after.value, id, desc) {
                Some(cond) => others.push(cond),
                None => others_reach = false,
            }
        }
        let (mut plain_sort, mut odd_sort) = (Document::new(), Document::new());
        plain_sort.insert(&plain_field, dir);
        plain_sort.insert("_id", dir);
        odd_sort.insert(&key_field, dir);
        odd_sort.insert("_id", dir);
        let plain_page = find_sorted(
            &cs.head,
            filter::conjoin(plain),
            plain_sort,
            0,
            q.limit,
            "query heads",
        );
        let odd_page = async {
            if !others_reach {
                return Ok(Vec::new());
            }
            find_sorted(
                &cs.head,
                filter::conjoin(others),
                odd_sort,
                0,
                q.limit,
                "query heads",
            )
            .await
        };
        let (plain_docs, odd_docs) =
            futures::try_join!(plain_page, odd_page).map_err(|e| e.with("collection", c))?;
        let cut = Bson::String(sortkey::truncated_tag(p));
        let mut heads = Vec::with_capacity(plain_docs.len() + odd_docs.len());
        let mut truncated = HashSet::new();
        for d in &plain_docs {
            heads.push(head_from(d)?);
        }
        for d in &odd_docs {
            let h = head_from(d)?;
            if d.get_array(sortkey::TAGS).is_ok_and(|t| t.contains(&cut)) {
                truncated.insert(h.item_id);
            }
            heads.push(h);
        }
        heads.sort_by(|a, b| q.sort.compare(a, b));
        heads.truncate(q.limit);
        if let Some(h) = heads.iter().find(|h| truncated.contains(&h.item_id)) {
            return Err(sortkey::too_long(p, &format!("record {}", h.item_id))
                .with("collection", c)
                .with("id", h.item_id));
        }
        Ok(heads)
    }
}
