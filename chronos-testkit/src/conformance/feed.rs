//! Cases: the change feed — every committed version once, in cv order, across pages and
//! resumed cursors; under 16 writers whose commits land out of order; `Gone` for a cursor
//! older than what pruning kept.

use std::collections::BTreeMap;
use std::time::Duration;

use chronos_core::{
    ChangeCursor, Collection, CollectionConfig, CreateOptions, Engine, EnrichOptions, ErrorKind,
    ItemId, RestoreTarget, VersionEntry, WriteOptions,
};
use serde_json::json;

use super::{full_history, Harness};
use crate::fault::{faulty, FaultPlan};

/// Every version of every record, keyed by cv (from each record's history).
async fn all_versions(c: &Collection, ids: &[ItemId]) -> BTreeMap<u64, (ItemId, u64)> {
    let mut out = BTreeMap::new();
    for id in ids {
        for v in full_history(c, *id).await {
            assert!(
                out.insert(v.cv, (v.item_id, v.ov)).is_none(),
                "cv {} twice",
                v.cv
            );
        }
    }
    out
}

/// Reads the feed from `cursor` until a page is empty; checks pages ascend strictly.
async fn drain(
    c: &Collection,
    cursor: &mut ChangeCursor,
    limit: usize,
    seen: &mut Vec<VersionEntry>,
) {
    loop {
        let page = c.changes(cursor, limit).await.expect("changes");
        assert!(page.changes.len() <= limit);
        assert!(
            page.cursor.cv() >= cursor.cv(),
            "the cursor never moves back"
        );
        for v in &page.changes {
            if let Some(last) = seen.last() {
                assert!(v.cv > last.cv, "feed order: cv {} after {}", v.cv, last.cv);
            }
            assert!(
                v.cv <= page.cursor.cv(),
                "a page's cursor covers its versions"
            );
        }
        let empty = page.changes.is_empty();
        seen.extend(page.changes);
        // Resume through the cursor's text, as a consumer that stores it would.
        *cursor = page.cursor.to_string().parse().expect("cursor round-trips");
        if empty {
            return;
        }
    }
}

fn keyed(seen: &[VersionEntry]) -> BTreeMap<u64, (ItemId, u64)> {
    seen.iter().map(|v| (v.cv, (v.item_id, v.ov))).collect()
}

/// Mixed writes, read back in small pages and resumed from stored cursors: exactly the
/// committed versions, once each, in cv order; the data of each change readable; bad
/// cursors and limits refused by name.
pub async fn change_feed_pages_every_version_once(h: Harness) {
    let c = h
        .collection(CollectionConfig::new("feed").logical_delete(true))
        .await;
    let start = ChangeCursor::start();
    let first = c.changes(&start, 10).await.unwrap();
    assert!(first.changes.is_empty(), "a new collection's feed is empty");
    let mut ids = Vec::new();
    for i in 0..4 {
        let w = c
            .create(&json!({"n": i}), CreateOptions::new())
            .await
            .unwrap();
        ids.push(w.id);
    }
    c.update(ids[0], &json!({"n": 10}), WriteOptions::new())
        .await
        .unwrap();
    c.enrich(ids[1], &json!({"tag": "x"}), EnrichOptions::new())
        .await
        .unwrap();
    c.delete(ids[2], WriteOptions::new()).await.unwrap();
    c.restore_object(ids[0], RestoreTarget::Ov(0), WriteOptions::new())
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor = first.cursor.clone();
    drain(&c, &mut cursor, 3, &mut seen).await;
    assert_eq!(keyed(&seen), all_versions(&c, &ids).await);
    assert_eq!(seen.len(), 8);
    assert_eq!(
        cursor.cv(),
        c.stores().index.current_cv(c.name()).await.unwrap()
    );
    // The data of a change is the version's; a tombstone's is what it deleted.
    let upd = seen
        .iter()
        .find(|v| v.item_id == ids[0] && v.ov == 1)
        .unwrap();
    assert_eq!(c.change_data(upd).await.unwrap()["n"], json!(10));
    let del = seen
        .iter()
        .find(|v| v.item_id == ids[2] && v.ov == 1)
        .unwrap();
    assert!(del.is_tombstone());
    assert_eq!(c.change_data(del).await.unwrap()["n"], json!(2));

    // Nothing new: an empty page, and the cursor stays put (never moves back).
    let again = c.changes(&cursor, 5).await.unwrap();
    assert!(again.changes.is_empty());
    assert_eq!(again.cursor, cursor);
    // New writes appear after the stored cursor, and only they.
    let w = c
        .create(&json!({"n": 9}), CreateOptions::new())
        .await
        .unwrap();
    let page = c.changes(&cursor, 5).await.unwrap();
    assert_eq!(page.changes.len(), 1);
    assert_eq!((page.changes[0].item_id, page.changes[0].cv), (w.id, w.cv));
    assert_eq!(page.cursor.cv(), w.cv);

    // Bad input is refused, naming what is wrong.
    let e = c.changes(&start, 0).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert!(e.to_string().contains("limit"), "{e}");
    let other = h.default_collection("feed_other").await;
    let e = other.changes(&cursor, 5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert!(e.to_string().contains("cursor"), "{e}");
    let e = "cf1:zz:1".parse::<ChangeCursor>().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
}

/// 16 writers (a hot record they race on, then creates and updates of their own) whose
/// commits are delayed by a random 0–20 ms so they land out of cv order, while a consumer
/// reads the feed in pages of 7: at the end it has seen every committed version exactly
/// once, in ascending cv, and no version a writer's failed attempt left.
pub async fn change_feed_is_gap_free_under_out_of_order_commits(h: Harness) {
    let plan = FaultPlan::new();
    let engine = Engine::new(faulty(&h.stores, &plan));
    let name = Harness::unique("feed_race");
    let c = engine
        .collection(CollectionConfig::new(&name))
        .await
        .expect("open collection");
    let hot = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap()
        .id;
    plan.add_jitter("commit_prepared", Duration::from_millis(20));
    plan.add_jitter("commit", Duration::from_millis(20));

    let writers: Vec<_> = (0..16)
        .map(|w| {
            let c = c.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                // One write each on the hot record: lost races, whose reserved cvs never commit.
                c.enrich(hot, &json!({"by": [w]}), EnrichOptions::new())
                    .await
                    .unwrap();
                for i in 0..4 {
                    let id = c
                        .create(&json!({"w": w, "i": i}), CreateOptions::new())
                        .await
                        .unwrap()
                        .id;
                    c.update(id, &json!({"w": w, "i": i, "u": 1}), WriteOptions::new())
                        .await
                        .unwrap();
                    ids.push(id);
                }
                ids
            })
        })
        .collect();
    let consumer = {
        let c = c.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut cursor = ChangeCursor::start();
            for _ in 0..40 {
                drain(&c, &mut cursor, 7, &mut seen).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (seen, cursor)
        })
    };
    let mut ids = vec![hot];
    for w in writers {
        ids.extend(w.await.unwrap());
    }
    let (mut seen, mut cursor) = consumer.await.unwrap();
    plan.clear_latency();
    let expected = all_versions(&c, &ids).await;
    assert_eq!(expected.len(), 1 + 16 * (1 + 4 * 2));
    // Whatever the consumer has not seen yet arrives (lost races released their cvs, so no
    // reservation is left to wait out).
    for _ in 0..100 {
        drain(&c, &mut cursor, 7, &mut seen).await;
        if seen.len() >= expected.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "no version is missing or seen twice"
    );
    assert_eq!(keyed(&seen), expected);
}

/// With versioning off each update prunes the previous version: a cursor from before a
/// pruned version is `Gone` (never a silently incomplete page); a current one reads on.
pub async fn change_feed_reports_pruned_cursors(h: Harness) {
    let c = h
        .collection(CollectionConfig::new("feed_pruned").versioning(false))
        .await;
    let w = c
        .create(&json!({"n": 0}), CreateOptions::new())
        .await
        .unwrap();
    let page = c.changes(&ChangeCursor::start(), 10).await.unwrap();
    assert_eq!(page.changes.len(), 1);
    let current = page.cursor;
    c.update(w.id, &json!({"n": 1}), WriteOptions::new())
        .await
        .unwrap();
    let e = c.changes(&ChangeCursor::start(), 10).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Gone, "{e}");
    assert!(e.to_string().contains("pruned"), "{e}");
    let page = c.changes(&current, 10).await.unwrap();
    assert_eq!(page.changes.len(), 1);
    assert_eq!(page.changes[0].ov, 1);
}
