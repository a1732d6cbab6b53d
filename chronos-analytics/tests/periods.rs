//! Per-period counter buckets (`retention.counters`) on every backend (memory, SQLite,
//! MongoDB): every write counted once in its day, week and month beside concurrent folds; a
//! reset with deltas not folded yet zeroes totals and buckets; buckets past their retention
//! are hidden and pruned from the document.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chronos_analytics::{
    CounterRetention, CounterRule, Counters, Granularity, PeriodCounts, Rules, TotalsKey,
};
use chronos_core::{CreateOptions, DocUpdate, ItemId, Timestamp, WriteOptions};
use chronos_testkit::conformance::Harness;
use serde_json::json;

fn rules() -> Rules {
    let rules: Vec<CounterRule> =
        serde_json::from_value(json!([{"name": "odd", "when": {"odd": true}}])).unwrap();
    Rules::compile(&rules).unwrap()
}

fn retention() -> CounterRetention {
    CounterRetention {
        days: Some(30),
        weeks: Some(12),
        months: Some(6),
    }
}

/// (created, updated, deleted, odd created) summed over buckets.
fn sum(buckets: &[PeriodCounts]) -> (u64, u64, u64, u64) {
    buckets.iter().fold((0, 0, 0, 0), |a, b| {
        let odd = b.rules.get("odd").map_or(0, |r| r.created);
        (
            a.0 + b.counts.created,
            a.1 + b.counts.updated,
            a.2 + b.counts.deleted,
            a.3 + odd,
        )
    })
}

/// Every bucket holds writes of the last two days (a run may cross UTC midnight).
fn recent(buckets: &[PeriodCounts], g: Granularity) {
    let now = Timestamp::now();
    let yesterday = Timestamp::from_second(now.as_second() - 86_400).unwrap();
    for b in buckets {
        assert!(
            b.start == g.start(now) || b.start == g.start(yesterday),
            "{g:?} bucket {} is not this one or the last",
            b.start
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_lands_once_in_its_day_week_and_month() {
    let (backends, _dir) = common::harnesses().await;
    for (name, h) in backends {
        let counters = Counters::new(h.docs.clone(), rules(), None).with_retention(retention());
        let (c, key) = common::counted(h.engine(), &counters, &Harness::unique("periods")).await;
        let per = if name == "mongodb" { 40 } else { 300 };
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let c = c.clone();
                tokio::spawn(async move {
                    let mut ids: Vec<ItemId> = Vec::new();
                    for i in 0..per {
                        let id = c
                            .create(&json!({"w": w, "odd": i % 2 == 1}), CreateOptions::new())
                            .await
                            .unwrap()
                            .id;
                        ids.push(id);
                    }
                    for id in &ids[..per / 4] {
                        c.update(*id, &json!({"w": w}), WriteOptions::new())
                            .await
                            .unwrap();
                    }
                    for id in &ids[per / 4..per / 4 + per / 10] {
                        c.delete(*id, WriteOptions::new()).await.unwrap();
                    }
                })
            })
            .collect();
        // Two more folders, as other processes running catch_up would.
        let done = Arc::new(AtomicBool::new(false));
        let folders: Vec<_> = (0..2)
            .map(|_| {
                let (counters, key, c, done) =
                    (counters.clone(), key.clone(), c.clone(), done.clone());
                tokio::spawn(async move {
                    while !done.load(Ordering::Acquire) {
                        counters.catch_up(&key, &c).await.unwrap();
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        done.store(true, Ordering::Release);
        for f in folders {
            f.await.unwrap();
        }
        let n = |v: usize| v as u64;
        let expected = (
            n(4 * per),
            n(4 * (per / 4)),
            n(4 * (per / 10)),
            n(4 * per / 2),
        );
        let check = |when: &str, periods: Vec<Vec<PeriodCounts>>| {
            for (g, buckets) in Granularity::ALL.into_iter().zip(periods) {
                assert_eq!(sum(&buckets), expected, "{name} {when} {g:?}");
                recent(&buckets, g);
            }
        };
        let all = |counters: Counters, key: TotalsKey| async move {
            let mut out = Vec::new();
            for g in Granularity::ALL {
                out.push(counters.get_periods(&key, g, true).await.unwrap());
            }
            out
        };
        check("on return", all(counters.clone(), key.clone()).await);
        counters.catch_up(&key, &c).await.unwrap();
        check("folded", all(counters.clone(), key.clone()).await);
        counters.recount(&key, &c).await.unwrap();
        check("recounted", all(counters.clone(), key.clone()).await);
        let t = counters.get_totals(&key, true).await.unwrap();
        assert_eq!(
            (t.counts.created, t.counts.updated, t.counts.deleted),
            (expected.0, expected.1, expected.2),
            "{name}"
        );
        // Without rules asked for, the buckets carry none; a granularity that is not kept
        // has no buckets.
        let days = counters
            .get_periods(&key, Granularity::Day, false)
            .await
            .unwrap();
        assert!(days.iter().all(|b| b.rules.is_empty()), "{name}");
        let days_only =
            Counters::new(h.docs.clone(), rules(), None).with_retention(CounterRetention {
                days: Some(2),
                ..Default::default()
            });
        assert!(days_only
            .get_periods(&key, Granularity::Week, true)
            .await
            .unwrap()
            .is_empty());
        let shown = serde_json::to_value(&days[0]).unwrap();
        assert_eq!(shown["granularity"], json!("day"), "{name}");
        assert!(shown["created"].as_u64().is_some(), "{shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_before_the_fold_zeroes_totals_and_buckets() {
    let (backends, _dir) = common::harnesses().await;
    for (name, h) in backends {
        let counters = Counters::new(h.docs.clone(), rules(), None).with_retention(retention());
        let (c, key) = common::counted(h.engine(), &counters, &Harness::unique("reset")).await;
        for i in 0..3 {
            c.create(&json!({"odd": i == 1}), CreateOptions::new())
                .await
                .unwrap();
        }
        // The three deltas are not folded yet (a fold runs every 256 writes).
        counters.reset_totals(&key).await.unwrap();
        let t = counters.get_totals(&key, true).await.unwrap();
        assert_eq!(t.counts, Default::default(), "{name}: totals after reset");
        assert_eq!(t.rules["odd"].counts, Default::default(), "{name}");
        for g in Granularity::ALL {
            let b = counters.get_periods(&key, g, true).await.unwrap();
            assert!(b.is_empty(), "{name} {g:?}: {b:?}");
        }
        c.create(&json!({"odd": true}), CreateOptions::new())
            .await
            .unwrap();
        for when in ["after one write", "after the fold"] {
            let t = counters.get_totals(&key, true).await.unwrap();
            assert_eq!(t.counts.created, 1, "{name} {when}");
            assert_eq!(t.rules["odd"].counts.created, 1, "{name} {when}");
            for g in Granularity::ALL {
                let b = counters.get_periods(&key, g, true).await.unwrap();
                assert_eq!(sum(&b), (1, 0, 0, 1), "{name} {when} {g:?}");
            }
            counters.catch_up(&key, &c).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_past_their_retention_are_hidden_then_pruned() {
    let (backends, _dir) = common::harnesses().await;
    for (name, h) in backends {
        let counters = Counters::new(h.docs.clone(), rules(), None).with_retention(retention());
        let (c, key) = common::counted(h.engine(), &counters, &Harness::unique("prune")).await;
        for _ in 0..5 {
            c.create(&json!({"odd": false}), CreateOptions::new())
                .await
                .unwrap();
        }
        counters.catch_up(&key, &c).await.unwrap();
        // What an earlier month of folds left: a day 40 days back (past 30), a day 29 back
        // (kept), a month 7 back (past 6).
        let now = Timestamp::now();
        let back = |days: i64| Timestamp::from_second(now.as_second() - days * 86_400).unwrap();
        let old_day = Granularity::Day.start(back(40));
        let kept_day = Granularity::Day.start(back(29));
        let old_month = Granularity::Month.start(back(7 * 31));
        let u = DocUpdate {
            set: vec![],
            inc: vec![
                (format!("periods.day.{old_day}.created"), 7.into()),
                (format!("periods.day.{kept_day}.created"), 2.into()),
                (format!("periods.month.{old_month}.deleted"), 3.into()),
            ],
        };
        assert!(h
            .docs
            .update("cnt_total", &key.id(), u, false)
            .await
            .unwrap()
            .is_some());
        let days = counters
            .get_periods(&key, Granularity::Day, false)
            .await
            .unwrap();
        let starts: Vec<String> = days.iter().map(|b| b.start.to_string()).collect();
        assert!(starts.contains(&kept_day.to_string()), "{name}: {starts:?}");
        assert!(!starts.contains(&old_day.to_string()), "{name}: {starts:?}");
        assert_eq!(sum(&days).0, 7, "{name}: 5 today and 2 kept");
        let months = counters
            .get_periods(&key, Granularity::Month, false)
            .await
            .unwrap();
        assert_eq!(sum(&months).2, 0, "{name}: the old month is hidden");
        assert_eq!(
            counters
                .prune_periods(&key, Timestamp::now())
                .await
                .unwrap(),
            2,
            "{name}"
        );
        let raw = h.docs.get("cnt_total", &key.id()).await.unwrap().unwrap();
        let periods = &raw.body["periods"];
        assert!(periods["day"].get(old_day.to_string()).is_none(), "{name}");
        assert!(
            periods["month"].get(old_month.to_string()).is_none(),
            "{name}"
        );
        assert_eq!(periods["day"][kept_day.to_string()]["created"], json!(2));
        assert_eq!(
            counters
                .prune_periods(&key, Timestamp::now())
                .await
                .unwrap(),
            0,
            "{name}"
        );
        // Nothing else moved: totals and the kept buckets read as before.
        assert_eq!(
            counters
                .get_periods(&key, Granularity::Day, false)
                .await
                .unwrap(),
            days,
            "{name}"
        );
        assert_eq!(
            counters
                .get_totals(&key, false)
                .await
                .unwrap()
                .counts
                .created,
            5
        );
    }
}
