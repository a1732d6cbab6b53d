//! The change feed on MongoDB, where cvs become visible out of order.
//!
//! A commit takes its cv (`$inc` on `<c>_counter`'s `cv` document) *before* it inserts its
//! version, so a reader that sees cv 9 cannot conclude that cv 8 will never appear: its
//! writer may still be on the way. The feed therefore hands out a version only when every
//! lower cv is *settled* — committed (it is in the log), released, or expired:
//!
//! - **released**: a writer that learns its reservation will never commit (the ov check
//!   failed, another writer took the ov, or the reservation grew too old) records
//!   `{_id: "released:<cv>", released: <cv>}` in `<c>_counter`. Lost races — the common
//!   source of unused cvs — therefore never hold the feed up;
//! - **expired**: a reservation is used only within [`RESERVATION_TTL`] (or
//!   [`RESERVATION_TTL_VAR`]) of being handed out:
//!   right before the version insert (or the transaction's commit) the store checks its age
//!   and, past the bound, releases it and takes a fresh cv. Feed readers keep *marks* in the
//!   `feed` document of `<c>_counter`: `(cv, at)` pairs saying "every cv up to `cv` had been
//!   handed out by `at`". Once a mark is older than [`RESERVATION_TTL`] + [`SETTLE_MARGIN`]
//!   (the margin covers requests in flight and clock differences between processes),
//!   everything up to its cv is settled. Only a writer that died holding a reservation, or
//!   an outcome the writer could not learn, waits this long.
//!
//! A version with a cv right after the last one handed out (no gap) is handed out at once.

use std::collections::BTreeSet;
use std::future::IntoFuture;
use std::time::Duration;

use chronos_core::{FeedPage, Result, VersionEntry};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;

use crate::conv::{get, u64_of};
use crate::error::map_err;

/// How long a reserved cv may be used by default: past it, a commit takes a fresh one.
pub const RESERVATION_TTL: Duration = Duration::from_secs(30);
/// Added to the reservation TTL before a mark settles its cvs: requests still in flight and
/// clock differences between the processes that write and read marks (never more than the
/// TTL itself).
pub const SETTLE_MARGIN: Duration = Duration::from_secs(30);
/// Overrides [`RESERVATION_TTL`] (milliseconds) for every process of a deployment — every
/// writer and every feed reader must agree on it. Shorter means a crashed writer holds the
/// change feed up for less time, and a commit slower than it takes a fresh cv.
pub const RESERVATION_TTL_VAR: &str = "CHRONOS_MONGO_RESERVATION_TTL_MS";

/// The reservation TTL in force (see [`RESERVATION_TTL_VAR`]).
pub fn reservation_ttl() -> Duration {
    static TTL: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *TTL.get_or_init(|| {
        match std::env::var(RESERVATION_TTL_VAR)
            .ok()
            .map(|v| v.parse::<u64>())
        {
            Some(Ok(ms)) if ms > 0 => Duration::from_millis(ms),
            Some(_) => {
                tracing::warn!(
                    var = RESERVATION_TTL_VAR,
                    "not a positive number of milliseconds; using the default"
                );
                RESERVATION_TTL
            }
            None => RESERVATION_TTL,
        }
    })
}

/// How old a mark must be before it settles its cvs.
fn settle_after() -> Duration {
    let ttl = reservation_ttl();
    ttl + SETTLE_MARGIN.min(ttl)
}
/// A reader adds a mark when the newest is older than this (or a quarter of the reservation
/// TTL, when that is shorter), so a settled horizon trails the TTL by little.
const MARK_EVERY: Duration = Duration::from_secs(5);

fn mark_every() -> Duration {
    MARK_EVERY.min(reservation_ttl() / 4)
}
/// Marks kept (the oldest go first).
const MARKS_KEPT: usize = 32;

/// Records that cv `cv` will never be committed. Best effort: a lost record only makes the
/// feed wait for the cv to expire.
pub(crate) async fn release(counter: &Collection<Document>, cv: u64) {
    let d = doc! {"_id": format!("released:{cv}"), "released": cv as i64};
    if let Err(e) = counter.insert_one(d).await {
        tracing::debug!(cv, error = %e, "could not record a released cv; the change feed waits for it to expire");
    }
}

/// One mark: every cv up to `cv` had been handed out by `at` (epoch ms, the reader's clock).
#[derive(Debug, Clone, Copy)]
struct Mark {
    cv: u64,
    at: i64,
}

fn marks_of(d: Option<&Document>) -> Vec<Mark> {
    let Some(Ok(arr)) = d.map(|d| d.get_array("marks")) else {
        return Vec::new();
    };
    arr.iter()
        .filter_map(|b| {
            let m = b.as_document()?;
            let cv = m.get("cv").and_then(|b| u64_of(b).ok())?;
            let at = match m.get("at")? {
                Bson::Int64(n) => *n,
                Bson::Int32(n) => i64::from(*n),
                _ => return None,
            };
            Some(Mark { cv, at })
        })
        .collect()
}

/// The collection's `<c>_ver` and `<c>_counter`, for one feed page.
pub(crate) struct FeedColls<'a> {
    pub(crate) ver: &'a Collection<Document>,
    pub(crate) counter: &'a Collection<Document>,
}

/// The page after `after` (see the module docs).
pub(crate) async fn page(
    c: &str,
    cs: FeedColls<'_>,
    after: u64,
    limit: usize,
    version_from: fn(&Document) -> Result<VersionEntry>,
) -> Result<FeedPage> {
    let err = |e: mongodb::error::Error| map_err(e, "read change feed").with("collection", c);
    let now0 = chronos_core::time::now_ms().as_millisecond();
    let (counter, feed, released) = futures::join!(
        cs.counter.find_one(doc! {"_id": "cv"}).into_future(),
        cs.counter.find_one(doc! {"_id": "feed"}).into_future(),
        async {
            cs.counter
                .find(doc! {"released": {"$gt": after as i64}})
                .await?
                .try_collect::<Vec<Document>>()
                .await
        }
    );
    let reserved = match counter.map_err(err)? {
        Some(d) => u64_of(get(&d, "value")?)?,
        None => 0,
    };
    let now1 = chronos_core::time::now_ms().as_millisecond();
    let feed = feed.map_err(err)?;
    let marks = marks_of(feed.as_ref());
    let released: BTreeSet<u64> = released
        .map_err(err)?
        .iter()
        .filter_map(|d| d.get("released").and_then(|b| u64_of(b).ok()))
        .collect();
    let settle = settle_after().as_millis() as i64;
    let settled = marks
        .iter()
        .filter(|m| m.at + settle < now0)
        .map(|m| m.cv)
        .max()
        .unwrap_or(0);

    let docs: Vec<Document> = cs
        .ver
        .find(doc! {"cv": {"$gt": after.min(i64::MAX as u64) as i64}})
        .sort(doc! {"cv": 1})
        .limit(limit.min(i64::MAX as usize) as i64)
        .await
        .map_err(err)?
        .try_collect()
        .await
        .map_err(err)?;
    // After the read: a prune that removed part of this range raised the watermark first.
    let pruned = cs
        .counter
        .find_one(doc! {"_id": "pruned"})
        .await
        .map_err(err)?
        .map(|d| get(&d, "value").and_then(u64_of))
        .transpose()?
        .unwrap_or(0);
    FeedPage::check_pruned(c, after, pruned)?;

    // Moves `next` over settled cvs up to (not including) `upto`; true when it got there.
    let skip = |next: &mut u64, upto: u64| -> bool {
        if upto.saturating_sub(1) <= settled {
            *next = (*next).max(upto.saturating_sub(1));
            return true;
        }
        *next = (*next).max(settled);
        while *next + 1 < upto {
            if !released.contains(&(*next + 1)) {
                return false;
            }
            *next += 1;
        }
        true
    };
    let fetched = docs.len();
    let mut versions = Vec::with_capacity(fetched);
    let mut next = after;
    let mut blocked = false;
    for d in &docs {
        let v = version_from(d)?;
        if !skip(&mut next, v.cv) {
            blocked = true;
            break;
        }
        next = v.cv;
        versions.push(v);
    }
    if !blocked && fetched < limit {
        // Nothing more is committed beyond `next` yet: move over what is settled anyway.
        let upto = reserved.max(next) + 1;
        skip(&mut next, upto);
    }
    if blocked {
        tracing::debug!(
            collection = c,
            after = next,
            "change feed waits for a cv reservation that may still commit"
        );
    }
    if marks
        .last()
        .is_none_or(|m| m.at + mark_every().as_millis() as i64 <= now1)
    {
        add_mark(
            cs.counter,
            marks,
            Mark {
                cv: reserved,
                at: now1,
            },
            settled,
        )
        .await;
    }
    Ok(FeedPage { versions, next })
}

/// Adds a mark and forgets releases that marks now settle. Best effort: two readers racing
/// lose one of their marks, which only delays settling.
async fn add_mark(counter: &Collection<Document>, mut marks: Vec<Mark>, mark: Mark, settled: u64) {
    marks.push(mark);
    let drop = marks.len().saturating_sub(MARKS_KEPT);
    marks.drain(..drop);
    let arr: Vec<Bson> = marks
        .iter()
        .map(|m| Bson::Document(doc! {"cv": m.cv as i64, "at": m.at}))
        .collect();
    let r = counter
        .replace_one(doc! {"_id": "feed"}, doc! {"_id": "feed", "marks": arr})
        .upsert(true)
        .await;
    if let Err(e) = r {
        tracing::debug!(error = %e, "could not record a change-feed mark");
    }
    if settled > 0 {
        let r = counter
            .delete_many(doc! {"released": {"$lte": settled as i64}})
            .await;
        if let Err(e) = r {
            tracing::debug!(error = %e, "could not forget settled cv releases");
        }
    }
}
