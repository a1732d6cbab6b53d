//! Cases: version retention — `IndexStore::prune_versions` (a prefix of one record's
//! history, never its latest, the feed's watermark raised) and `Collection::prune_now`
//! (`maxPerItem`, `days`, payloads and property blobs of pruned versions deleted, what kept
//! versions refer to kept).

use std::collections::BTreeSet;
use std::time::Duration;

use chronos_core::time::now_ms;
use chronos_core::{
    Base64Prop, ChangeCursor, CollectionConfig, CreateOptions, ErrorKind, HeadAction, ItemId, Op,
    Point, ReadOptions, Timestamp, VersionRetention, WriteOptions,
};
use serde_json::json;

use super::contracts::{commit, version};
use super::{full_history, Harness};

/// `prune_versions` removes `ov < below` except the latest, raises the feed's watermark,
/// and touches nothing else.
pub async fn index_prune_contract(h: Harness) {
    let idx = &h.stores.index;
    let coll = Harness::unique("prune_idx");
    idx.prepare(&coll, &[]).await.unwrap();
    let (a, b) = (ItemId::generate(), ItemId::generate());
    let t0 = now_ms().as_millisecond();
    let mut cvs = Vec::new();
    for ov in 0..5 {
        let op = if ov == 0 { Op::Create } else { Op::Update };
        cvs.push(
            idx.commit(
                &coll,
                commit(version(a, ov, op, t0 + ov as i64), HeadAction::Upsert),
            )
            .await
            .unwrap(),
        );
    }
    for ov in 0..2 {
        let op = if ov == 0 { Op::Create } else { Op::Update };
        idx.commit(&coll, commit(version(b, ov, op, t0), HeadAction::Upsert))
            .await
            .unwrap();
    }
    assert_eq!(idx.prune_versions(&coll, a, 3).await.unwrap(), 3);
    let ovs = |vs: Vec<chronos_core::VersionEntry>| vs.iter().map(|v| v.ov).collect::<Vec<_>>();
    assert_eq!(ovs(idx.versions(&coll, a, None, 10).await.unwrap()), [3, 4]);
    assert!(idx.version(&coll, a, 0).await.unwrap().is_none());
    assert!(idx.version(&coll, a, 2).await.unwrap().is_none());
    assert!(
        idx.version_at(&coll, a, Point::Cv(cvs[2]))
            .await
            .unwrap()
            .is_none(),
        "nothing kept is as old as cv {}",
        cvs[2]
    );
    assert_eq!(idx.head(&coll, a).await.unwrap().unwrap().ov, 4);
    assert_eq!(ovs(idx.versions(&coll, b, None, 10).await.unwrap()), [0, 1]);
    // The feed: a cursor below the greatest pruned cv is `Gone`; from it on, complete.
    let e = idx.feed(&coll, 0, 100).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Gone, "{e}");
    let page = idx.feed(&coll, cvs[2], 100).await.unwrap();
    let fed: Vec<(ItemId, u64)> = page.versions.iter().map(|v| (v.item_id, v.ov)).collect();
    assert_eq!(fed, [(a, 3), (a, 4), (b, 0), (b, 1)]);
    // The latest always stays; repeats and unknown records remove nothing.
    assert_eq!(idx.prune_versions(&coll, a, 100).await.unwrap(), 1);
    assert_eq!(ovs(idx.versions(&coll, a, None, 10).await.unwrap()), [4]);
    assert_eq!(idx.prune_versions(&coll, a, 100).await.unwrap(), 0);
    assert_eq!(
        idx.prune_versions(&coll, ItemId::generate(), 5)
            .await
            .unwrap(),
        0
    );
    // The record goes on.
    idx.commit(
        &coll,
        commit(version(a, 5, Op::Update, t0 + 9), HeadAction::Upsert),
    )
    .await
    .unwrap();
    assert_eq!(ovs(idx.versions(&coll, a, None, 10).await.unwrap()), [4, 5]);
}

/// Every payload blob key under the collection's prefix.
pub(super) async fn blob_keys(h: &Harness, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = h
            .stores
            .blob
            .list(prefix, after.as_deref(), 1000)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        out.extend(page.into_iter().map(|b| b.key));
    }
    out
}

/// `maxPerItem` keeps a record's latest versions, `days` counts back from the given now;
/// the payloads of pruned versions are gone from the blob store, other records untouched.
pub async fn retention_prunes_old_versions_and_their_payloads(h: Harness) {
    let c = h.default_collection("retention").await;
    let hot = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    for n in 1..30 {
        c.update(hot.id, &json!({"n": n}), WriteOptions::new())
            .await
            .unwrap();
    }
    let cold = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    c.update(cold.id, &json!({"n": 1}), WriteOptions::new())
        .await
        .unwrap();
    let gone_id = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    c.delete(gone_id.id, WriteOptions::new()).await.unwrap();
    let prefix = format!("{}/", c.name());
    let before = blob_keys(&h, &prefix).await;
    let old_keys: BTreeSet<String> = full_history(&c, hot.id)
        .await
        .into_iter()
        .filter(|v| v.ov < 20)
        .map(|v| v.blob_key)
        .collect();
    assert_eq!(old_keys.len(), 20);

    let policy = VersionRetention {
        days: None,
        max_per_item: Some(10),
    };
    let r = c.prune_now(&policy).await.unwrap();
    assert_eq!(r.records, 3);
    assert_eq!(r.pruned_records, 1);
    assert_eq!(r.versions_removed, 20);
    let removed: BTreeSet<String> = r.blobs_removed.iter().cloned().collect();
    assert_eq!(removed, old_keys, "exactly the pruned versions' payloads");
    let after = blob_keys(&h, &prefix).await;
    assert_eq!(
        after,
        before.difference(&old_keys).cloned().collect(),
        "the blob store lost exactly those"
    );
    let ovs: Vec<u64> = full_history(&c, hot.id)
        .await
        .iter()
        .map(|v| v.ov)
        .collect();
    assert_eq!(ovs, (20..30).collect::<Vec<_>>());
    assert!(c
        .get_version(hot.id, 19, ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    let v20 = c
        .get_version(hot.id, 20, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v20.data["n"], json!(20));
    assert_eq!(full_history(&c, cold.id).await.len(), 2);
    // A second run finds nothing; the sweep afterwards removes nothing that is kept.
    let again = c.prune_now(&policy).await.unwrap();
    assert_eq!(again.versions_removed, 0);
    assert!(again.blobs_removed.is_empty());
    let sweeper = super::sweeper(&h, &c).await;
    tokio::time::sleep(super::QUICK_GRACE * 2).await;
    sweeper.sweep(super::QUICK_GRACE).await.unwrap();
    for ov in 20..30 {
        c.get_version(hot.id, ov, ReadOptions::new())
            .await
            .unwrap()
            .unwrap();
    }

    // `days`: two days on, every version but each record's latest is past one day.
    let later = Timestamp::from_millisecond(now_ms().as_millisecond() + 2 * 86_400_000).unwrap();
    let by_age = VersionRetention {
        days: Some(1),
        max_per_item: None,
    };
    let r = c.prune_at(&by_age, later).await.unwrap();
    assert_eq!(r.versions_removed, 9 + 1 + 1, "{r:?}");
    assert_eq!(full_history(&c, hot.id).await.len(), 1);
    let latest = c
        .get_latest(hot.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.data["n"], json!(29));
    let tomb = full_history(&c, gone_id.id).await;
    assert_eq!(tomb.len(), 1, "a deleted record keeps its tombstone");
    assert!(tomb[0].is_tombstone());
    // Now is within a day of every commit: nothing goes.
    let r = c.prune_now(&by_age).await.unwrap();
    assert_eq!(r.versions_removed, 0);
    // A feed cursor from the start is older than what is kept.
    let e = c.changes(&ChangeCursor::start(), 10).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Gone, "{e}");
}

/// Bad policies are `Validation` errors naming the field; a prune beside a running
/// collection restore is refused.
pub async fn retention_validates_its_policy(h: Harness) {
    let c = h.default_collection("retention_bad").await;
    for (policy, field) in [
        (VersionRetention::default(), "neither days nor maxPerItem"),
        (
            VersionRetention {
                days: Some(0),
                max_per_item: None,
            },
            "retention.ver.days",
        ),
        (
            VersionRetention {
                days: None,
                max_per_item: Some(0),
            },
            "retention.ver.maxPerItem",
        ),
    ] {
        let e = c.prune_now(&policy).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
        assert!(e.to_string().contains(field), "{e}");
    }
    let lease = h
        .stores
        .lock
        .try_acquire(
            &format!("{}:restore-collection", c.name()),
            Duration::from_secs(30),
        )
        .await
        .unwrap()
        .unwrap();
    let e = c
        .prune_now(&VersionRetention {
            days: None,
            max_per_item: Some(1),
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    h.stores.lock.release(&lease).await.unwrap();
}

/// A property blob goes with the last version that refers to it, not before.
pub async fn retention_keeps_property_blobs_kept_versions_use(h: Harness) {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let cfg = CollectionConfig::new("retention_files")
        .base64_prop("file", Base64Prop::new("application/octet-stream"));
    let c = h.collection(cfg).await;
    let w = c
        .create(
            &json!({"n": 0, "file": b64(b"first")}),
            CreateOptions::new(),
        )
        .await
        .unwrap();
    let read = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    let first_ref = read.data["file"].clone();
    let first_key = first_ref["ref"]["blobKey"].as_str().unwrap().to_string();
    // v1, v2 carry the ref forward; v3 replaces the content; v4 carries the new one.
    for n in 1..3 {
        c.update(
            w.id,
            &json!({"n": n, "file": first_ref}),
            WriteOptions::new(),
        )
        .await
        .unwrap();
    }
    c.update(
        w.id,
        &json!({"n": 3, "file": b64(b"second")}),
        WriteOptions::new(),
    )
    .await
    .unwrap();
    let read = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    let second_ref = read.data["file"].clone();
    let second_key = second_ref["ref"]["blobKey"].as_str().unwrap().to_string();
    c.update(
        w.id,
        &json!({"n": 4, "file": second_ref}),
        WriteOptions::new(),
    )
    .await
    .unwrap();
    let keep = |m| VersionRetention {
        days: None,
        max_per_item: Some(m),
    };
    // Keeping v2..v4: v2 still refers to the first content.
    let r = c.prune_now(&keep(3)).await.unwrap();
    assert_eq!(r.versions_removed, 2);
    assert!(!r.blobs_removed.contains(&first_key), "{r:?}");
    assert_eq!(
        h.stores.blob.get(&first_key).await.unwrap().as_ref(),
        b"first"
    );
    // A sweep now must not take it either (its writing version is gone, v2 refers to it).
    let sweeper = super::sweeper(&h, &c).await;
    tokio::time::sleep(super::QUICK_GRACE * 2).await;
    let swept = sweeper.sweep(super::QUICK_GRACE).await.unwrap();
    assert!(!swept.removed.contains(&first_key), "{swept:?}");
    let inline = ReadOptions::new().externals(chronos_core::Externals::Inline);
    let v2 = c
        .get_version(w.id, 2, inline.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v2.data["file"], json!(b64(b"first")));
    // Keeping v4 alone: the first content has no referrer left; the second stays.
    let r = c.prune_now(&keep(1)).await.unwrap();
    assert_eq!(r.versions_removed, 2);
    assert!(r.blobs_removed.contains(&first_key), "{r:?}");
    assert!(!r.blobs_removed.contains(&second_key), "{r:?}");
    assert_eq!(
        h.stores.blob.get(&first_key).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let v4 = c.get_latest(w.id, inline).await.unwrap().unwrap();
    assert_eq!(v4.data["file"], json!(b64(b"second")));
}

/// The must-show: a record with 1,000 versions and `maxPerItem: 10` keeps exactly
/// its latest 10, and the blob store (listed) holds exactly their 10 payloads.
pub async fn retention_keeps_ten_of_a_thousand_versions(h: Harness) {
    let c = h.default_collection("retention_1000").await;
    let w = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    for n in 1..1000 {
        c.update(w.id, &json!({ "n": n }), WriteOptions::new())
            .await
            .unwrap();
    }
    let prefix = format!("{}/{}/", c.name(), w.id);
    assert_eq!(blob_keys(&h, &prefix).await.len(), 1000);
    let r = c
        .prune_now(&VersionRetention {
            days: None,
            max_per_item: Some(10),
        })
        .await
        .unwrap();
    assert_eq!(r.versions_removed, 990, "{r:?}");
    assert_eq!(r.blobs_removed.len(), 990);
    let kept = full_history(&c, w.id).await;
    assert_eq!(
        kept.iter().map(|v| v.ov).collect::<Vec<_>>(),
        (990..1000).collect::<Vec<_>>()
    );
    let left = blob_keys(&h, &prefix).await;
    let expected: BTreeSet<String> = kept.into_iter().map(|v| v.blob_key).collect();
    assert_eq!(left, expected, "exactly the kept versions' payloads remain");
    for ov in [0, 500, 989] {
        assert!(c
            .get_version(w.id, ov, ReadOptions::new())
            .await
            .unwrap()
            .is_none());
    }
    let latest = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.data["n"], json!(999));
}
