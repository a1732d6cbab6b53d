//! No raw password or token is ever stored or shown: after a full sign-up / login / session
//! flow (with a password change, a rehash and a wrong-password attempt), a scan of every
//! stored byte — the SQLite file with its WAL, every MongoDB document — finds neither the
//! passwords nor the tokens; `Debug` output, error messages and log lines (at TRACE) contain
//! no password, token or hash.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use chronos_core::DocumentStore;
use chronos_identities::{Identities, NewSession, NewUser, Settings};

const PASSWORDS: [&str; 2] = ["Canary-Pa55word-One", "Canary-Pa55word-Two"];

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The flow; returns everything a careless program might print (Debug of every value and
/// every error) and the tokens handed out.
async fn flow(docs: &Arc<dyn DocumentStore>) -> (String, Vec<String>) {
    let mut shown = String::new();
    let weak = common::handle(docs, "acme");
    let new = NewUser::new("canary@acme.com").password(PASSWORDS[0]);
    shown += &format!("{new:?}");
    let u = weak.users().create(new).await.unwrap();
    shown += &format!("{u:?}");
    // A login at the current parameters rehashes the weak hash.
    let ids = Identities::new(docs.clone(), Settings::default(), "acme").unwrap();
    let login = ids
        .users()
        .verify_password("canary@acme.com", PASSWORDS[0])
        .await
        .unwrap();
    shown += &format!("{login:?}");
    shown += &format!(
        "{:?}",
        ids.users()
            .verify_password("canary@acme.com", "Wrong-Pa55word-X")
            .await
    );
    ids.users().set_password(&u.id, PASSWORDS[1]).await.unwrap();
    let e = ids.users().set_password(&u.id, "short").await.unwrap_err();
    shown += &format!("{e:?} {e}");
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let (s, t) = ids
            .sessions()
            .create(&u.id, NewSession::default())
            .await
            .unwrap();
        shown += &format!("{s:?} {t:?}");
        let a = ids.sessions().authenticate(t.expose()).await.unwrap();
        shown += &format!("{a:?}");
        tokens.push(t.expose().to_string());
    }
    ids.sessions().revoke_all(&u.id).await.unwrap();
    shown += &format!("{:?}", ids.sessions().authenticate(&tokens[0]).await);
    shown += &format!("{ids:?}");
    (shown, tokens)
}

fn assert_clean(what: &str, text: &str, tokens: &[String], hashes_allowed: bool) {
    for p in PASSWORDS {
        assert!(!text.contains(p), "{what} contains a raw password");
    }
    for t in tokens {
        assert!(
            !text.contains(t.as_str()),
            "{what} contains a raw session token"
        );
    }
    if !hashes_allowed {
        assert!(!text.contains("$argon2"), "{what} contains a password hash");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_raw_secret_is_stored_shown_or_logged() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (stores, dir, mongo_db) = common::stores().await;
    for (name, docs) in &stores {
        let (shown, tokens) = flow(docs).await;
        assert_clean(
            &format!("{name}: Debug and error output"),
            &shown,
            &tokens,
            false,
        );
        match *name {
            "sqlite" => {
                let mut bytes = Vec::new();
                for entry in std::fs::read_dir(dir.path()).unwrap() {
                    bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
                }
                assert!(bytes.len() > 4096, "the SQLite files were read");
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    text.contains("canary@acme.com"),
                    "the scan sees stored data"
                );
                assert_clean("the SQLite file and WAL", &text, &tokens, true);
            }
            "mongodb" => {
                let uri = chronos_testkit::service_var("CHRONOS_TEST_MONGODB_URI").unwrap();
                let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
                let db = client.database(mongo_db.as_deref().unwrap());
                let mut all = String::new();
                for c in db.list_collection_names().await.unwrap() {
                    let mut cur = db
                        .collection::<mongodb::bson::Document>(&c)
                        .find(mongodb::bson::doc! {})
                        .await
                        .unwrap();
                    while cur.advance().await.unwrap() {
                        all += &format!("{:?}", cur.deserialize_current().unwrap());
                    }
                }
                assert!(all.contains("canary@acme.com"), "the scan sees stored data");
                assert_clean("the MongoDB collections", &all, &tokens, true);
            }
            _ => {}
        }
    }
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(
        logged.contains("rehashed"),
        "the log capture works: {logged}"
    );
    assert_clean("the logs", &logged, &[], false);
}
