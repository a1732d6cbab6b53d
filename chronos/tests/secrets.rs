//! Secrets never appear in an error, a `Debug`, a log line or CLI output: random secret
//! strings are put in every secret-bearing position of a configuration (URI passwords, also
//! with `@`, `/` and `:` in them; URI query parameters; credentials in a spaces endpoint; the
//! secret key as a mistyped value), failures are driven (parse, validation, connecting,
//! writing), and every output — and every `tracing` event and span field recorded meanwhile —
//! is searched for the secret.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chronos::{Chronos, Route};
use chronos_core::CreateOptions;
use proptest::prelude::*;
use serde_json::{json, Value};

/// The configurations to try, each with `@@@@` where the secret goes.
fn templates() -> Vec<Value> {
    let runtime = json!({ "tenantDatabases": [
        { "tenantId": "t", "dbConnRef": "m", "dbName": "db", "spaceConnRef": "s", "bucket": "b" }
    ]});
    let with = |uri: &str, endpoint: &str, secret_key: Value| {
        json!({
            "dbConnections": { "m": { "mongoUri": uri } },
            "spacesConnections": { "s": {
                "endpoint": endpoint, "accessKey": "AK", "secretKey": secret_key, "forcePathStyle": true
            }},
            "databases": { "runtime": runtime.clone() }
        })
    };
    let ok_uri = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200";
    let ok_endpoint = "http://127.0.0.1:1";
    vec![
        with(
            "mongodb://admin:@@@@@127.0.0.1:1/?serverSelectionTimeoutMS=200",
            ok_endpoint,
            json!("k"),
        ),
        with(
            "mongodb://admin:@@@@@x/y@127.0.0.1:1/?serverSelectionTimeoutMS=200",
            ok_endpoint,
            json!("k"),
        ),
        with(
            "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&tls=true&tlsCertificateKeyFilePassword=@@@@",
            ok_endpoint,
            json!("k"),
        ),
        with(
            "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:@@@@",
            ok_endpoint,
            json!("k"),
        ),
        with("not a uri @@@@", ok_endpoint, json!("k")),
        with(ok_uri, "http://AK:@@@@@127.0.0.1:1", json!("k")),
        with(ok_uri, "http://@@@@@127.0.0.1:1", json!("k")),
        with(ok_uri, ok_endpoint, json!("@@@@")),
        // A secret key of the wrong type: serde would quote the number.
        with(ok_uri, ok_endpoint, json!(4242424242424242u64)),
        with(ok_uri, ok_endpoint, json!(["@@@@"])),
    ]
}

/// `t` with `@@@@` in every string replaced by the secret, and the number 4242… made `digits`.
fn fill(t: &Value, secret: &str, digits: u64) -> Value {
    match t {
        Value::String(s) => Value::String(s.replace("@@@@", secret)),
        Value::Number(n) if n.as_u64() == Some(4242424242424242) => json!(digits),
        Value::Array(a) => Value::Array(a.iter().map(|v| fill(v, secret, digits)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), fill(v, secret, digits)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Everything a user could see from this configuration: parse errors, or the config's and
/// the facade's `Debug`, the error of opening a collection and of a write.
async fn outputs(cfg: &Value) -> Vec<String> {
    let text = cfg.to_string();
    let mut out = Vec::new();
    let chronos = match Chronos::from_json(&text) {
        Err(e) => {
            out.push(e.to_string());
            out.push(format!("{e:?}"));
            return out;
        }
        Ok(c) => c,
    };
    out.push(format!("{chronos:?}"));
    out.push(format!("{:?}", chronos.config()));
    match chronos.with(&Route::runtime("t", "users")).await {
        Err(e) => {
            out.push(e.to_string());
            out.push(format!("{e:?}"));
        }
        Ok(c) => {
            out.push(format!("{c:?}"));
            if let Err(e) = c.create(&json!({"a": 1}), CreateOptions::new()).await {
                out.push(e.to_string());
                out.push(format!("{e:?}"));
            }
        }
    }
    chronos.shutdown().await;
    out
}

/// Records every field of every `tracing` event and span, as a log subscriber would print it.
#[derive(Default)]
struct Capture {
    text: Mutex<String>,
    next_id: AtomicU64,
}

struct Fields<'a>(&'a Mutex<String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let mut t = self.0.lock().unwrap();
        t.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        span.record(&mut Fields(&self.text));
        tracing::span::Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&self.text));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        event.record(&mut Fields(&self.text));
        self.text.lock().unwrap().push('\n');
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

static LOGS: std::sync::LazyLock<&'static Capture> = std::sync::LazyLock::new(|| {
    let capture: &'static Capture = Box::leak(Box::default());
    tracing::subscriber::set_global_default(CaptureRef(capture)).expect("one subscriber");
    capture
});

/// A `Subscriber` over the leaked, shared capture.
struct CaptureRef(&'static Capture);

impl tracing::Subscriber for CaptureRef {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        self.0.enabled(m)
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.0.new_span(span)
    }
    fn record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        self.0.record(id, values)
    }
    fn record_follows_from(&self, a: &tracing::span::Id, b: &tracing::span::Id) {
        self.0.record_follows_from(a, b)
    }
    fn event(&self, event: &tracing::Event<'_>) {
        self.0.event(event)
    }
    fn enter(&self, id: &tracing::span::Id) {
        self.0.enter(id)
    }
    fn exit(&self, id: &tracing::span::Id) {
        self.0.exit(id)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn secrets_never_appear_in_errors_or_debug(
        secret in "[A-Za-z0-9]{6,10}[@:/#%+]?[A-Za-z0-9]{6,10}",
        digits in 1_000_000_000u64..u64::MAX / 2,
    ) {
        let logs = *LOGS;
        tracing::info!(probe = "capture-works");
        prop_assert!(logs.text.lock().unwrap().contains("capture-works"), "the log capture is installed");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        for (i, t) in templates().iter().enumerate() {
            let cfg = fill(t, &secret, digits);
            logs.text.lock().unwrap().clear();
            let mut printed = rt.block_on(outputs(&cfg));
            prop_assert!(!printed.is_empty());
            printed.push(logs.text.lock().unwrap().clone());
            for o in printed {
                prop_assert!(!o.contains(&secret), "template {i} printed the secret: {o}");
                prop_assert!(!o.contains(&digits.to_string()), "template {i} printed the secret key: {o}");
            }
        }
    }
}
