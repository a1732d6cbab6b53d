//! Connecting: wrong credentials say "authentication failed" (an `InvalidConfig` without the
//! password), distinct from an unreachable server (`Unavailable`); right ones connect. Runs
//! against the SecantusDB that `cargo xtask test` starts with authentication required
//! (`CHRONOS_TEST_MONGODB_AUTH_URI`).

#![cfg(chronos_services)]

use chronos_core::ErrorKind;
use chronos_store_mongo::{MongoConnection, Transactions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_told_apart_from_an_unreachable_server() {
    let Some(uri) = chronos_testkit::service_var("CHRONOS_TEST_MONGODB_AUTH_URI") else {
        return;
    };
    MongoConnection::connect(&uri, Transactions::Auto)
        .await
        .expect("the right credentials connect");

    let (user_part, rest) = uri.split_once('@').expect("the URI has credentials");
    let user = user_part.rsplit_once(':').expect("user:password").0;
    let wrong = format!("{user}:Not-The-Password-7@{rest}");
    let e = MongoConnection::connect(&wrong, Transactions::Auto)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{msg}");
    assert!(msg.contains("authentication failed"), "{msg}");
    assert!(!msg.contains("Not-The-Password-7"), "{msg}");
    assert!(!format!("{e:?}").contains("Not-The-Password-7"), "{e:?}");

    let e = MongoConnection::connect(
        "mongodb://chronos:Not-The-Password-7@127.0.0.1:1/?serverSelectionTimeoutMS=300",
        Transactions::Auto,
    )
    .await
    .unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{msg}");
    assert!(msg.contains("unreachable"), "{msg}");
    assert!(!msg.contains("Not-The-Password-7"), "{msg}");
}
