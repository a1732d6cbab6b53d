//! Tenant isolation (property test, every backend): two tenants doing random operations on
//! the same emails, ids and role names; each handle sees exactly its own users, documents
//! and roles, and nothing through its handle reads, updates or deletes the other's — even
//! given the other's ids.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chronos_core::{DocumentStore, ErrorKind};
use chronos_identities::{Identities, NewUser, QueryOptions};
use proptest::prelude::{
    any, prop_assert, prop_assert_eq, prop_oneof, proptest, ProptestConfig, TestCaseError,
};
use proptest::strategy::Strategy as _;
use serde_json::json;

#[derive(Debug, Clone)]
enum Op {
    SignUp(u8),
    DeleteUser(u8),
    Doc(u8, u8),
    DeleteDoc(u8),
    Role(u8),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    prop_oneof![
        (0..4u8).prop_map(Op::SignUp),
        (0..4u8).prop_map(Op::DeleteUser),
        (0..4u8, any::<u8>()).prop_map(|(i, v)| Op::Doc(i, v)),
        (0..4u8).prop_map(Op::DeleteDoc),
        (0..3u8).prop_map(Op::Role),
    ]
}

#[derive(Debug, Default)]
struct Model {
    users: BTreeMap<u8, String>,
    docs: BTreeMap<u8, u8>,
    roles: Vec<u8>,
}

async fn run(docs: Arc<dyn DocumentStore>, ops: Vec<(bool, Op)>) -> Result<(), TestCaseError> {
    let a = common::handle(&docs, "tenant-a");
    let b = a.for_tenant("tenant-b").unwrap();
    let mut models = [Model::default(), Model::default()];
    for (second, op) in ops {
        let i = usize::from(second);
        let (me, other): (&Identities, &Identities) = if second { (&b, &a) } else { (&a, &b) };
        match op {
            Op::SignUp(n) => match me.users().create(NewUser::new(format!("u{n}@x.io"))).await {
                Ok(u) => {
                    prop_assert!(!models[i].users.contains_key(&n));
                    models[i].users.insert(n, u.id);
                }
                Err(e) => prop_assert!(
                    e.kind() == ErrorKind::AlreadyExists && models[i].users.contains_key(&n),
                    "{e}"
                ),
            },
            Op::DeleteUser(n) => {
                // The other tenant's id through this handle deletes nothing.
                if let Some(theirs) = models[1 - i].users.get(&n) {
                    prop_assert!(!me.users().delete(theirs).await.unwrap());
                }
                let gone = match models[i].users.remove(&n) {
                    Some(id) => me.users().delete(&id).await.unwrap(),
                    None => false,
                };
                let _ = gone;
            }
            Op::Doc(n, v) => {
                let c = me.collection("notes").unwrap();
                let id = format!("d{n}");
                if models[i].docs.contains_key(&n) {
                    c.update(&id, &json!({"v": v}).as_object().cloned().unwrap(), None)
                        .await
                        .unwrap();
                } else {
                    c.create(&json!({"v": v}).as_object().cloned().unwrap(), Some(&id))
                        .await
                        .unwrap();
                }
                models[i].docs.insert(n, v);
            }
            Op::DeleteDoc(n) => {
                let c = me.collection("notes").unwrap();
                let existed = c.delete(&format!("d{n}"), None).await.unwrap();
                prop_assert_eq!(existed, models[i].docs.remove(&n).is_some());
            }
            Op::Role(n) => {
                me.roles().put(&format!("r{n}"), &["x:read"]).await.unwrap();
                if !models[i].roles.contains(&n) {
                    models[i].roles.push(n);
                }
            }
        }
        let _ = other;
    }
    for (i, me) in [(0usize, &a), (1, &b)] {
        let model = &models[i];
        let mut ids: Vec<String> = me
            .users()
            .query(&json!({}), None, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect();
        ids.sort();
        let mut want: Vec<String> = model.users.values().cloned().collect();
        want.sort();
        prop_assert_eq!(ids, want, "{} users", me.tenant());
        for (n, id) in &models[1 - i].users {
            prop_assert!(
                me.users().get(id).await.unwrap().is_none(),
                "{} reads the other tenant's user",
                me.tenant()
            );
            let mine = model.users.contains_key(n);
            prop_assert_eq!(
                me.users()
                    .find_by_email(&format!("u{n}@x.io"))
                    .await
                    .unwrap()
                    .is_some(),
                mine
            );
        }
        let notes = me
            .collection("notes")
            .unwrap()
            .query(
                &json!({}),
                &QueryOptions {
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let got: BTreeMap<String, u64> = notes
            .iter()
            .map(|d| (d.id.clone(), d.data["v"].as_u64().unwrap()))
            .collect();
        let want: BTreeMap<String, u64> = model
            .docs
            .iter()
            .map(|(n, v)| (format!("d{n}"), u64::from(*v)))
            .collect();
        prop_assert_eq!(got, want, "{} notes", me.tenant());
        for n in 0..3u8 {
            prop_assert_eq!(
                me.roles().get(&format!("r{n}")).await.unwrap().is_some(),
                model.roles.contains(&n)
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn a_tenant_sees_only_its_own_identities(ops in proptest::collection::vec((any::<bool>(), op()), 1..30)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let (stores, _dir, _) = common::stores().await;
            for (_, docs) in stores {
                run(docs, ops.clone()).await?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}
