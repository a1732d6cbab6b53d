//! [`IndexStore::commit_many`](chronos_core::IndexStore::commit_many) on MongoDB: a batch in a
//! few requests instead of four to six per commit.
//!
//! 1. one `find` (`$in` on `itemId`) reads the latest ov of every record in the batch (the
//!    ov check);
//! 2. one `$inc` by the number of commits that passed reserves their cvs, in batch order;
//! 3. the deadline of each is checked (a late one releases its cv);
//! 4. *ordered path*: one unordered `insertMany` of the version entries — each unique
//!    `(itemId, ov)` insert is still its own linearisation point, and a duplicate key fails
//!    that commit alone (its cv released) — then the heads: one unordered `insertMany` for
//!    first versions, the others replaced or removed concurrently (a head left behind is
//!    repaired by the next read, as on the single path);
//!    *transactional*: versions and heads in one transaction; if it fails for any reason,
//!    every reserved cv is released and the batch falls back to one commit at a time.

use std::collections::HashMap;

use chronos_core::{Commit, Error, HeadAction, HeadEntry, Result};
use futures::stream::{self, StreamExt, TryStreamExt};
use mongodb::bson::{doc, Document};
use mongodb::error::ErrorKind as MKind;
use mongodb::options::ReturnDocument;

use super::{conflict, head_doc, version_doc, Colls, MongoIndexStore, Stop};
use crate::conv::{get, oid, u64_of};
use crate::error::{is_duplicate_key, map_err, DUPLICATE_KEY};
use crate::feed;

/// Head writes sent at once on the ordered path.
const HEAD_CONCURRENCY: usize = 16;

impl MongoIndexStore {
    /// See the module docs. One result per commit, in order.
    pub(super) async fn commit_batch(&self, c: &str, commits: Vec<Commit>) -> Vec<Result<u64>> {
        let n = commits.len();
        let fail_all = |e: Error| (0..n).map(|_| Err(e.replicate())).collect::<Vec<_>>();
        if n == 0 {
            return Vec::new();
        }
        if let Err(e) = self.ensure(c).await {
            return fail_all(e);
        }
        let cs = self.colls(c);
        let ctx =
            |e: Error, commit: &Commit| e.with("collection", c).with("id", commit.version.item_id);
        let mut out: Vec<Option<Result<u64>>> = (0..n).map(|_| None).collect();

        // 1. The ov check for the whole batch.
        let latest = match latest_ovs(self, &cs, &commits).await {
            Ok(l) => l,
            Err(e) => return fail_all(e.with("collection", c)),
        };
        let mut passed = Vec::new();
        for (i, commit) in commits.iter().enumerate() {
            let v = &commit.version;
            let ok = match latest.get(&v.item_id) {
                None => v.ov == 0,
                Some(l) => v.ov == l + 1,
            };
            if ok {
                passed.push(i);
            } else {
                let why = match latest.get(&v.item_id) {
                    Some(l) => format!("latest committed ov is {l}"),
                    None => format!("the record has no committed ov {}", v.ov.saturating_sub(1)),
                };
                out[i] = Some(Err(ctx(conflict(commit, &why).into_error(), commit)));
            }
        }
        if passed.is_empty() {
            return finish(out);
        }

        // 2. Their cvs in one bump.
        let last = match reserve(&cs, passed.len() as u64).await {
            Ok(last) => last,
            Err(e) => {
                for &i in &passed {
                    out[i] = Some(Err(ctx(e.replicate(), &commits[i])));
                }
                return finish(out);
            }
        };
        let first = last + 1 - passed.len() as u64;
        let mut cvs: HashMap<usize, u64> = HashMap::new();
        let now = chronos_core::time::now_ms();
        let mut sent = Vec::new();
        for (k, &i) in passed.iter().enumerate() {
            let cv = first + k as u64;
            // 3. The last moment this process can check the deadline.
            match commits[i].check_deadline(c, now) {
                Ok(()) => {
                    cvs.insert(i, cv);
                    sent.push(i);
                }
                Err(e) => {
                    feed::release(&cs.counter, cv).await;
                    out[i] = Some(Err(e));
                }
            }
        }

        // 4. The writes.
        if self.transactions {
            match self.batch_txn(&cs, &commits, &sent, &cvs).await {
                Ok(()) => {
                    for &i in &sent {
                        out[i] = Some(Ok(cvs[&i]));
                    }
                }
                Err(e) => {
                    tracing::debug!(collection = c, error = %e,
                        "batch transaction failed; committing its items one by one");
                    for &i in &sent {
                        feed::release(&cs.counter, cvs[&i]).await;
                    }
                    let singles: Vec<_> = sent
                        .iter()
                        .map(|&i| self.commit_one(c, commits[i].clone()))
                        .collect();
                    let results: Vec<Result<u64>> = stream::iter(singles)
                        .buffered(HEAD_CONCURRENCY)
                        .collect()
                        .await;
                    for (&i, r) in sent.iter().zip(results) {
                        out[i] = Some(r);
                    }
                }
            }
        } else {
            let inserted = self.batch_versions(&cs, &commits, &sent, &cvs).await;
            let mut landed = Vec::new();
            for (&i, r) in sent.iter().zip(inserted) {
                match r {
                    Ok(()) => landed.push(i),
                    Err(Stop::Conflict(e)) => {
                        feed::release(&cs.counter, cvs[&i]).await;
                        out[i] = Some(Err(ctx(e, &commits[i])));
                    }
                    Err(s) => out[i] = Some(Err(ctx(s.into_error(), &commits[i]))),
                }
            }
            self.batch_heads(&cs, &commits, &landed, &cvs).await;
            for &i in &landed {
                out[i] = Some(Ok(cvs[&i]));
            }
        }
        finish(out)
    }

    /// One commit through the single path (the transactional fallback).
    async fn commit_one(&self, c: &str, commit: Commit) -> Result<u64> {
        chronos_core::IndexStore::commit(self, c, commit).await
    }

    /// Ordered path: the version entries in one unordered `insertMany`; one outcome per
    /// commit of `sent`, a duplicate key being a conflict.
    async fn batch_versions(
        &self,
        cs: &Colls,
        commits: &[Commit],
        sent: &[usize],
        cvs: &HashMap<usize, u64>,
    ) -> Vec<std::result::Result<(), Stop>> {
        let docs = version_docs(commits, sent, cvs);
        let entry_ids: Vec<Option<mongodb::bson::oid::ObjectId>> =
            docs.iter().map(|d| d.get_object_id("_id").ok()).collect();
        match cs.ver.insert_many(docs).ordered(false).await {
            Ok(_) => sent.iter().map(|_| Ok(())).collect(),
            Err(e) => {
                let failed: HashMap<usize, i32> = match e.kind.as_ref() {
                    MKind::InsertMany(m) if m.write_concern_error.is_none() => m
                        .write_errors
                        .iter()
                        .flatten()
                        .map(|w| (w.index, w.code))
                        .collect(),
                    // No per-document outcome: every commit's is unknown (the engine reads
                    // each slot back).
                    _ => {
                        return sent
                            .iter()
                            .map(|_| Err(Stop::Driver(e.clone(), "insert versions")))
                            .collect()
                    }
                };
                // A duplicate may be our own entry, written by the first attempt of an
                // insert the driver retried (see `commit::own_entries`).
                let dup_ids: Vec<mongodb::bson::Bson> = failed
                    .iter()
                    .filter(|(_, &code)| code == DUPLICATE_KEY)
                    .filter_map(|(k, _)| entry_ids.get(*k).copied().flatten())
                    .map(mongodb::bson::Bson::ObjectId)
                    .collect();
                // Unreadable: those commits' outcome is unknown, which the engine resolves
                // by reading their slots back; the others' stands.
                let own = super::commit::own_entries(&cs.ver, dup_ids).await;
                sent.iter()
                    .enumerate()
                    .map(|(k, &i)| match failed.get(&k) {
                        None => Ok(()),
                        Some(&DUPLICATE_KEY) => match &own {
                            Ok(own) if entry_ids[k].is_some_and(|id| own.contains(&id)) => Ok(()),
                            Ok(_) => {
                                Err(conflict(&commits[i], "another writer committed it first"))
                            }
                            Err(Stop::Driver(e, op)) => Err(Stop::Driver(e.clone(), op)),
                            Err(Stop::Conflict(e)) => Err(Stop::Conflict(e.replicate())),
                        },
                        Some(code) => Err(Stop::Conflict(Error::unavailable(format!(
                            "inserting the version failed (server code {code})"
                        )))),
                    })
                    .collect()
            }
        }
    }

    /// Ordered path: the heads of the committed versions. A failure leaves a head behind the
    /// log, which the next `head` read repairs (as on the single path): logged, not returned.
    async fn batch_heads(
        &self,
        cs: &Colls,
        commits: &[Commit],
        landed: &[usize],
        cvs: &HashMap<usize, u64>,
    ) {
        let (firsts, rest): (Vec<usize>, Vec<usize>) = landed
            .iter()
            .partition(|&&i| commits[i].version.ov == 0 && commits[i].head == HeadAction::Upsert);
        if !firsts.is_empty() {
            let docs: Vec<Document> = firsts
                .iter()
                .map(|&i| head_of(&commits[i], cvs[&i]))
                .collect();
            if let Err(e) = cs.head.insert_many(docs).ordered(false).await {
                // A duplicate is a newer head written meanwhile; anything else is repaired.
                if !is_duplicate_key(&e) && !only_duplicates(&e) {
                    tracing::debug!(error = %e, "batch head insert failed; heads are repaired on read");
                }
            }
        }
        let writes: Vec<_> = rest
            .iter()
            .map(|&i| self.one_head(cs, &commits[i], cvs[&i]))
            .collect();
        let _: Vec<()> = stream::iter(writes)
            .buffered(HEAD_CONCURRENCY)
            .collect()
            .await;
    }

    async fn one_head(&self, cs: &Colls, c: &Commit, cv: u64) {
        let v = &c.version;
        let id = oid(v.item_id);
        let filter = doc! {"_id": id, "ov": {"$lt": v.ov as i64}};
        let r = match c.head {
            HeadAction::Upsert => cs
                .head
                .replace_one(filter, head_of(c, cv))
                .upsert(true)
                .await
                .map(drop),
            HeadAction::Remove => cs.head.delete_one(filter).await.map(drop),
        };
        match r {
            Ok(()) => {}
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => {
                tracing::debug!(id = %v.item_id, error = %e, "head write failed; repaired on read")
            }
        }
        if let Some(below) = c.prune_below_ov {
            if let Err(s) = crate::prune::prune(&cs.ver, &cs.counter, id, below, None).await {
                tracing::debug!(id = %v.item_id, error = %s.into_error(), "pruning after a batch commit failed");
            }
        }
    }

    /// Transactional path: every version and head of the batch in one transaction.
    async fn batch_txn(
        &self,
        cs: &Colls,
        commits: &[Commit],
        sent: &[usize],
        cvs: &HashMap<usize, u64>,
    ) -> Result<()> {
        let mut s = self.start_transaction().await?;
        let steps = async {
            cs.ver
                .insert_many(version_docs(commits, sent, cvs))
                .session(&mut s)
                .await
                .map(drop)?;
            let firsts: Vec<Document> = sent
                .iter()
                .filter(|&&i| commits[i].version.ov == 0 && commits[i].head == HeadAction::Upsert)
                .map(|&i| head_of(&commits[i], cvs[&i]))
                .collect();
            if !firsts.is_empty() {
                cs.head.insert_many(firsts).session(&mut s).await?;
            }
            for &i in sent {
                let c = &commits[i];
                let id = oid(c.version.item_id);
                match c.head {
                    HeadAction::Upsert if c.version.ov == 0 => {}
                    HeadAction::Upsert => {
                        cs.head
                            .replace_one(doc! {"_id": id}, head_of(c, cvs[&i]))
                            .upsert(true)
                            .session(&mut s)
                            .await?;
                    }
                    HeadAction::Remove => {
                        cs.head.delete_one(doc! {"_id": id}).session(&mut s).await?;
                    }
                }
                if let Some(below) = c.prune_below_ov {
                    if let Err(stop) =
                        crate::prune::prune(&cs.ver, &cs.counter, id, below, Some(&mut s)).await
                    {
                        return Ok(Err(stop.into_error()));
                    }
                }
            }
            Ok::<_, mongodb::error::Error>(Ok(()))
        }
        .await;
        match steps {
            Ok(Ok(())) => s
                .commit_transaction()
                .await
                .map_err(|e| map_err(e, "commit transaction")),
            Ok(Err(e)) => {
                let _ = s.abort_transaction().await;
                Err(e)
            }
            Err(e) => {
                let _ = s.abort_transaction().await;
                Err(map_err(e, "batch transaction"))
            }
        }
    }
}

/// The version entries of the commits `sent`, with their cvs.
fn version_docs(commits: &[Commit], sent: &[usize], cvs: &HashMap<usize, u64>) -> Vec<Document> {
    sent.iter()
        .map(|&i| {
            version_doc(
                &commits[i].version.clone().into_entry(cvs[&i]),
                commits[i].head,
            )
        })
        .collect()
}

/// The head document of a committed version.
fn head_of(c: &Commit, cv: u64) -> Document {
    let entry = c.version.clone().into_entry(cv);
    let mut h = HeadEntry::from_version(&entry, c.created_at);
    h.shadow = c.shadow.clone();
    h.lineage = Some(c.lineage.clone());
    head_doc(&h)
}

/// Whether an `insertMany` failed only on duplicate keys.
fn only_duplicates(e: &mongodb::error::Error) -> bool {
    matches!(e.kind.as_ref(), MKind::InsertMany(m)
        if m.write_concern_error.is_none()
            && m.write_errors.iter().flatten().all(|w| w.code == DUPLICATE_KEY))
}

/// Records whose check ovs differ by at most this are checked by one `$in` query; wider
/// batches would read long stretches of some records' histories, and are checked one
/// record at a time instead (concurrently).
const CHECK_SPREAD: u64 = 16;

/// The latest committed ov of every record of the batch (absent: no version), reading only
/// entries from each commit's `ov - 1` up, as the single path does. An `$in` on `itemId`
/// rather than an `$or` of per-record ranges: MongoDB plans both on the `(itemId, ov)`
/// index, but compatible servers (SecantusDB) scan the whole collection for an `$or`.
async fn latest_ovs(
    store: &MongoIndexStore,
    cs: &Colls,
    commits: &[Commit],
) -> Result<HashMap<chronos_core::ItemId, u64>> {
    let froms = commits.iter().map(|c| c.version.ov.saturating_sub(1));
    let (lo, hi) = froms.fold((u64::MAX, 0), |(lo, hi), f| (lo.min(f), hi.max(f)));
    let mut latest: HashMap<chronos_core::ItemId, u64> = HashMap::new();
    if hi - lo > CHECK_SPREAD {
        let reads: Vec<_> = commits
            .iter()
            .map(|c| store.latest_ov_of(cs, c.version.item_id, c.version.ov.saturating_sub(1)))
            .collect();
        let found: Vec<Result<Option<u64>>> = stream::iter(reads)
            .buffered(HEAD_CONCURRENCY)
            .collect()
            .await;
        for (c, f) in commits.iter().zip(found) {
            if let Some(ov) = f? {
                latest.insert(c.version.item_id, ov);
            }
        }
        return Ok(latest);
    }
    let ids: Vec<_> = commits.iter().map(|c| oid(c.version.item_id)).collect();
    let docs: Vec<Document> = cs
        .ver
        .find(doc! {"itemId": {"$in": ids}, "ov": {"$gte": lo as i64}})
        .projection(doc! {"itemId": 1, "ov": 1, "_id": 0})
        .await
        .map_err(|e| map_err(e, "read latest ovs"))?
        .try_collect()
        .await
        .map_err(|e| map_err(e, "read latest ovs"))?;
    for d in docs {
        let id = crate::conv::item_id(get(&d, "itemId")?)?;
        let ov = get(&d, "ov").and_then(u64_of)?;
        let e = latest.entry(id).or_insert(ov);
        *e = (*e).max(ov);
    }
    Ok(latest)
}

impl MongoIndexStore {
    /// The latest ov of one record from `from` up (the single path's read).
    async fn latest_ov_of(
        &self,
        cs: &Colls,
        id: chronos_core::ItemId,
        from: u64,
    ) -> Result<Option<u64>> {
        let d = cs
            .ver
            .find_one(doc! {"itemId": oid(id), "ov": {"$gte": from as i64}})
            .sort(doc! {"ov": -1})
            .await
            .map_err(|e| map_err(e, "read latest ov"))?;
        d.map(|d| get(&d, "ov").and_then(u64_of)).transpose()
    }
}

/// Reserves `k` cvs with one `$inc`; returns the last.
async fn reserve(cs: &Colls, k: u64) -> Result<u64> {
    let d = cs
        .counter
        .find_one_and_update(doc! {"_id": "cv"}, doc! {"$inc": {"value": k as i64}})
        .return_document(ReturnDocument::After)
        .await
        .map_err(|e| map_err(e, "bump cv"))?
        .ok_or_else(|| Error::unavailable("the cv counter document is missing"))?;
    get(&d, "value").and_then(u64_of)
}

fn finish(out: Vec<Option<Result<u64>>>) -> Vec<Result<u64>> {
    out.into_iter()
        .map(|r| r.expect("every commit has an outcome"))
        .collect()
}
