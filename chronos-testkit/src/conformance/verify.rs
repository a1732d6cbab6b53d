//! Cases: `Collection::verify` — clean data reports nothing; each kind of damage (a flipped
//! payload byte, a missing payload, a missing property blob, a head that disagrees with the
//! log, an unreferenced blob) is reported once and located.

use bytes::Bytes;
use chronos_core::{
    Base64Prop, CollectionConfig, CreateOptions, HeadAction, ItemId, Op, ProblemKind, ReadOptions,
    WriteOptions,
};
use serde_json::json;

use super::{full_history, Harness};

/// Replaces blob `key` (create-only stores: delete, then put) with `bytes`.
async fn overwrite(h: &Harness, key: &str, bytes: Bytes) {
    h.stores.blob.delete(key).await.unwrap();
    h.stores.blob.put_if_absent(key, bytes).await.unwrap();
}

/// Five kinds of damage planted, each reported once with its record, version and key.
pub async fn verify_finds_and_locates_damage(h: Harness) {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let cfg = CollectionConfig::new("verify").base64_prop("file", Base64Prop::new("text/plain"));
    let c = h.collection(cfg).await;
    let mut ids = Vec::new();
    for r in 0..4 {
        let w = c
            .create(&json!({"r": r, "n": 0}), CreateOptions::new())
            .await
            .unwrap();
        for n in 1..3 {
            c.update(w.id, &json!({"r": r, "n": n}), WriteOptions::new())
                .await
                .unwrap();
        }
        ids.push(w.id);
    }
    let f = c
        .create(&json!({"file": b64(b"attached")}), CreateOptions::new())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let clean = c.verify(|n| seen.push(n)).await.unwrap();
    assert!(clean.is_ok(), "{clean:?}");
    assert_eq!((clean.records, clean.versions), (5, 13), "{clean:?}");
    assert_eq!(
        clean.blobs_checked, 15,
        "13 payloads, the property blob and its text copy (text/plain)"
    );
    assert!(clean.orphans.is_empty(), "{clean:?}");
    assert_eq!(seen.last(), Some(&5), "progress reports every record");

    // 1. a flipped byte in record 0's v1; 2. record 1's v0 payload gone.
    let h0 = full_history(&c, ids[0]).await;
    let mut bytes = h.stores.blob.get(&h0[1].blob_key).await.unwrap().to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    overwrite(&h, &h0[1].blob_key, Bytes::from(bytes)).await;
    let h1 = full_history(&c, ids[1]).await;
    h.stores.blob.delete(&h1[0].blob_key).await.unwrap();
    // 3. the property blob gone.
    let read = c
        .get_latest(f.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    let prop_key = read.data["file"]["ref"]["blobKey"]
        .as_str()
        .unwrap()
        .to_string();
    h.stores.blob.delete(&prop_key).await.unwrap();
    // 4. record 2 gets a version whose commit removed the head (a logical-delete
    // collection's head may only go with a hard delete).
    let h2 = full_history(&c, ids[2]).await;
    let last = h2.last().unwrap().clone();
    let mut removal = super::chain::appended(
        &last,
        Some(chronos_core::ChainLink::after(
            last.seal.as_ref().map(|s| s.hash.clone()),
        )),
    );
    removal.head = HeadAction::Remove;
    h.stores.index.commit(c.name(), removal).await.unwrap();
    // 5. an unreferenced blob of this database, and two that are not its own: another
    // database's (a shared bucket) and one in no known layout.
    let stray = format!(
        "{}/{}/v9/item-{}-1-ab.json",
        c.name(),
        ids[3],
        c.database_id()
    );
    let other_db = if c.database_id() == "0000ffff" {
        "0000fffe"
    } else {
        "0000ffff"
    };
    for key in [
        stray.clone(),
        format!("{}/{}/v8/item-{other_db}-1-ab.json", c.name(), ids[3]),
        format!("{}/{}/v9/item-stray.json", c.name(), ids[3]),
    ] {
        h.stores
            .blob
            .put_if_absent(&key, Bytes::from_static(b"{}"))
            .await
            .unwrap();
    }

    let r = c.verify(|_| {}).await.unwrap();
    let found: Vec<(ProblemKind, chronos_core::ItemId, Option<u64>, Option<&str>)> = r
        .problems
        .iter()
        .map(|p| (p.kind, p.id, p.ov, p.key.as_deref()))
        .collect();
    let mut expected = vec![
        (
            ProblemKind::Corrupt,
            ids[0],
            Some(1),
            Some(h0[1].blob_key.as_str()),
        ),
        (
            ProblemKind::MissingBlob,
            ids[1],
            Some(0),
            Some(h1[0].blob_key.as_str()),
        ),
        (
            ProblemKind::MissingBlob,
            f.id,
            Some(0),
            Some(prop_key.as_str()),
        ),
        (ProblemKind::Head, ids[2], Some(last.ov + 1), None),
    ];
    let mut found_sorted = found.clone();
    found_sorted.sort_by_key(|p| (p.1, p.2));
    expected.sort_by_key(|p| (p.1, p.2));
    assert_eq!(found_sorted, expected, "{r:?}");
    assert_eq!(r.orphans, [stray], "{r:?}");
    assert_eq!(r.not_owned, 2, "{r:?}");
    assert!(
        r.problems[0].detail.len() > 10,
        "a problem says what is wrong"
    );
}

/// `repair_heads` rebuilds the heads `verify` reports from the log — a head that disagrees,
/// a missing one — and nothing else; the store's `repair_head` refuses when the head or the
/// log is not what the caller saw.
pub async fn verify_repair_rebuilds_heads_from_the_log(h: Harness) {
    let c = h.collection(CollectionConfig::new("repair")).await;
    let idx = &h.stores.index;
    let mut ids = Vec::new();
    for r in 0..3 {
        let w = c
            .create(&json!({"r": r, "n": 0}), CreateOptions::new())
            .await
            .unwrap();
        c.update(w.id, &json!({"r": r, "n": 1}), WriteOptions::new())
            .await
            .unwrap();
        ids.push(w.id);
    }
    let name = c.name().to_string();
    let head = |id| {
        let name = name.clone();
        async move { idx.head(&name, id).await.unwrap() }
    };
    let mut good = Vec::new();
    for &id in &ids {
        good.push(head(id).await);
    }

    // Refused: a stale view of the head, or of the log.
    let g2 = good[2].clone().unwrap();
    assert!(!idx
        .repair_head(c.name(), ids[2], Some((9, 9)), 1, None)
        .await
        .unwrap());
    assert!(!idx
        .repair_head(c.name(), ids[2], Some((g2.ov, g2.cv)), 0, None)
        .await
        .unwrap());
    assert_eq!(
        head(ids[2]).await,
        good[2],
        "a refused repair changes nothing"
    );

    // Damage: record 0's head disagrees (metadata, size); record 1 has none.
    let mut bad = good[0].clone().unwrap();
    bad.meta.insert("n".into(), json!(42));
    bad.size += 1;
    assert!(idx
        .repair_head(c.name(), ids[0], Some((bad.ov, bad.cv)), 1, Some(bad))
        .await
        .unwrap());
    let g1 = good[1].clone().unwrap();
    assert!(idx
        .repair_head(c.name(), ids[1], Some((g1.ov, g1.cv)), 1, None)
        .await
        .unwrap());
    let r = c.verify(|_| {}).await.unwrap();
    let mut damaged: Vec<_> = r.problems.iter().map(|p| (p.kind, p.id)).collect();
    damaged.dedup();
    let mut expected = vec![(ProblemKind::Head, ids[0]), (ProblemKind::Head, ids[1])];
    expected.sort_by_key(|p| p.1);
    damaged.sort_by_key(|p| p.1);
    assert_eq!(damaged, expected, "{r:?}");

    let mut repaired = c.repair_heads(&r).await.unwrap();
    repaired.sort();
    let mut want = vec![ids[0], ids[1]];
    want.sort();
    assert_eq!(repaired, want);
    let after = c.verify(|_| {}).await.unwrap();
    assert!(after.is_ok(), "{after:?}");
    for (i, id) in ids.iter().enumerate() {
        let h = head(*id).await.unwrap();
        let g = good[i].as_ref().unwrap();
        assert_eq!(
            (
                h.ov,
                h.cv,
                &h.meta,
                h.size,
                &h.checksum,
                &h.chain,
                h.created_at
            ),
            (
                g.ov,
                g.cv,
                &g.meta,
                g.size,
                &g.checksum,
                &g.chain,
                g.created_at
            ),
            "record {i}'s head is its latest version's again"
        );
        let read = c
            .get_latest(*id, ReadOptions::new())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.data["r"], json!(i));
    }
    assert!(
        c.repair_heads(&after).await.unwrap().is_empty(),
        "nothing to repair"
    );
}

/// Store contract: `scan_versions` reads the whole log in `(id, ov)` order, in pages of any
/// size, resuming after any position (inside a record, at its last version, or at an id with
/// no versions at all), and sees nothing of another collection.
pub async fn index_scan_versions_contract(h: Harness) {
    use super::contracts::{commit, version};
    let idx = &h.stores.index;
    let coll = "scanv";
    assert!(idx.scan_versions(coll, None, 10).await.unwrap().is_empty());
    let mut ids: Vec<ItemId> = (0..5).map(|_| ItemId::generate()).collect();
    ids.sort();
    let mut want: Vec<(ItemId, u64)> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        // 1, 2, 3, 4 and 7 versions, committed interleaved with other records' writes.
        let n = if i == 4 { 7 } else { i as u64 + 1 };
        for ov in 0..n {
            let op = if ov == 0 { Op::Create } else { Op::Update };
            let v = version(*id, ov, op, 1_000 + (i as i64) * 100 + ov as i64);
            idx.commit(coll, commit(v, HeadAction::Upsert))
                .await
                .unwrap();
            want.push((*id, ov));
        }
    }
    idx.commit(
        "scanv_other",
        commit(version(ids[0], 0, Op::Create, 1), HeadAction::Upsert),
    )
    .await
    .unwrap();
    want.sort();
    for page in [1, 2, 3, 7, 100] {
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let p = idx.scan_versions(coll, after, page).await.unwrap();
            assert!(p.len() <= page, "a page of at most {page}");
            let Some(last) = p.last() else { break };
            after = Some((last.item_id, last.ov));
            for v in &p {
                assert_eq!(
                    v,
                    &idx.version(coll, v.item_id, v.ov).await.unwrap().unwrap(),
                    "the entry as `version` reads it"
                );
            }
            got.extend(p.iter().map(|v| (v.item_id, v.ov)));
        }
        assert_eq!(got, want, "pages of {page}");
    }
    for (i, pos) in want.iter().enumerate() {
        let rest: Vec<(ItemId, u64)> = idx
            .scan_versions(coll, Some(*pos), 1_000)
            .await
            .unwrap()
            .iter()
            .map(|v| (v.item_id, v.ov))
            .collect();
        assert_eq!(rest, want[i + 1..], "after {pos:?}");
    }
    // A position at an id without versions starts at the next record.
    let stranger = ItemId::generate();
    let rest = idx
        .scan_versions(coll, Some((stranger, 0)), 1_000)
        .await
        .unwrap();
    assert_eq!(
        rest.len(),
        want.iter().filter(|(id, _)| *id > stranger).count()
    );
}
