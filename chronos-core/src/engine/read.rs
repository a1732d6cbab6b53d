//! Reads: latest, by version, as of an instant, history, and metadata queries.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::payload::{self, Decoded};
use super::{Collection, HistoryOptions, ListOptions, ReadOptions};
use crate::aggregate::{AggregateOp, AggregateQuery, Window};
use crate::error::{Error, ErrorKind, Result};
use crate::filter::Filter;
use crate::id::ItemId;
use crate::index::{
    HeadEntry, HeadQuery, Point, Sort, SortField, SortKey, VersionEntry, ERASED_CHECKSUM,
};
use crate::model::{Presigned, Record, SystemFields};
use crate::time::Timestamp;

/// How many payloads a page read fetches at once.
const FETCH_CONCURRENCY: usize = 16;
/// Largest page.
const MAX_PAGE: usize = 1000;

/// A page of records.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page {
    /// The records, in the requested order.
    pub items: Vec<Record>,
    /// Pass to [`ListOptions::cursor`] for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
    /// Records that matched but whose stored payload cannot be read (missing, corrupted,
    /// not parseable): reported here instead of failing the whole page, so one bad record
    /// never hides the others. Their position in the order is where they would have been;
    /// reading one directly gives the full error. A store that fails (`Unavailable`) still
    /// fails the page.
    pub unreadable: Vec<Unreadable>,
}

/// A record a page could not read (see [`Page::unreadable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The record.
    pub id: ItemId,
    /// Why: the error's kind (`Internal` for a damaged payload, `NotFound` for a missing one,
    /// `Erased` for an erased record listed with `include_deleted`).
    pub kind: crate::ErrorKind,
    /// The error's message with its context.
    pub message: String,
}

/// A page of a record's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// Version entries in ascending ov.
    pub versions: Vec<VersionEntry>,
    /// Pass as [`HistoryOptions::after_ov`] for the next page; `None` on the last page.
    pub next_after_ov: Option<u64>,
}

impl Collection {
    /// The latest version of a record; `None` if it does not exist, or is deleted and
    /// `include_deleted` is off; `Erased` if it was erased ([`Collection::erase`]).
    pub async fn get_latest(&self, id: ItemId, opts: ReadOptions) -> Result<Option<Record>> {
        let Some(head) = self.stores().index.head(self.name(), id).await? else {
            return Ok(None);
        };
        if head.checksum == ERASED_CHECKSUM {
            return Err(self.erased(id));
        }
        if head.deleted_at.is_some() && !opts.include_deleted {
            return Ok(None);
        }
        self.record_from_head(&head, &opts).await.map(Some)
    }

    /// Version `ov` of a record; `None` if there is no such version (or it is a tombstone and
    /// `include_deleted` is off); `Erased` if the record was erased.
    pub async fn get_version(
        &self,
        id: ItemId,
        ov: u64,
        opts: ReadOptions,
    ) -> Result<Option<Record>> {
        let v = self.stores().index.version(self.name(), id, ov).await?;
        self.record_from_version(v, &opts).await
    }

    /// The record as it was at `at`: the version with the greatest `at <= t`. A record that did
    /// not exist yet, or was deleted at `t`, reads as `None` (the tombstone with
    /// `include_deleted`); `Erased` if the version there was erased.
    pub async fn get_as_of(
        &self,
        id: ItemId,
        at: Timestamp,
        opts: ReadOptions,
    ) -> Result<Option<Record>> {
        let v = self
            .stores()
            .index
            .version_at(self.name(), id, Point::At(at))
            .await?;
        self.record_from_version(v, &opts).await
    }

    /// A page of the record's version log (ascending ov). `NotFound` for a record that never
    /// existed.
    pub async fn history(&self, id: ItemId, opts: HistoryOptions) -> Result<HistoryPage> {
        check_limit(opts.limit, "history limit")?;
        let mut versions = self
            .stores()
            .index
            .versions(self.name(), id, opts.after_ov, opts.limit + 1)
            .await?;
        if versions.is_empty() && opts.after_ov.is_none() {
            return Err(self.not_found(id));
        }
        let more = versions.len() > opts.limit;
        versions.truncate(opts.limit);
        let next_after_ov = if more {
            versions.last().map(|v| v.ov)
        } else {
            None
        };
        Ok(HistoryPage {
            versions,
            next_after_ov,
        })
    }

    /// Records whose indexed metadata matches `opts.filter`, sorted and paged with a keyset
    /// cursor. Filtering, sorting and limiting happen in the index store. When the collection
    /// has `indexedProps`, filters and sorts may only use those paths.
    pub async fn list_by_meta(&self, opts: ListOptions) -> Result<Page> {
        check_limit(opts.limit, "list limit")?;
        let filter = Filter::parse(&opts.filter).map_err(|e| e.with("collection", self.name()))?;
        for p in filter.paths() {
            self.check_indexed(p)?;
        }
        if let SortField::Meta(p) = &opts.sort.field {
            crate::filter::check_path(p).map_err(|e| e.with("collection", self.name()))?;
            self.check_indexed(p)?;
        }
        let after = opts
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, &opts.sort))
            .transpose()?;
        let query = HeadQuery {
            filter,
            include_deleted: opts.include_deleted,
            sort: opts.sort.clone(),
            after,
            limit: opts.limit + 1,
        };
        let mut heads = self.stores().index.query_heads(self.name(), &query).await?;
        check_page_order(&query, &heads).map_err(|e| e.with("collection", self.name()))?;
        let more = heads.len() > opts.limit;
        heads.truncate(opts.limit);
        let next_cursor = match (more, heads.last()) {
            (true, Some(last)) => Some(encode_cursor(last, &opts.sort)),
            _ => None,
        };
        let read = ReadOptions {
            include_deleted: true,
            projection: opts.projection.clone(),
            presign: opts.presign,
            externals: opts.externals,
        };
        // Owned heads: a closure over borrowed ones makes this future non-`Send` for
        // spawned tasks (a higher-ranked lifetime limitation of the compiler).
        let read = &read;
        let results: Vec<(ItemId, Result<Record>)> = stream::iter(heads)
            .map(|h| async move { (h.item_id, self.record_from_head(&h, read).await) })
            .buffered(FETCH_CONCURRENCY)
            .collect()
            .await;
        let mut items = Vec::with_capacity(results.len());
        let mut unreadable = Vec::new();
        for (id, r) in results {
            match r {
                Ok(rec) => items.push(rec),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Internal | ErrorKind::NotFound | ErrorKind::Erased
                    ) =>
                {
                    tracing::warn!(collection = self.name(), %id, error = %e, "list page skips an unreadable record");
                    unreadable.push(Unreadable {
                        id,
                        kind: e.kind(),
                        message: e.to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Page {
            items,
            next_cursor,
            unreadable,
        })
    }

    /// [`Collection::list_by_meta`] with the filter given separately.
    pub async fn query(&self, filter: Value, opts: ListOptions) -> Result<Page> {
        self.list_by_meta(ListOptions { filter, ..opts }).await
    }

    /// One aggregate (`count`, distinct count, `sum`, `avg`, `min`, `max`, exact `median`) of
    /// `field` over the current records matching `filter`, optionally only those created in
    /// `created`; computed in the index store. Semantics: [`crate::aggregate`].
    pub async fn aggregate(
        &self,
        filter: &Value,
        op: AggregateOp,
        field: Option<&str>,
        created: Option<Window>,
    ) -> Result<Option<f64>> {
        let filter = Filter::parse(filter).map_err(|e| e.with("collection", self.name()))?;
        for p in filter.paths() {
            self.check_indexed(p)?;
        }
        match (op.needs_field(), field) {
            (true, None) => {
                return Err(Error::validation(format!("aggregate {op:?} needs a field"))
                    .with("collection", self.name()))
            }
            (_, Some(f)) => {
                crate::filter::check_path(f).map_err(|e| e.with("collection", self.name()))?;
                self.check_indexed(f)?;
            }
            (false, None) => {}
        }
        if let Some(w) = created {
            if w.from > w.to {
                return Err(Error::validation(format!(
                    "aggregate window starts ({}) after it ends ({})",
                    w.from, w.to
                )));
            }
        }
        let query = AggregateQuery {
            filter,
            created,
            op,
            field: field.map(str::to_string),
        };
        self.stores().index.aggregate(self.name(), &query).await
    }

    fn check_indexed(&self, path: &str) -> Result<()> {
        let props = &self.inner.config.indexed_props;
        let covered = props.is_empty()
            || props.iter().any(|p| {
                path == p
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|r| r.starts_with('.'))
            });
        if covered {
            Ok(())
        } else {
            Err(Error::validation(format!(
                "field '{path}' is not indexed in collection '{}' (indexedProps: {props:?})",
                self.name()
            ))
            .with("collection", self.name())
            .with("field", path))
        }
    }

    async fn record_from_head(&self, h: &HeadEntry, opts: &ReadOptions) -> Result<Record> {
        // devShadow fast path: the head may carry the payload bytes.
        let d = self
            .load_shadowed(h.shadow.as_ref(), &h.blob_key, &h.checksum)
            .await
            .map_err(|e| e.with("id", h.item_id))?;
        let system = SystemFields {
            ov: h.ov,
            cv: h.cv,
            inserted_at: h.created_at,
            updated_at: h.updated_at,
            deleted_at: h.deleted_at,
            deleted: h.deleted_at.is_some(),
            lineage: d.system.lineage,
        };
        self.finish(h.item_id, project(d.data, opts), system, &h.blob_key, opts)
            .await
    }

    /// The record as the read asked for it: externalised properties resolved, the payload
    /// presigned.
    async fn finish(
        &self,
        id: ItemId,
        mut data: serde_json::Map<String, Value>,
        system: SystemFields,
        key: &str,
        opts: &ReadOptions,
    ) -> Result<Record> {
        self.resolve_externals(&mut data, id, opts).await?;
        let presigned = match opts.presign {
            Some(ttl) => {
                let (url, expires_at) = self
                    .presign(key, ttl)
                    .await
                    .map_err(|e| e.with("collection", self.name()).with("id", id))?;
                Some(Presigned { url, expires_at })
            }
            None => None,
        };
        Ok(Record {
            id,
            data,
            system,
            presigned,
        })
    }

    async fn record_from_version(
        &self,
        v: Option<VersionEntry>,
        opts: &ReadOptions,
    ) -> Result<Option<Record>> {
        let Some(v) = v else { return Ok(None) };
        if v.is_erased() {
            return Err(self.erased(v.item_id));
        }
        if v.is_tombstone() && !opts.include_deleted {
            return Ok(None);
        }
        let Decoded {
            data,
            system: stored,
        } = self
            .load(&v.blob_key, &v.checksum)
            .await
            .map_err(|e| e.with("id", v.item_id))?;
        let inserted_at = match stored.inserted_at {
            Some(t) => t,
            // Payloads written elsewhere may lack insertedAt: the first version's `at` is it.
            None => match self
                .stores()
                .index
                .version(self.name(), v.item_id, 0)
                .await?
            {
                Some(first) => first.at,
                None => v.at,
            },
        };
        let deleted = v.is_tombstone();
        let system = SystemFields {
            ov: v.ov,
            cv: v.cv,
            inserted_at,
            updated_at: v.at,
            deleted_at: deleted.then_some(v.at),
            deleted,
            lineage: stored.lineage,
        };
        self.finish(v.item_id, project(data, opts), system, &v.blob_key, opts)
            .await
            .map(Some)
    }
}

fn project(
    data: serde_json::Map<String, Value>,
    opts: &ReadOptions,
) -> serde_json::Map<String, Value> {
    match &opts.projection {
        Some(fields) => payload::project(&data, fields),
        None => data,
    }
}

fn check_limit(limit: usize, what: &str) -> Result<()> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(Error::validation(format!(
            "{what} must be between 1 and {MAX_PAGE}, got {limit}"
        )));
    }
    Ok(())
}

fn sort_name(sort: &Sort) -> String {
    match &sort.field {
        SortField::Id => "_id".into(),
        SortField::CreatedAt => "createdAt".into(),
        SortField::UpdatedAt => "updatedAt".into(),
        SortField::Meta(p) => format!("meta.{p}"),
    }
}

fn encode_cursor(last: &HeadEntry, sort: &Sort) -> String {
    let c = json!({
        "s": sort_name(sort),
        "d": sort.descending,
        "v": last.sort_value(&sort.field),
        "id": last.item_id.to_string(),
    });
    URL_SAFE_NO_PAD.encode(c.to_string())
}

fn decode_cursor(cursor: &str, sort: &Sort) -> Result<SortKey> {
    let bad =
        |why: &str| Error::validation(format!("invalid cursor: {why}")).with("field", "cursor");
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad("not a cursor returned by a list"))?;
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|_| bad("not a cursor returned by a list"))?;
    if v["s"] != Value::String(sort_name(sort)) || v["d"] != Value::Bool(sort.descending) {
        return Err(bad("it was made for a different sort order"));
    }
    let id = v["id"]
        .as_str()
        .ok_or_else(|| bad("missing id"))
        .and_then(|s| ItemId::parse(s).map_err(|_| bad("malformed id")))?;
    Ok(SortKey {
        value: v["v"].clone(),
        id,
    })
}

/// A page sorted by a metadata path must come in the canonical order, strictly after its
/// cursor: the next cursor is the last item's canonical key, so a page out of that order
/// would make the following pages skip or repeat records (MongoDB sorts a path through an
/// array, or an array, by its own rules). `Unsupported` naming the path and the record
/// instead; it never fires on stores that sort canonically.
fn check_page_order(q: &HeadQuery, heads: &[HeadEntry]) -> Result<()> {
    let SortField::Meta(path) = &q.sort.field else {
        return Ok(());
    };
    let first_ok = match (&q.after, heads.first()) {
        (Some(key), Some(h)) => q.sort.is_after(h, key),
        _ => true,
    };
    let misplaced = if first_ok {
        heads
            .windows(2)
            .find(|w| q.sort.compare(&w[0], &w[1]).is_ge())
            .map(|w| &w[1])
    } else {
        heads.first()
    };
    match misplaced {
        None => Ok(()),
        Some(h) => Err(Error::unsupported(format!(
            "the index store cannot page by '{path}' in the canonical order: record {} (or one \
             beside it) holds an array or object there, or the path passes through an array, \
             which this store sorts by its own rules; sort by a field holding scalars",
            h.item_id
        ))
        .with("field", path.as_str())
        .with("id", h.item_id)),
    }
}
