//! Spaces configuration that needs no server: shared buckets need distinct dbNames, bad
//! options name their field. (The facade on real S3 and Azure: `spaces_live.rs`.)

use chronos::{Chronos, Route};
use chronos_core::ErrorKind;
use serde_json::json;

#[test]
fn shared_bucket_needs_distinct_db_names() {
    let cfg = json!({
        "dbConnections": { "m1": { "mongoUri": "sqlite:///tmp/x1" }, "m2": { "mongoUri": "sqlite:///tmp/x2" } },
        "spacesConnections": { "s3": { "endpoint": "https://s3.amazonaws.com", "accessKey": "k", "secretKey": "s" } },
        "databases": { "runtime": { "tenantDatabases": [
            { "tenantId": "a", "dbConnRef": "m1", "spaceConnRef": "s3", "bucket": "shared", "dbName": "app" },
            { "tenantId": "b", "dbConnRef": "m2", "spaceConnRef": "s3", "bucket": "shared", "dbName": "app" }
        ] } }
    });
    let e = Chronos::from_json(&cfg.to_string()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(
        e.to_string()
            .contains("databases.runtime.tenantDatabases[1].dbName"),
        "{e}"
    );
    // The same index database for two tenants is refused too: they would read each
    // other's records.
    let mut same = cfg.clone();
    same["databases"]["runtime"]["tenantDatabases"][1]["dbConnRef"] = json!("m1");
    let e = Chronos::from_json(&same.to_string()).unwrap_err();
    assert!(e.to_string().contains("is already the database of"), "{e}");
}

#[test]
fn bad_space_options_name_their_field() {
    let cfg = json!({
        "dbConnections": { "m": { "mongoUri": "memory://" } },
        "spacesConnections": { "s3": { "endpoint": "https://s3.amazonaws.com", "accessKey": "k", "secretKey": "s", "kind": "gcs" } },
        "databases": { "logs": { "dbConnRef": "m", "spaceConnRef": "s3", "bucket": "b", "dbName": "logs" } }
    });
    let e = Chronos::from_json(&cfg.to_string()).unwrap_err();
    assert!(e.to_string().contains("spacesConnections.s3.kind"), "{e}");
    let mut no_key = cfg.clone();
    no_key["spacesConnections"]["s3"] =
        json!({"endpoint": "https://s3.amazonaws.com", "accessKey": "k"});
    let chronos = Chronos::from_json(&no_key.to_string()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt
        .block_on(chronos.with(&Route::logs("events")))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(
        e.to_string().contains("spacesConnections.s3.secretKey"),
        "{e}"
    );
}
