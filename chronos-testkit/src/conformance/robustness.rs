//! Cases: hostile or damaged data never makes other records unreadable — writes refuse what
//! reads could not parse, and one damaged record is reported by a list page, not fatal to it.

use bytes::Bytes;
use chronos_core::{
    CollectionConfig, CreateOptions, EnrichOptions, ErrorKind, ListOptions, ReadOptions,
    WriteOptions, MAX_PAYLOAD_DEPTH,
};
use serde_json::{json, Value};

use super::{blob_keys, data, Harness};

/// `{"a": {"a": … 1 …}}` with `levels` objects.
fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!({ "a": v });
    }
    v
}

/// Payloads nested deeper than [`MAX_PAYLOAD_DEPTH`] are refused by every write, naming the
/// limit, and leave nothing behind; the deepest allowed payload reads back.
pub async fn deep_payloads_are_rejected(h: Harness) {
    let c = h.default_collection("deep").await;
    for levels in [MAX_PAYLOAD_DEPTH + 1, 200] {
        let e = c
            .create(&nested(levels), CreateOptions::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation, "{levels}: {e}");
        assert!(
            e.to_string().contains(&MAX_PAYLOAD_DEPTH.to_string()),
            "{e}"
        );
    }
    assert!(
        blob_keys(&h, &c).await.is_empty(),
        "a refused write stored a blob"
    );
    let ok = c
        .create(&nested(MAX_PAYLOAD_DEPTH), CreateOptions::new())
        .await
        .unwrap();
    let back = c
        .get_latest(ok.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&back), nested(MAX_PAYLOAD_DEPTH));
    // Deep in an array, deep through an update or an enrichment: refused alike.
    let in_array = json!({"list": [nested(MAX_PAYLOAD_DEPTH)]});
    let e = c
        .update(ok.id, &in_array, WriteOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    let e = c
        .enrich(
            ok.id,
            &json!({"x": nested(MAX_PAYLOAD_DEPTH)}),
            EnrichOptions::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    let latest = c
        .get_latest(ok.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.system.ov, 0, "refused writes changed the record");
}

/// A record whose payload is damaged (here: replaced by a document too deep to parse) fails
/// its own reads with `Internal`, shows up in a list page's `unreadable` while the page
/// returns every other record, and can still be deleted or erased; afterwards pages are
/// clean.
pub async fn damaged_record_never_bricks_a_page(h: Harness) {
    let c = h.default_collection("damaged").await;
    let mut good = Vec::new();
    for n in 0..3 {
        good.push(
            c.create(&json!({"n": n}), CreateOptions::new())
                .await
                .unwrap()
                .id,
        );
    }
    let bad = c
        .create(&json!({"n": 99}), CreateOptions::new())
        .await
        .unwrap();
    poison(&h, c.name(), bad.id).await;
    // Fresh handle: nothing cached from the write.
    let c = h.engine().collection(c.config().clone()).await.unwrap();

    let e = c.get_latest(bad.id, ReadOptions::new()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
    let page = c.list_by_meta(ListOptions::new()).await.unwrap();
    let mut ids: Vec<_> = page.items.iter().map(|r| r.id).collect();
    ids.sort();
    let mut expected = good.clone();
    expected.sort();
    assert_eq!(ids, expected, "the page returns every readable record");
    assert_eq!(page.unreadable.len(), 1, "{:?}", page.unreadable);
    assert_eq!(page.unreadable[0].id, bad.id);
    assert_eq!(page.unreadable[0].kind, ErrorKind::Internal);

    let del = c.delete(bad.id, WriteOptions::new()).await.unwrap();
    assert_eq!(del.ov, 1);
    assert!(c
        .get_latest(bad.id, ReadOptions::new())
        .await
        .unwrap()
        .is_none());
    let page = c.list_by_meta(ListOptions::new()).await.unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.unreadable.is_empty(), "{:?}", page.unreadable);
    // The tombstone itself reads (without the content that could not be read).
    let tomb = c
        .get_version(bad.id, 1, ReadOptions::new().include_deleted(true))
        .await
        .unwrap()
        .unwrap();
    assert!(tomb.system.deleted);

    // Erase needs no parse either: it completes, and the record reads as erased.
    let bad = c
        .create(&json!({"n": 98}), CreateOptions::new())
        .await
        .unwrap();
    poison(&h, c.name(), bad.id).await;
    let c = h.engine().collection(c.config().clone()).await.unwrap();
    let receipt = c.erase(bad.id, "ops", "damaged payload").await.unwrap();
    assert!(receipt.complete, "{receipt:?}");
    let e = c.get_latest(bad.id, ReadOptions::new()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Erased, "{e}");
    let page = c.list_by_meta(ListOptions::new()).await.unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.unreadable.is_empty(), "{:?}", page.unreadable);
}

/// Replaces the latest payload of record `id` by a document too deep to parse.
async fn poison(h: &Harness, collection: &str, id: chronos_core::ItemId) {
    let key = h
        .stores
        .index
        .head(collection, id)
        .await
        .unwrap()
        .unwrap()
        .blob_key;
    let poison = "{\"a\":".repeat(300) + "1" + &"}".repeat(300);
    h.stores.blob.delete(&key).await.unwrap();
    h.stores
        .blob
        .put_if_absent(&key, Bytes::from(poison))
        .await
        .unwrap();
}

/// A payload above the collection's maximum is refused with a validation error naming the
/// limit, and changes nothing; one at the limit is stored.
pub async fn oversized_payloads_are_rejected(h: Harness) {
    let cfg = chronos_core::CollectionConfig::new(Harness::unique("big")).max_payload_bytes(4096);
    let c = h.engine().collection(cfg).await.unwrap();
    let w = c
        .create(&json!({"s": "x".repeat(1000)}), CreateOptions::new())
        .await
        .unwrap();
    let e = c
        .update(w.id, &json!({"s": "x".repeat(5000)}), WriteOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    assert_eq!(e.context("limit"), Some("4096"), "{e}");
    assert!(e.to_string().contains("4096"), "{e}");
    let e = c
        .create(&json!({"s": "y".repeat(5000)}), CreateOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    assert_eq!(
        blob_keys(&h, &c).await.len(),
        1,
        "a refused write stored a payload"
    );
    let latest = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.system.ov, 0);

    // Metadata: without indexedProps the whole document would be copied into the index.
    let all = h
        .engine()
        .collection(CollectionConfig::new(Harness::unique("meta")).max_meta_bytes(2048))
        .await
        .unwrap();
    let e = all
        .create(&json!({"s": "x".repeat(3000)}), CreateOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    assert_eq!(e.context("limit"), Some("2048"), "{e}");
    assert!(e.to_string().contains("indexedProps"), "{e}");
    // With indexedProps only those are copied: the large field is fine.
    let some = h
        .engine()
        .collection(
            CollectionConfig::new(Harness::unique("meta"))
                .max_meta_bytes(2048)
                .indexed_props(["k"]),
        )
        .await
        .unwrap();
    some.create(
        &json!({"k": 1, "s": "x".repeat(3000)}),
        CreateOptions::new(),
    )
    .await
    .unwrap();
}
