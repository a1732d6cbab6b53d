//! `Chronos::messaging` and `Chronos::identities` end to end: the embedded default has both;
//! what one process saves the next one reads; tenants share each database and never each
//! other's documents; a configuration without `databases.messaging` says so.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_has_an_identities_database() {
    use chronos::identities::NewUser;
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let chronos = Chronos::embedded(dir.path()).unwrap();
        let ids = chronos.identities("acme").await.unwrap();
        let u = ids
            .users()
            .create(NewUser::new("a@acme.com").password("correct horse battery"))
            .await
            .unwrap();
        chronos.shutdown().await;
        u.id
    };
    let chronos = Chronos::embedded(dir.path()).unwrap();
    let ids = chronos.identities("acme").await.unwrap();
    let u = ids
        .users()
        .verify_password("A@acme.com", "correct horse battery")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.id, id, "kept across processes");
    let other = chronos.identities("globex").await.unwrap();
    assert!(other.users().get(&id).await.unwrap().is_none());
    let e = chronos
        .with(&chronos::Route::generic(
            chronos::DatabaseType::Identities,
            "users",
        ))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Chronos::identities"), "{e}");
    chronos.shutdown().await;
}
