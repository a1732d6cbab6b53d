//! The documents of the MongoDB index store in upstream's layout: version entries of
//! `<c>_ver` and heads of `<c>_head` (with their sort keys, [`super::sortkey`]), both ways.

use chronos_core::{Error, HeadAction, HeadEntry, Op, Result, VersionEntry};
use mongodb::bson::{doc, oid::ObjectId, Bson, Document};

use crate::conv::{self, date, get, oid, opt_str, u64_of};
use crate::sortkey;

pub(super) fn version_doc(v: &VersionEntry, head: HeadAction) -> Document {
    let mut d = doc! {
        "_id": ObjectId::new(),
        "itemId": oid(v.item_id),
        "ov": v.ov as i64,
        "cv": v.cv as i64,
        "op": v.op.as_str(),
        "at": date(v.at),
        "jsonKey": &v.blob_key,
        "metaIndexed": conv::to_doc(&v.meta),
        "size": v.size as i64,
        "checksum": &v.checksum,
    };
    if let Some(a) = &v.actor {
        d.insert("actor", a);
    }
    if let Some(r) = &v.reason {
        d.insert("reason", r);
    }
    if let Some(p) = v.prev_ov {
        d.insert("prevOv", p as i64);
    }
    if head == HeadAction::Remove {
        d.insert("headRemoved", true);
    }
    if let Some(s) = v
        .seal
        .as_ref()
        .and_then(|s| mongodb::bson::to_document(s).ok())
    {
        d.insert("seal", s);
    }
    d
}

pub(super) fn head_doc(h: &HeadEntry) -> Document {
    let mut d = doc! {
        "_id": oid(h.item_id),
        "itemId": oid(h.item_id),
        "ov": h.ov as i64,
        "cv": h.cv as i64,
        "jsonKey": &h.blob_key,
        "metaIndexed": conv::to_doc(&h.meta),
        "size": h.size as i64,
        "checksum": &h.checksum,
        "createdAt": date(h.created_at),
        "updatedAt": date(h.updated_at),
    };
    if let Some(at) = h.deleted_at {
        d.insert("deletedAt", date(at));
    }
    if let Some(s) = &h.shadow {
        d.insert("fullShadow", &s.json);
        d.insert("shadowExpiresAt", date(s.expires_at));
    }
    if let Some(l) = h
        .lineage
        .as_ref()
        .and_then(|l| mongodb::bson::to_document(l).ok())
    {
        d.insert("lineage", l);
    }
    if let Some(c) = &h.chain {
        d.insert("chain", c);
    }
    sortkey::annotate(&h.meta, &mut d);
    d
}

pub(super) fn version_from(d: &Document) -> Result<VersionEntry> {
    Ok(VersionEntry {
        item_id: conv::item_id(get(d, "itemId")?)?,
        ov: u64_of(get(d, "ov")?)?,
        cv: u64_of(get(d, "cv")?)?,
        op: Op::parse(
            d.get_str("op")
                .map_err(|_| Error::internal("stored version lacks 'op'"))?,
        )?,
        at: conv::ts(get(d, "at")?)?,
        actor: opt_str(d, "actor"),
        reason: opt_str(d, "reason"),
        blob_key: d
            .get_str("jsonKey")
            .map_err(|_| Error::internal("stored version lacks 'jsonKey'"))?
            .to_string(),
        meta: d
            .get_document("metaIndexed")
            .map(conv::from_doc)
            .unwrap_or_default(),
        size: d.get("size").map(u64_of).transpose()?.unwrap_or(0),
        checksum: opt_str(d, "checksum").unwrap_or_default(),
        prev_ov: d.get("prevOv").map(u64_of).transpose()?,
        // A malformed seal is no seal: the record stays readable, and `verify` reports the
        // broken link (the next version links to a hash this one no longer shows).
        seal: d.get_document("seal").ok().and_then(|s| {
            mongodb::bson::from_document(s.clone())
                .inspect_err(|e| {
                    tracing::warn!(error = %e, "a stored seal is malformed; reading the version as unsealed");
                })
                .ok()
        }),
    })
}

pub(super) fn head_from(d: &Document) -> Result<HeadEntry> {
    let id = match d.get("itemId") {
        Some(b) => conv::item_id(b)?,
        None => conv::item_id(get(d, "_id")?)?,
    };
    Ok(HeadEntry {
        item_id: id,
        ov: u64_of(get(d, "ov")?)?,
        cv: u64_of(get(d, "cv")?)?,
        blob_key: d
            .get_str("jsonKey")
            .map_err(|_| Error::internal("stored head lacks 'jsonKey'"))?
            .to_string(),
        meta: d
            .get_document("metaIndexed")
            .map(conv::from_doc)
            .unwrap_or_default(),
        size: d.get("size").map(u64_of).transpose()?.unwrap_or(0),
        checksum: opt_str(d, "checksum").unwrap_or_default(),
        created_at: conv::ts(get(d, "createdAt")?)?,
        updated_at: conv::ts(get(d, "updatedAt")?)?,
        deleted_at: d
            .get("deletedAt")
            .filter(|b| !matches!(b, Bson::Null))
            .map(conv::ts)
            .transpose()?,
        // Only our own shadows (text with an expiry); upstream's `fullShadow` is not trusted.
        shadow: match (d.get_str("fullShadow"), d.get("shadowExpiresAt")) {
            (Ok(json), Some(exp)) => Some(chronos_core::Shadow {
                json: json.to_string(),
                expires_at: conv::ts(exp)?,
            }),
            _ => None,
        },
        // A copy only: unreadable means "absent", and readers fall back to the payload.
        lineage: d
            .get_document("lineage")
            .ok()
            .and_then(|l| mongodb::bson::from_document(l.clone()).ok()),
        chain: opt_str(d, "chain"),
    })
}
