//! Repair of data the TypeScript library left inconsistent: several version entries for one
//! `(itemId, ov)` (its write race), which keep our unique index from being built.
//!
//! One entry per version is kept — the one the head points at, or, when the head has moved
//! past that version, the one committed last (greatest cv) — and every other entry is moved,
//! not deleted, to `<c>_ver_duplicates`, where it stays for inspection.

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};

use crate::error::map_err;
use crate::MongoStores;
use chronos_core::{Error, Result};

/// One version entry moved aside by [`MongoStores::repair_duplicate_versions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedVersion {
    /// The record (hex ObjectId).
    pub item_id: String,
    /// The version.
    pub ov: i64,
    /// The payload key of the entry that was moved.
    pub moved_key: String,
    /// The payload key of the entry that was kept.
    pub kept_key: String,
    /// Why that one was kept: `"head"` (the head points at it) or `"latest cv"`.
    pub kept_because: &'static str,
}

fn int(d: &Document, k: &str) -> i64 {
    match d.get(k) {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(f)) => *f as i64,
        _ => -1,
    }
}

impl MongoStores {
    /// Resolves duplicate `(itemId, ov)` entries in `collection`'s version log (see the
    /// module docs); returns what was moved. Idempotent: nothing to do is an empty list.
    pub async fn repair_duplicate_versions(&self, collection: &str) -> Result<Vec<MovedVersion>> {
        chronos_core::engine::validate_collection_name(collection)?;
        let db = self.index.database();
        let ver = db.collection::<Document>(&format!("{collection}_ver"));
        let head = db.collection::<Document>(&format!("{collection}_head"));
        let aside = db.collection::<Document>(&format!("{collection}_ver_duplicates"));
        let groups: Vec<Document> = ver
            .aggregate([
                doc! {"$group": {"_id": {"itemId": "$itemId", "ov": "$ov"}, "n": {"$sum": 1}}},
                doc! {"$match": {"n": {"$gt": 1}}},
            ])
            .await
            .map_err(|e| map_err(e, "find duplicate versions"))?
            .try_collect()
            .await
            .map_err(|e| map_err(e, "find duplicate versions"))?;
        let mut moved = Vec::new();
        for g in groups {
            let key = g
                .get_document("_id")
                .map_err(|_| Error::internal("malformed duplicate group"))?;
            let item = key.get("itemId").cloned().unwrap_or(Bson::Null);
            let ov = int(key, "ov");
            let entries: Vec<Document> = ver
                .find(doc! {"itemId": item.clone(), "ov": key.get("ov").cloned().unwrap_or(Bson::Null)})
                .await
                .map_err(|e| map_err(e, "read duplicate versions"))?
                .try_collect()
                .await
                .map_err(|e| map_err(e, "read duplicate versions"))?;
            let h = head
                .find_one(doc! {"_id": item.clone()})
                .await
                .map_err(|e| map_err(e, "read head"))?;
            let head_key = h
                .as_ref()
                .filter(|h| int(h, "ov") == ov)
                .and_then(|h| h.get_str("jsonKey").ok().map(str::to_string));
            let (keep, because) = match entries
                .iter()
                .position(|e| e.get_str("jsonKey").ok() == head_key.as_deref())
            {
                Some(i) if head_key.is_some() => (i, "head"),
                _ => {
                    let i = (0..entries.len())
                        .max_by_key(|&i| int(&entries[i], "cv"))
                        .unwrap_or(0);
                    (i, "latest cv")
                }
            };
            let kept_key = entries[keep].get_str("jsonKey").unwrap_or("").to_string();
            for (i, e) in entries.iter().enumerate() {
                if i == keep {
                    continue;
                }
                // Copied aside first: a crash in between leaves a copy, never a loss.
                match aside.insert_one(e.clone()).await {
                    Ok(_) => {}
                    Err(err) if crate::error::is_duplicate_key(&err) => {}
                    Err(err) => return Err(map_err(err, "move duplicate version")),
                }
                ver.delete_one(doc! {"_id": e.get("_id").cloned().unwrap_or(Bson::Null)})
                    .await
                    .map_err(|e| map_err(e, "move duplicate version"))?;
                let m = MovedVersion {
                    item_id: match &item {
                        Bson::ObjectId(o) => o.to_hex(),
                        other => other.to_string(),
                    },
                    ov,
                    moved_key: e.get_str("jsonKey").unwrap_or("").to_string(),
                    kept_key: kept_key.clone(),
                    kept_because: because,
                };
                tracing::warn!(collection, item = %m.item_id, ov, moved = %m.moved_key, kept = %m.kept_key,
                    because, "moved a duplicate version entry to the _ver_duplicates collection");
                moved.push(m);
            }
        }
        Ok(moved)
    }
}
