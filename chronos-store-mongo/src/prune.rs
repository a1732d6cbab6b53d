//! Removing old version entries of one record (versioning off on every commit, retention on
//! demand), after raising the change feed's pruned watermark; and scrubbing them (erase).

use mongodb::bson::{doc, oid::ObjectId, Document};
use mongodb::{ClientSession, Collection};

use crate::conv::{get, u64_of};
use crate::index::Stop;

/// Removes the versions of `id` with `ov < below`, never the record's latest, after raising
/// the collection's pruned cv (`_id: "pruned"` in its counter collection) to the greatest cv
/// removed: a feed cursor below it is then `Gone`, never silently incomplete. In `sess`
/// when given (the commit's transaction). Returns how many entries went.
pub(crate) async fn prune(
    ver: &Collection<Document>,
    counter: &Collection<Document>,
    id: ObjectId,
    below: u64,
    mut sess: Option<&mut ClientSession>,
) -> Result<u64, Stop> {
    let Some(latest) = latest_ov(ver, id, sess.as_deref_mut()).await? else {
        return Ok(0);
    };
    let below = below.min(latest) as i64;
    let newest = exec!(
        sess,
        ver.find_one(doc! {"itemId": id, "ov": {"$lt": below}})
            .sort(doc! {"cv": -1})
            .projection(doc! {"cv": 1})
    )
    .map_err(|e| Stop::Driver(e, "read pruned versions"))?;
    let Some(newest) = newest else { return Ok(0) };
    let cv = get(&newest, "cv")
        .and_then(u64_of)
        .map_err(Stop::Conflict)?;
    exec!(
        sess,
        counter
            .update_one(doc! {"_id": "pruned"}, doc! {"$max": {"value": cv as i64}})
            .upsert(true)
    )
    .map_err(|e| Stop::Driver(e, "record pruned cv"))?;
    let done = exec!(
        sess,
        ver.delete_many(doc! {"itemId": id, "ov": {"$lt": below}})
    )
    .map_err(|e| Stop::Driver(e, "prune versions"))?;
    Ok(done.deleted_count)
}

/// Makes the versions of `id` with `ov < below` (never the latest) content-free: one
/// `update_many`, idempotent (entries already scrubbed are not matched). Returns how many
/// changed.
pub(crate) async fn scrub(
    ver: &Collection<Document>,
    id: ObjectId,
    below: u64,
) -> Result<u64, Stop> {
    let Some(latest) = latest_ov(ver, id, None).await? else {
        return Ok(0);
    };
    let below = below.min(latest) as i64;
    let erased = chronos_core::ERASED_CHECKSUM;
    let done = ver
        .update_many(
            doc! {"itemId": id, "ov": {"$lt": below}, "checksum": {"$ne": erased}},
            doc! {
                "$set": {"metaIndexed": {}, "jsonKey": "", "size": 0_i64, "checksum": erased},
                "$unset": {"seal.salt": ""},
            },
        )
        .await
        .map_err(|e| Stop::Driver(e, "scrub versions"))?;
    Ok(done.modified_count)
}

/// The record's latest ov (`None` without versions), in `sess` when given.
pub(crate) async fn latest_ov(
    ver: &Collection<Document>,
    id: ObjectId,
    mut sess: Option<&mut ClientSession>,
) -> Result<Option<u64>, Stop> {
    let latest = exec!(
        sess,
        ver.find_one(doc! {"itemId": id})
            .sort(doc! {"ov": -1})
            .projection(doc! {"ov": 1})
    )
    .map_err(|e| Stop::Driver(e, "read latest version"))?;
    latest
        .map(|d| get(&d, "ov").and_then(u64_of).map_err(Stop::Conflict))
        .transpose()
}
