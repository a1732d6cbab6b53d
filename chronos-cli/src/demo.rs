//! `chronos demo`: a guided tour of the versioning engine on the embedded default store.

use std::path::Path;
use std::time::Duration;

use chronos::{Chronos, Route};
use chronos_core::time::format_instant;
use chronos_core::{
    CollectionRestoreOptions, CreateOptions, EnrichOptions, ErrorKind, HistoryOptions, ItemId,
    ListOptions, Point, ReadOptions, RestoreTarget, Result, WriteOptions,
};
use serde_json::{json, Value};

use crate::output::Out;

fn step(out: &Out, n: u32, title: &str, why: &str) {
    out.say(&format!("\n{n}. {title}\n   {why}"));
}

fn show(out: &Out, label: &str, v: &Value) {
    out.say(&format!("   {label}: {v}"));
}

/// Runs the tour in a fresh collection of the embedded store under `data_dir`.
pub(crate) async fn run(data_dir: &Path, summary: &Out) -> Result<()> {
    let out = &summary.narration();
    let chronos = Chronos::embedded(data_dir)?;
    let suffix = ItemId::generate().to_string();
    let name = format!("demo_customers_{}", &suffix[18..]);
    let c = chronos.with(&Route::runtime("default", &name)).await?;
    out.say(&format!(
        "Chronos demo — embedded store in {} (SQLite index + JSON files), collection '{name}'.",
        data_dir.display()
    ));

    step(out, 1, "create", "Every write makes an immutable version: ov counts versions of this record, cv orders changes in the collection.");
    let v0 = c
        .create(
            &json!({"name": "Ada", "plan": "free", "tags": ["early"]}),
            CreateOptions::new().actor("demo").reason("signup"),
        )
        .await?;
    out.write("created", &v0);
    let mark = v0.cv;

    step(out, 2, "update with optimistic concurrency", "update replaces the data; expected_ov makes it fail instead of overwriting someone else's change.");
    // Make the versions a visible millisecond apart so the time-travel step reads clearly.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let v1 = c
        .update(
            v0.id,
            &json!({"name": "Ada Lovelace", "plan": "pro", "tags": ["early"]}),
            WriteOptions::new().expected_ov(0).actor("demo"),
        )
        .await?;
    out.write("updated", &v1);
    let stale = c
        .update(
            v0.id,
            &json!({"name": "stale"}),
            WriteOptions::new().expected_ov(0),
        )
        .await;
    match stale {
        Err(e) if e.kind() == ErrorKind::Conflict => out.say(&format!(
            "   a second update still expecting ov 0 is refused: {e}"
        )),
        other => {
            return Err(chronos_core::Error::internal(format!(
                "demo: stale update was not refused: {other:?}"
            )))
        }
    }

    step(out, 3, "enrich", "enrich deep-merges a patch: arrays are unioned, objects merged, and the function id is recorded as provenance.");
    let v2 = c
        .enrich(
            v0.id,
            &json!({"tags": ["vip"], "scores": {"churn": 0.1}}),
            EnrichOptions::new().function_id("scorer@v1"),
        )
        .await?;
    out.write("enriched", &v2);
    let now = c
        .get_latest(v0.id, ReadOptions::new())
        .await?
        .expect("record exists");
    show(out, "now", &Value::Object(now.data.clone()));
    show(out, "functionIds", &json!(now.system.lineage.function_ids));

    step(
        out,
        4,
        "time travel",
        "get_version reads any version; get_as_of reads the version current at an instant.",
    );
    let first = c
        .get_version(v0.id, 0, ReadOptions::new())
        .await?
        .expect("v0 exists");
    show(out, "version 0", &Value::Object(first.data.clone()));
    let then = c
        .get_as_of(v0.id, v0.at, ReadOptions::new())
        .await?
        .expect("existed at v0.at");
    show(
        out,
        &format!("as of {}", format_instant(v0.at)),
        &Value::Object(then.data.clone()),
    );

    step(
        out,
        5,
        "delete",
        "delete is logical: the record disappears from reads, its history stays.",
    );
    let v3 = c
        .delete(
            v0.id,
            WriteOptions::new().actor("demo").reason("customer asked"),
        )
        .await?;
    out.write("deleted", &v3);
    let gone = c.get_latest(v0.id, ReadOptions::new()).await?;
    out.say(&format!(
        "   get_latest now returns: {}",
        if gone.is_none() {
            "nothing"
        } else {
            "a record (unexpected)"
        }
    ));

    step(
        out,
        6,
        "restore",
        "restore appends a new version with an old version's content — here it also undeletes.",
    );
    let v4 = c
        .restore_object(
            v0.id,
            RestoreTarget::Ov(2),
            WriteOptions::new().actor("demo"),
        )
        .await?;
    out.write("restored", &v4);
    let back = c
        .get_latest(v0.id, ReadOptions::new())
        .await?
        .expect("restored");
    show(out, "back", &Value::Object(back.data.clone()));

    step(
        out,
        7,
        "history",
        "every version, in order, with who and why.",
    );
    let hist = c.history(v0.id, HistoryOptions::default()).await?.versions;
    out.history(v0.id, &hist);

    step(out, 8, "restore a whole collection", "restore_collection returns every record changed after a point to its state then — by appending versions.");
    let other = c
        .create(
            &json!({"name": "Grace", "plan": "free", "tags": []}),
            CreateOptions::new().actor("demo"),
        )
        .await?;
    out.write("created", &other);
    let plan = c
        .restore_collection(
            Point::Cv(mark),
            CollectionRestoreOptions::new().dry_run(true),
        )
        .await?;
    out.say(&format!(
        "   dry run: {} change(s) to get back to cv {mark}",
        plan.planned.len()
    ));
    let report = c
        .restore_collection(
            Point::Cv(mark),
            CollectionRestoreOptions::new().actor("demo"),
        )
        .await?;
    out.restore_report(&report);
    let live = c.list_by_meta(ListOptions::new()).await?;
    show(
        out,
        "live records now",
        &json!(live
            .items
            .iter()
            .map(|r| Value::Object(r.data.clone()))
            .collect::<Vec<_>>()),
    );
    let total = c
        .history(v0.id, HistoryOptions::default())
        .await?
        .versions
        .len();
    out.say(&format!(
        "   Ada's history now has {total} versions — nothing was removed."
    ));

    if summary.is_json() {
        out!(
            "{}",
            json!({
                "collection": name,
                "id": v0.id.to_string(),
                "versions": total,
                "restored": report.applied.len(),
                "liveRecords": live.items.len(),
                "latest": Value::Object(c.get_latest(v0.id, ReadOptions::new()).await?.expect("live").data),
            })
        );
    } else {
        out.say("\nDone. Try: chronos list -c <collection>, chronos history -c <collection> <id>, chronos --help");
    }
    chronos.shutdown().await;
    Ok(())
}
