//! The facade's configuration and routing: spec examples load, invalid configs name their
//! JSON path, tenants are isolated, backends are shared, shutdown closes them.

use chronos::{Chronos, ChronosConfig, DatabaseType, Route};
use chronos_core::{CreateOptions, ErrorKind, ListOptions, ReadOptions};
use serde_json::{json, Value};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn spec_examples_load() {
    for name in [
        "enterprise.json",
        "messaging.json",
        "identities.json",
        "without-s3.json",
    ] {
        let cfg =
            ChronosConfig::from_json(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let dbg = format!("{cfg:?}");
        assert!(
            !dbg.contains("very-secret-key") && !dbg.contains("user:pass@"),
            "{name}: secrets in Debug: {dbg}"
        );
    }
    let cfg = ChronosConfig::from_json(&fixture("enterprise.json")).unwrap();
    let unsupported = cfg.unsupported_options();
    for opt in ["routing", "fallback"] {
        assert!(
            unsupported.iter().any(|u| u == opt),
            "{opt} not reported in {unsupported:?}"
        );
    }
    // Built: S3/Azure connections, compression and retention (the fixture has `ver`).
    assert!(
        !unsupported
            .iter()
            .any(|u| u.starts_with("spacesConnections")
                || u.starts_with("writeOptimization")
                || u.starts_with("retention")),
        "{unsupported:?}"
    );
    // The messaging database is built: its fixture loads and reports nothing unsupported.
    assert!(!ChronosConfig::from_json(&fixture("messaging.json"))
        .unwrap()
        .unsupported_options()
        .iter()
        .any(|o| o.starts_with("databases.messaging")));
}

fn base() -> Value {
    json!({
        "dbConnections": { "db": { "mongoUri": "sqlite::memory:" } },
        "spacesConnections": { "s3": { "endpoint": "http://127.0.0.1:9000", "secretKey": "hunter2" } },
        "databases": {
            "runtime": { "tenantDatabases": [ { "tenantId": "a", "dbConnRef": "db", "dbName": "rt_a" } ] },
            "knowledge": { "genericDatabase": { "dbConnRef": "db", "dbName": "kn" } }
        },
        "localStorage": { "enabled": true, "basePath": "/tmp/chronos-test" }
    })
}

fn with(mut v: Value, path: &[&str], new: Value) -> Value {
    let mut cur = &mut v;
    for (i, seg) in path.iter().enumerate() {
        if i + 1 == path.len() {
            match seg.parse::<usize>() {
                Ok(n) => cur[n] = new.clone(),
                Err(_) => cur[*seg] = new.clone(),
            }
            break;
        }
        cur = match seg.parse::<usize>() {
            Ok(n) => &mut cur[n],
            Err(_) => &mut cur[*seg],
        };
    }
    v
}

#[test]
fn invalid_configs_name_their_path() {
    let rt0 = ["databases", "runtime", "tenantDatabases", "0"];
    let cases: Vec<(Value, &str)> = vec![
        (with(base(), &["bogus"], json!(1)), "bogus: unknown field `bogus`"),
        (with(base(), &["databases", "runtime", "tenantDatabases", "0", "dbConnRef"], json!("mongo-x")),
            "databases.runtime.tenantDatabases[0].dbConnRef: no connection named 'mongo-x'"),
        (with(base(), &[&rt0[..], &["spaceConnRef"]].concat(), json!("nope")),
            "databases.runtime.tenantDatabases[0].spaceConnRef: no spaces connection named 'nope'"),
        (with(base(), &[&rt0[..], &["spaceConnRef"]].concat(), json!("s3")), "databases.runtime.tenantDatabases[0].bucket: required with spaceConnRef"),
        (with(base(), &["localStorage", "enabled"], json!(false)), "databases.knowledge.genericDatabase.spaceConnRef: required unless localStorage is enabled"),
        (with(base(), &["localStorage", "basePath"], json!(" ")), "localStorage.basePath: must not be empty"),
        (with(base(), &["dbConnections", "db", "mongoUri"], json!("postgres://u:secretpw@h/db")), "dbConnections.db.mongoUri: unsupported URI"),
        (with(base(), &["dbConnections", "db", "uri"], json!("x")), "dbConnections.db.uri: unknown field `uri`"),
        (with(base(), &[&rt0[..], &["tenantId"]].concat(), json!("")), "databases.runtime.tenantDatabases[0].tenantId"),
        (with(base(), &["databases", "runtime", "tenantDatabases"], json!([
            {"tenantId": "a", "dbConnRef": "db", "dbName": "x"}, {"tenantId": "a", "dbConnRef": "db", "dbName": "y"}])),
            "databases.runtime.tenantDatabases[1].tenantId: 'a' is empty or listed twice"),
        (with(base(), &[&rt0[..], &["dbName"]].concat(), json!("a b")), "databases.runtime.tenantDatabases[0].dbName"),
        (with(base(), &[&rt0[..], &["dbName"]].concat(), json!(5)), "databases.runtime.tenantDatabases[0].dbName: invalid type"),
        (with(base(), &["databases", "knowledge", "genericDatabase", "dbConnRef"], json!("zz")), "databases.knowledge.genericDatabase.dbConnRef"),
        (with(base(), &["databases", "knowledge", "domainsDatabases"], json!([{"domain": "", "dbConnRef": "db", "dbName": "d"}])),
            "databases.knowledge.domainsDatabases[0].domain"),
        (with(base(), &["databases", "logs"], json!({"dbConnRef": "db"})), "databases.logs: missing field `dbName`"),
        (with(base(), &["collectionMaps"], json!({"users": {"indexedProps": ["email"], "validation": {"requiredIndexed": ["name"]}}})),
            "collectionMaps.users.validation.requiredIndexed[0]: 'name' is not in indexedProps"),
        (with(base(), &["collectionMaps"], json!({"bad/name": {"indexedProps": []}})), "collectionMaps.bad/name"),
        (with(base(), &["collectionMaps"], json!({"users": {"indexProps": []}})), "collectionMaps.users.indexProps: unknown field `indexProps`"),
        (with(base(), &["versioning"], json!({"enabled": "yes"})), "versioning.enabled: invalid type"),
        (with(base(), &["spacesConnections", "s3", "endpoint"], json!("")), "spacesConnections.s3.endpoint: must not be empty"),
        (json!({"dbConnections": {}}), "missing field `databases`"),
        (with(base(), &["routing"], json!({"hashAlgo": "modulo"})), "routing.hashAlgo: unknown variant `modulo`"),
        (with(base(), &["routing"], json!({"chooseKey": "color"})), "routing.chooseKey: 'color' is not one of"),
        (with(base(), &["routing", "hashalgo"], json!("jump")), "routing.hashalgo: unknown field"),
        (with(base(), &["counterRules"], json!({"rules": [{"name": "r", "when": {"a": {"$bogus": 1}}}]})),
            "counterRules.rules[0].when: unknown filter operator '$bogus'"),
        (with(base(), &["counterRules"], json!({"rules": [{"name": "r", "on": ["UPSERT"], "when": {}}]})),
            "counterRules.rules[0].on[0]: unknown variant `UPSERT`"),
        (with(base(), &["analytics"], json!({"timeBasedRules": [{"name": "x", "collection": "c", "query": {}, "operation": "mode", "saveMode": "global"}]})),
            "analytics.timeBasedRules[0].operation: unknown variant `mode`"),
        (with(base(), &["analytics"], json!({"timeBasedRules": [{"name": "x", "collection": "c", "query": {}, "operation": "sum", "saveMode": "global"}]})),
            "analytics.timeBasedRules[0].field: operation 'sum' needs a field"),
        (with(base(), &["analytics"], json!({"timeBasedRules": [{"name": "x", "collection": "c", "query": {}, "operation": "median", "field": "f",
            "saveMode": "timeframe", "timeframe": "daily", "relativeTime": {"newerThan": "1 day"}}]})),
            "analytics.timeBasedRules[0].relativeTime.newerThan: '1 day' is not a usable ISO-8601 duration"),
        (with(base(), &["analytics"], json!({"timeBasedRules": [{"name": "x", "collection": "c", "query": {}, "operation": "count", "saveMode": "timeframe"}]})),
            "analytics.timeBasedRules[0].timeframe: saveMode 'timeframe' needs a timeframe"),
        (with(base(), &["analytics"], json!({"timeBasedRules": [{"name": "x", "collection": "c", "query": {"a": {"$near": 1}}, "operation": "count", "saveMode": "global"}]})),
            "analytics.timeBasedRules[0].query: unknown filter operator '$near'"),
        (with(base(), &["analytics"], json!({"timeBasedRules": [{"name": "x", "collection": "c", "query": {}, "operation": "count", "saveMode": "global"}], "tenants": ["ghost"]})),
            "analytics.tenants[0]: tenant 'ghost' has no runtime database"),
        (with(base(), &["analytics"], json!({"timeBasedRules": [{"name": "x", "collection": "c", "query": {}, "operation": "count", "saveMode": "global"}], "tenants": ["a"]})),
            "analytics.tenants[0]: tenant 'a' has no analyticsDbName"),
        (with(base(), &["analytics"], json!({"crossTenantRules": [{"name": "g", "collection": "c", "query": {}, "mode": "boolean",
            "masterTenantId": "a", "slaveTenantIds": ["a", "ghost"]}], "tenants": ["a"]})),
            "analytics.crossTenantRules[0].slaveTenantIds[1]: tenant 'ghost' is not in analytics.tenants"),
        (with(base(), &["analytics"], json!({"crossTenantRules": [{"name": "g", "collection": "c", "query": {}, "mode": "sum",
            "masterTenantId": "ghost", "slaveTenantIds": ["a"]}]})),
            "analytics.crossTenantRules[0].masterTenantId: tenant 'ghost' has no runtime database"),
        (with(base(), &["analytics"], json!({"crossTenantRules": [{"name": "g", "collection": "c", "query": {}, "mode": "boolean", "field": "x",
            "masterTenantId": "a", "slaveTenantIds": ["a"]}]})),
            "analytics.crossTenantRules[0].field: mode 'boolean' counts matches and takes no field"),
        (with(base(), &["devShadow"], json!({"enabled": true})), "devShadow: missing field `ttlHours`"),
        (with(base(), &["fallback"], json!({"enabled": true, "retries": 3})), "fallback.retries: unknown field"),
        (with(base(), &["databases", "messaging"], json!({"dbConnRef": "nope", "dbName": "m"})), "databases.messaging.dbConnRef: no connection named 'nope'"),
        (with(base(), &["databases", "messaging"], json!({"dbConnRef": "db", "dbName": "m", "captureDelivery": true})),
            "databases.messaging.captureDelivery: unknown field"),
        (with(base(), &["databases", "messaging"], json!({"dbConnRef": "db", "dbName": "m", "maxMessageBytes": 0})),
            "databases.messaging.maxMessageBytes: 0 is outside"),
        (with(base(), &["databases", "messaging"], json!({"dbConnRef": "db", "dbName": "m", "retention": {"messagesDays": -1}})),
            "databases.messaging.retention.messagesDays"),
        (with(base(), &["databases", "identities"], json!({"dbConnRef": "db", "dbName": "i", "sessionTtlHours": 0})),
            "databases.identities.sessionTtlHours"),
        (with(base(), &["databases", "identities"], json!({"dbConnRef": "db", "dbName": "i", "sessionTTL": 1})),
            "databases.identities.sessionTTL: unknown field"),
        (with(base(), &["databases", "messaging"], json!({"dbConnRef": "db", "dbName": "m", "retention": {"maxVersions": 0}})),
            "databases.messaging.retention.maxVersions: must be at least 1"),
        (with(base(), &["collectionMaps"], json!({"docs": {"indexedProps": [], "base64Props": {"file": {"contentType": 3}}}})),
            "collectionMaps.docs.base64Props.file.contentType: invalid type"),
        (with(base(), &["devShadow"], json!({"enabled": true, "ttlHours": 1e16})), "devShadow.ttlHours"),
        (with(base(), &["devShadow"], json!({"enabled": true, "ttlHours": -1})), "devShadow.ttlHours"),
        (with(base(), &["devShadow"], json!({"enabled": true, "ttlHours": 0})), "devShadow.ttlHours"),
        (with(base(), &[&rt0[..], &["dbName"]].concat(), json!("..")), "databases.runtime.tenantDatabases[0].dbName: '..' is not a usable name"),
        (with(base(), &[&rt0[..], &["dbName"]].concat(), json!(".")), "databases.runtime.tenantDatabases[0].dbName: '.' is not a usable name"),
        (with(base(), &["databases", "runtime", "tenantDatabases"], json!([
            {"tenantId": "a", "dbConnRef": "db", "dbName": "x"}, {"tenantId": "b", "dbConnRef": "db", "dbName": "x"}])),
            "databases.runtime.tenantDatabases[1].dbName: 'x' on connection 'db' is already the database of databases.runtime.tenantDatabases[0]"),
        (with(base(), &["spacesConnections", "s3", "secretKey"], json!(4242424242u64)), "spacesConnections.s3.secretKey: invalid value (not shown"),
        (with(base(), &["durability"], json!("always")), "durability: unknown variant `always`"),
        (with(base(), &["retention"], json!({"counters": {"days": 0}})),
            "retention.counters.days: 0 is out of range: keep 1 to 3660 days"),
        (with(base(), &["retention"], json!({"counters": {"months": 121}})),
            "retention.counters.months: 121 is out of range"),
        (with(base(), &["retention"], json!({"counters": {"years": 1}})),
            "retention.counters.years: unknown field"),
        (with(base(), &["retention"], json!({"counters": {"weeks": -2}})),
            "retention.counters.weeks: invalid value"),
        (with(base(), &["retention"], json!({"ver": {"maxPerItem": 0}})),
            "retention.ver.maxPerItem must be at least 1"),
        (with(base(), &["retention"], json!({"ver": {"days": 0}})),
            "retention.ver.days must be at least 1"),
        (with(base(), &["retention"], json!({"ver": {}})),
            "retention.ver sets neither days nor maxPerItem"),
        (with(base(), &["retention"], json!({"ver": {"keep": 3}})),
            "retention.ver.keep: unknown field"),
        (with(base(), &["writeOptimization"], json!({"batchSize": 0})),
            "writeOptimization.batchSize: 0 is not between 1 and 10000"),
        (with(base(), &["writeOptimization"], json!({"batchSize": 20000})),
            "writeOptimization.batchSize: 20000 is not between 1 and 10000"),
        (with(base(), &["sweepSafety"], json!({"writeDeadlineMs": 10})),
            "sweepSafety.writeDeadlineMs: 10 is not between 100 and"),
        (with(base(), &["sweepSafety"], json!({"clockSkewMs": 1u64 << 62})),
            "sweepSafety.clockSkewMs: 4611686018427387904 is more than"),
        (with(base(), &["sweepSafety"], json!({"graceMs": 1})),
            "sweepSafety.graceMs: unknown field"),
    ];
    assert!(cases.len() >= 15);
    for (cfg, needle) in cases {
        let e = ChronosConfig::from_value(&cfg).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
        let msg = e.to_string();
        assert!(msg.contains(needle), "expected {needle:?} in {msg}");
        assert!(
            !msg.contains("hunter2") && !msg.contains("secretpw") && !msg.contains("4242424242"),
            "secret leaked: {msg}"
        );
    }
}

fn local(dir: &std::path::Path) -> Value {
    json!({
        "dbConnections": {
            "shared": { "mongoUri": format!("sqlite://{}", dir.join("db").display()) },
            "mem": { "mongoUri": "memory://" }
        },
        "spacesConnections": {},
        "databases": {
            "runtime": { "tenantDatabases": [
                { "tenantId": "a", "dbConnRef": "shared", "dbName": "rt_a" },
                { "tenantId": "b", "dbConnRef": "shared", "dbName": "rt_b" },
                { "tenantId": "m", "dbConnRef": "mem", "dbName": "rt_m" }
            ] },
            "knowledge": {
                "genericDatabase": { "dbConnRef": "shared", "dbName": "kn" },
                "domainsDatabases": [ { "domain": "health", "dbConnRef": "shared", "dbName": "kn_health" } ]
            },
            "logs": { "dbConnRef": "shared", "dbName": "logs" }
        },
        "collectionMaps": { "users": { "indexedProps": ["email"], "validation": { "requiredIndexed": ["email"] } } },
        "localStorage": { "enabled": true, "basePath": dir.join("blobs").display().to_string() }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated_and_routes_resolve_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let chronos = Chronos::from_json(&local(dir.path()).to_string()).unwrap();
    let a = chronos.with(&Route::runtime("a", "users")).await.unwrap();
    let b = chronos.with(&Route::runtime("b", "users")).await.unwrap();
    let w = a
        .create(&json!({"email": "x@a"}), CreateOptions::new())
        .await
        .unwrap();
    assert!(
        b.get_latest(w.id, ReadOptions::new())
            .await
            .unwrap()
            .is_none(),
        "tenant b sees tenant a's record"
    );
    assert!(b
        .list_by_meta(ListOptions::new())
        .await
        .unwrap()
        .items
        .is_empty());
    let e = b
        .create(&json!({"name": "no email"}), CreateOptions::new())
        .await
        .unwrap_err();
    assert_eq!(
        e.context("field"),
        Some("email"),
        "collectionMaps apply through with()"
    );

    for (route, kind) in [
        (
            Route::runtime("zz", "users"),
            ErrorKind::TenantNotConfigured,
        ),
        (
            Route::domain(DatabaseType::Knowledge, "finance", "docs"),
            ErrorKind::TenantNotConfigured,
        ),
        (
            Route::generic(DatabaseType::Runtime, "users"),
            ErrorKind::Validation,
        ),
        (
            Route::generic(DatabaseType::Metadata, "x"),
            ErrorKind::InvalidConfig,
        ),
        (
            Route::generic(DatabaseType::Messaging, "x"),
            ErrorKind::Validation,
        ),
    ] {
        assert_eq!(
            chronos.with(&route).await.unwrap_err().kind(),
            kind,
            "{route:?}"
        );
    }
    let generic = chronos
        .with(&Route::generic(DatabaseType::Knowledge, "docs"))
        .await
        .unwrap();
    let health = chronos
        .with(&Route::domain(DatabaseType::Knowledge, "health", "docs"))
        .await
        .unwrap();
    generic
        .create(&json!({"k": 1}), CreateOptions::new())
        .await
        .unwrap();
    assert!(health
        .list_by_meta(ListOptions::new())
        .await
        .unwrap()
        .items
        .is_empty());
    let logs = chronos.with(&Route::logs("audit")).await.unwrap();
    logs.create(&json!({"event": "x"}), CreateOptions::new())
        .await
        .unwrap();
    let mem = chronos.with(&Route::runtime("m", "users")).await.unwrap();
    mem.create(&json!({"email": "m@m"}), CreateOptions::new())
        .await
        .unwrap();
    chronos.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_use_opens_one_backend_and_shutdown_closes() {
    let dir = tempfile::tempdir().unwrap();
    let chronos = Chronos::from_json(&local(dir.path()).to_string()).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let c = chronos.clone();
            tokio::spawn(async move {
                c.with(&Route::runtime("a", format!("coll{}", i % 4)))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        chronos.open_backends().await,
        1,
        "one backend for one connection and database"
    );
    chronos.with(&Route::runtime("b", "users")).await.unwrap();
    assert_eq!(chronos.open_backends().await, 2);
    chronos.shutdown().await;
    let e = chronos
        .with(&Route::runtime("a", "users"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_without_s3_example_loads_and_runs_on_the_embedded_backend() {
    // As printed in the spec (a MongoDB URI on localhost) it loads; `tests/mongo.rs` runs it
    // against a real server.
    Chronos::from_json(&fixture("without-s3.json")).unwrap();
    // The same example on the embedded default runs.
    let dir = tempfile::tempdir().unwrap();
    let mut v: Value = serde_json::from_str(&fixture("without-s3.json")).unwrap();
    v["dbConnections"]["local"]["mongoUri"] =
        json!(format!("sqlite://{}", dir.path().join("db").display()));
    v["localStorage"]["basePath"] = json!(dir.path().join("data").display().to_string());
    let chronos = Chronos::from_json(&v.to_string()).unwrap();
    let users = chronos
        .with(&Route::runtime("tenant-a", "users"))
        .await
        .unwrap();
    let w = users
        .create(
            &json!({"email": "user@tenant-a.com", "name": "User A"}),
            CreateOptions::new(),
        )
        .await
        .unwrap();
    let r = users
        .get_latest(w.id, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.data["name"], "User A");
    let blob_dir = dir
        .path()
        .join("data")
        .join("chronos_runtime_tenant_a")
        .join("users");
    assert!(
        blob_dir.is_dir(),
        "payloads live under localStorage.basePath/<dbName>/<collection>"
    );
    chronos.shutdown().await;
}

/// A `ChronosConfig` deserialised directly (not through `from_json`) is validated by
/// `Chronos::from_config`: a dangling reference is an error naming it, never a panic later.
#[test]
fn from_config_validates_what_serde_built() {
    let mut cfg = base();
    cfg["databases"]["runtime"]["tenantDatabases"][0]["dbConnRef"] = json!("mongo-x");
    let parsed: ChronosConfig = serde_json::from_value(cfg).unwrap();
    let e = Chronos::from_config(parsed).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert!(
        e.to_string().contains(
            "databases.runtime.tenantDatabases[0].dbConnRef: no connection named 'mongo-x'"
        ),
        "{e}"
    );
}
