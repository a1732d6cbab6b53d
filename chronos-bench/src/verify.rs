//! Bench row for `Collection::verify`: a collection of many versions checked end to end,
//! beside the least a hand-written reader of the same data does — page through every index
//! entry, fetch every payload (as many at a time as Chronos fetches) and parse it. The raw
//! payloads are laid out as Chronos lays out versions (a directory per record, one per
//! version: the upstream layout), so the row compares verify's work, not two layouts.

use chronos_core::{CollectionConfig, CreateOptions, WriteOptions};
use futures::StreamExt;
use serde_json::json;

use crate::stats::{timed, Row};
use crate::{doc, payload_bytes, Setup};

/// Versions per record.
const VERSIONS: usize = 5;
/// Writes in flight while the data is set up.
const SETUP_CONCURRENCY: usize = 16;
/// Entries per page of the raw scan (verify pages heads by 500, versions by 1,000).
const PAGE: usize = 1_000;
/// Payloads fetched at a time by the raw reader (as verify does).
const FETCH: usize = 16;

pub(crate) async fn rows(s: &Setup, versions: usize) -> Vec<Row> {
    let records = (versions / VERSIONS).max(1);
    // Unique per run: `--backend all` runs several backends against one bucket, and runs one
    // after the other share a server. Chronos' collection gets its own blob prefix too, or
    // verify would list (as orphans) the payloads of every earlier run in the bucket.
    let prefix = format!("vfy-{}-", chronos_core::ItemId::generate());
    let prefix = &prefix;
    let c = s
        .engine
        .collection(CollectionConfig::new("verify").blob_prefix(format!("{prefix}/")))
        .await
        .expect("open collection");
    futures::stream::iter(0..records)
        .map(|i| {
            let c = c.clone();
            async move {
                let w = c
                    .create(&doc(i), CreateOptions::new())
                    .await
                    .expect("create");
                for v in 1..VERSIONS {
                    c.update(
                        w.id,
                        &json!({"v": v, "i": i, "bio": "x".repeat(200)}),
                        WriteOptions::new(),
                    )
                    .await
                    .expect("update");
                }
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    let total = records * VERSIONS;
    // Record `i / VERSIONS`, version `i % VERSIONS`, as `<record>/v<ov>/item.json`.
    let raw_key = |id: &str| {
        let i: usize = id[prefix.len()..]
            .parse()
            .expect("raw id ends in its number");
        format!(
            "raw/{prefix}{:08}/v{}/item.json",
            i / VERSIONS,
            i % VERSIONS
        )
    };
    let raw_key = &raw_key;
    futures::stream::iter(0..total)
        .map(|i| async move {
            let id = format!("{prefix}{i:08}");
            s.raw.insert(&id, &doc(i)).await;
            s.raw_blob.put(&raw_key(&id), payload_bytes(i)).await;
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect::<Vec<()>>()
        .await;

    let checked = timed(&format!("verify: {total} versions"), 1, |_| {
        let c = c.clone();
        async move {
            let r = c.verify(|_| {}).await.expect("verify");
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(r.versions, total as u64);
        }
    })
    .await;
    let raw = timed(
        &format!("raw: scan {total} entries + get and parse every payload"),
        1,
        |_| async move {
            let mut after = String::new();
            let mut read = 0;
            loop {
                let ids = s.raw.scan(prefix, &after, PAGE).await;
                let Some(last) = ids.last() else { break };
                after = last.clone();
                let keys = ids.iter().map(|id| raw_key(id)).collect();
                read += s.raw_blob.get_all_parsed(keys, FETCH).await;
            }
            assert_eq!(read, total);
        },
    )
    .await;
    vec![Row::Versus {
        chronos: checked,
        raw,
        target: 0.8,
    }]
}
