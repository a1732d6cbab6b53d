//! The single commit path of the MongoDB index store: the ov check and the cv reservation
//! (the precommit), then the version insert and the head write — ordered, or in one
//! transaction — with the reservation's release when a commit will never use it.

use std::time::{Duration, Instant};

use chronos_core::{Commit, Error, HeadAction, HeadEntry, Result};
use mongodb::bson::doc;
use mongodb::options::ReturnDocument;
use mongodb::ClientSession;

use super::{conflict, head_doc, version_doc, Colls, MongoIndexStore, Reservation, Stop};
use crate::conv::{get, oid, u64_of};
use crate::error::{is_duplicate_key, is_transient, is_unknown_commit, map_err};
use crate::feed;

impl MongoIndexStore {
    /// Conflict unless the record's latest committed ov is `ov - 1` (none for ov 0).
    pub(super) async fn check_latest(
        &self,
        cs: &Colls,
        c: &Commit,
    ) -> std::result::Result<(), Stop> {
        let v = &c.version;
        // Only entries from `ov - 1` up matter. The bound costs MongoDB nothing (the same
        // index range) and keeps servers whose executor visits every match of a sorted,
        // limited query (SecantusDB) from reading a record's whole history on every write.
        let from = v.ov.saturating_sub(1);
        let latest = cs
            .ver
            .find_one(doc! {"itemId": oid(v.item_id), "ov": {"$gte": from as i64}})
            .sort(doc! {"ov": -1})
            .await
            .map_err(|e| Stop::Driver(e, "read latest ov"))?;
        let latest_ov = latest
            .as_ref()
            .map(|d| get(d, "ov").and_then(u64_of))
            .transpose()
            .map_err(Stop::Conflict)?;
        match latest_ov {
            None if v.ov == 0 => Ok(()),
            Some(l) if v.ov == l + 1 => Ok(()),
            None => Err(conflict(
                c,
                &format!("the record has no committed ov {from}"),
            )),
            Some(l) => Err(conflict(c, &format!("latest committed ov is {l}"))),
        }
    }

    /// The ov check and the cv bump. Concurrently for a precommit: one round trip for both
    /// (which the engine overlaps with the payload put), at the price that a conflicting
    /// commit may consume a cv — cvs are unique and increasing, not dense. A plain `commit`
    /// checks first, so a conflict it can see consumes none.
    pub(super) async fn prepare_commit(
        &self,
        cs: &Colls,
        c: &Commit,
        concurrently: bool,
    ) -> std::result::Result<u64, Stop> {
        if concurrently {
            let (checked, cv) = futures::join!(self.check_latest(cs, c), self.reserve_cv(cs));
            if let (Err(_), Ok(cv)) = (&checked, &cv) {
                // This reservation will never commit: say so, or the feed waits it out.
                feed::release(&cs.counter, *cv).await;
            }
            checked.and(cv)
        } else {
            self.check_latest(cs, c).await?;
            self.reserve_cv(cs).await
        }
    }

    /// Takes the next cv with one atomic `$inc`, outside any transaction: inside one, every
    /// concurrent commit of the collection would write-conflict on the counter document.
    pub(super) async fn reserve_cv(&self, cs: &Colls) -> std::result::Result<u64, Stop> {
        for _ in 0..20 {
            let bumped = cs
                .counter
                .find_one_and_update(doc! {"_id": "cv"}, doc! {"$inc": {"value": 1_i64}})
                .upsert(true)
                .return_document(ReturnDocument::After)
                .await;
            match bumped {
                Ok(Some(d)) => return get(&d, "value").and_then(u64_of).map_err(Stop::Conflict),
                // Two first-ever upserts can race: one inserts, the other sees a duplicate
                // key (MongoDB) or no document (some compatible servers). Retry either.
                Ok(None) => continue,
                Err(e) if is_duplicate_key(&e) => continue,
                Err(e) => return Err(Stop::Driver(e, "bump cv")),
            }
        }
        Err(Stop::Conflict(Error::unavailable(
            "could not take a collection version",
        )))
    }

    /// Inserts the version (the unique `(itemId, ov)` insert is the linearisation point), then
    /// writes or removes the head and prunes.
    pub(super) async fn apply(
        &self,
        cs: &Colls,
        c: &Commit,
        cv: u64,
        mut sess: Option<&mut ClientSession>,
    ) -> std::result::Result<(), Stop> {
        let v = &c.version;
        let entry = c.version.clone().into_entry(cv);
        let vdoc = version_doc(&entry, c.head);
        let entry_id = vdoc.get("_id").cloned();
        match exec!(sess, cs.ver.insert_one(vdoc)) {
            Ok(_) => {}
            // Outside a transaction the driver retries an insert whose answer it lost; a
            // server that does not remember retried writes then reports our own entry as
            // the duplicate. Its `_id` (made here) tells the two apart.
            Err(e) if is_duplicate_key(&e) && sess.is_none() => {
                if !own_entries(&cs.ver, entry_id.into_iter().collect())
                    .await?
                    .is_empty()
                {
                    tracing::debug!(id = %v.item_id, ov = v.ov,
                        "a retried version insert found its own entry");
                } else {
                    return Err(conflict(c, "another writer committed it first"));
                }
            }
            Err(e) if is_duplicate_key(&e) => {
                return Err(conflict(c, "another writer committed it first"))
            }
            Err(e) => return Err(Stop::Driver(e, "insert version")),
        }
        let id = oid(v.item_id);
        match c.head {
            HeadAction::Upsert => {
                let mut h = HeadEntry::from_version(&entry, c.created_at);
                h.shadow = c.shadow.clone();
                h.lineage = Some(c.lineage.clone());
                let head = head_doc(&h);
                let written = if v.ov == 0 {
                    // A first version has no head to replace (only a later version's, on
                    // the ordered path): a plain insert, cheaper than an upsert.
                    exec!(sess, cs.head.insert_one(head)).map(drop)
                } else {
                    let filter = if self.transactions {
                        doc! {"_id": id}
                    } else {
                        doc! {"_id": id, "ov": {"$lt": v.ov as i64}}
                    };
                    exec!(sess, cs.head.replace_one(filter, head).upsert(true)).map(drop)
                };
                match written {
                    Ok(_) => {}
                    // Ordered path: a newer head already exists; ours is history now.
                    Err(e) if is_duplicate_key(&e) && !self.transactions => {}
                    Err(e) => return Err(Stop::Driver(e, "write head")),
                }
            }
            HeadAction::Remove => {
                exec!(
                    sess,
                    cs.head
                        .delete_one(doc! {"_id": id, "ov": {"$lt": v.ov as i64}})
                )
                .map_err(|e| Stop::Driver(e, "remove head"))?;
            }
        }
        if let Some(below) = c.prune_below_ov {
            crate::prune::prune(&cs.ver, &cs.counter, id, below, sess).await?;
        }
        Ok(())
    }

    /// A reservation about to be used past [`feed::reservation_ttl`] is released and
    /// replaced (the change feed treats older ones as settled).
    pub(super) async fn refresh_if_old(
        &self,
        cs: &Colls,
        r: &mut Reservation,
    ) -> std::result::Result<(), Stop> {
        if r.at.elapsed() > feed::reservation_ttl() {
            tracing::debug!(
                cv = r.cv,
                "cv reservation too old to commit; taking a fresh one"
            );
            feed::release(&cs.counter, r.cv).await;
            r.cv = self.reserve_cv(cs).await?;
            r.at = Instant::now();
        }
        Ok(())
    }

    /// A new session with a transaction started on it.
    pub(super) async fn start_transaction(&self) -> Result<ClientSession> {
        let mut s = self
            .client
            .start_session()
            .await
            .map_err(|e| map_err(e, "start session"))?;
        s.start_transaction()
            .await
            .map_err(|e| map_err(e, "start transaction"))?;
        Ok(s)
    }

    pub(super) async fn commit_txn(
        &self,
        cs: &Colls,
        c: &Commit,
        r: &mut Reservation,
    ) -> Result<()> {
        let mut pause = Duration::from_millis(2);
        for _ in 0..60 {
            self.refresh_if_old(cs, r).await.map_err(Stop::into_error)?;
            let cv = r.cv;
            let mut s = self.start_transaction().await?;
            // No ov check in here: the caller checked before the transaction began, the
            // latest ov of a record never goes down, and the unique `(itemId, ov)` insert
            // refuses a version someone committed since.
            let steps = self.apply(cs, c, cv, Some(&mut s)).await;
            match steps {
                // Too old to commit now: abort, and the next round takes a fresh cv.
                Ok(()) if r.at.elapsed() > feed::reservation_ttl() => {
                    let _ = s.abort_transaction().await;
                    continue;
                }
                Ok(()) => loop {
                    match s.commit_transaction().await {
                        Ok(()) => return Ok(()),
                        Err(e) if is_unknown_commit(&e) => continue,
                        Err(e) if is_transient(&e) => break,
                        Err(e) => return Err(map_err(e, "commit transaction")),
                    }
                },
                Err(Stop::Conflict(e)) => {
                    let _ = s.abort_transaction().await;
                    feed::release(&cs.counter, cv).await;
                    return Err(e);
                }
                Err(Stop::Driver(e, _)) if is_transient(&e) => {
                    let _ = s.abort_transaction().await;
                }
                Err(Stop::Driver(e, op)) => {
                    let _ = s.abort_transaction().await;
                    return Err(map_err(e, op));
                }
            }
            // A concurrent transaction touched the same record: back off briefly and retry.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
        Err(Error::unavailable(
            "transaction kept conflicting; giving up after 60 attempts",
        ))
    }
}

/// Which of the version entries `ids` (their `_id`s) exist: entries a retried insert wrote
/// on its first attempt.
pub(super) async fn own_entries(
    ver: &mongodb::Collection<mongodb::bson::Document>,
    ids: Vec<mongodb::bson::Bson>,
) -> std::result::Result<std::collections::HashSet<mongodb::bson::oid::ObjectId>, Stop> {
    use futures::TryStreamExt;
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let found: Vec<mongodb::bson::Document> = ver
        .find(doc! {"_id": {"$in": ids}})
        .projection(doc! {"_id": 1})
        .await
        .map_err(|e| Stop::Driver(e, "read version entries"))?
        .try_collect()
        .await
        .map_err(|e| Stop::Driver(e, "read version entries"))?;
    Ok(found
        .iter()
        .filter_map(|d| d.get_object_id("_id").ok())
        .collect())
}
