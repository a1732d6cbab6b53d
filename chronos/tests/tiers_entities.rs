//! Tiered reads (the spec's "How Tiered Merging Works" example, exactly) and entity upserts
//! (created / updated / unchanged, never duplicated, no field lost), on the embedded default.

use chronos::{Chronos, DatabaseType, EntityMapping, EntityOperation, Route, Tier, TierOptions};
use chronos_core::{CreateOptions, ErrorKind, ListOptions, ReadOptions};
use serde_json::{json, Value};

fn chronos(dir: &std::path::Path) -> Chronos {
    let t = |db: &str| json!({"dbConnRef": "local", "dbName": db});
    let cfg = json!({
        "dbConnections": { "local": { "mongoUri": format!("sqlite://{}", dir.join("db").display()) } },
        "spacesConnections": {},
        "databases": {
            "knowledge": {
                "genericDatabase": t("kn_generic"),
                "domainsDatabases": [ { "domain": "production", "dbConnRef": "local", "dbName": "kn_production" } ],
                "tenantDatabases": [ { "tenantId": "tenant-a", "dbConnRef": "local", "dbName": "kn_tenant_a" } ]
            },
            "metadata": {
                "genericDatabase": t("md_generic"),
                "tenantDatabases": [ { "tenantId": "tenant-a", "dbConnRef": "local", "dbName": "md_tenant_a" } ]
            },
            "runtime": { "tenantDatabases": [ { "tenantId": "tenant-a", "dbConnRef": "local", "dbName": "rt_a" } ] }
        },
        "collectionMaps": { "customers": { "indexedProps": ["customerId"] } },
        "localStorage": { "enabled": true, "basePath": dir.join("blobs").display().to_string() }
    });
    Chronos::from_json(&cfg.to_string()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_merge_reproduces_the_spec_example() {
    let dir = tempfile::tempdir().unwrap();
    let c = chronos(dir.path());
    let put = |route: Route, data: Value| {
        let c = c.clone();
        async move {
            c.with(&route)
                .await
                .unwrap()
                .create(&data, CreateOptions::new())
                .await
                .unwrap()
        }
    };
    put(Route::generic(DatabaseType::Knowledge, "app-config"),
        json!({"key": "feature-flags", "theme": "light", "features": ["basic", "standard"], "settings": {"timeout": 30}})).await;
    put(
        Route::domain(DatabaseType::Knowledge, "production", "app-config"),
        json!({"key": "feature-flags", "features": ["advanced"], "settings": {"maxRetries": 3}}),
    )
    .await;
    put(Route::tenant(DatabaseType::Knowledge, "tenant-a", "app-config"),
        json!({"key": "feature-flags", "theme": "dark", "features": ["premium"], "settings": {"timeout": 60}})).await;

    let opts = TierOptions::new().tenant("tenant-a").domain("production");
    let merged = c
        .get_knowledge(
            "app-config",
            json!({"key": "feature-flags"}),
            &opts.clone().merge(true),
        )
        .await
        .unwrap();
    assert_eq!(
        Value::Object(merged.data.clone().unwrap()),
        json!({"key": "feature-flags", "theme": "dark", "features": ["basic", "standard", "advanced", "premium"],
               "settings": {"timeout": 60, "maxRetries": 3}})
    );
    // In merge order, as the spec lists them.
    assert_eq!(
        merged.tiers_found,
        [Tier::Generic, Tier::Domain, Tier::Tenant]
    );
    assert_eq!(
        merged.tier_records[&Tier::Domain].data["features"],
        json!(["advanced"])
    );

    let first = c
        .get_knowledge("app-config", json!({"key": "feature-flags"}), &opts)
        .await
        .unwrap();
    assert_eq!(
        first.data.unwrap()["theme"],
        "dark",
        "merge: false returns the tenant's record"
    );
    assert_eq!(first.tiers_found, [Tier::Tenant]);

    // A tenant that is not configured (a typo?) is an error by default, naming it…
    let other = TierOptions::new().tenant("tenant-z").domain("production");
    let e = c
        .get_knowledge("app-config", json!({"key": "feature-flags"}), &other)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TenantNotConfigured, "{e}");
    assert!(e.to_string().contains("tenant-z"), "{e}");
    let e = c
        .get_knowledge(
            "app-config",
            json!({"key": "feature-flags"}),
            &TierOptions::new().domain("prodution"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TenantNotConfigured, "{e}");
    // …and skipped and reported when asked: the domain's record is then first.
    let r = c
        .get_knowledge(
            "app-config",
            json!({"key": "feature-flags"}),
            &other.skip_unconfigured(true),
        )
        .await
        .unwrap();
    assert_eq!(r.tiers_found, [Tier::Domain]);
    assert_eq!(r.tiers_not_configured, [Tier::Tenant]);
    let none = c
        .get_knowledge(
            "app-config",
            json!({"key": "nope"}),
            &opts.clone().merge(true),
        )
        .await
        .unwrap();
    assert!(none.data.is_none() && none.tiers_found.is_empty());

    // Metadata works the same way (no domain tier configured there).
    c.with(&Route::generic(DatabaseType::Metadata, "schemas"))
        .await
        .unwrap()
        .create(
            &json!({"entityType": "user", "fields": ["email"]}),
            CreateOptions::new(),
        )
        .await
        .unwrap();
    let md = c
        .get_metadata(
            "schemas",
            json!({"entityType": "user"}),
            &TierOptions::new().tenant("tenant-a").merge(true),
        )
        .await
        .unwrap();
    assert_eq!(md.tiers_found, [Tier::Generic]);
    assert_eq!(md.data.unwrap()["fields"], json!(["email"]));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_are_upserted_by_key_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let c = chronos(dir.path());
    let orders = Route::runtime("tenant-a", "orders");
    let mappings = [
        EntityMapping::new("customer", "customers", "customerId")
            .in_database(DatabaseType::Metadata, Tier::Tenant),
        EntityMapping::new("product", "products", "productId")
            .in_database(DatabaseType::Knowledge, Tier::Generic),
    ];
    let order = |n: u32, email: Value| {
        json!({
            "orderId": format!("ORD-{n}"),
            "customer": {"customerId": "CUST-456", "name": "John Doe", "email": email},
            "product": {"productId": "PROD-789", "name": "Widget", "price": 99.99},
            "quantity": 2
        })
    };
    let first = c
        .insert_with_entities(
            &orders,
            &order(1, json!("john@example.com")),
            &mappings,
            CreateOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        first.entities["customer"].operation,
        EntityOperation::Created
    );
    assert_eq!(
        first.entities["product"].operation,
        EntityOperation::Created
    );

    let second = c
        .insert_with_entities(
            &orders,
            &order(2, json!("john@example.com")),
            &mappings,
            CreateOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        second.entities["customer"].operation,
        EntityOperation::Unchanged
    );
    assert_eq!(
        second.entities["customer"].id,
        first.entities["customer"].id
    );

    // A changed field updates the entity; fields the new object lacks are kept.
    let mut third = order(3, json!("john.doe@example.com"));
    third["customer"].as_object_mut().unwrap().remove("name");
    third["customer"]["tier"] = json!("gold");
    let r = c
        .insert_with_entities(&orders, &third, &mappings, CreateOptions::new())
        .await
        .unwrap();
    assert_eq!(r.entities["customer"].operation, EntityOperation::Updated);
    assert_eq!(r.entities["product"].operation, EntityOperation::Unchanged);
    let customers = c
        .with(&Route::tenant(
            DatabaseType::Metadata,
            "tenant-a",
            "customers",
        ))
        .await
        .unwrap();
    let all = customers.list_by_meta(ListOptions::new()).await.unwrap();
    assert_eq!(all.items.len(), 1, "never duplicated");
    assert_eq!(
        Value::Object(all.items[0].data.clone()),
        json!({"customerId": "CUST-456", "name": "John Doe", "email": "john.doe@example.com", "tier": "gold"})
    );

    // Concurrent first inserts of a new entity still make one record.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let c = c.clone();
            let orders = orders.clone();
            let mappings = mappings.clone();
            tokio::spawn(async move {
                let o = json!({"orderId": format!("X-{i}"), "customer": {"customerId": "NEW-1", "n": i},
                               "product": {"productId": "PROD-789"}});
                c.insert_with_entities(&orders, &o, &mappings, CreateOptions::new()).await.unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let new_ones = customers
        .list_by_meta(ListOptions::new().filter(json!({"customerId": "NEW-1"})))
        .await
        .unwrap();
    assert_eq!(
        new_ones.items.len(),
        1,
        "concurrent creators produced duplicates"
    );

    let got = c
        .get_with_entities(&orders, first.main.id, &mappings, ReadOptions::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.main.data["orderId"], "ORD-1");
    assert_eq!(
        got.entities["customer"].as_ref().unwrap().data["tier"],
        "gold"
    );
    assert_eq!(
        got.entities["product"].as_ref().unwrap().data["price"],
        json!(99.99)
    );

    let bad = json!({"orderId": "B", "customer": {"name": "no key"}});
    let e = c
        .insert_with_entities(&orders, &bad, &mappings, CreateOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.context("field"), Some("customer.customerId"), "{e}");
    c.shutdown().await;
}
