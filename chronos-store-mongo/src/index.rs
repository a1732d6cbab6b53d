//! [`IndexStore`] on MongoDB in upstream's layout: `<c>_head`, `<c>_ver`, `<c>_counter`.
//!
//! Two commit paths, chosen once per client:
//! Both start the same way: the latest-ov check and the counter bump (`$inc` on the
//! counter document, outside any transaction). Through [`IndexStore::precommit`] the two run
//! concurrently — one round trip, which the engine overlaps with the payload put. Then:
//! - *transactional* (replica set or mongos): version insert and head write in one
//!   transaction, retried on `TransientTransactionError` and `UnknownTransactionCommitResult`;
//! - *ordered* (standalone, or transactions disabled): insert the version — the unique
//!   `(itemId, ov)` insert is the linearisation point — then write the head only if it is
//!   older (idempotent). A head left behind by a crash is repaired from the version log by
//!   the next `head` read.
//!
//! In both the unique `(itemId, ov)` index is what refuses a version committed since the
//! check; the check itself refuses gaps (a record's latest ov never goes down).

use std::time::Instant;

use async_trait::async_trait;
use chronos_core::{
    Commit, Error, FeedPage, HeadEntry, HeadQuery, IndexCapabilities, IndexStore, ItemId, Point,
    Precommit, Result, VersionEntry,
};
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::options::ReturnDocument;
use mongodb::{Client, Collection, Database};

mod batch;
mod commit;
mod indexes;
mod layout;
mod query;

pub(crate) use indexes::create_missing_indexes;
use indexes::duplicate_versions;
use layout::{head_doc, head_from, version_doc, version_from};

use crate::conv::{self, date, get, oid, u64_of};
use crate::error::{is_duplicate_key, map_err};
use crate::feed;
use crate::seen::Seen;

/// The MongoDB index store for one database.
#[derive(Debug)]
pub struct MongoIndexStore {
    client: Client,
    db: Database,
    transactions: bool,
    prepared: Seen,
    /// Collections whose heads are known to carry sort keys ([`crate::sortkey::backfill`]).
    sortable: Seen,
}

struct Colls {
    head: Collection<Document>,
    ver: Collection<Document>,
    counter: Collection<Document>,
}

/// A cv taken for one commit, and when.
struct Reservation {
    cv: u64,
    at: Instant,
}

/// Why a commit attempt stopped.
pub(crate) enum Stop {
    Conflict(Error),
    Driver(mongodb::error::Error, &'static str),
}

impl Stop {
    pub(crate) fn into_error(self) -> Error {
        match self {
            Stop::Conflict(e) => e,
            Stop::Driver(e, op) => map_err(e, op),
        }
    }
}

impl From<(mongodb::error::Error, &'static str)> for Stop {
    fn from((e, op): (mongodb::error::Error, &'static str)) -> Self {
        Stop::Driver(e, op)
    }
}

/// `find(filter).sort(sort).skip(skip).limit(limit)`, collected.
pub(crate) async fn find_sorted(
    coll: &Collection<Document>,
    filter: Document,
    sort: Document,
    skip: usize,
    limit: usize,
    op: &'static str,
) -> Result<Vec<Document>> {
    coll.find(filter)
        .sort(sort)
        .skip(skip as u64)
        .limit(limit.min(i64::MAX as usize) as i64)
        .await
        .map_err(|e| map_err(e, op))?
        .try_collect()
        .await
        .map_err(|e| map_err(e, op))
}

fn conflict(c: &Commit, why: &str) -> Stop {
    let v = &c.version;
    Stop::Conflict(Error::conflict(format!(
        "cannot commit ov {} of {}: {why}",
        v.ov, v.item_id
    )))
}

impl MongoIndexStore {
    /// The database (for repairs that work on upstream's documents directly).
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    pub(crate) fn new(client: Client, db: Database, transactions: bool) -> Self {
        Self {
            client,
            db,
            transactions,
            prepared: Seen::default(),
            sortable: Seen::default(),
        }
    }

    fn colls(&self, c: &str) -> Colls {
        Colls {
            head: self.db.collection(&format!("{c}_head")),
            ver: self.db.collection(&format!("{c}_ver")),
            counter: self.db.collection(&format!("{c}_counter")),
        }
    }

    async fn ensure(&self, c: &str) -> Result<()> {
        if self.prepared.contains(c) {
            return Ok(());
        }
        chronos_core::engine::validate_collection_name(c)?;
        let cs = self.colls(c);
        let ver = [
            (doc! {"itemId": 1, "ov": 1}, "itemId_ov", true),
            (doc! {"itemId": 1, "at": 1}, "itemId_at", false),
            (doc! {"itemId": 1, "cv": 1}, "itemId_cv", false),
            (doc! {"cv": 1}, "cv", false),
            (doc! {"at": 1}, "at", false),
        ];
        if let Err(e) = create_missing_indexes(&cs.ver, c, &ver, false).await {
            return Err(match duplicate_versions(&cs.ver).await {
                Some(dups) if !dups.is_empty() => Error::invalid_config(format!(
                    "collection {c}_ver holds several entries for one version, so the unique \
                     (itemId, ov) index cannot be built (the TypeScript library's write race \
                     leaves these): {}; resolve them with `chronos repair-versions -c {c}`, \
                     which keeps the entry the head points at",
                    dups.join(", ")
                ))
                .with("collection", c),
                _ => e,
            });
        }
        let head = [
            (doc! {"itemId": 1}, "itemId", true),
            (doc! {"updatedAt": 1}, "updatedAt", false),
            (doc! {"createdAt": 1}, "createdAt", false),
        ];
        create_missing_indexes(&cs.head, c, &head, false).await?;
        // Transactions cannot create collections on every server version: make sure the
        // counter collection exists beforehand.
        if let Err(e) = self.db.create_collection(format!("{c}_counter")).await {
            let exists =
                matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(ce) if ce.code == 48);
            if !exists {
                return Err(map_err(e, "create counter collection").with("collection", c));
            }
        }
        // The cv document exists before the first commit, so every reservation is a plain
        // `$inc`: racing first upserts can consume a cv on some compatible servers without
        // returning it, a gap that nothing could release.
        let seeded = cs
            .counter
            .update_one(doc! {"_id": "cv"}, doc! {"$setOnInsert": {"value": 0_i64}})
            .upsert(true)
            .await;
        match seeded {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(map_err(e, "create cv counter").with("collection", c)),
        }
        self.prepared.insert(c);
        Ok(())
    }

    /// Ordered path: brings a head that lags the version log up to date; `latest` is the
    /// log's newest entry beyond the head, if any.
    async fn repair(
        &self,
        c: &str,
        id: ItemId,
        head: Option<HeadEntry>,
        latest: Option<Document>,
    ) -> Result<Option<HeadEntry>> {
        let cs = self.colls(c);
        let Some(latest_doc) = latest else {
            return Ok(head);
        };
        let v = version_from(&latest_doc)?;
        if head.as_ref().is_some_and(|h| h.ov >= v.ov) {
            return Ok(head);
        }
        tracing::warn!(collection = c, id = %id, ov = v.ov, "repairing a head that lags its version log");
        if latest_doc.get_bool("headRemoved").unwrap_or(false) {
            cs.head
                .delete_one(doc! {"_id": oid(id), "ov": {"$lt": v.ov as i64}})
                .await
                .map_err(|e| map_err(e, "repair head"))?;
            return Ok(None);
        }
        let created_at = match &head {
            Some(h) => h.created_at,
            None => match self.version(c, id, 0).await? {
                Some(first) => first.at,
                None => v.at,
            },
        };
        match cs
            .head
            .replace_one(
                doc! {"_id": oid(id), "ov": {"$lt": v.ov as i64}},
                head_doc(&HeadEntry::from_version(&v, created_at)),
            )
            .upsert(true)
            .await
        {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(map_err(e, "repair head")),
        }
        Ok(Some(HeadEntry::from_version(&v, created_at)))
    }
}

#[async_trait]
impl IndexStore for MongoIndexStore {
    fn capabilities(&self) -> IndexCapabilities {
        IndexCapabilities::new(self.transactions)
    }

    async fn ping(&self) -> Result<()> {
        self.db
            .run_command(doc! {"ping": 1})
            .await
            .map(|_| ())
            .map_err(|e| map_err(e, "ping"))
    }

    async fn database_id(&self) -> Result<String> {
        // `{_id: "databaseId", value}` in `chronos_meta`, set on insert only: concurrent
        // first calls race on the `_id`, and the loser reads the winner's.
        let meta = self.db.collection::<Document>("chronos_meta");
        let candidate = chronos_core::new_database_id();
        for _ in 0..3 {
            let found = meta
                .find_one_and_update(
                    doc! {"_id": "databaseId"},
                    doc! {"$setOnInsert": {"value": &candidate}},
                )
                .upsert(true)
                .return_document(ReturnDocument::After)
                .await;
            match found {
                Ok(Some(d)) => {
                    return d.get_str("value").map(str::to_string).map_err(|_| {
                        Error::internal("chronos_meta.databaseId has no string 'value'")
                    })
                }
                Ok(None) => {}
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(map_err(e, "read database id")),
            }
        }
        Err(Error::unavailable(
            "could not read or create chronos_meta.databaseId",
        ))
    }

    async fn prepare(&self, c: &str, indexed_props: &[String]) -> Result<()> {
        self.ensure(c).await?;
        if indexed_props.is_empty() {
            return Ok(());
        }
        let wanted: Vec<(Document, String, bool)> = indexed_props
            .iter()
            .map(|p| {
                // `_id` second: an equality filter on the property then reads its matches in
                // list order (by id, the default) straight from the index, so a page costs
                // the same however many records match.
                let mut keys = Document::new();
                keys.insert(format!("metaIndexed.{p}"), 1);
                keys.insert("_id", 1);
                (keys, format!("meta_{p}_id"), false)
            })
            .collect();
        let wanted: Vec<(Document, &str, bool)> = wanted
            .iter()
            .map(|(k, n, u)| (k.clone(), n.as_str(), *u))
            .collect();
        create_missing_indexes(&self.colls(c).head, c, &wanted, false).await
    }

    async fn commit(&self, c: &str, commit: Commit) -> Result<u64> {
        self.commit_prepared(c, commit, Precommit::none()).await
    }

    async fn commit_many(&self, c: &str, commits: Vec<Commit>) -> Vec<Result<u64>> {
        self.commit_batch(c, commits).await
    }

    async fn precommit(&self, c: &str, commit: &Commit) -> Result<Precommit> {
        self.ensure(c).await?;
        self.prepare_commit(&self.colls(c), commit, true)
            .await
            .map(Precommit::with_cv)
            .map_err(|s| {
                s.into_error()
                    .with("collection", c)
                    .with("id", commit.version.item_id)
            })
    }

    async fn commit_prepared(&self, c: &str, commit: Commit, prepared: Precommit) -> Result<u64> {
        self.ensure(c).await?;
        let cs = self.colls(c);
        let r = async {
            let mut r = match prepared.reserved_cv {
                Some(cv) => Reservation {
                    cv,
                    at: prepared.reserved_at.unwrap_or_else(Instant::now),
                },
                None => Reservation {
                    cv: self
                        .prepare_commit(&cs, &commit, false)
                        .await
                        .map_err(Stop::into_error)?,
                    at: Instant::now(),
                },
            };
            // The last moment before the version insert (the linearisation point) that this
            // process can check; a request delayed in flight after it is what the
            // collection's clock-skew margin covers.
            // A refused commit never uses its cv: released, so the feed need not wait for
            // the reservation to expire.
            if let Err(e) = commit.check_deadline(c, chronos_core::time::now_ms()) {
                feed::release(&cs.counter, r.cv).await;
                return Err(e);
            }
            if self.transactions {
                self.commit_txn(&cs, &commit, &mut r).await?;
            } else {
                self.refresh_if_old(&cs, &mut r)
                    .await
                    .map_err(Stop::into_error)?;
                let applied = self.apply(&cs, &commit, r.cv, None).await;
                if let Err(Stop::Conflict(_)) = &applied {
                    feed::release(&cs.counter, r.cv).await;
                }
                applied.map_err(Stop::into_error)?;
            }
            Ok(r.cv)
        }
        .await;
        r.map_err(|e: Error| e.with("collection", c).with("id", commit.version.item_id))
    }

    async fn abandon(&self, c: &str, prepared: Precommit) {
        if let Some(cv) = prepared.reserved_cv {
            feed::release(&self.colls(c).counter, cv).await;
        }
    }

    /// Without a transaction: the watermark first, then the entries (a crash in between
    /// leaves a watermark that is merely conservative).
    async fn prune_versions(&self, c: &str, id: ItemId, below_ov: u64) -> Result<u64> {
        self.ensure(c).await?;
        let cs = self.colls(c);
        crate::prune::prune(&cs.ver, &cs.counter, oid(id), below_ov, None)
            .await
            .map_err(|e| e.into_error().with("collection", c).with("id", id))
    }

    async fn scrub_versions(&self, c: &str, id: ItemId, below_ov: u64) -> Result<u64> {
        self.ensure(c).await?;
        let cs = self.colls(c);
        crate::prune::scrub(&cs.ver, oid(id), below_ov)
            .await
            .map_err(|e| e.into_error().with("collection", c).with("id", id))
    }

    async fn repair_head(
        &self,
        c: &str,
        id: ItemId,
        seen: Option<(u64, u64)>,
        latest_ov: u64,
        head: Option<HeadEntry>,
    ) -> Result<bool> {
        self.ensure(c).await?;
        let cs = self.colls(c);
        let ctx = |e: Error| e.with("collection", c).with("id", id);
        let latest = || async {
            crate::prune::latest_ov(&cs.ver, oid(id), None)
                .await
                .map_err(|e| ctx(e.into_error()))
        };
        if latest().await? != Some(latest_ov) {
            return Ok(false);
        }
        // Conditional on what the caller saw; no transaction needed: a commit's own head
        // write is conditional on ov too.
        let seen_filter =
            seen.map(|(ov, cv)| doc! {"_id": oid(id), "ov": ov as i64, "cv": cv as i64});
        let wrote = match (seen_filter, &head) {
            (Some(f), Some(h)) => {
                cs.head
                    .replace_one(f, head_doc(h))
                    .await
                    .map_err(|e| ctx(map_err(e, "repair head")))?
                    .matched_count
                    == 1
            }
            (Some(f), None) => {
                cs.head
                    .delete_one(f)
                    .await
                    .map_err(|e| ctx(map_err(e, "repair head")))?
                    .deleted_count
                    == 1
            }
            (None, Some(h)) => match cs.head.insert_one(head_doc(h)).await {
                Ok(_) => true,
                Err(e) if is_duplicate_key(&e) => false,
                Err(e) => return Err(ctx(map_err(e, "repair head"))),
            },
            (None, None) => cs
                .head
                .find_one(doc! {"_id": oid(id)})
                .await
                .map_err(|e| ctx(map_err(e, "read head")))?
                .is_none(),
        };
        if let (true, Some(h)) = (wrote, &head) {
            // A commit that landed meanwhile and removed the head before ours was written
            // would be undone by it: take ours back.
            if latest().await? != Some(latest_ov) {
                cs.head
                    .delete_one(doc! {"_id": oid(id), "ov": h.ov as i64, "cv": h.cv as i64})
                    .await
                    .map_err(|e| ctx(map_err(e, "undo head repair")))?;
                return Ok(false);
            }
        }
        Ok(wrote)
    }

    async fn head(&self, c: &str, id: ItemId) -> Result<Option<HeadEntry>> {
        let head = self.head_for_write(c, id).await?;
        if self.transactions {
            return Ok(head);
        }
        let cs = self.colls(c);
        // Ordered path: the head may lag the log after a crash, so the log is asked for
        // anything newer. Bounded by the head's ov, that read is an empty index range in
        // the normal case (reading head and log together, unbounded, would visit the whole
        // history on servers that execute sorted, limited queries over every match).
        let mut newer = doc! {"itemId": oid(id)};
        if let Some(h) = &head {
            newer.insert("ov", doc! {"$gt": h.ov as i64});
        }
        let latest = cs
            .ver
            .find_one(newer)
            .sort(doc! {"ov": -1})
            .await
            .map_err(|e| map_err(e, "read latest version").with("collection", c))?;
        self.repair(c, id, head, latest).await
    }

    /// The head document alone: on the ordered path it may lag the log (what `head` checks),
    /// which a write finds out at its commit — one request less per write.
    async fn head_for_write(&self, c: &str, id: ItemId) -> Result<Option<HeadEntry>> {
        self.ensure(c).await?;
        let d = self
            .colls(c)
            .head
            .find_one(doc! {"_id": oid(id)})
            .await
            .map_err(|e| map_err(e, "read head").with("collection", c))?;
        d.as_ref().map(head_from).transpose()
    }

    async fn version(&self, c: &str, id: ItemId, ov: u64) -> Result<Option<VersionEntry>> {
        self.ensure(c).await?;
        let d = self
            .colls(c)
            .ver
            .find_one(doc! {"itemId": oid(id), "ov": ov as i64})
            .await
            .map_err(|e| map_err(e, "read version").with("collection", c))?;
        d.as_ref().map(version_from).transpose()
    }

    async fn version_at(&self, c: &str, id: ItemId, point: Point) -> Result<Option<VersionEntry>> {
        self.ensure(c).await?;
        let (filter, sort) = match point {
            Point::At(t) => (
                doc! {"itemId": oid(id), "at": {"$lte": date(t)}},
                doc! {"at": -1},
            ),
            Point::Cv(n) => (
                doc! {"itemId": oid(id), "cv": {"$lte": n.min(i64::MAX as u64) as i64}},
                doc! {"cv": -1},
            ),
        };
        let d = self
            .colls(c)
            .ver
            .find_one(filter)
            .sort(sort)
            .await
            .map_err(|e| map_err(e, "read version as of").with("collection", c))?;
        d.as_ref().map(version_from).transpose()
    }

    async fn versions(
        &self,
        c: &str,
        id: ItemId,
        after_ov: Option<u64>,
        limit: usize,
    ) -> Result<Vec<VersionEntry>> {
        self.ensure(c).await?;
        let filter = doc! {"itemId": oid(id), "ov": {"$gt": after_ov.map_or(-1, |a| a as i64)}};
        let docs = find_sorted(
            &self.colls(c).ver,
            filter,
            doc! {"ov": 1},
            0,
            limit,
            "read history",
        )
        .await
        .map_err(|e| e.with("collection", c))?;
        docs.iter().map(version_from).collect()
    }

    async fn scan_versions(
        &self,
        c: &str,
        after: Option<(ItemId, u64)>,
        limit: usize,
    ) -> Result<Vec<VersionEntry>> {
        self.ensure(c).await?;
        let filter = match after {
            Some((id, ov)) => doc! {"$or": [
                {"itemId": oid(id), "ov": {"$gt": ov.min(i64::MAX as u64) as i64}},
                {"itemId": {"$gt": oid(id)}},
            ]},
            None => doc! {},
        };
        let docs = find_sorted(
            &self.colls(c).ver,
            filter,
            doc! {"itemId": 1, "ov": 1},
            0,
            limit,
            "read the version log",
        )
        .await
        .map_err(|e| e.with("collection", c))?;
        docs.iter().map(version_from).collect()
    }

    async fn query_heads(&self, c: &str, q: &HeadQuery) -> Result<Vec<HeadEntry>> {
        self.ensure(c).await?;
        self.heads_page(c, q).await
    }

    async fn changed_items(
        &self,
        c: &str,
        since: Point,
        after_id: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<ItemId>> {
        self.ensure(c).await?;
        let mut m = match since {
            Point::At(t) => doc! {"at": {"$gt": date(t)}},
            Point::Cv(n) => doc! {"cv": {"$gt": n.min(i64::MAX as u64) as i64}},
        };
        if let Some(a) = after_id {
            m.insert("itemId", doc! {"$gt": oid(a)});
        }
        let pipeline = [
            doc! {"$match": m},
            doc! {"$group": {"_id": "$itemId"}},
            doc! {"$sort": {"_id": 1}},
            doc! {"$limit": limit.min(i64::MAX as usize) as i64},
        ];
        let docs: Vec<Document> = self
            .colls(c)
            .ver
            .aggregate(pipeline)
            .await
            .map_err(|e| map_err(e, "list changed items"))?
            .try_collect()
            .await
            .map_err(|e| map_err(e, "list changed items").with("collection", c))?;
        docs.iter().map(|d| conv::item_id(get(d, "_id")?)).collect()
    }

    /// See [`crate::feed`]: versions are handed out once every lower cv is settled.
    async fn feed(&self, c: &str, after_cv: u64, limit: usize) -> Result<FeedPage> {
        self.ensure(c).await?;
        let cs = self.colls(c);
        let colls = feed::FeedColls {
            ver: &cs.ver,
            counter: &cs.counter,
        };
        feed::page(c, colls, after_cv, limit, version_from).await
    }

    async fn current_cv(&self, c: &str) -> Result<u64> {
        self.ensure(c).await?;
        let d = self
            .colls(c)
            .counter
            .find_one(doc! {"_id": "cv"})
            .await
            .map_err(|e| map_err(e, "read cv").with("collection", c))?;
        match d {
            Some(d) => u64_of(get(&d, "value")?),
            None => Ok(0),
        }
    }

    async fn aggregate(&self, c: &str, q: &chronos_core::AggregateQuery) -> Result<Option<f64>> {
        self.ensure(c).await?;
        crate::aggregate::run(&self.colls(c).head, q)
            .await
            .map_err(|e| e.with("collection", c))
    }
}
