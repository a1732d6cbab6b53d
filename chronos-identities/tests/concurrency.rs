//! Concurrent sign-ups on every backend: 16 tasks signing up one email (in different letter
//! cases) give exactly one user, the others `AlreadyExists`; a sign-up that died after
//! claiming its email blocks it only until the claim goes stale; concurrent updates with one
//! expected `ov` let exactly one through.

mod common;

use chronos_core::{Document, ErrorKind, Filter};
use chronos_identities::{NewUser, UserPatch};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_sign_ups_make_one_user() {
    let (stores, _dir, _) = common::stores().await;
    for (name, docs) in &stores {
        for round in 0..3 {
            let ids = common::handle(docs, &format!("tenant-{round}"));
            let tasks: Vec<_> = (0..16)
                .map(|i| {
                    let ids = ids.clone();
                    let email = if i % 2 == 0 {
                        "Race@Example.com"
                    } else {
                        "race@example.COM"
                    };
                    tokio::spawn(async move {
                        ids.users()
                            .create(NewUser::new(email).name(format!("n{i}")))
                            .await
                    })
                })
                .collect();
            let (mut won, mut lost) = (Vec::new(), 0);
            for t in tasks {
                match t.await.unwrap() {
                    Ok(u) => won.push(u),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => lost += 1,
                    Err(e) => panic!("{name}: {e}"),
                }
            }
            assert_eq!(
                (won.len(), lost),
                (1, 15),
                "{name}: exactly one sign-up wins"
            );
            let all = ids.users().query(&json!({}), None, 100).await.unwrap();
            assert_eq!(all.len(), 1, "{name}: one user stored");
            assert_eq!(all[0].id, won[0].id);
            let stored = docs
                .count(
                    "users",
                    &Filter::parse(&json!({"tenantId": ids.tenant()})).unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(stored, 1, "{name}: losers leave no user document");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_claim_blocks_an_email_only_until_it_is_stale() {
    let (stores, _dir, _) = common::stores().await;
    for (name, docs) in &stores {
        let ids = common::handle(docs, "t");
        // What a process that died right after claiming leaves behind.
        let claim = |at: &str| Document {
            id: "E|t|ghost@example.com".into(),
            body: json!({"tenantId": "t", "userId": "dead", "state": "pending", "at": at})
                .as_object()
                .cloned()
                .unwrap(),
        };
        docs.insert(
            "user_emails",
            claim(&chronos_core::time::format_instant(
                chronos_core::time::now_ms(),
            )),
        )
        .await
        .unwrap();
        let e = ids
            .users()
            .create(NewUser::new("ghost@example.com"))
            .await
            .unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::AlreadyExists,
            "{name}: a fresh claim may be a sign-up in progress"
        );
        docs.replace("user_emails", claim("2020-01-01T00:00:00.000Z"), false)
            .await
            .unwrap();
        let u = ids
            .users()
            .create(NewUser::new("ghost@example.com"))
            .await
            .unwrap();
        assert_eq!(
            ids.users()
                .find_by_email("ghost@example.com")
                .await
                .unwrap()
                .unwrap()
                .id,
            u.id,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_with_one_expected_ov_let_one_through() {
    let (stores, _dir, _) = common::stores().await;
    for (name, docs) in &stores {
        let ids = common::handle(docs, "t");
        let u = ids
            .users()
            .create(NewUser::new("ov@example.com"))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (ids, id) = (ids.clone(), u.id.clone());
                tokio::spawn(async move {
                    ids.users()
                        .update(
                            &id,
                            &UserPatch {
                                name: Some(format!("n{i}")),
                                ..Default::default()
                            },
                            Some(0),
                        )
                        .await
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{name}: {e}"),
            }
        }
        assert_eq!(ok, 1, "{name}");
        assert_eq!(
            ids.users().get(&u.id).await.unwrap().unwrap().ov,
            1,
            "{name}"
        );
    }
}
