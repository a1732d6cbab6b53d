//! `sweepSafety`: the write deadline and clock-skew margin set the shortest grace period a
//! sweep accepts, so one host writing and sweeping alone need not wait five minutes.

use std::path::Path;
use std::time::Duration;

use chronos::{Chronos, ErrorKind, Route};
use chronos_core::CreateOptions;
use serde_json::{json, Value};

fn config(dir: &Path, safety: Option<Value>) -> String {
    let mut c = json!({
        "dbConnections": { "local": { "mongoUri": format!("sqlite://{}", dir.join("db").display()) } },
        "spacesConnections": {},
        "databases": { "runtime": { "tenantDatabases": [
            { "tenantId": "t", "dbConnRef": "local", "dbName": "safety" }
        ]}},
        "localStorage": { "enabled": true, "basePath": dir.join("blobs").display().to_string() }
    });
    if let Some(s) = safety {
        c["sweepSafety"] = s;
    }
    c.to_string()
}

#[tokio::test]
async fn sweep_grace_follows_the_configured_deadline_and_skew() {
    let dir = tempfile::tempdir().unwrap();
    let route = Route::runtime("t", "events");

    // The defaults: two minutes of deadline plus three of skew.
    let chronos = Chronos::from_json(&config(dir.path(), None)).unwrap();
    let c = chronos.with(&route).await.unwrap();
    c.create(&json!({"n": 1}), CreateOptions::new())
        .await
        .unwrap();
    let e = c.sweep(Duration::from_secs(299)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    assert!(e.to_string().contains("below the minimum"), "{e}");
    c.sweep(Duration::from_secs(300)).await.unwrap();
    chronos.shutdown().await;

    let safety = json!({"writeDeadlineMs": 400, "clockSkewMs": 100});
    let chronos = Chronos::from_json(&config(dir.path(), Some(safety))).unwrap();
    let c = chronos.with(&route).await.unwrap();
    let e = c.sweep(Duration::from_millis(499)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    let report = c.sweep(Duration::from_millis(500)).await.unwrap();
    // The committed payload is referenced: scanned, never removed.
    assert!(report.scanned >= 1, "{report:?}");
    assert!(report.removed.is_empty(), "{report:?}");
    // Writes meet a 400 ms deadline.
    c.create(&json!({"n": 2}), CreateOptions::new())
        .await
        .unwrap();
    chronos.shutdown().await;
}
