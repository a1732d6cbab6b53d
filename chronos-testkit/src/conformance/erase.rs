//! Cases: GDPR erase — `IndexStore::scrub_versions` (content-free entries, continuity kept)
//! and `Collection::erase` (every payload of every version gone, reads say `Erased`, the
//! receipt completes only once every store confirmed, other records untouched).

use chronos_core::time::now_ms;
use chronos_core::{
    Base64Prop, CollectionConfig, CreateOptions, ErrorKind, HeadAction, ItemId, ListOptions, Op,
    Point, ReadOptions, RestoreTarget, VersionEntry, WriteOptions, ERASED_CHECKSUM,
};
use serde_json::json;

use super::contracts::{commit, version};
use super::{full_history, Harness};
use crate::fault::{faulty, FaultMode, FaultPlan};

/// `scrub_versions` empties `ov < below` except the latest, keeps their continuity, is
/// idempotent and touches nothing else.
pub async fn index_scrub_contract(h: Harness) {
    let idx = &h.stores.index;
    let coll = Harness::unique("scrub_idx");
    idx.prepare(&coll, &["ov".to_string()]).await.unwrap();
    let (a, b) = (ItemId::generate(), ItemId::generate());
    let t0 = now_ms().as_millisecond();
    for ov in 0..4 {
        let op = if ov == 0 { Op::Create } else { Op::Update };
        let mut v = version(a, ov, op, t0 + ov as i64);
        v.reason = Some(format!("why {ov}"));
        idx.commit(&coll, commit(v, HeadAction::Upsert))
            .await
            .unwrap();
    }
    idx.commit(
        &coll,
        commit(version(b, 0, Op::Create, t0), HeadAction::Upsert),
    )
    .await
    .unwrap();
    let coll_ref = coll.as_str();
    let all = |id| async move { idx.versions(coll_ref, id, None, 100).await.unwrap() };
    let before: Vec<VersionEntry> = all(a).await;
    let head_before = idx.head(&coll, a).await.unwrap().unwrap();

    assert_eq!(idx.scrub_versions(&coll, a, 3).await.unwrap(), 3);
    let after = all(a).await;
    assert_eq!(after.len(), 4);
    for (was, now) in before.iter().zip(&after).take(3) {
        assert!(now.is_erased(), "{now:?}");
        assert!(now.meta.is_empty() && now.blob_key.is_empty() && now.size == 0);
        assert_eq!(now.checksum, ERASED_CHECKSUM);
        assert_eq!(
            (
                now.ov,
                now.cv,
                now.op,
                now.at,
                &now.actor,
                &now.reason,
                now.prev_ov
            ),
            (
                was.ov,
                was.cv,
                was.op,
                was.at,
                &was.actor,
                &was.reason,
                was.prev_ov
            ),
            "continuity is kept"
        );
    }
    assert_eq!(after[3], before[3], "the latest is never scrubbed");
    assert_eq!(idx.head(&coll, a).await.unwrap().unwrap(), head_before);
    assert_eq!(
        idx.version(&coll, a, 1).await.unwrap().unwrap(),
        after[1],
        "point reads see the scrub"
    );
    let at = idx
        .version_at(&coll, a, Point::Cv(after[2].cv))
        .await
        .unwrap()
        .unwrap();
    assert!(at.is_erased());
    let fed = idx.feed(&coll, 0, 100).await.unwrap();
    assert_eq!(
        fed.versions.iter().filter(|v| v.is_erased()).count(),
        3,
        "the feed hands out the scrubbed entries"
    );
    assert!(!all(b).await[0].is_erased(), "another record is untouched");
    // Idempotent, capped at the latest, and a no-op for unknown records.
    assert_eq!(idx.scrub_versions(&coll, a, 3).await.unwrap(), 0);
    assert_eq!(idx.scrub_versions(&coll, a, 100).await.unwrap(), 0);
    assert_eq!(all(a).await[3], before[3]);
    assert_eq!(
        idx.scrub_versions(&coll, ItemId::generate(), 5)
            .await
            .unwrap(),
        0
    );
    // A metadata query no longer finds scrubbed values (only the head's are queried, and
    // the head is untouched: the latest version still matches).
    assert_eq!(
        idx.scrub_versions(&coll, b, 1).await.unwrap(),
        0,
        "a record's only version is its latest"
    );
}

const CANARY: &str = "CANARY-7f3c-erase-me";

/// Erase deletes every payload and property blob of every version, scrubs the entries,
/// commits an ERASE with who / why, and every read says `Erased`; another record keeps all.
pub async fn erase_removes_every_payload_and_keeps_history(h: Harness) {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let cfg = CollectionConfig::new("erase")
        .indexed_props(["email", "n"])
        .base64_prop("file", Base64Prop::new("text/plain"))
        .dev_shadow(1 << 20, std::time::Duration::from_secs(3600));
    let c = h.collection(cfg).await;
    let secret = |n: u32| {
        json!({
            "email": format!("{CANARY}-{n}@example.com"),
            "n": n,
            "file": b64(&format!("{CANARY} attachment {n}")),
        })
    };
    let w = c.create(&secret(0), CreateOptions::new()).await.unwrap();
    for n in 1..4 {
        c.update(w.id, &secret(n), WriteOptions::new())
            .await
            .unwrap();
    }
    c.enrich(
        w.id,
        &json!({"note": format!("{CANARY} enriched")}),
        Default::default(),
    )
    .await
    .unwrap();
    let other = c
        .create(
            &json!({"email": "keep@example.com", "n": 9}),
            CreateOptions::new(),
        )
        .await
        .unwrap();
    let history_before = full_history(&c, w.id).await;
    assert_eq!(history_before.len(), 5);

    let e = c.erase(w.id, " ", "gdpr request 42").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    assert_eq!(e.context("field"), Some("actor"));
    let e = c.erase(w.id, "dpo", "").await.unwrap_err();
    assert_eq!(e.context("field"), Some("reason"));
    let e = c
        .erase(ItemId::generate(), "dpo", "gdpr")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

    let r = c.erase(w.id, "dpo", "gdpr request 42").await.unwrap();
    assert!(r.complete, "{r:?}");
    assert!(r.pending.is_empty() && r.left_not_owned.is_empty(), "{r:?}");
    assert_eq!(r.erase.op, Op::Erase);
    assert_eq!(r.erase.ov, 6, "a DELETE (ov 5), then the ERASE");
    assert_eq!(r.versions_scrubbed, 6);
    assert_eq!(
        (r.actor.as_str(), r.reason.as_str()),
        ("dpo", "gdpr request 42")
    );

    // History: every version still there, content-free; the ERASE says who and why.
    let hist = full_history(&c, w.id).await;
    assert_eq!(hist.len(), 7);
    for (i, v) in hist.iter().enumerate() {
        assert_eq!(v.ov, i as u64);
        assert!(v.is_erased(), "{v:?}");
        assert!(v.meta.is_empty() && v.blob_key.is_empty());
        if let Some(was) = history_before.get(i) {
            assert_eq!((v.cv, v.op, v.at), (was.cv, was.op, was.at));
        }
    }
    assert_eq!(hist[5].op, Op::Delete);
    let last = &hist[6];
    assert_eq!(last.op, Op::Erase);
    assert_eq!(last.actor.as_deref(), Some("dpo"));
    assert_eq!(last.reason.as_deref(), Some("gdpr request 42"));

    // Every read of the record says Erased.
    let erased = |e: chronos_core::Error| assert_eq!(e.kind(), ErrorKind::Erased, "{e}");
    erased(c.get_latest(w.id, ReadOptions::new()).await.unwrap_err());
    for ov in [0, 3, 6] {
        erased(
            c.get_version(w.id, ov, ReadOptions::new().include_deleted(true))
                .await
                .unwrap_err(),
        );
    }
    erased(
        c.get_as_of(w.id, history_before[2].at, ReadOptions::new())
            .await
            .unwrap_err(),
    );
    erased(
        c.update(w.id, &json!({"n": 1}), WriteOptions::new())
            .await
            .unwrap_err(),
    );
    erased(
        c.restore_object(w.id, RestoreTarget::Ov(2), WriteOptions::new())
            .await
            .unwrap_err(),
    );
    let e = c
        .create(&json!({"n": 1}), CreateOptions::new().id(w.id))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    // Lists: gone from live lists, reported (not failing the page) with include_deleted.
    let page = c.list_by_meta(ListOptions::new()).await.unwrap();
    assert_eq!(
        page.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [other.id]
    );
    let page = c
        .list_by_meta(ListOptions::new().include_deleted(true))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.unreadable.len(), 1);
    assert_eq!(page.unreadable[0].kind, ErrorKind::Erased);
    assert_eq!(
        c.query(
            json!({"email": format!("{CANARY}-3@example.com")}),
            ListOptions::new()
        )
        .await
        .unwrap()
        .items
        .len(),
        0
    );

    // The raw scan: no blob and no index entry of the collection holds the canary.
    let keys = super::retention::blob_keys(&h, &format!("{}/", c.name())).await;
    assert!(
        !keys.iter().any(|k| k.contains(&w.id.to_string())),
        "{keys:?}"
    );
    for k in &keys {
        let bytes = h.stores.blob.get(k).await.unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(CANARY),
            "blob {k} still holds the canary"
        );
    }
    let idx = &h.stores.index;
    let head = idx.head(c.name(), w.id).await.unwrap().unwrap();
    assert!(!format!("{head:?}").contains(CANARY), "{head:?}");
    assert!(head.shadow.is_none() && head.meta.is_empty());
    assert!(!format!("{hist:?}").contains(CANARY));

    // The other record is whole.
    let kept = c
        .get_latest(other.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.data["email"], json!("keep@example.com"));

    // Again: nothing new is committed, the receipt is complete.
    let again = c.erase(w.id, "someone else", "again").await.unwrap();
    assert!(again.complete, "{again:?}");
    assert_eq!(again.erase, r.erase);
    assert_eq!(
        again.actor, "dpo",
        "the recorded erase, not the second caller's"
    );
    assert_eq!(full_history(&c, w.id).await.len(), 7);

    // A deleted record is erased without a second DELETE.
    let d = c.create(&secret(7), CreateOptions::new()).await.unwrap();
    c.delete(d.id, WriteOptions::new()).await.unwrap();
    let r = c.erase(d.id, "dpo", "gdpr").await.unwrap();
    assert!(r.complete);
    assert_eq!(r.erase.ov, 2);
}

/// A blob store that fails during the erase leaves the receipt incomplete, with what is
/// pending; a second erase finishes it and commits nothing new.
pub async fn erase_resumes_until_every_store_confirmed(h: Harness) {
    let plan = FaultPlan::new();
    let cfg = CollectionConfig::new(Harness::unique("erase_resume"));
    let c = chronos_core::Engine::new(faulty(&h.stores, &plan))
        .collection(cfg)
        .await
        .unwrap();
    let w = c
        .create(&json!({"secret": CANARY}), CreateOptions::new())
        .await
        .unwrap();
    c.update(
        w.id,
        &json!({"secret": CANARY, "n": 1}),
        WriteOptions::new(),
    )
    .await
    .unwrap();
    plan.fail_op("delete", FaultMode::Before);
    let r = c.erase(w.id, "dpo", "gdpr").await.unwrap();
    assert!(!r.complete, "{r:?}");
    assert_eq!(r.pending.len(), 1, "{r:?}");
    assert!(r.pending[0].starts_with("blob '"), "{r:?}");
    assert_eq!(
        r.versions_scrubbed, 0,
        "entries keep their keys until the blobs are gone"
    );
    erased_anyway(&c, w.id).await;

    plan.fail_op("scrub_versions", FaultMode::Before);
    let r2 = c.erase(w.id, "dpo", "gdpr").await.unwrap();
    assert!(!r2.complete, "{r2:?}");
    assert!(r2.pending[0].starts_with("index: "), "{r2:?}");

    plan.clear();
    let r3 = c.erase(w.id, "dpo", "gdpr").await.unwrap();
    assert!(r3.complete, "{r3:?}");
    assert_eq!(r3.erase, r.erase);
    assert_eq!(r3.versions_scrubbed, 3);
    let keys = super::retention::blob_keys(&h, &format!("{}/{}/", c.name(), w.id)).await;
    assert!(keys.is_empty(), "{keys:?}");
    assert_eq!(full_history(&c, w.id).await.len(), 4);
}

async fn erased_anyway(c: &chronos_core::Collection, id: ItemId) {
    let e = c.get_latest(id, ReadOptions::new()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Erased, "{e}");
}
