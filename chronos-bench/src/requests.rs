//! Server requests per call on MongoDB: each write and read is counted on a second engine
//! whose connection counts the commands it sends (`MongoConnection::connect_counting`), so
//! the timed rows pay nothing for the counting. The raw baseline is one `insert_one` per write
//! and one `find_one` per read; what Chronos sends beyond that is the price of versioning
//! (the cv reservation, the version entry, the head) and is what issue 20 asks to keep small.

use chronos_core::{CollectionConfig, CreateOptions, EnrichOptions, ReadOptions, WriteOptions};
use serde_json::json;

use crate::stats::Row;
use crate::{doc, Setup};

/// Calls of each kind counted; enough to average out the occasional extra request.
const CALLS: u64 = 20;

pub(crate) async fn rows(s: &Setup) -> Vec<Row> {
    let Some((engine, conn)) = &s.counted else {
        return Vec::new();
    };
    let c = engine
        .collection(CollectionConfig::new("requests").indexed_props(["status", "n"]))
        .await
        .expect("open collection");
    // The first write prepares the collection's indexes: not a write's cost.
    c.create(&doc(0), CreateOptions::new())
        .await
        .expect("create");
    let sent = || conn.requests_sent().expect("a counting connection");
    let mut ids = Vec::new();
    let mut per = Vec::new();
    let mut count =
        |name: &'static str, before: u64| per.push((name, (sent() - before) as f64 / CALLS as f64));
    let t = sent();
    for i in 0..CALLS as usize {
        ids.push(
            c.create(&doc(i), CreateOptions::new())
                .await
                .expect("create")
                .id,
        );
    }
    count("create", t);
    let t = sent();
    for (i, id) in ids.iter().enumerate() {
        c.update(*id, &doc(i + 1), WriteOptions::new())
            .await
            .expect("update");
    }
    count("update", t);
    let t = sent();
    for id in &ids {
        c.enrich(*id, &json!({"tags": ["t"]}), EnrichOptions::new())
            .await
            .expect("enrich");
    }
    count("enrich", t);
    let t = sent();
    for id in &ids {
        c.get_latest(*id, ReadOptions::new())
            .await
            .expect("get")
            .expect("live");
    }
    count("get_latest", t);
    let t = sent();
    for id in &ids {
        c.delete(*id, WriteOptions::new()).await.expect("delete");
    }
    count("delete", t);
    let text: Vec<String> = per.iter().map(|(n, v)| format!("{n} {v:.1}")).collect();
    vec![Row::Value {
        name: "MongoDB requests per call".into(),
        value: format!(
            "{} (raw: 1 per write, 1 per read; get_latest reads the payload from the blob store)",
            text.join(", ")
        ),
        pass: None,
        json: serde_json::Value::Object(
            per.iter().map(|(n, v)| (n.to_string(), json!(v))).collect(),
        ),
    }]
}
