//! Cases: idempotency keys — a write's key is named by its versions, so
//! `Collection::find_committed` finds the write (and only it) from the version log.

use chronos_core::time::now_ms;
use chronos_core::{
    CollectionConfig, CreateOptions, EnrichOptions, IdempotencyKey, ItemId, Timestamp, WriteOptions,
};
use serde_json::json;

use super::Harness;

/// Every kind of keyed write is found with its ov, a later page of history included; another
/// key, another record, or a `since` after the write find nothing.
pub async fn find_committed_recognises_keyed_writes(h: Harness) {
    let c = h.collection(CollectionConfig::new("keys")).await;
    let since = now_ms();
    let (k0, k1, k2, k3, k4) = (
        IdempotencyKey::generate(),
        IdempotencyKey::generate(),
        IdempotencyKey::generate(),
        IdempotencyKey::generate(),
        IdempotencyKey::generate(),
    );
    let id = c
        .create(
            &json!({"n": 0}),
            CreateOptions::new().idempotency_key(k0.clone()),
        )
        .await
        .unwrap()
        .id;
    c.update(
        id,
        &json!({"n": 1}),
        WriteOptions::new().idempotency_key(k1.clone()),
    )
    .await
    .unwrap();
    // Past the first page of the search (100 versions).
    for n in 0..105 {
        c.update(id, &json!({"n": n}), WriteOptions::new())
            .await
            .unwrap();
    }
    c.enrich(
        id,
        &json!({"e": 1}),
        EnrichOptions::new().idempotency_key(k2.clone()),
    )
    .await
    .unwrap();
    let batch = c
        .update_many(vec![(
            id,
            json!({"b": 1}),
            WriteOptions::new().idempotency_key(k3.clone()),
        )])
        .await;
    let b = batch.into_iter().next().unwrap().unwrap();
    c.delete(id, WriteOptions::new().idempotency_key(k4.clone()))
        .await
        .unwrap();
    for (k, ov) in [(&k0, 0), (&k1, 1), (&k2, 107), (&k3, b.ov), (&k4, b.ov + 1)] {
        let found = c.find_committed(id, k, since).await.unwrap();
        assert_eq!(found.map(|r| r.ov), Some(ov), "key {k}");
    }
    assert_eq!(b.ov, 108);
    let other = IdempotencyKey::generate();
    assert!(c.find_committed(id, &other, since).await.unwrap().is_none());
    assert!(c
        .find_committed(ItemId::generate(), &k0, since)
        .await
        .unwrap()
        .is_none());
    let later = Timestamp::from_millisecond(now_ms().as_millisecond() + 1_000).unwrap();
    assert!(c.find_committed(id, &k4, later).await.unwrap().is_none());
    // An unkeyed write is never mistaken for a keyed one.
    let plain = c
        .create(&json!({"p": 1}), CreateOptions::new())
        .await
        .unwrap()
        .id;
    assert!(c.find_committed(plain, &k0, since).await.unwrap().is_none());
}
