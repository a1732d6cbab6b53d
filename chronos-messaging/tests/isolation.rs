//! Tenant isolation (property test, every backend): random operations by two tenants on the
//! same namespaces, keys, topics and message ids; each tenant's handle sees exactly what a
//! per-tenant model says — never the other tenant's values, messages or dead letters — and
//! retention run by one tenant removes nothing of the other's.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chronos_core::{DocumentStore, Timestamp};
use chronos_messaging::{
    ListQuery, Messaging, NewDeadLetter, NewMessage, Order, RetentionPolicy, SaveOutcome, Strategy,
};
use proptest::prelude::{
    any, prop_assert, prop_assert_eq, prop_oneof, proptest, Just, ProptestConfig, TestCaseError,
};
use proptest::strategy::Strategy as _;
use serde_json::{json, Map};

#[derive(Debug, Clone)]
enum Op {
    Latest { key: u8, val: u8 },
    Append { key: u8, val: u8 },
    Tombstone { key: u8 },
    Message { id: u8, val: u8 },
    DeadLetter { id: u8 },
    Retain,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    prop_oneof![
        (0..3u8, any::<u8>()).prop_map(|(key, val)| Op::Latest { key, val }),
        (0..3u8, any::<u8>()).prop_map(|(key, val)| Op::Append { key, val }),
        (0..3u8).prop_map(|key| Op::Tombstone { key }),
        (0..4u8, 0..2u8).prop_map(|(id, val)| Op::Message { id, val }),
        (0..4u8).prop_map(|id| Op::DeadLetter { id }),
        Just(Op::Retain),
    ]
}

/// What one tenant should see.
#[derive(Debug, Default)]
struct Model {
    latest: BTreeMap<u8, u8>,
    appended: BTreeMap<u8, Vec<u8>>,
    messages: BTreeMap<u8, u8>,
    dead: BTreeMap<u8, usize>,
}

const MAX_VERSIONS: u64 = 3;

async fn run(docs: Arc<dyn DocumentStore>, ops: Vec<(bool, Op)>) -> Result<(), TestCaseError> {
    let a = common::handle(&docs, "tenant-a");
    let b = a.for_tenant("tenant-b").unwrap();
    let mut models = [Model::default(), Model::default()];
    let policy = RetentionPolicy {
        max_versions: MAX_VERSIONS,
        ..RetentionPolicy::default()
    };
    let t0 = Timestamp::from_millisecond(1_767_225_600_000).unwrap();
    for (i, (second, op)) in ops.into_iter().enumerate() {
        let (m, model): (&Messaging, &mut Model) = if second {
            (&b, &mut models[1])
        } else {
            (&a, &mut models[0])
        };
        match op {
            Op::Latest { key, val } => {
                m.shared()
                    .save("ns", &format!("k{key}"), &json!(val), Strategy::Latest)
                    .await
                    .unwrap();
                model.latest.insert(key, val);
            }
            Op::Append { key, val } => {
                m.shared()
                    .save("ns", &format!("k{key}"), &json!(val), Strategy::Append)
                    .await
                    .unwrap();
                model.appended.entry(key).or_default().push(val);
            }
            Op::Tombstone { key } => {
                m.shared()
                    .tombstone("ns", &format!("k{key}"), "test")
                    .await
                    .unwrap();
                model.latest.remove(&key);
                if let Some(v) = model.appended.get_mut(&key) {
                    v.clear();
                }
            }
            Op::Message { id, val } => {
                let msg = NewMessage::new("orders", format!("m{id}"), json!(val));
                match (m.messages().save(&msg).await, model.messages.get(&id)) {
                    (Ok(SaveOutcome::Saved), None) => {
                        model.messages.insert(id, val);
                    }
                    (Ok(SaveOutcome::Duplicate), Some(v)) => prop_assert_eq!(*v, val),
                    (Err(e), Some(v)) => prop_assert!(
                        *v != val && e.kind() == chronos_core::ErrorKind::Conflict,
                        "{e}"
                    ),
                    (r, m) => prop_assert!(false, "save gave {r:?} with model {m:?}"),
                }
            }
            Op::DeadLetter { id } => {
                let at = Timestamp::from_millisecond(t0.as_millisecond() + i as i64).unwrap();
                let dl = NewDeadLetter {
                    topic: "orders".into(),
                    subscription: "s".into(),
                    msg_id: format!("m{id}"),
                    headers: Map::new(),
                    payload: json!(id),
                    deliveries: 1,
                    reason: "test".into(),
                    failed_at: Some(at),
                };
                m.dead_letters().save(&dl).await.unwrap();
                *model.dead.entry(id).or_default() += 1;
            }
            Op::Retain => {
                m.apply_retention(&policy, t0).await.unwrap();
            }
        }
    }
    for (m, model) in [(&a, &models[0]), (&b, &models[1])] {
        for key in 0..3u8 {
            let k = format!("k{key}");
            let latest = m
                .shared()
                .load("ns", &k, Strategy::Latest, None)
                .await
                .unwrap();
            prop_assert_eq!(
                latest.map(|v| v.val),
                model.latest.get(&key).map(|v| json!(v)),
                "{} latest {}",
                m.tenant(),
                k
            );
            let appended = m
                .shared()
                .load("ns", &k, Strategy::Append, None)
                .await
                .unwrap();
            let want = model
                .appended
                .get(&key)
                .and_then(|v| v.last())
                .map(|v| json!(v));
            prop_assert_eq!(
                appended.map(|v| v.val),
                want,
                "{} appended {}",
                m.tenant(),
                k
            );
        }
        let page = m
            .messages()
            .list(&ListQuery::new("orders").order(Order::Oldest).limit(100))
            .await
            .unwrap();
        let mut got: Vec<(String, serde_json::Value)> = page
            .items
            .iter()
            .map(|x| (x.msg_id.clone(), x.payload.clone()))
            .collect();
        got.sort_by(|x, y| x.0.cmp(&y.0));
        let want: Vec<(String, serde_json::Value)> = model
            .messages
            .iter()
            .map(|(id, v)| (format!("m{id}"), json!(v)))
            .collect();
        prop_assert_eq!(got, want, "{} messages", m.tenant());
        prop_assert!(page.items.iter().all(|x| x.tenant_id == m.tenant()));
        let dead = m
            .dead_letters()
            .list(&ListQuery::new("orders").limit(1000))
            .await
            .unwrap();
        prop_assert_eq!(
            dead.items.len(),
            model.dead.values().sum::<usize>(),
            "{} dead letters",
            m.tenant()
        );
        prop_assert!(dead.items.iter().all(|x| x.tenant_id == m.tenant()));
    }
    Ok(())
}

fn backends_check(ops: Vec<(bool, Op)>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (stores, _dir) = common::stores().await;
        for (_, docs) in stores {
            run(docs, ops.clone()).await?;
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn a_tenant_sees_only_its_own_documents(ops in proptest::collection::vec((any::<bool>(), op()), 1..40)) {
        backends_check(ops)?;
    }
}
