//! The spec's identities examples on every backend — create a user, query by tenant +
//! status, update with `ov`, the login / session flow — plus roles and permissions, accounts,
//! generic collections with optimistic locking, and the errors a careless caller gets.

mod common;

use std::time::Duration;

use chronos_core::ErrorKind;
use chronos_identities::{
    Identities, NewAccount, NewSession, NewUser, QueryOptions, Settings, UserPatch, UserStatus,
};
use serde_json::{json, Map, Value};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

async fn users_and_sessions(ids: &Identities) {
    let users = ids.users();
    // Create user.
    let john = users
        .create(
            NewUser::new("john@acme.com")
                .name("John Doe")
                .roles(["admin"])
                .password("correct horse battery"),
        )
        .await
        .unwrap();
    assert_eq!(
        (john.tenant_id.as_str(), john.ov, john.status),
        (ids.tenant(), 0, UserStatus::Active)
    );
    users
        .create(
            NewUser::new("jane@acme.com")
                .name("Jane")
                .status(UserStatus::Suspended),
        )
        .await
        .unwrap();
    let e = users
        .create(NewUser::new("John@ACME.com"))
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::AlreadyExists,
        "emails are unique in any letter case: {e}"
    );

    // Query users by tenant + status.
    let active = users
        .query(&json!({"status": "active"}), None, 100)
        .await
        .unwrap();
    assert_eq!(
        active.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
        ["john@acme.com"]
    );

    // Update with ov.
    let renamed = users
        .update(
            &john.id,
            &UserPatch {
                name: Some("John Smith".into()),
                ..Default::default()
            },
            Some(john.ov),
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_deref(), renamed.ov),
        (Some("John Smith"), 1)
    );
    let e = users
        .update(
            &john.id,
            &UserPatch {
                name: Some("Stale".into()),
                ..Default::default()
            },
            Some(0),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert_eq!(
        users.get(&john.id).await.unwrap().unwrap().name.as_deref(),
        Some("John Smith")
    );

    // The login / session flow.
    assert!(users
        .verify_password("john@acme.com", "wrong password")
        .await
        .unwrap()
        .is_none());
    assert!(users
        .verify_password("nobody@acme.com", "correct horse battery")
        .await
        .unwrap()
        .is_none());
    let login = users
        .verify_password(" John@Acme.com ", "correct horse battery")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(login.id, john.id);
    let (session, token) = ids
        .sessions()
        .create(
            &login.id,
            NewSession {
                ip_address: Some("10.0.0.1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(token.expose().len(), 43, "256 bits, URL-safe base64");
    let auth = ids
        .sessions()
        .authenticate(token.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (auth.id.clone(), auth.user_id.clone()),
        (session.id.clone(), john.id.clone())
    );
    assert!(ids
        .sessions()
        .authenticate("not-a-token")
        .await
        .unwrap()
        .is_none());
    let (_, second) = ids
        .sessions()
        .create(&john.id, Default::default())
        .await
        .unwrap();
    assert_ne!(second.expose(), token.expose());
    assert_eq!(ids.sessions().list(&john.id).await.unwrap().len(), 2);
    assert!(ids.sessions().revoke(&session.id).await.unwrap());
    assert!(
        ids.sessions()
            .authenticate(token.expose())
            .await
            .unwrap()
            .is_none(),
        "revoked"
    );
    assert!(ids
        .sessions()
        .authenticate(second.expose())
        .await
        .unwrap()
        .is_some());
    assert_eq!(ids.sessions().revoke_all(&john.id).await.unwrap(), 1);
    assert!(ids
        .sessions()
        .authenticate(second.expose())
        .await
        .unwrap()
        .is_none());

    // Expiry is enforced on read, and purged. The ttl leaves a loaded machine (CI, MongoDB)
    // time to answer the first authenticate before it passes.
    let (_, short) = ids
        .sessions()
        .create(
            &john.id,
            NewSession {
                ttl: Some(Duration::from_millis(1500)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(ids
        .sessions()
        .authenticate(short.expose())
        .await
        .unwrap()
        .is_some());
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(
        ids.sessions()
            .authenticate(short.expose())
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    let (_, later) = ids
        .sessions()
        .create(
            &john.id,
            NewSession {
                ttl: Some(Duration::from_millis(1)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        ids.sessions()
            .purge_expired(chronos_core::time::now_ms())
            .await
            .unwrap(),
        1
    );
    assert!(ids
        .sessions()
        .authenticate(later.expose())
        .await
        .unwrap()
        .is_none());

    // A suspended user can neither log in nor keep using a session.
    let (_, live) = ids
        .sessions()
        .create(&john.id, Default::default())
        .await
        .unwrap();
    users
        .update(
            &john.id,
            &UserPatch {
                status: Some(UserStatus::Suspended),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert!(users
        .verify_password("john@acme.com", "correct horse battery")
        .await
        .unwrap()
        .is_none());
    assert!(ids
        .sessions()
        .authenticate(live.expose())
        .await
        .unwrap()
        .is_none());
    let e = ids
        .sessions()
        .create(&john.id, Default::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    users
        .update(
            &john.id,
            &UserPatch {
                status: Some(UserStatus::Active),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();

    // Delete frees the email.
    let jane = users.find_by_email("JANE@acme.com").await.unwrap().unwrap();
    assert!(users.delete(&jane.id).await.unwrap());
    assert!(users.get(&jane.id).await.unwrap().is_none());
    let again = users.create(NewUser::new("jane@acme.com")).await.unwrap();
    assert_ne!(again.id, jane.id);
}

async fn roles_and_permissions(ids: &Identities) {
    let john = ids
        .users()
        .find_by_email("john@acme.com")
        .await
        .unwrap()
        .unwrap();
    ids.roles()
        .put("admin", &["orders:*", "users:read"])
        .await
        .unwrap();
    assert!(ids
        .roles()
        .has_permission(&john.id, "orders:write")
        .await
        .unwrap());
    assert!(ids
        .roles()
        .has_permission(&john.id, "users:read")
        .await
        .unwrap());
    assert!(!ids
        .roles()
        .has_permission(&john.id, "users:write")
        .await
        .unwrap());
    assert!(!ids
        .roles()
        .has_permission("no-such-user", "orders:write")
        .await
        .unwrap());
    ids.roles()
        .install_system_role("owner", &["*"])
        .await
        .unwrap();
    let e = ids.roles().delete("owner").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    let e = ids.roles().put("owner", &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    assert!(
        ids.roles()
            .get("owner")
            .await
            .unwrap()
            .unwrap()
            .is_system_role
    );
    assert!(ids.roles().delete("admin").await.unwrap());
    assert!(!ids
        .roles()
        .has_permission(&john.id, "orders:write")
        .await
        .unwrap());
}

async fn generic_collections_and_accounts(ids: &Identities) {
    // OAuth connections: a collection of the caller's own.
    let oauth = ids.collection("oauth_connections").unwrap();
    let w = oauth
        .create(
            &obj(json!({"provider": "google", "providerId": "g-1"})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(w.ov, 0);
    let w1 = oauth
        .update(&w.id, &obj(json!({"providerId": "g-2"})), Some(0))
        .await
        .unwrap();
    assert_eq!(w1.ov, 1);
    let e = oauth
        .update(&w.id, &obj(json!({"providerId": "g-3"})), Some(0))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let got = oauth.get(&w.id).await.unwrap().unwrap();
    assert_eq!(
        (
            got.data["provider"].clone(),
            got.data["providerId"].clone(),
            got.ov
        ),
        (json!("google"), json!("g-2"), 1)
    );
    let found = oauth
        .query(&json!({"provider": "google"}), &QueryOptions::default())
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let e = oauth.delete(&w.id, Some(0)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(oauth.delete(&w.id, Some(1)).await.unwrap());
    assert!(oauth.get(&w.id).await.unwrap().is_none());
    let e = oauth
        .create(&obj(json!({"tenantId": "other"})), None)
        .await
        .unwrap_err();
    assert_eq!(e.context("field"), Some("tenantId"));
    let e = ids.collection("users").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);

    let john = ids
        .users()
        .find_by_email("john@acme.com")
        .await
        .unwrap()
        .unwrap();
    let acct = ids
        .accounts()
        .create_account(&NewAccount {
            company_name: "Acme".into(),
            plan: "pro".into(),
            owner_id: john.id.clone(),
            seats: 10,
            billing: Some(json!({"customerId": "cus_1", "subscriptionId": "sub_1"})),
        })
        .await
        .unwrap();
    assert_eq!((acct.plan.as_str(), acct.seats, acct.ov), ("pro", 10, 0));
    assert_eq!(ids.accounts().account(&acct.id).await.unwrap(), Some(acct));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_examples_on_every_backend() {
    let (stores, _dir, _) = common::stores().await;
    for (name, docs) in &stores {
        eprintln!("backend {name}");
        let ids = common::handle(docs, "acme-corp");
        users_and_sessions(&ids).await;
        roles_and_permissions(&ids).await;
        generic_collections_and_accounts(&ids).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weaker_stored_hashes_are_rehashed_on_login() {
    let docs: std::sync::Arc<dyn chronos_core::DocumentStore> =
        std::sync::Arc::new(chronos_testkit::MemoryDocumentStore::new());
    let old = common::handle(&docs, "t");
    let u = old
        .users()
        .create(NewUser::new("a@b.c").password("password one"))
        .await
        .unwrap();
    let hash = |docs: &std::sync::Arc<dyn chronos_core::DocumentStore>| {
        let docs = docs.clone();
        async move {
            let q = chronos_core::DocQuery {
                filter: chronos_core::Filter::All,
                sort: None,
                skip: 0,
                limit: 10,
            };
            docs.find("users", &q).await.unwrap()[0].body["passwordHash"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert!(hash(&docs).await.contains("m=1024,t=1,p=1"));
    let current = Identities::new(docs.clone(), Settings::default(), "t").unwrap();
    assert!(current
        .users()
        .verify_password("a@b.c", "wrong password")
        .await
        .unwrap()
        .is_none());
    assert!(
        hash(&docs).await.contains("m=1024,t=1,p=1"),
        "a failed login rehashes nothing"
    );
    assert_eq!(
        current
            .users()
            .verify_password("a@b.c", "password one")
            .await
            .unwrap()
            .unwrap()
            .id,
        u.id
    );
    assert!(
        hash(&docs).await.contains("m=19456,t=2,p=1"),
        "rehashed at OWASP's parameters"
    );
    assert!(current
        .users()
        .verify_password("a@b.c", "password one")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_errors_naming_the_field() {
    let docs: std::sync::Arc<dyn chronos_core::DocumentStore> =
        std::sync::Arc::new(chronos_testkit::MemoryDocumentStore::new());
    let ids = common::handle(&docs, "t");
    for (email, field) in [
        ("", "email"),
        ("no-at-sign", "email"),
        ("a@", "email"),
        ("a b@c.d", "email"),
    ] {
        let e = ids.users().create(NewUser::new(email)).await.unwrap_err();
        assert_eq!(
            (e.kind(), e.context("field")),
            (ErrorKind::Validation, Some(field)),
            "{email}: {e}"
        );
    }
    let e = ids
        .users()
        .create(NewUser::new("a@b.c").password("short"))
        .await
        .unwrap_err();
    assert_eq!(e.context("field"), Some("password"));
    assert!(
        ids.users().find_by_email("a@b.c").await.unwrap().is_none(),
        "nothing half-written"
    );
    let e = ids
        .users()
        .update("missing", &UserPatch::default(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(Identities::new(docs.clone(), Settings::default(), "").is_err());
}
