//! Exactly-once under concurrency, on every backend: 8 tasks appending to one key get
//! versions 0..n-1 with none missing or repeated; two OS processes appending to one key in
//! one SQLite file likewise; 16 clients saving every message 3 times store each once; an
//! appender that died between its insert and its head update leaves no gap.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;

use chronos_core::{DocQuery, DocumentStore, Filter, SortField};
use chronos_messaging::{Messaging, NewMessage, SaveOutcome, Settings, Strategy};
use serde_json::json;

const TASKS: u64 = 8;
const APPENDS_PER_TASK: u64 = 25;

async fn versions_of(docs: &Arc<dyn DocumentStore>, tenant: &str, key: &str) -> Vec<u64> {
    let q = DocQuery {
        filter: Filter::parse(&json!({"tenantId": tenant, "key": key, "strategy": "append"}))
            .unwrap(),
        sort: Some((SortField::Meta("version".into()), false)),
        skip: 0,
        limit: 100_000,
    };
    docs.find("shared_memory", &q)
        .await
        .unwrap()
        .iter()
        .map(|d| d.body["version"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_get_dense_unique_versions() {
    let (stores, _dir) = common::stores().await;
    for (name, docs) in &stores {
        eprintln!("backend {name}");
        let m = common::handle(docs, "tenant-a");
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let m = m.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    for i in 0..APPENDS_PER_TASK {
                        let s = m
                            .shared()
                            .save("events", "hot", &json!({"t": t, "i": i}), Strategy::Append)
                            .await
                            .unwrap();
                        got.push(s.version.expect("append assigns a version"));
                    }
                    got
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let n = TASKS * APPENDS_PER_TASK;
        let unique: BTreeSet<u64> = all.iter().copied().collect();
        assert_eq!(
            unique.len() as u64,
            n,
            "{name}: a version was handed out twice"
        );
        assert_eq!(unique, (0..n).collect(), "{name}: versions are 0..n-1");
        assert_eq!(
            versions_of(docs, "tenant-a", "hot").await,
            (0..n).collect::<Vec<_>>(),
            "{name}: stored once each"
        );
        let latest = m
            .shared()
            .load("events", "hot", Strategy::Append, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(latest.version, Some(n - 1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appender_dying_before_its_head_update_leaves_no_gap() {
    let (stores, _dir) = common::stores().await;
    for (name, docs) in &stores {
        let m = common::handle(docs, "tenant-a");
        for _ in 0..3 {
            m.shared()
                .save("ns", "k", &json!(1), Strategy::Append)
                .await
                .unwrap();
        }
        // What a crash leaves: version 3 inserted, the head still saying 3.
        let mut v3 = docs
            .get("shared_memory", "A|tenant-a|ns|k|00000000000000000002")
            .await
            .unwrap()
            .unwrap();
        v3.id = "A|tenant-a|ns|k|00000000000000000003".into();
        v3.body.insert("version".into(), 3.into());
        docs.insert("shared_memory", v3).await.unwrap();
        let latest = m
            .shared()
            .load("ns", "k", Strategy::Append, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            latest.version,
            Some(3),
            "{name}: a lagging head still finds the newest"
        );
        let next = m
            .shared()
            .save("ns", "k", &json!(2), Strategy::Append)
            .await
            .unwrap();
        assert_eq!(next.version, Some(4), "{name}");
        assert_eq!(
            versions_of(docs, "tenant-a", "k").await,
            vec![0, 1, 2, 3, 4],
            "{name}"
        );
    }
}

/// The child side: appends when started by `two_processes_append_to_one_key`.
#[test]
fn child_appender() {
    let (Ok(uri), Ok(worker)) = (
        std::env::var("CHRONOS_MSG_DB"),
        std::env::var("CHRONOS_MSG_WORKER"),
    ) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let db = chronos_store_sqlite::SqliteBackend::open(&uri)
            .await
            .unwrap();
        let m = Messaging::new(db.docs(), Settings::default(), "tenant-a").unwrap();
        for i in 0..APPENDS_PER_TASK * 2 {
            let s = m
                .shared()
                .save(
                    "events",
                    "two",
                    &json!({"w": worker, "i": i}),
                    Strategy::Append,
                )
                .await
                .unwrap();
            println!("appended version {}", s.version.unwrap());
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_append_to_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite://{}", dir.path().join("two.db").display());
    // Create the schema once before the children race.
    let db = chronos_store_sqlite::SqliteBackend::open(&uri)
        .await
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|w| {
            Command::new(&exe)
                .args([
                    "child_appender",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("CHRONOS_MSG_DB", &uri)
                .env("CHRONOS_MSG_WORKER", w.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut handed = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        handed.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                // libtest may print its "test … " prefix on the first line.
                .filter_map(|l| l.split_once("appended version ").map(|(_, v)| v))
                .map(|v| v.trim().parse::<u64>().unwrap()),
        );
    }
    let n = 4 * APPENDS_PER_TASK;
    handed.sort();
    assert_eq!(
        handed,
        (0..n).collect::<Vec<_>>(),
        "each version handed out once"
    );
    assert_eq!(
        versions_of(&db.docs(), "tenant-a", "two").await,
        (0..n).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_saved_three_times_by_sixteen_clients_are_stored_once() {
    let (stores, _dir) = common::stores().await;
    for (name, docs) in &stores {
        // The full 10,000 on the embedded backends; a quarter on the MongoDB test server,
        // whose throughput (not the property) limits the size: the full run takes ~60 s there.
        let n: usize = if *name == "mongodb" { 2_500 } else { 10_000 };
        eprintln!("backend {name}: {n} messages x 3 saves x 16 clients");
        let m = common::handle(docs, "tenant-a");
        let clients: Vec<_> = (0..16usize)
            .map(|c| {
                let m = m.clone();
                tokio::spawn(async move {
                    let (mut saved, mut dup) = (0usize, 0usize);
                    // Each message is saved by 3 of the 16 clients, in different orders.
                    for k in 0..n {
                        if (k + c) % 16 >= 3 {
                            continue;
                        }
                        let msg = NewMessage::new("orders", format!("msg-{k}"), json!({"k": k}));
                        match m.messages().save(&msg).await.unwrap() {
                            SaveOutcome::Saved => saved += 1,
                            SaveOutcome::Duplicate => dup += 1,
                        }
                    }
                    (saved, dup)
                })
            })
            .collect();
        let (mut saved, mut dup) = (0, 0);
        for c in clients {
            let (s, d) = c.await.unwrap();
            saved += s;
            dup += d;
        }
        assert_eq!(saved, n, "{name}: each message reported saved exactly once");
        assert_eq!(dup, 2 * n, "{name}: the other saves reported duplicates");
        let stored = docs
            .count(
                "messages",
                &Filter::parse(&json!({"tenantId": "tenant-a", "topic": "orders"})).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            stored as usize, n,
            "{name}: exactly one document per message"
        );
    }
}
