//! [`Lock`] on MongoDB: a `chronos_locks` collection with a real TTL index on `expiresAt`.
//! Acquisition is one conditional upsert, so it is atomic across processes.

use std::time::Duration;

use async_trait::async_trait;
use chronos_core::time::now_ms;
use chronos_core::{ItemId, Lease, Lock, Result};
use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};

use crate::conv::date;
use crate::error::{is_duplicate_key, map_err};

/// The MongoDB lease store of one database.
#[derive(Debug)]
pub struct MongoLock {
    coll: Collection<Document>,
}

impl MongoLock {
    pub(crate) async fn new(coll: Collection<Document>) -> Result<Self> {
        let ttl = IndexModel::builder()
            .keys(doc! {"expiresAt": 1})
            .options(
                IndexOptions::builder()
                    .name("ttl_expiresAt".to_string())
                    .expire_after(Duration::ZERO)
                    .build(),
            )
            .build();
        coll.create_index(ttl)
            .await
            .map_err(|e| map_err(e, "create lock TTL index"))?;
        Ok(Self { coll })
    }
}

#[async_trait]
impl Lock for MongoLock {
    async fn try_acquire(&self, key: &str, ttl: Duration) -> Result<Option<Lease>> {
        let now = now_ms();
        let expires_at = chronos_core::lock::lease_expiry(now, ttl)?;
        let token = ItemId::generate().to_string();
        // Matches only a lapsed lease; when the key is held, the upsert collides on _id.
        let r = self
            .coll
            .update_one(
                doc! {"_id": key, "expiresAt": {"$lte": date(now)}},
                doc! {"$set": {"token": &token, "lockedAt": date(now), "expiresAt": date(expires_at)}},
            )
            .upsert(true)
            .await;
        match r {
            Ok(_) => Ok(Some(Lease {
                key: key.to_string(),
                token,
                expires_at,
            })),
            Err(e) if is_duplicate_key(&e) => Ok(None),
            Err(e) => Err(map_err(e, "acquire lease").with("key", key)),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<bool> {
        let r = self
            .coll
            .delete_one(doc! {"_id": &lease.key, "token": &lease.token})
            .await
            .map_err(|e| map_err(e, "release lease").with("key", &lease.key))?;
        Ok(r.deleted_count == 1)
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>> {
        let now = now_ms();
        let expires_at = chronos_core::lock::lease_expiry(now, ttl)?;
        let r = self
            .coll
            .update_one(
                doc! {"_id": &lease.key, "token": &lease.token, "expiresAt": {"$gt": date(now)}},
                doc! {"$set": {"expiresAt": date(expires_at)}},
            )
            .await
            .map_err(|e| map_err(e, "renew lease").with("key", &lease.key))?;
        Ok((r.matched_count == 1).then(|| Lease {
            expires_at,
            ..lease.clone()
        }))
    }
}
