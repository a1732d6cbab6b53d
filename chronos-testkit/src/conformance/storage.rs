//! Cases: how payloads are laid out in the blob store — key prefixes that keep databases
//! sharing a bucket apart, compression, and externalised base64 properties.

use std::time::Duration;

use bytes::Bytes;
use chronos_core::{
    Base64Prop, CollectionConfig, CreateOptions, ErrorKind, Externals, ItemId, ReadOptions,
    WriteOptions,
};
use serde_json::json;

use super::{blob_keys, data, planted_key, sweep_now, Harness};

/// Two databases sharing one bucket use different blob prefixes: every payload of a
/// collection lands under its prefix, and its sweep never touches keys outside it — not
/// another database's orphan-looking payloads, not unprefixed (upstream-layout) ones.
pub async fn blob_prefix_keeps_shared_buckets_apart(h: Harness) {
    let c = h
        .collection(CollectionConfig::new("shared").blob_prefix("db_a/"))
        .await;
    let w = c
        .create(&json!({"a": 1}), CreateOptions::new())
        .await
        .unwrap();
    c.update(w.id, &json!({"a": 2}), WriteOptions::new())
        .await
        .unwrap();
    let keys = blob_keys(&h, &c).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter()
            .all(|k| k.starts_with(&format!("db_a/{}/", c.name()))),
        "{keys:?}"
    );

    let stranger = ItemId::generate();
    let own = c.database_id();
    let dir = format!("{stranger}/v0");
    let foreign = [
        // Another prefix, upstream's layout, and another database's key under our prefix.
        format!(
            "db_b/{}/{stranger}/v0/item-{own}-1-0011223344556677.json",
            c.name()
        ),
        format!("{}/{stranger}/v0/item.json", c.name()),
        planted_key(&c, "0therdb", 1, &dir, "item", ".json"),
    ];
    let own_orphan = planted_key(&c, own, 1, &dir, "item", ".json");
    for k in foreign.iter().chain([&own_orphan]) {
        h.stores
            .blob
            .put_if_absent(k, Bytes::from_static(b"{}"))
            .await
            .unwrap();
    }
    let r = sweep_now(&h, &c).await;
    assert_eq!(r.removed, vec![own_orphan]);
    for k in &foreign {
        assert_eq!(
            h.stores.blob.get(k).await.unwrap(),
            Bytes::from_static(b"{}"),
            "{k}"
        );
    }
    let latest = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&latest), json!({"a": 2}));

    let e = h
        .engine()
        .collection(CollectionConfig::new("shared").blob_prefix("../x/"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert!(e.to_string().contains("blob prefix"), "{e}");
}

/// Compression on: large payloads are stored gzipped (the key says `.json.gz`), small ones
/// as they are; both read back exactly, also after compression is turned off; a damaged
/// compressed payload is an error naming its key.
pub async fn compressed_payloads_roundtrip(h: Harness) {
    let cfg = CollectionConfig::new("gz").compression(true);
    let c = h.collection(cfg).await;
    let text: String = "all work and no play makes jack a dull boy ".repeat(100);
    let big = json!({"text": text, "n": 1});
    let w = c.create(&big, CreateOptions::new()).await.unwrap();
    let small = c
        .create(&json!({"n": 2}), CreateOptions::new())
        .await
        .unwrap();

    let head = h.stores.index.head(c.name(), w.id).await.unwrap().unwrap();
    assert!(head.blob_key.ends_with(".json.gz"), "{}", head.blob_key);
    let stored = h.stores.blob.get(&head.blob_key).await.unwrap();
    assert_eq!(&stored[..2], &[0x1f, 0x8b], "gzip magic");
    assert!(
        stored.len() * 4 < text.len(),
        "{} bytes stored",
        stored.len()
    );
    assert!(head.size > text.len() as u64, "size is the JSON's");
    let small_head = h
        .stores
        .index
        .head(c.name(), small.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        small_head.blob_key.ends_with(".json"),
        "{}",
        small_head.blob_key
    );

    let got = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&got), big);

    // The same collection without compression: old versions still read, new ones are plain.
    let plain = h
        .engine()
        .collection(CollectionConfig::new(c.name()))
        .await
        .unwrap();
    let mut doc = big.clone();
    doc["n"] = json!(3);
    let w2 = plain.update(w.id, &doc, WriteOptions::new()).await.unwrap();
    let v0 = plain
        .get_version(w.id, 0, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&v0), big);
    let v1 = h
        .stores
        .index
        .version(c.name(), w.id, w2.ov)
        .await
        .unwrap()
        .unwrap();
    assert!(v1.blob_key.ends_with(".json"), "{}", v1.blob_key);
    assert_eq!(
        data(
            &plain
                .get_latest(w.id, ReadOptions::new())
                .await
                .unwrap()
                .unwrap()
        ),
        doc
    );

    // Truncated gzip: an error naming the key, never garbage.
    let victim = head.blob_key.clone();
    h.stores.blob.delete(&victim).await.unwrap();
    h.stores
        .blob
        .put_if_absent(&victim, stored.slice(..stored.len() / 2))
        .await
        .unwrap();
    let e = c
        .get_version(w.id, 0, ReadOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
    assert_eq!(e.context("key"), Some(victim.as_str()), "{e}");
}

/// base64Props: a property written as base64 is stored as its own blob (plus text for text
/// content); the version's JSON and the indexed metadata keep only a ref; reads return the
/// ref or the content inlined; refs carry over to later versions; bad values are validation
/// errors naming the property and store nothing; damaged content is an error naming its key;
/// the sweep removes orphaned content and keeps referenced content.
pub async fn base64_props_roundtrip(h: Harness) {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let cfg = CollectionConfig::new("files")
        .base64_prop("file", Base64Prop::new("application/octet-stream"))
        .base64_prop("note", Base64Prop::new("text/plain"));
    let c = h.collection(cfg).await;
    let bin: Vec<u8> = (0..1024u32).map(|i| (i % 256) as u8).collect();
    let doc = json!({"name": "x", "file": b64(&bin), "note": b64(b"hello world")});
    let w = c.create(&doc, CreateOptions::new()).await.unwrap();

    // Default read: refs.
    let got = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    let file_ref = got.data["file"]["ref"].clone();
    let key = file_ref["blobKey"].as_str().unwrap().to_string();
    assert!(
        key.starts_with(&format!("{}/file/{}/v0/", c.name(), w.id)),
        "{key}"
    );
    assert_eq!(file_ref["size"], json!(1024));
    assert_eq!(file_ref["contentType"], json!("application/octet-stream"));
    assert!(
        file_ref.get("textKey").is_none(),
        "binary content has no text"
    );
    assert_eq!(
        h.stores.blob.get(&key).await.unwrap(),
        Bytes::from(bin.clone())
    );
    let text_key = got.data["note"]["ref"]["textKey"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        h.stores.blob.get(&text_key).await.unwrap(),
        Bytes::from_static(b"hello world")
    );
    // The stored JSON and the metadata hold the ref, not the content.
    let head = h.stores.index.head(c.name(), w.id).await.unwrap().unwrap();
    let stored =
        String::from_utf8(h.stores.blob.get(&head.blob_key).await.unwrap().to_vec()).unwrap();
    assert!(
        stored.contains(&key) && !stored.contains(&b64(&bin)),
        "{stored}"
    );
    assert_eq!(head.meta["file"]["ref"]["blobKey"], json!(key));

    // Inline read: the content as written.
    let inline = ReadOptions::new().externals(Externals::Inline);
    let got = c.get_latest(w.id, inline.clone()).await.unwrap().unwrap();
    assert_eq!(data(&got), doc);

    // Refs carry over: an enrichment, and an update writing back the ref it read.
    c.enrich(w.id, &json!({"tag": "t"}), Default::default())
        .await
        .unwrap();
    let v1 = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v1.data["file"]["ref"]["blobKey"], json!(key));
    let mut back = v1.data.clone();
    back.insert("name".into(), json!("y"));
    c.update(w.id, &back, WriteOptions::new()).await.unwrap();
    let v2 = c.get_latest(w.id, inline.clone()).await.unwrap().unwrap();
    assert_eq!(v2.data["file"], json!(b64(&bin)));
    assert_eq!(v2.data["name"], json!("y"));

    // Bad values: validation errors naming the property; nothing written.
    let before = blob_keys(&h, &c).await;
    let other = c
        .create(&json!({"file": b64(b"x")}), CreateOptions::new())
        .await
        .unwrap();
    let foreign_ref = c
        .get_latest(other.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap()
        .data["file"]
        .clone();
    let before = {
        let mut b = before;
        b.extend(blob_keys(&h, &c).await);
        b.sort();
        b.dedup();
        b
    };
    for (bad, why) in [
        (json!({"note": b64(b"ok"), "file": "not base64!"}), "base64"),
        (json!({"file": 42}), "base64 string"),
        (
            json!({"file": {"ref": {"blobKey": "elsewhere/x.bin"}}}),
            "outside",
        ),
        (json!({"file": foreign_ref}), "outside"),
        (json!({"note": b64(&[0xff, 0xfe])}), "UTF-8"),
    ] {
        let e = c.update(w.id, &bad, WriteOptions::new()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation, "{bad}: {e}");
        assert!(e.to_string().contains(why), "{bad}: {e}");
        assert_eq!(
            e.context("field"),
            Some(if bad.get("note").is_some() && bad.get("file").is_none() {
                "note"
            } else {
                "file"
            }),
            "{e}"
        );
    }
    let mut after = blob_keys(&h, &c).await;
    after.sort();
    assert_eq!(after, before, "a rejected write stored nothing");
    assert_eq!(
        c.get_latest(w.id, ReadOptions::new())
            .await
            .unwrap()
            .unwrap()
            .system
            .ov,
        2
    );

    // Presigning needs a store that can.
    if !h.stores.blob.capabilities().presign {
        let e = c
            .get_latest(w.id, ReadOptions::new().presign(Duration::from_secs(60)))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    }

    // The sweep: orphaned content goes, referenced content stays.
    // Slot v9 is free but the attempt is old; slot v0 is taken, so even a young one is garbage.
    let (own, now) = (
        c.database_id(),
        chronos_core::time::now_ms().as_millisecond(),
    );
    let orphan = planted_key(&c, own, 1, &format!("file/{}/v9", w.id), "blob", ".bin");
    let stray = planted_key(&c, own, now, &format!("file/{}/v0", w.id), "text", ".txt");
    for k in [&orphan, &stray] {
        h.stores
            .blob
            .put_if_absent(k, Bytes::from_static(b"zz"))
            .await
            .unwrap();
    }
    let mut r = sweep_now(&h, &c).await;
    r.removed.sort();
    let mut expected = vec![orphan, stray];
    expected.sort();
    assert_eq!(r.removed, expected);
    assert_eq!(
        data(
            &c.get_version(w.id, 0, inline.clone())
                .await
                .unwrap()
                .unwrap()
        ),
        doc
    );

    // Damaged content: an error naming its key.
    h.stores.blob.delete(&key).await.unwrap();
    h.stores
        .blob
        .put_if_absent(&key, Bytes::from_static(b"short"))
        .await
        .unwrap();
    let e = c.get_latest(w.id, inline).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
    assert_eq!(e.context("key"), Some(key.as_str()), "{e}");
}

/// An update carries the lineage over from the head's copy: it reads no payload from the
/// blob store (one blob put, no get), and the lineage still survives.
pub async fn update_reads_no_payload(h: Harness) {
    use crate::fault::{faulty, FaultPlan};
    let plan = FaultPlan::new();
    let cfg = CollectionConfig::new(Harness::unique("lean"));
    let c = chronos_core::Engine::new(faulty(&h.stores, &plan))
        .collection(cfg)
        .await
        .unwrap();
    let w = c
        .create(
            &json!({"a": 1}),
            CreateOptions::new().parent("p-1", "parents"),
        )
        .await
        .unwrap();
    let before = plan.log().len();
    c.update(w.id, &json!({"a": 2}), WriteOptions::new())
        .await
        .unwrap();
    let ops = plan.log()[before..].to_vec();
    assert!(!ops.contains(&"get"), "update read a payload: {ops:?}");
    assert_eq!(
        ops.iter().filter(|o| **o == "put_if_absent").count(),
        1,
        "{ops:?}"
    );
    let got = c
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&got), json!({"a": 2}));
    assert_eq!(got.system.lineage.parent_id.as_deref(), Some("p-1"));
}
