//! A write interrupted by a crash leaves at most a staging file, which is never visible as a
//! blob: not readable under the key, not listed, and the key can still be written.

use bytes::Bytes;
use chronos_blob::ObjectBlobStore;
use chronos_core::{BlobStore, ErrorKind};

#[tokio::test]
async fn staged_leftovers_are_invisible() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectBlobStore::local(dir.path()).unwrap();
    store
        .put_if_absent("c/done.json", Bytes::from_static(b"{\"ok\":1}"))
        .await
        .unwrap();
    // What a crash between staging and publishing leaves behind (object_store stages uploads
    // as `<key>#<n>` next to the target).
    std::fs::write(dir.path().join("c").join("half.json#1"), b"{\"trunc").unwrap();
    assert_eq!(
        store.get("c/half.json").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let keys: Vec<String> = store
        .list("c/", None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, ["c/done.json"]);
    store
        .put_if_absent("c/half.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(
        store.get("c/half.json").await.unwrap(),
        Bytes::from_static(b"{}")
    );
}

/// The durable local store (`durability: "powerLoss"`) stores and reads like the plain one;
/// its puts fsync the file and the directories up to the root, deep keys included.
#[tokio::test]
async fn durable_local_store_roundtrips() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectBlobStore::local_durable(dir.path()).unwrap();
    store
        .put_if_absent("c/x/y/z.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(
        store.get("c/x/y/z.json").await.unwrap(),
        Bytes::from_static(b"{}")
    );
    assert!(format!("{store:?}").contains("fsync"));
    let e = store
        .put_if_absent("c/x/y/z.json", Bytes::from_static(b"[]"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
}
