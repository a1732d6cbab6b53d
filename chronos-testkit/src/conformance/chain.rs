//! Cases: hash chains ([`chronos_core::chain`]) — the store seals what it is given exactly as
//! the core computes it, every engine write is sealed and linked, erase keeps the chain
//! verifiable, and `verify` reports a broken link or a stripped seal where it is.

use chronos_core::{
    ChainLink, Commit, CreateOptions, HeadAction, ItemId, NewVersion, Op, ProblemKind,
    RestoreTarget, VersionEntry, WriteOptions,
};
use serde_json::json;

use super::contracts::{commit, version};
use super::{full_history, Harness};

/// Store contract: a version committed with a [`ChainLink`] is stored with the seal that
/// [`NewVersion::into_entry`] gives at the cv the store assigned; the head carries its hash;
/// a scrub removes the salt and keeps digest, link and hash; no link, no seal.
pub async fn index_seal_contract(h: Harness) {
    let idx = &h.stores.index;
    let coll = "sealc";
    let id = ItemId::generate();
    let mut v0 = version(id, 0, Op::Create, 1_000);
    v0.chain = Some(ChainLink {
        salt: "00112233445566778899aabbccddeeff".into(),
        prev: None,
    });
    let cv0 = idx
        .commit(coll, commit(v0.clone(), HeadAction::Upsert))
        .await
        .unwrap();
    let want0 = v0.into_entry(cv0).seal.unwrap();
    let got0 = idx.version(coll, id, 0).await.unwrap().unwrap();
    assert_eq!(got0.seal.as_ref(), Some(&want0), "stored exactly as sealed");
    assert_eq!(
        idx.head(coll, id).await.unwrap().unwrap().chain.as_deref(),
        Some(want0.hash.as_str())
    );
    assert!(want0.check(&got0).is_none(), "a stored seal checks");

    let mut v1 = version(id, 1, Op::Update, 2_000);
    v1.chain = Some(ChainLink::after(Some(want0.hash.clone())));
    let cv1 = idx
        .commit(coll, commit(v1.clone(), HeadAction::Upsert))
        .await
        .unwrap();
    let want1 = v1.into_entry(cv1).seal.unwrap();
    assert_eq!(want1.prev.as_deref(), Some(want0.hash.as_str()));
    let got1 = idx.version(coll, id, 1).await.unwrap().unwrap();
    assert_eq!(got1.seal.as_ref(), Some(&want1));

    assert_eq!(idx.scrub_versions(coll, id, 1).await.unwrap(), 1);
    let scrubbed = idx.version(coll, id, 0).await.unwrap().unwrap();
    let s = scrubbed.seal.clone().expect("a scrub keeps the seal");
    assert_eq!(s.salt, None, "a scrub removes the salt");
    assert_eq!(
        (s.digest.as_str(), s.prev.as_deref(), s.hash.as_str()),
        (want0.digest.as_str(), None, want0.hash.as_str())
    );
    assert!(
        s.check(&scrubbed).is_none(),
        "without the salt the hash still checks against the kept fields"
    );

    let bare = ItemId::generate();
    idx.commit(
        coll,
        commit(version(bare, 0, Op::Create, 3_000), HeadAction::Upsert),
    )
    .await
    .unwrap();
    assert_eq!(
        idx.version(coll, bare, 0).await.unwrap().unwrap().seal,
        None
    );
    assert_eq!(idx.head(coll, bare).await.unwrap().unwrap().chain, None);
}

/// A version appended directly to the index after `last` (its payload reused), linked as
/// `chain` says.
pub(super) fn appended(last: &VersionEntry, chain: Option<ChainLink>) -> Commit {
    let mut c = Commit::new(
        NewVersion {
            item_id: last.item_id,
            ov: last.ov + 1,
            op: Op::Update,
            at: chronos_core::time::next_ms(last.at),
            actor: None,
            reason: None,
            blob_key: last.blob_key.clone(),
            meta: last.meta.clone(),
            size: last.size,
            checksum: last.checksum.clone(),
            prev_ov: Some(last.ov),
            chain,
        },
        HeadAction::Upsert,
    );
    // The record was created with its first version, not with this one.
    c.created_at = last.at;
    c
}

/// Every engine write is sealed and linked to the version before; erase keeps the chain
/// verifiable without the salts; a link to the wrong hash and a version without a seal after
/// sealed ones are each reported as a `chain` problem at their version; unsealed (upstream)
/// records are counted, not reported.
pub async fn chains_link_every_version_and_survive_erase(h: Harness) {
    let c = h
        .collection(chronos_core::CollectionConfig::new("chains"))
        .await;
    let a = c
        .create(&json!({"who": "a", "n": 0}), CreateOptions::new())
        .await
        .unwrap();
    c.update(a.id, &json!({"who": "a", "n": 1}), WriteOptions::new())
        .await
        .unwrap();
    c.delete(a.id, WriteOptions::new()).await.unwrap();
    c.restore_object(a.id, RestoreTarget::Ov(1), WriteOptions::new())
        .await
        .unwrap();
    let b = c
        .create(
            &json!({"who": "b", "secret": "s3cr3t"}),
            CreateOptions::new(),
        )
        .await
        .unwrap();
    c.update(
        b.id,
        &json!({"who": "b", "secret": "s3cr3t!"}),
        WriteOptions::new(),
    )
    .await
    .unwrap();

    let ha = full_history(&c, a.id).await;
    assert_eq!(ha.len(), 4);
    let mut prev: Option<String> = None;
    for v in &ha {
        let s = v.seal.as_ref().expect("every engine write is sealed");
        assert!(s.salt.is_some());
        assert_eq!(s.prev, prev, "ov {} links to the version before", v.ov);
        assert!(s.check(v).is_none(), "ov {}: {:?}", v.ov, s.check(v));
        prev = Some(s.hash.clone());
    }
    let head = h.stores.index.head(c.name(), a.id).await.unwrap().unwrap();
    assert_eq!(head.chain, prev, "the head carries the latest hash");
    let clean = c.verify(|_| {}).await.unwrap();
    assert!(clean.is_ok(), "{clean:?}");
    assert_eq!(clean.unchained, 0);

    let receipt = c.erase(b.id, "dpo", "art. 17").await.unwrap();
    assert!(receipt.complete, "{receipt:?}");
    let hb = full_history(&c, b.id).await;
    assert!(
        hb.iter().all(|v| v.seal.is_some()),
        "erase keeps every seal"
    );
    for pair in hb.windows(2) {
        assert_eq!(
            pair[1].seal.as_ref().unwrap().prev.as_ref(),
            Some(&pair[0].seal.as_ref().unwrap().hash),
            "still linked after the erase"
        );
    }
    for v in &hb[..hb.len() - 1] {
        assert_eq!(
            v.seal.as_ref().unwrap().salt,
            None,
            "ov {}: salt erased",
            v.ov
        );
    }
    let after_erase = c.verify(|_| {}).await.unwrap();
    assert!(after_erase.is_ok(), "{after_erase:?}");

    // A link to a hash that is not the previous version's.
    let last = ha.last().unwrap().clone();
    let forged = ChainLink::after(Some("0".repeat(64)));
    h.stores
        .index
        .commit(c.name(), appended(&last, Some(forged)))
        .await
        .unwrap();
    // Then a version without a seal.
    let forged_v = full_history(&c, a.id).await.last().unwrap().clone();
    h.stores
        .index
        .commit(c.name(), appended(&forged_v, None))
        .await
        .unwrap();
    // And an upstream record: no seals at all.
    let up = full_history(&c, a.id).await.last().unwrap().clone();
    let upstream = ItemId::generate();
    let mut first = appended(&up, None);
    first.version.item_id = upstream;
    first.version.ov = 0;
    first.version.prev_ov = None;
    h.stores.index.commit(c.name(), first).await.unwrap();

    let r = c.verify(|_| {}).await.unwrap();
    let found: Vec<(ProblemKind, ItemId, Option<u64>)> =
        r.problems.iter().map(|p| (p.kind, p.id, p.ov)).collect();
    assert_eq!(
        found,
        [
            (ProblemKind::Chain, a.id, Some(last.ov + 1)),
            (ProblemKind::Chain, a.id, Some(last.ov + 2)),
        ],
        "{r:?}"
    );
    assert!(r.problems[0].detail.contains("links to"), "{r:?}");
    assert!(r.problems[1].detail.contains("unsealed"), "{r:?}");
    assert_eq!(r.unchained, 2, "the stripped version and the upstream one");
}
