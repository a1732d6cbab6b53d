//! Latency samples, summaries and the report (table and JSON).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One measured operation.
#[derive(Debug, Clone)]
pub(crate) struct Stat {
    pub(crate) name: String,
    pub(crate) ops: usize,
    pub(crate) per_sec: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
}

impl Stat {
    pub(crate) fn from_samples(name: &str, mut samples: Vec<Duration>, wall: Duration) -> Self {
        samples.sort();
        let pick = |q: f64| {
            samples
                .get(((samples.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        Stat {
            name: name.to_string(),
            ops: samples.len(),
            per_sec: samples.len() as f64 / wall.as_secs_f64().max(1e-9),
            p50: pick(0.50),
            p99: pick(0.99),
        }
    }
    fn json(&self) -> Value {
        json!({"ops": self.ops, "perSec": self.per_sec, "p50Us": self.p50.as_micros() as u64, "p99Us": self.p99.as_micros() as u64})
    }
}

/// Times each call of `f(i)` for `i in 0..n`, sequentially.
pub(crate) async fn timed<F, Fut>(name: &str, n: usize, mut f: F) -> Stat
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        samples.push(t.elapsed());
    }
    Stat::from_samples(name, samples, start.elapsed())
}

/// Runs `per` calls of `f(writer, i)` on each of `writers` tasks at once; one sample per
/// call, and the wall time of the whole.
pub(crate) async fn concurrently<F, Fut>(name: &str, writers: usize, per: usize, f: F) -> Stat
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let f = f.clone();
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(per);
                for i in 0..per {
                    let t = Instant::now();
                    f(w, i).await;
                    samples.push(t.elapsed());
                }
                samples
            })
        })
        .collect();
    let mut all = Vec::with_capacity(writers * per);
    for t in tasks {
        all.extend(t.await.expect("writer task"));
    }
    Stat::from_samples(name, all, start.elapsed())
}

/// A row of the report: Chronos beside its raw baseline, or a scaling comparison.
#[derive(Debug)]
pub(crate) enum Row {
    Versus {
        chronos: Stat,
        raw: Stat,
        target: f64,
    },
    Scaling {
        name: String,
        small: Stat,
        large: Stat,
        note: String,
        pass: bool,
    },
    Value {
        name: String,
        value: String,
        pass: Option<bool>,
        json: Value,
    },
}

fn fmt_d(d: Duration) -> String {
    if d.as_micros() < 10_000 {
        format!("{}µs", d.as_micros())
    } else {
        format!("{:.1}ms", d.as_secs_f64() * 1e3)
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "ok"
    } else {
        "MISSED"
    }
}

pub(crate) fn print(backend: &str, rows: &[Row]) {
    println!("\n== {backend}");
    println!(
        "{:<34} {:>10} {:>9} {:>9}   {:>10} {:>9} {:>9}   {:>6}  target",
        "operation", "ops/s", "p50", "p99", "raw ops/s", "raw p50", "raw p99", "ratio"
    );
    for r in rows {
        match r {
            Row::Versus {
                chronos: c,
                raw,
                target,
            } => {
                let ratio = c.per_sec / raw.per_sec;
                println!(
                    "{:<34} {:>10.0} {:>9} {:>9}   {:>10.0} {:>9} {:>9}   {:>6.2}  ≥{target} {}",
                    c.name,
                    c.per_sec,
                    fmt_d(c.p50),
                    fmt_d(c.p99),
                    raw.per_sec,
                    fmt_d(raw.p50),
                    fmt_d(raw.p99),
                    ratio,
                    verdict(ratio >= *target)
                );
            }
            Row::Scaling {
                name,
                small,
                large,
                note,
                pass,
            } => {
                println!(
                    "{:<34} {} ({}: p50 {} / {}: p50 {}) {}",
                    name,
                    note,
                    small.name,
                    fmt_d(small.p50),
                    large.name,
                    fmt_d(large.p50),
                    verdict(*pass)
                );
            }
            Row::Value {
                name, value, pass, ..
            } => {
                println!("{:<34} {value} {}", name, pass.map(verdict).unwrap_or(""));
            }
        }
    }
}

pub(crate) fn to_json(rows: &[Row]) -> Value {
    let items: Vec<Value> = rows
        .iter()
        .map(|r| match r {
            Row::Versus { chronos, raw, target } => json!({
                "operation": chronos.name, "chronos": chronos.json(), "raw": raw.json(),
                "ratio": chronos.per_sec / raw.per_sec, "target": target, "pass": chronos.per_sec / raw.per_sec >= *target
            }),
            Row::Scaling { name, small, large, note, pass } => json!({
                "operation": name, "small": {"label": small.name, "stats": small.json()},
                "large": {"label": large.name, "stats": large.json()}, "summary": note, "pass": pass
            }),
            Row::Value { name, json, pass, .. } => json!({"operation": name, "value": json, "pass": pass}),
        })
        .collect();
    Value::Array(items)
}
