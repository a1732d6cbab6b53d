//! Presigned URL checks shared by the S3 and Azure tests: a URL fetched with a plain HTTP
//! client returns the payload; a tampered, re-targeted or expired one is refused.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use chronos_blob::ObjectBlobStore;
use chronos_core::{
    Base64Prop, BlobStore, CollectionConfig, CreateOptions, ErrorKind, ItemId, ListOptions,
    ReadOptions,
};
use serde_json::json;

async fn fetch(url: &str) -> (u16, Bytes) {
    let r = reqwest::get(url).await.expect("HTTP request");
    let status = r.status().as_u16();
    (status, r.bytes().await.expect("HTTP body"))
}

/// Rewrites the value of the first query parameter named in `names` with `f`.
fn tamper(url: &str, names: &[&str], f: impl Fn(&str) -> String) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut done = false;
    u.query_pairs_mut().clear();
    for (k, mut v) in pairs {
        if !done && names.contains(&k.as_str()) {
            v = f(&v);
            done = true;
        }
        u.query_pairs_mut().append_pair(&k, &v);
    }
    assert!(done, "no signature parameter in {url}");
    u.to_string()
}

pub(crate) async fn check(store: ObjectBlobStore) {
    assert!(store.capabilities().presign);
    let key = format!("presign/{}/v0/item.json", ItemId::generate());
    let body = Bytes::from_static(br#"{"hello":"world"}"#);
    store.put_if_absent(&key, body.clone()).await.unwrap();

    let url = store
        .presign_get(&key, Duration::from_secs(60))
        .await
        .unwrap();
    let (status, got) = fetch(&url).await;
    assert_eq!(status, 200, "{url}");
    assert_eq!(got, body);

    // One character of the signature changed (still well-formed).
    let bad_sig = tamper(&url, &["X-Amz-Signature", "sig"], |v| {
        let flip = if v.starts_with('a') { "b" } else { "a" };
        format!("{flip}{}", &v[1..])
    });
    assert_eq!(
        fetch(&bad_sig).await.0,
        403,
        "tampered signature: {bad_sig}"
    );
    let other = format!("presign/{}/v0/item.json", ItemId::generate());
    store.put_if_absent(&other, body.clone()).await.unwrap();
    let moved = url.replace(&key, &other);
    assert_ne!(moved, url);
    assert_eq!(fetch(&moved).await.0, 403, "URL for another key: {moved}");
    // A longer validity than was signed: S3's X-Amz-Expires (seconds), Azure's `se` (an
    // instant).
    let longer = tamper(&url, &["X-Amz-Expires", "se"], |v| {
        if v.contains('T') {
            format!("2099{}", &v[4..])
        } else {
            "604800".to_string()
        }
    });
    assert_eq!(fetch(&longer).await.0, 403, "tampered expiry: {longer}");

    let short = store
        .presign_get(&key, Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(fetch(&short).await.0, 403, "expired URL: {short}");

    let e = store.presign_get(&key, Duration::ZERO).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    let dir = tempfile::tempdir().unwrap();
    let local = ObjectBlobStore::local(dir.path()).unwrap();
    assert!(!local.capabilities().presign);
    let e = local
        .presign_get("a/b.json", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("cannot issue presigned URLs"), "{e}");

    // Through the engine: a read asking for URLs gets one for the version's JSON and one
    // inside each externalised property's ref.
    let stores = chronos_testkit::memory_stores();
    let engine = chronos_core::Engine::new(chronos_core::Stores {
        blob: std::sync::Arc::new(store.clone()),
        ..stores
    });
    let c = engine
        .collection(
            CollectionConfig::new(format!("docs_{}", &ItemId::generate().to_string()[16..]))
                .base64_prop("pdf", Base64Prop::new("application/pdf")),
        )
        .await
        .unwrap();
    let pdf = b"%PDF-1.4 not really";
    let w = c
        .create(
            &json!({"title": "t", "pdf": base64::engine::general_purpose::STANDARD.encode(pdf)}),
            CreateOptions::new(),
        )
        .await
        .unwrap();
    let r = c
        .get_latest(w.id, ReadOptions::new().presign(Duration::from_secs(60)))
        .await
        .unwrap()
        .unwrap();
    let p = r.presigned.expect("payload URL");
    let (status, json_bytes) = fetch(&p.url).await;
    assert_eq!(status, 200);
    let stored: serde_json::Value = serde_json::from_slice(&json_bytes).unwrap();
    assert_eq!(stored["title"], json!("t"));
    assert_eq!(
        stored["pdf"]["ref"]["blobKey"],
        r.data["pdf"]["ref"]["blobKey"]
    );
    let url = r.data["pdf"]["ref"]["url"].as_str().expect("property URL");
    assert_eq!(fetch(url).await, (200, Bytes::from_static(pdf)));
    let page = c
        .list_by_meta(ListOptions::new().presign(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(page.items[0].presigned.is_some());
}
