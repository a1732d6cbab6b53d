//! Index preparation of the MongoDB index store: create what a collection lacks, reuse an
//! index with the same keys under any name (upstream's), and name duplicate versions that
//! keep the unique `(itemId, ov)` index from being built.

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};

use chronos_core::{Error, Result};

use crate::error::map_err;

/// Creates the indexes in `wanted` (keys, name, unique) that the collection lacks. An index
/// with the same keys under another name is reused — data written by upstream has
/// `idx_head_itemId` where we would create `itemId` — unless it lacks a uniqueness we need,
/// which is an error saying what to do. Asking the server first also keeps index-option
/// conflicts (code 85/86) from ever reaching the caller as raw server errors.
/// `sparse` makes every created index sparse (documents without the field stay out of it).
pub(crate) async fn create_missing_indexes(
    coll: &Collection<Document>,
    c: &str,
    wanted: &[(Document, &str, bool)],
    sparse: bool,
) -> Result<()> {
    let mut existing: Vec<(Document, String, bool)> = Vec::new();
    let mut cursor = match coll.list_indexes().await {
        Ok(cur) => Some(cur),
        // A collection that does not exist yet has no indexes.
        Err(e) if matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(ce) if ce.code == 26) => {
            None
        }
        Err(e) => return Err(map_err(e, "list indexes").with("collection", c)),
    };
    if let Some(cur) = cursor.as_mut() {
        use futures::TryStreamExt;
        while let Some(m) = cur
            .try_next()
            .await
            .map_err(|e| map_err(e, "list indexes").with("collection", c))?
        {
            let name = m
                .options
                .as_ref()
                .and_then(|o| o.name.clone())
                .unwrap_or_default();
            let unique = m.options.as_ref().and_then(|o| o.unique).unwrap_or(false);
            existing.push((m.keys, name, unique));
        }
    }
    let mut models = Vec::new();
    for (keys, name, unique) in wanted {
        match existing.iter().find(|(k, _, _)| same_keys(k, keys)) {
            Some((_, _, true)) => {}
            Some((_, _, false)) if !unique => {}
            Some((_, other, false)) => {
                return Err(Error::invalid_config(format!(
                    "collection {}: index '{other}' on {keys} exists but is not unique, and \
                     Chronos needs it unique; drop it (Chronos then creates '{name}')",
                    coll.name()
                ))
                .with("collection", c));
            }
            None => {
                let mut options = IndexOptions::builder()
                    .name(name.to_string())
                    .unique(*unique)
                    .build();
                if sparse {
                    options.sparse = Some(true);
                }
                models.push(
                    IndexModel::builder()
                        .keys(keys.clone())
                        .options(options)
                        .build(),
                );
            }
        }
    }
    if models.is_empty() {
        return Ok(());
    }
    coll.create_indexes(models).await.map_err(|e| {
        match e.kind.as_ref() {
            mongodb::error::ErrorKind::Command(ce) if ce.code == 85 || ce.code == 86 => {
                Error::invalid_config(format!(
                    "collection {}: an existing index conflicts with one Chronos needs ({}); \
                     drop or rename it",
                    coll.name(),
                    ce.message
                ))
            }
            _ => map_err(e, "create indexes"),
        }
        .with("collection", c)
    })?;
    Ok(())
}

/// Up to 20 `(itemId, ov)` pairs with more than one version entry, as `id ov N (k entries)`;
/// `None` if the server cannot say.
pub(super) async fn duplicate_versions(ver: &Collection<Document>) -> Option<Vec<String>> {
    use futures::TryStreamExt;
    let pipeline = [
        doc! {"$group": {"_id": {"itemId": "$itemId", "ov": "$ov"}, "n": {"$sum": 1}}},
        doc! {"$match": {"n": {"$gt": 1}}},
        doc! {"$limit": 20},
    ];
    let docs: Vec<Document> = ver
        .aggregate(pipeline)
        .await
        .ok()?
        .try_collect()
        .await
        .ok()?;
    Some(
        docs.iter()
            .filter_map(|d| {
                let k = d.get_document("_id").ok()?;
                let id = k.get_object_id("itemId").map(|o| o.to_hex()).ok()?;
                let ov = k.get("ov").map(|v| v.to_string())?;
                let n = d.get("n").map(|v| v.to_string())?;
                Some(format!("id {id} ov {ov} ({n} entries)"))
            })
            .collect(),
    )
}

/// Whether two index key documents name the same fields in the same order and directions
/// (servers and drivers may store `1` as Int32, Int64 or Double).
pub(super) fn same_keys(a: &Document, b: &Document) -> bool {
    let dir = |v: &Bson| match v {
        Bson::Int32(n) => Some(f64::from(*n).signum()),
        Bson::Int64(n) => Some((*n as f64).signum()),
        Bson::Double(d) => Some(d.signum()),
        _ => None,
    };
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && dir(va).is_some() && dir(va) == dir(vb))
}
