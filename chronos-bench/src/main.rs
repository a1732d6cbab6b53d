//! `chronos-bench`: throughput and latency of each Chronos operation beside a raw baseline
//! measured in the same run on the same servers (one raw index write + one raw blob put for a
//! write; one raw read by key + one raw blob get for a read; the raw query for a list), the
//! ratio chronos/raw as the headline. Run it through `cargo xtask bench`, which starts the
//! servers. `--quick` only checks that the harness works (well under a minute).

mod aggregates;
mod batch;
mod compare;
mod counters;
mod identities;
mod messaging;
mod pages;
mod raw;
mod requests;
mod retention;
mod spool;
mod stats;
mod verify;

use std::sync::Arc;
use std::time::Instant;

use chronos_core::{
    BlobStore, Collection, CollectionConfig, CreateOptions, Engine, EnrichOptions, ItemId,
    ListOptions, ReadOptions, Stores, WriteOptions,
};
use clap::Parser;
use serde_json::{json, Value};
use stats::{timed, Row, Stat};

#[derive(Debug, Parser)]
#[command(about = "Chronos benchmarks against raw baselines")]
struct Args {
    /// `<index>+<blobs>`: index sqlite or mongo, blobs fs (local files), s3 or azure — e.g.
    /// `sqlite+fs`, `mongo+s3`. `sqlite` and `mongo` alone mean `+fs`; `all` runs sqlite+fs,
    /// sqlite+s3, mongo+s3 and mongo+azure.
    #[arg(long, default_value = "sqlite+fs")]
    backend: String,
    /// Small sizes: checks the harness, not the numbers.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Print each row's change against an earlier run's `--json` file.
    #[arg(long, value_name = "OLD.json")]
    compare: Option<std::path::PathBuf>,
    /// MongoDB URI (default: CHRONOS_TEST_MONGODB_URI).
    #[arg(long)]
    mongo_uri: Option<String>,
    /// MongoDB commits in transactions when the server has them (auto) or the ordered,
    /// non-transactional path (off).
    #[arg(long, default_value = "auto")]
    mongo_transactions: String,
    /// Only `verify`'s row, over this many versions (100,000 is the size).
    #[arg(long)]
    verify_only: Option<usize>,
    /// Only the batched-write rows, over this many batches of 100.
    #[arg(long)]
    batch_only: Option<usize>,
    /// Only the fallback spool's rows, with this many spooled writes.
    #[arg(long, value_name = "N")]
    spool_only: Option<usize>,
    /// Only the retention rows (`prune_now`, `erase`).
    #[arg(long)]
    retention_only: bool,
}

#[derive(Debug, Clone, Copy)]
struct Sizes {
    ops: usize,
    versions_large: usize,
    list_small: usize,
    list_large: usize,
    stream: usize,
    per_writer: usize,
    batches: usize,
}

const QUICK: Sizes = Sizes {
    ops: 100,
    versions_large: 100,
    list_small: 200,
    list_large: 1_000,
    stream: 1_000,
    per_writer: 10,
    batches: 2,
};
const FULL: Sizes = Sizes {
    ops: 2_000,
    versions_large: 10_000,
    list_small: 10_000,
    list_large: 100_000,
    stream: 100_000,
    per_writer: 100,
    batches: 20,
};

fn doc(i: usize) -> Value {
    json!({"status": format!("s{}", i % 10), "n": i, "email": format!("user{i}@example.com"), "bio": "x".repeat(200)})
}

/// How many payloads the raw page baseline fetches at a time: as many as Chronos's list
/// pages do (`chronos-core`'s `FETCH_CONCURRENCY`).
const RAW_FETCH_CONCURRENCY: usize = 16;

struct Setup {
    name: String,
    /// How the index backend runs (printed and recorded beside the numbers).
    detail: &'static str,
    /// Which MongoDB-wire server answered, as `cargo xtask bench` names it.
    server: Option<String>,
    engine: Engine,
    /// The same stores without the write cache: reads as another process (or after the
    /// cache evicted the record) makes them.
    cold: Engine,
    raw: raw::RawIndex,
    raw_blob: raw::RawBlob,
    /// The index database's document store (the counters' analytics database in the bench).
    docs: Arc<dyn chronos_core::DocumentStore>,
    /// MongoDB only: an engine on the same database and blobs through a second connection
    /// that counts the commands it sends (kept apart so counting costs the timed rows nothing).
    counted: Option<(Engine, chronos_store_mongo::MongoConnection)>,
    /// Files of this run (SQLite databases, local blobs), removed at the end.
    dir: tempfile::TempDir,
}

/// A variable `cargo xtask bench` sets when it starts the services.
fn service(var: &str) -> Result<String, String> {
    std::env::var(var).map_err(|_| {
        format!("{var} is not set: run through `cargo xtask bench`, which starts the servers")
    })
}

/// The Chronos blob store and the raw baseline's object store, on the same service.
fn blobs(kind: &str, dir: &std::path::Path) -> Result<(Arc<dyn BlobStore>, raw::RawBlob), String> {
    use chronos_blob::{ObjectBlobStore, SpaceConnection, SpaceKind, SpaceOptions};
    let err = |e: chronos_core::Error| e.to_string();
    let (conn, bucket) = match kind {
        "fs" => {
            let store = ObjectBlobStore::local(dir.join("blobs")).map_err(err)?;
            return Ok((
                Arc::new(store),
                raw::RawBlob::local(&dir.join("raw-blobs"))?,
            ));
        }
        "s3" => (
            SpaceConnection::new(
                "bench-s3",
                SpaceOptions {
                    endpoint: service("CHRONOS_TEST_S3_ENDPOINT")?,
                    region: Some("us-east-1".into()),
                    access_key: Some(service("CHRONOS_TEST_S3_ACCESS_KEY")?),
                    secret_key: Some(service("CHRONOS_TEST_S3_SECRET_KEY")?),
                    force_path_style: Some(true),
                    kind: Some(SpaceKind::S3),
                },
            )
            .map_err(err)?,
            service("CHRONOS_TEST_S3_BUCKET")?,
        ),
        "azure" => (
            SpaceConnection::new(
                "bench-azure",
                SpaceOptions {
                    endpoint: service("CHRONOS_TEST_AZURE_ENDPOINT")?,
                    region: None,
                    access_key: Some(service("CHRONOS_TEST_AZURE_ACCOUNT")?),
                    secret_key: Some(service("CHRONOS_TEST_AZURE_KEY")?),
                    force_path_style: None,
                    kind: Some(SpaceKind::Azure),
                },
            )
            .map_err(err)?,
            service("CHRONOS_TEST_AZURE_CONTAINER")?,
        ),
        other => return Err(format!("unknown blob store '{other}' (fs, s3, azure)")),
    };
    Ok((
        Arc::new(conn.bucket(&bucket).map_err(err)?),
        raw::RawBlob::new(conn.object_store(&bucket).map_err(err)?),
    ))
}

async fn setup(backend: &str, mongo_uri: Option<&str>, txn: &str) -> Result<Setup, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (index, blob_kind) = backend.split_once('+').unwrap_or((backend, "fs"));
    let (blob, raw_blob) = blobs(blob_kind, dir.path())?;
    let mut detail = "SQLite (WAL), one file";
    let mut counted = None;
    let (stores, raw, docs) = match index {
        "sqlite" => {
            let db = chronos_store_sqlite::SqliteBackend::open(&format!(
                "sqlite://{}",
                dir.path().join("chronos.db").display()
            ))
            .await
            .map_err(|e| e.to_string())?;
            let raw = raw::RawIndex::sqlite(&dir.path().join("raw.db")).await?;
            (
                Stores {
                    index: db.index(),
                    blob,
                    lock: db.lock(),
                },
                raw,
                db.docs(),
            )
        }
        "mongo" => {
            let uri = mongo_uri.ok_or("the mongo backend needs --mongo-uri or CHRONOS_TEST_MONGODB_URI (cargo xtask bench starts a server)")?;
            let mode = match txn {
                "off" => chronos_store_mongo::Transactions::Off,
                "auto" => chronos_store_mongo::Transactions::Auto,
                other => return Err(format!("--mongo-transactions {other}: use auto or off")),
            };
            let conn = chronos_store_mongo::MongoConnection::connect(uri, mode)
                .await
                .map_err(|e| e.to_string())?;
            detail = if conn.uses_transactions() {
                "MongoDB commits in transactions (replica set)"
            } else {
                "MongoDB commits on the ordered path (no transactions)"
            };
            let db_name = format!("bench_{}", &ItemId::generate().to_string()[14..]);
            let db = conn.database(&db_name).await.map_err(|e| e.to_string())?;
            let raw = raw::RawIndex::mongo(uri, &format!("{db_name}_raw")).await?;
            let counting = chronos_store_mongo::MongoConnection::connect_counting(uri, mode)
                .await
                .map_err(|e| e.to_string())?;
            let cdb = counting
                .database(&db_name)
                .await
                .map_err(|e| e.to_string())?;
            let engine = Engine::new(Stores {
                index: cdb.index(),
                blob: blob.clone(),
                lock: cdb.lock(),
            });
            counted = Some((engine, counting));
            (
                Stores {
                    index: db.index(),
                    blob,
                    lock: db.lock(),
                },
                raw,
                db.docs(),
            )
        }
        other => return Err(format!("unknown index backend '{other}' (sqlite, mongo)")),
    };
    let cold = Engine::new(stores.clone());
    // As the facade sets it up: recently written payloads are remembered.
    let stores = Stores {
        blob: Arc::new(chronos_core::RecentWrites::new(
            stores.blob,
            chronos_core::WriteCache::new(chronos_core::blob_cache::DEFAULT_WRITE_CACHE_BYTES),
            "bench",
        )),
        ..stores
    };
    Ok(Setup {
        name: format!("{index}+{blob_kind}"),
        detail,
        server: (index == "mongo")
            .then(|| server_label(mongo_uri))
            .flatten(),
        engine: Engine::new(stores),
        cold,
        raw,
        raw_blob,
        docs,
        counted,
        dir,
    })
}

/// What MongoDB server the bench ran against, as the service starter named it — only when
/// `uri` is the one that starter exported: a `--mongo-uri` elsewhere is some other server.
fn server_label(uri: Option<&str>) -> Option<String> {
    let started = std::env::var("CHRONOS_TEST_MONGODB_URI").ok()?;
    (uri == Some(started.as_str()))
        .then(|| std::env::var("CHRONOS_TEST_MONGODB_SERVER").ok())
        .flatten()
}

async fn coll(s: &Setup, name: &str, indexed: &[&str]) -> Collection {
    s.engine
        .collection(CollectionConfig::new(name).indexed_props(indexed.iter().copied()))
        .await
        .expect("open collection")
}

/// One page of up to 100 records with `status = s<k % 10>` (an indexed property); how many
/// came back.
async fn page_of_100(c: &Collection, k: usize) -> usize {
    c.list_by_meta(
        ListOptions::new()
            .filter(json!({"status": format!("s{}", k % 10)}))
            .limit(100),
    )
    .await
    .expect("list")
    .items
    .len()
}

/// Reads the latest version of a record that exists.
async fn read_latest(c: &Collection, id: ItemId) {
    c.get_latest(id, ReadOptions::new())
        .await
        .expect("get")
        .expect("exists");
}

fn payload_bytes(i: usize) -> Vec<u8> {
    serde_json::to_vec(&doc(i)).expect("json")
}

/// Runs `per_writer` updates in each of `writers` tasks; returns ops per second.
async fn concurrent(c: &Collection, writers: usize, per_writer: usize, same_record: bool) -> Stat {
    let shared = c
        .create(&doc(0), CreateOptions::new())
        .await
        .expect("create");
    let mut ids = Vec::new();
    for w in 0..writers {
        ids.push(if same_record {
            shared.id
        } else {
            c.create(&doc(w), CreateOptions::new())
                .await
                .expect("create")
                .id
        });
    }
    let label = format!(
        "{writers} writer(s), {}",
        if same_record {
            "one record"
        } else {
            "distinct records"
        }
    );
    let (c, ids) = (c.clone(), Arc::new(ids));
    stats::concurrently(&label, writers, per_writer, move |w, i| {
        let (c, id) = (c.clone(), ids[w]);
        async move {
            c.update(id, &doc(i), WriteOptions::new())
                .await
                .expect("update");
        }
    })
    .await
}

/// `writers` concurrent streams of `per_writer` raw index inserts + blob puts; ops per second.
async fn raw_concurrent(s: &Setup, writers: usize, per_writer: usize) -> f64 {
    let start = Instant::now();
    let streams = (0..writers).map(|w| async move {
        for i in 0..per_writer {
            let id = ItemId::generate().to_string();
            s.raw.insert(&id, &doc(w * per_writer + i)).await;
            s.raw_blob
                .put(&format!("raw/{id}/v0.json"), payload_bytes(i))
                .await;
        }
    });
    futures::future::join_all(streams).await;
    (writers * per_writer) as f64 / start.elapsed().as_secs_f64()
}

fn peak_rss_reset() {
    // Linux: writing 5 resets the peak-RSS watermark (VmHWM) of this process.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mb() -> Option<f64> {
    status_mb("VmHWM:")
}

fn rss_mb() -> Option<f64> {
    status_mb("VmRSS:")
}

fn status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

async fn fill(c: &Collection, n: usize) {
    let c2 = c.clone();
    let workers = 8;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let c = c2.clone();
            tokio::spawn(async move {
                let mut i = w;
                while i < n {
                    c.create(&doc(i), CreateOptions::new())
                        .await
                        .expect("create");
                    i += workers;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("fill task");
    }
}

async fn bench(s: &Setup, z: Sizes) -> Vec<Row> {
    let mut rows = Vec::new();
    let c = &coll(s, "bench", &["status", "n"]).await;
    let n = z.ops;

    // Writes.
    let created = std::sync::Mutex::new(Vec::with_capacity(n));
    let create = timed("create", n, |i| {
        let (c, created) = (c.clone(), &created);
        async move {
            let w = c
                .create(&doc(i), CreateOptions::new())
                .await
                .expect("create");
            created.lock().expect("ids").push(w.id);
        }
    })
    .await;
    let ids = &created.into_inner().expect("ids");
    let raw_write = timed("raw insert + blob put", n, |i| async move {
        let id = ItemId::generate().to_string();
        s.raw.insert(&id, &doc(i)).await;
        s.raw_blob
            .put(&format!("raw/{id}/v0.json"), payload_bytes(i))
            .await;
    })
    .await;
    rows.push(Row::Versus {
        chronos: create,
        raw: raw_write.clone(),
        target: 0.5,
    });
    let update = timed("update", n, |i| async move {
        c.update(ids[i % ids.len()], &doc(i + 1), WriteOptions::new())
            .await
            .expect("update");
    })
    .await;
    rows.push(Row::Versus {
        chronos: update,
        raw: raw_write.clone(),
        target: 0.5,
    });
    let enrich = timed("enrich", n, |i| async move {
        c.enrich(
            ids[i % ids.len()],
            &json!({"tags": [format!("t{}", i % 7)]}),
            EnrichOptions::new(),
        )
        .await
        .expect("enrich");
    })
    .await;
    rows.push(Row::Versus {
        chronos: enrich,
        raw: raw_write.clone(),
        target: 0.5,
    });

    // Reads (before deletes, on records with 3 versions).
    let ro = ReadOptions::new;
    let raw_ids: Vec<String> = s.raw.ids(n).await;
    let raw_read = timed("raw read + blob get", n, |i| {
        let id = raw_ids[i % raw_ids.len()].clone();
        async move {
            s.raw.get(&id).await;
            s.raw_blob.get(&format!("raw/{id}/v0.json")).await;
        }
    })
    .await;
    let latest = timed("get_latest", n, |i| async move {
        read_latest(c, ids[i % ids.len()]).await;
    })
    .await;
    rows.push(Row::Versus {
        chronos: latest,
        raw: raw_read.clone(),
        target: 0.7,
    });
    let version = timed("get_version", n, |i| async move {
        c.get_version(ids[i % ids.len()], 1, ro())
            .await
            .expect("get")
            .expect("exists");
    })
    .await;
    rows.push(Row::Versus {
        chronos: version,
        raw: raw_read.clone(),
        target: 0.7,
    });
    // Diff: two versions read and compared; by hand, two records read (the patch itself is
    // what Chronos adds).
    let raw_pair = timed("raw 2 × (read + blob get)", n, |i| {
        let (a, b) = (
            raw_ids[i % raw_ids.len()].clone(),
            raw_ids[(i + 1) % raw_ids.len()].clone(),
        );
        async move {
            for id in [a, b] {
                s.raw.get(&id).await;
                s.raw_blob.get(&format!("raw/{id}/v0.json")).await;
            }
        }
    })
    .await;
    let diff = timed("diff (v0 → v2)", n, |i| async move {
        c.diff(ids[i % ids.len()], 0, 2).await.expect("diff");
    })
    .await;
    rows.push(Row::Versus {
        chronos: diff,
        raw: raw_pair,
        target: 0.7,
    });
    let now = chronos_core::time::now_ms();
    let as_of = timed("get_as_of", n, |i| async move {
        c.get_as_of(ids[i % ids.len()], now, ro())
            .await
            .expect("get")
            .expect("exists");
    })
    .await;
    rows.push(Row::Versus {
        chronos: as_of,
        raw: raw_read.clone(),
        target: 0.7,
    });
    // The same reads without the write cache (another process, or an evicted record).
    let cold = &s
        .cold
        .collection(c.config().clone())
        .await
        .expect("open collection");
    let cold_latest = timed("get_latest (no write cache)", n, |i| async move {
        read_latest(cold, ids[i % ids.len()]).await;
    })
    .await;
    rows.push(Row::Versus {
        chronos: cold_latest,
        raw: raw_read.clone(),
        target: 0.7,
    });
    let cold_as_of = timed("get_as_of (no write cache)", n, |i| async move {
        cold.get_as_of(ids[i % ids.len()], now, ro())
            .await
            .expect("get")
            .expect("exists");
    })
    .await;
    rows.push(Row::Versus {
        chronos: cold_as_of,
        raw: raw_read.clone(),
        target: 0.7,
    });

    // A page of 100 filtered on an indexed property.
    let pages = (n / 20).max(10);
    let list = timed("list_by_meta (100, indexed)", pages, |i| async move {
        assert!(page_of_100(c, i).await > 0);
    })
    .await;
    // The honest baseline: the indexed query, then every payload of the page fetched
    // (concurrently) and parsed — the same records a Chronos page returns.
    let raw_page = timed("raw query + 100 payloads", pages, |i| async move {
        let ids = s.raw.list(&format!("s{}", i % 10), 100).await;
        let keys = ids.iter().map(|id| format!("raw/{id}/v0.json")).collect();
        assert!(s.raw_blob.get_all_parsed(keys, RAW_FETCH_CONCURRENCY).await > 0);
    })
    .await;
    rows.push(Row::Versus {
        chronos: list,
        raw: raw_page.clone(),
        target: 0.8,
    });
    // The same page with every payload read from the blob store, as the raw page reads
    // them (the row above is served by the write cache: this process wrote the records).
    let cold_list = timed(
        "list_by_meta (100, no write cache)",
        pages,
        |i| async move {
            assert!(page_of_100(cold, i).await > 0);
        },
    )
    .await;
    rows.push(Row::Versus {
        chronos: cold_list,
        raw: raw_page,
        target: 0.8,
    });
    // Head-only: the bound devShadow pages (which read no blob) are measured against — the
    // query alone, with the documents it returns parsed, as an application would use them.
    let raw_list = timed(
        "raw query (100, head-only, parsed)",
        pages,
        |i| async move {
            s.raw.list_parsed(&format!("s{}", i % 10), 100).await;
        },
    )
    .await;

    let delete = timed("delete", ids.len().min(n), |i| async move {
        c.delete(ids[i], WriteOptions::new()).await.expect("delete");
    })
    .await;
    rows.push(Row::Versus {
        chronos: delete,
        raw: raw_write.clone(),
        target: 0.5,
    });

    // The same operations with devShadow: payloads ride in the head.
    let sh = &s
        .engine
        .collection(
            CollectionConfig::new("shadowed")
                .indexed_props(["status", "n"])
                .dev_shadow(64 * 1024, std::time::Duration::from_secs(3600)),
        )
        .await
        .expect("open collection");
    let made = std::sync::Mutex::new(Vec::with_capacity(n));
    timed("fill", n, |i| {
        let made = &made;
        async move {
            let id = sh
                .create(&doc(i), CreateOptions::new())
                .await
                .expect("create")
                .id;
            made.lock().expect("ids").push(id);
        }
    })
    .await;
    let sids = &made.into_inner().expect("ids");
    let su = timed("update (devShadow)", n, |i| async move {
        sh.update(sids[i % sids.len()], &doc(i + 1), WriteOptions::new())
            .await
            .expect("update");
    })
    .await;
    rows.push(Row::Versus {
        chronos: su,
        raw: raw_write.clone(),
        target: 0.5,
    });
    let sl = timed("get_latest (devShadow)", n, |i| async move {
        read_latest(sh, sids[i % sids.len()]).await;
    })
    .await;
    rows.push(Row::Versus {
        chronos: sl,
        raw: raw_read.clone(),
        target: 0.7,
    });
    let slist = timed("list_by_meta (100, devShadow)", pages, |i| async move {
        assert!(page_of_100(sh, i).await > 0);
    })
    .await;
    rows.push(Row::Versus {
        chronos: slist,
        raw: raw_list.clone(),
        target: 0.7,
    });

    // get_as_of scaling with history length.
    let hist = &coll(s, "history", &[]).await;
    let few = hist
        .create(&doc(0), CreateOptions::new())
        .await
        .expect("create")
        .id;
    let many = hist
        .create(&doc(0), CreateOptions::new())
        .await
        .expect("create")
        .id;
    // Each record is read as of the middle of its history, without the write cache, so both
    // pay one blob read and the difference is the index search.
    let mut mid_few = chronos_core::time::now_ms();
    for i in 0..9 {
        hist.update(few, &doc(i), WriteOptions::new())
            .await
            .expect("update");
        if i == 4 {
            mid_few = chronos_core::time::now_ms();
        }
    }
    let mut mid_many = chronos_core::time::now_ms();
    for i in 0..z.versions_large - 1 {
        hist.update(many, &doc(i), WriteOptions::new())
            .await
            .expect("update");
        if i == z.versions_large / 2 {
            mid_many = chronos_core::time::now_ms();
        }
    }
    let cold_hist = &s
        .cold
        .collection(hist.config().clone())
        .await
        .expect("open collection");
    let small = timed("10 versions", 200, |_| async move {
        cold_hist
            .get_as_of(few, mid_few, ro())
            .await
            .expect("as of");
    })
    .await;
    let large = timed(
        &format!("{} versions", z.versions_large),
        200,
        |_| async move {
            cold_hist
                .get_as_of(many, mid_many, ro())
                .await
                .expect("as of");
        },
    )
    .await;
    let ratio = large.p50.as_secs_f64() / small.p50.as_secs_f64().max(1e-9);
    rows.push(Row::Scaling {
        name: "get_as_of vs history length".into(),
        small,
        large,
        note: format!("{ratio:.2}x slower (target ≤ 2x)"),
        pass: ratio <= 2.0,
    });

    // list scaling with collection size.
    let ls = coll(s, "list_small", &["status"]).await;
    let ll = coll(s, "list_large", &["status"]).await;
    fill(&ls, z.list_small).await;
    fill(&ll, z.list_large).await;
    let small = timed(&format!("{} records", z.list_small), 50, |_| async {
        page_of_100(&ls, 3).await;
    })
    .await;
    let large = timed(&format!("{} records", z.list_large), 50, |_| async {
        page_of_100(&ll, 3).await;
    })
    .await;
    let ratio = large.p50.as_secs_f64() / small.p50.as_secs_f64().max(1e-9);
    rows.push(Row::Scaling {
        name: "list page of 100 vs collection size".into(),
        small,
        large,
        note: format!("{ratio:.2}x"),
        pass: ratio <= 2.0,
    });

    // Counters.
    rows.extend(counters::rows(&s.engine, s.docs.clone(), n).await);
    // Messaging.
    rows.extend(messaging::rows(s.docs.clone(), n).await);
    // The worker's analytics: aggregates in the store.
    rows.extend(aggregates::rows(&s.engine).await);
    // Batched writes.
    rows.extend(batch::rows(s, z.batches).await);
    // The fallback spool.
    rows.extend(spool::rows(s, n).await);
    // Retention and erase.
    rows.extend(retention::rows(s).await);
    // verify over every version (100,000 in a full run).
    rows.extend(verify::rows(s, z.list_large).await);

    // Concurrency.
    let cc = coll(s, "concurrency", &[]).await;
    let one = concurrent(&cc, 1, z.per_writer * 4, false).await;
    let mut conc = Vec::new();
    for writers in [4, 16] {
        conc.push(concurrent(&cc, writers, z.per_writer, false).await);
    }
    let speedup = conc[1].per_sec / one.per_sec;
    rows.push(Row::Value {
        name: "writers on distinct records".into(),
        value: format!("1: {:.0}/s, 4: {:.0}/s, 16: {:.0}/s → 16/1 = {speedup:.2}x (target ≥ 3x on network backends)", one.per_sec, conc[0].per_sec, conc[1].per_sec),
        pass: (s.name != "sqlite+fs").then_some(speedup >= 3.0),
        json: json!({"1": one.per_sec, "4": conc[0].per_sec, "16": conc[1].per_sec, "speedup16": speedup}),
    });
    // The same concurrency without Chronos: how far the servers themselves scale here.
    let raw_one = raw_concurrent(s, 1, z.per_writer * 4).await;
    let raw_16 = raw_concurrent(s, 16, z.per_writer).await;
    let raw_speedup = raw_16 / raw_one;
    rows.push(Row::Value {
        name: "raw writers on distinct records".into(),
        value: format!(
            "1: {raw_one:.0}/s, 16: {raw_16:.0}/s → 16/1 = {raw_speedup:.2}x (the servers' own ceiling)"
        ),
        pass: None,
        json: json!({"1": raw_one, "16": raw_16, "speedup16": raw_speedup}),
    });
    let mut same = Vec::new();
    for writers in [1, 4, 16] {
        same.push(concurrent(&cc, writers, z.per_writer, true).await);
    }
    let hot = same[2].per_sec / same[0].per_sec;
    rows.push(Row::Value {
        name: "writers on one record".into(),
        value: format!(
            "1: {:.0}/s, 4: {:.0}/s, 16: {:.0}/s → 16/1 = {hot:.2}x (target ≥ 0.8x: writers of one process take turns, none loses a race to another)",
            same[0].per_sec, same[1].per_sec, same[2].per_sec
        ),
        pass: Some(hot >= 0.8),
        json: json!({"1": same[0].per_sec, "4": same[1].per_sec, "16": same[2].per_sec, "ratio16": hot}),
    });

    // Peak RSS while streaming a large collection through list pages.
    let st = if z.stream <= z.list_large {
        ll.clone()
    } else {
        coll(s, "stream", &["status"]).await
    };
    if z.stream > z.list_large {
        fill(&st, z.stream).await;
    }
    // What the process already holds (earlier rows, earlier backends of `all`, allocator
    // arenas kept from Argon2) is not the stream's: the row is the peak above it.
    let before = rss_mb();
    peak_rss_reset();
    let start = Instant::now();
    let mut seen = 0usize;
    let mut cursor = None;
    loop {
        let p = st
            .list_by_meta(ListOptions::new().limit(1000).cursor(cursor))
            .await
            .expect("list");
        seen += p.items.len();
        cursor = p.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let peak = peak_rss_mb();
    let grew = peak.zip(before).map(|(p, b)| (p - b).max(0.0));
    rows.push(Row::Value {
        name: format!("peak RSS streaming {seen} records"),
        value: format!(
            "+{} MB above the {} MB held before (peak {} MB) in {:.1}s (target < 100 MB)",
            grew.map_or("n/a".into(), |m| format!("{m:.1}")),
            before.map_or("n/a".into(), |m| format!("{m:.1}")),
            peak.map_or("n/a".into(), |m| format!("{m:.1}")),
            start.elapsed().as_secs_f64()
        ),
        pass: grew.map(|m| m < 100.0),
        json: json!({"records": seen, "peakRssMb": peak, "rssBeforeMb": before, "growthMb": grew,
                     "seconds": start.elapsed().as_secs_f64()}),
    });
    // Identities last: each Argon2 hash takes 19 MiB on a blocking thread, and the allocator
    // keeps those arenas, which would show up in the streaming row's peak RSS.
    rows.extend(requests::rows(s).await);
    rows.extend(pages::rows(s).await);
    rows.extend(identities::rows(s.docs.clone(), n).await);
    rows
}

fn main() {
    let args = Args::parse();
    // Read first: a bad file fails before a long run, and `--json` may name the same file.
    let earlier = args
        .compare
        .as_ref()
        .map(|path| {
            std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
                .map_err(|e| format!("--compare {}: {e}", path.display()))
        })
        .transpose()
        .unwrap_or_else(|e| {
            eprintln!("bench: {e}");
            std::process::exit(2);
        });
    let z = if args.quick { QUICK } else { FULL };
    let mongo = args
        .mongo_uri
        .clone()
        .or_else(|| std::env::var("CHRONOS_TEST_MONGODB_URI").ok());
    let backends: Vec<&str> = if args.backend == "all" {
        vec!["sqlite+fs", "sqlite+s3", "mongo+s3", "mongo+azure"]
    } else {
        vec![args.backend.as_str()]
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let mut report = serde_json::Map::new();
    let mut failed = false;
    for b in backends {
        match rt.block_on(async { setup(b, mongo.as_deref(), &args.mongo_transactions).await }) {
            Ok(s) => {
                let t = Instant::now();
                let rows = match (args.verify_only, args.batch_only, args.spool_only) {
                    _ if args.retention_only => rt.block_on(retention::rows(&s)),
                    (Some(n), _, _) => rt.block_on(verify::rows(&s, n)),
                    (None, Some(n), _) => rt.block_on(batch::rows(&s, n)),
                    (None, None, Some(n)) => rt.block_on(spool::rows(&s, n)),
                    (None, None, None) => rt.block_on(bench(&s, z)),
                };
                stats::print(&s.name, &rows);
                println!("({})", s.detail);
                if let Some(server) = &s.server {
                    println!("(MongoDB server: {server})");
                }
                println!(
                    "({} mode, {:.1}s)",
                    if args.quick { "quick" } else { "full" },
                    t.elapsed().as_secs_f64()
                );
                report.insert(
                    s.name.clone(),
                    json!({"index": s.detail, "server": s.server, "rows": stats::to_json(&rows)}),
                );
            }
            Err(e) => {
                eprintln!("bench: {b}: {e}");
                failed = true;
            }
        }
    }
    let v = json!({"mode": if args.quick { "quick" } else { "full" }, "backends": report});
    match earlier.map(|old| compare::compare(&old, &v)) {
        Some(Ok(lines)) => lines.iter().for_each(|l| println!("{l}")),
        Some(Err(e)) => {
            eprintln!("bench: {e}");
            failed = true;
        }
        None => {}
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&v).expect("json"))
            .expect("write --json file");
        println!("wrote {}", path.display());
    }
    if failed {
        std::process::exit(1);
    }
}
