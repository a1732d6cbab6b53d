//! Bench rows for batched writes: `create_many` / `update_many` of 100 records beside the same
//! 100 records written one call at a time (the baseline is Chronos itself: the row measures
//! what batching saves).

use chronos_core::{CreateOptions, ItemId, WriteOptions};

use crate::stats::{timed, Row};
use crate::{coll, doc, Setup};

/// Records per batch (the default `writeOptimization.batchSize`).
const BATCH: usize = 100;

pub(crate) async fn rows(s: &Setup, runs: usize) -> Vec<Row> {
    let c = &coll(s, "batch", &["status", "n"]).await;
    // One untimed batch and write first: the collection's first writes pay for creating
    // its indexes and warming connections, which is not what the rows compare.
    for r in c
        .create_many((0..BATCH).map(|i| (doc(i), CreateOptions::new())))
        .await
    {
        r.expect("warm-up batch");
    }
    let ids = std::sync::Mutex::new(Vec::new());
    let many = timed(&format!("create_many({BATCH})"), runs, |r| {
        let ids = &ids;
        async move {
            let items = (0..BATCH).map(|i| (doc(r * BATCH + i), CreateOptions::new()));
            for res in c.create_many(items).await {
                ids.lock().expect("ids").push(res.expect("create_many").id);
            }
        }
    })
    .await;
    let single = timed(&format!("{BATCH} × create"), runs, |r| async move {
        for i in 0..BATCH {
            c.create(&doc(r * BATCH + i), CreateOptions::new())
                .await
                .expect("create");
        }
    })
    .await;
    let ids: Vec<ItemId> = ids.into_inner().expect("ids");
    let batches: Vec<&[ItemId]> = ids.chunks(BATCH).collect();
    let batches = &batches;
    let update_many = timed(&format!("update_many({BATCH})"), runs, |r| async move {
        let items = batches[r]
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, doc(i + 1), WriteOptions::new()));
        for res in c.update_many(items).await {
            res.expect("update_many");
        }
    })
    .await;
    let update_single = timed(&format!("{BATCH} × update"), runs, |r| async move {
        for (i, id) in batches[r].iter().enumerate() {
            c.update(*id, &doc(i + 2), WriteOptions::new())
                .await
                .expect("update");
        }
    })
    .await;
    vec![
        Row::Versus {
            chronos: many,
            raw: single,
            target: 5.0,
        },
        Row::Versus {
            chronos: update_many,
            raw: update_single,
            target: 3.0,
        },
    ]
}
