//! Bench rows for the identities database (`chronos-identities`): `verify_password` p50 at
//! OWASP's Argon2id parameters (goal ≤ 40 ms on the CI machine), and `authenticate(token)`
//! beside one raw document lookup of the same store.

use std::sync::Arc;

use chronos_core::{DocumentStore, ItemId};
use chronos_identities::{Identities, NewUser, Settings};
use serde_json::json;

use crate::stats::{timed, Row};

/// The identities rows.
pub(crate) async fn rows(docs: Arc<dyn DocumentStore>, n: usize) -> Vec<Row> {
    let tag = &ItemId::generate().to_string()[14..];
    let ids = Identities::new(docs.clone(), Settings::default(), &format!("bench-{tag}"))
        .expect("tenant");
    let user = ids
        .users()
        .create(NewUser::new("bench@example.com").password("correct horse battery"))
        .await
        .expect("sign up");
    // Argon2 costs tens of milliseconds by design: a few dozen logins give a stable p50.
    let logins = (n / 20).clamp(10, 50);
    let verify = timed("verify_password (Argon2id 19 MiB t=2)", logins, |_| {
        let ids = ids.clone();
        async move {
            let u = ids
                .users()
                .verify_password("bench@example.com", "correct horse battery")
                .await
                .expect("login");
            assert!(u.is_some());
        }
    })
    .await;
    let p50_ms = verify.p50.as_secs_f64() * 1e3;
    let (_, token) = ids
        .sessions()
        .create(&user.id, Default::default())
        .await
        .expect("session");
    let token = token.expose().to_string();
    let raw = timed("raw document lookup", n, |_| {
        let docs = docs.clone();
        async move {
            docs.get("users", &format!("U|bench-{}|x", "raw"))
                .await
                .expect("get");
        }
    })
    .await;
    let auth = timed("authenticate(token)", n, |_| {
        let (ids, token) = (ids.clone(), token.clone());
        async move {
            assert!(ids
                .sessions()
                .authenticate(&token)
                .await
                .expect("auth")
                .is_some());
        }
    })
    .await;
    vec![
        Row::Value {
            name: "verify_password p50".into(),
            value: format!("{p50_ms:.1} ms over {logins} logins (goal ≤ 40 ms)"),
            pass: Some(p50_ms <= 40.0),
            json: json!({"p50_ms": p50_ms, "logins": logins}),
        },
        // A session lookup by digest, then the user's status: two reads against one.
        Row::Versus {
            chronos: auth,
            raw,
            target: 0.4,
        },
    ]
}
