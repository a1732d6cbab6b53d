//! Every `Collection` operation's future can be spawned on a multi-threaded runtime (`Send`
//! for any lifetime). `list_by_meta` once could not; this file would not compile again.

use chronos_core::{
    CollectionConfig, CollectionRestoreOptions, CreateOptions, EnrichOptions, HistoryOptions,
    ListOptions, Point, ReadOptions, RestoreTarget, WriteOptions,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_runs_in_a_spawned_task() {
    let c = chronos_testkit::memory_engine()
        .collection(CollectionConfig::new("spawned"))
        .await
        .unwrap();
    let id = {
        let c = c.clone();
        tokio::spawn(async move {
            c.create(&json!({"a": 1}), CreateOptions::new())
                .await
                .unwrap()
                .id
        })
        .await
        .unwrap()
    };
    macro_rules! spawn_ok {
        (|$c:ident| $body:expr) => {{
            let $c = c.clone();
            tokio::spawn(async move { $body.await.map(|_| ()).unwrap() })
                .await
                .unwrap()
        }};
    }
    spawn_ok!(|c| c.update(id, &json!({"a": 2}), WriteOptions::new()));
    spawn_ok!(|c| c.enrich(id, &json!({"b": [1]}), EnrichOptions::new()));
    spawn_ok!(|c| c.get_latest(id, ReadOptions::new()));
    spawn_ok!(|c| c.get_version(id, 0, ReadOptions::new()));
    spawn_ok!(|c| c.get_as_of(id, chronos_core::time::now_ms(), ReadOptions::new()));
    spawn_ok!(|c| c.history(id, HistoryOptions::default()));
    spawn_ok!(|c| c.list_by_meta(ListOptions::new()));
    spawn_ok!(|c| c.query(json!({"a": 2}), ListOptions::new()));
    spawn_ok!(|c| c.restore_object(id, RestoreTarget::Ov(0), WriteOptions::new()));
    spawn_ok!(|c| c.restore_collection(Point::Cv(1), CollectionRestoreOptions::new()));
    spawn_ok!(|c| c.delete(id, WriteOptions::new()));
    spawn_ok!(|c| c.sweep(chronos_core::DEFAULT_WRITE_DEADLINE + chronos_core::DEFAULT_CLOCK_SKEW));
    // create, update, enrich, restore (to v0), delete; the collection restore to cv 1 found
    // the record already back at v0's content and wrote nothing.
    assert_eq!(
        c.history(id, HistoryOptions::default())
            .await
            .unwrap()
            .versions
            .len(),
        5
    );
}
