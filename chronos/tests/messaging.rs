//! `Chronos::messaging` end to end: the embedded default has a messaging database; what one
//! process saves the next one reads; tenants share the database and never each other's
//! documents; a configuration without `databases.messaging` says so.

use chronos::messaging::{ListQuery, NewMessage, SaveOutcome, Strategy};
use chronos::{Chronos, ErrorKind};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_keeps_messages_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let chronos = Chronos::embedded(dir.path()).unwrap();
        let a = chronos.messaging("tenant-a").await.unwrap();
        let b = chronos.messaging("tenant-b").await.unwrap();
        let msg = NewMessage::new("payments", "m-1", json!({"amount": 100}));
        assert_eq!(a.messages().save(&msg).await.unwrap(), SaveOutcome::Saved);
        // The same id in another tenant is another message.
        assert_eq!(b.messages().save(&msg).await.unwrap(), SaveOutcome::Saved);
        a.shared()
            .save("events", "s", &json!(1), Strategy::Append)
            .await
            .unwrap();
        chronos.shutdown().await;
    }
    let chronos = Chronos::embedded(dir.path()).unwrap();
    let a = chronos.messaging("tenant-a").await.unwrap();
    let msg = NewMessage::new("payments", "m-1", json!({"amount": 100}));
    assert_eq!(
        a.messages().save(&msg).await.unwrap(),
        SaveOutcome::Duplicate
    );
    let v = a
        .shared()
        .save("events", "s", &json!(2), Strategy::Append)
        .await
        .unwrap();
    assert_eq!(v.version, Some(1), "versions continue in a new process");
    let page = a
        .messages()
        .list(&ListQuery::new("payments"))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let c = chronos.messaging("tenant-c").await.unwrap();
    assert!(c
        .messages()
        .list(&ListQuery::new("payments"))
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(c
        .shared()
        .load("events", "s", Strategy::Append, None)
        .await
        .unwrap()
        .is_none());
    let e = chronos.messaging("").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    chronos.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messaging_must_be_configured() {
    let dir = tempfile::tempdir().unwrap();
    let chronos = Chronos::from_json(
        &json!({
            "dbConnections": { "local": { "mongoUri": format!("sqlite://{}", dir.path().display()) } },
            "spacesConnections": {},
            "databases": { "logs": { "dbConnRef": "local", "dbName": "logs" } },
            "localStorage": { "enabled": true, "basePath": dir.path().join("b").display().to_string() }
        })
        .to_string(),
    )
    .unwrap();
    let e = chronos.messaging("tenant-a").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("databases.messaging"), "{e}");
    let e = chronos
        .with(&chronos::Route::generic(
            chronos::DatabaseType::Messaging,
            "messages",
        ))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Chronos::messaging"), "{e}");
}
