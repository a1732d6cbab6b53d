//! Bench rows for retention and erase: `prune_now` removing old versions, and `erase` of a
//! record with five versions, each beside the least a hand-written version must do for the
//! same effect — per removed version, delete its index row and its blob.

use chronos_core::{CreateOptions, ItemId, VersionRetention, WriteOptions};
use serde_json::json;

use crate::stats::{timed, Row};
use crate::{coll, doc, payload_bytes, Setup};

/// Records in the pruned collection; each prune run removes one version of each.
const RECORDS: usize = 50;
/// Prune runs timed (the records get this many + 1 versions).
const RUNS: usize = 10;
/// Records erased, and versions each has.
const ERASED: usize = 20;
const ERASED_VERSIONS: usize = 5;

/// Raw rows with blobs, ready to be deleted: `groups` groups of `per` keys.
async fn raw_rows(s: &Setup, groups: usize, per: usize) -> Vec<Vec<String>> {
    let mut out = Vec::with_capacity(groups);
    for g in 0..groups {
        let mut ids = Vec::with_capacity(per);
        for i in 0..per {
            let id = ItemId::generate().to_string();
            s.raw.insert(&id, &doc(g * per + i)).await;
            s.raw_blob
                .put(&format!("raw/{id}/v0.json"), payload_bytes(i))
                .await;
            ids.push(id);
        }
        out.push(ids);
    }
    out
}

async fn raw_delete_all(s: &Setup, ids: &[String]) {
    for id in ids {
        s.raw.delete(id).await;
        s.raw_blob.delete(&format!("raw/{id}/v0.json")).await;
    }
}

pub(crate) async fn rows(s: &Setup) -> Vec<Row> {
    let mut rows = Vec::new();
    let c = coll(s, "prune", &[]).await;
    let mut ids = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let w = c
            .create(&doc(i), CreateOptions::new())
            .await
            .expect("create");
        for v in 1..=RUNS {
            c.update(w.id, &doc(i + v), WriteOptions::new())
                .await
                .expect("update");
        }
        ids.push(w.id);
    }
    let prune = timed(
        &format!("prune_now: {RECORDS} records, one old version each"),
        RUNS,
        |i| {
            let c = c.clone();
            async move {
                let keep = (RUNS - i) as u32;
                let policy = VersionRetention {
                    days: None,
                    max_per_item: Some(keep),
                };
                let r = c.prune_now(&policy).await.expect("prune");
                assert_eq!(r.versions_removed, RECORDS as u64);
            }
        },
    )
    .await;
    let groups = raw_rows(s, RUNS, RECORDS).await;
    let raw = timed(
        &format!("raw: {RECORDS} × (index row delete + blob delete)"),
        RUNS,
        |i| {
            let ids = &groups[i];
            async move { raw_delete_all(s, ids).await }
        },
    )
    .await;
    rows.push(Row::Versus {
        chronos: prune,
        raw,
        target: 0.5,
    });

    let c = coll(s, "erase", &[]).await;
    let mut ids = Vec::with_capacity(ERASED);
    for i in 0..ERASED {
        let w = c
            .create(&doc(i), CreateOptions::new())
            .await
            .expect("create");
        for v in 1..ERASED_VERSIONS {
            c.update(w.id, &json!({"v": v, "i": i}), WriteOptions::new())
                .await
                .expect("update");
        }
        ids.push(w.id);
    }
    let ids = &ids;
    let erase = timed(
        &format!("erase: a record of {ERASED_VERSIONS} versions"),
        ERASED,
        |i| {
            let c = c.clone();
            async move {
                let r = c.erase(ids[i], "bench", "bench").await.expect("erase");
                assert!(r.complete);
            }
        },
    )
    .await;
    let groups = raw_rows(s, ERASED, ERASED_VERSIONS).await;
    let raw = timed(
        &format!("raw: {ERASED_VERSIONS} × (index row delete + blob delete)"),
        ERASED,
        |i| {
            let ids = &groups[i];
            async move { raw_delete_all(s, ids).await }
        },
    )
    .await;
    rows.push(Row::Versus {
        chronos: erase,
        raw,
        target: 0.3,
    });
    rows
}
