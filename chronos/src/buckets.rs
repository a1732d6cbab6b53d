//! `Chronos::ensure_buckets`: creates the S3 buckets and Azure containers the configuration
//! names and that do not exist yet (the spec's setup step; `chronos init` on the CLI).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::{Chronos, Result};

/// One bucket or container [`Chronos::ensure_buckets`] looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketStatus {
    /// The `spacesConnections` entry.
    pub connection: String,
    /// The bucket (S3) or container (Azure).
    pub bucket: String,
    /// Created now (`false`: it existed).
    pub created: bool,
}

impl Chronos {
    /// Creates every bucket and container that a database target names (through
    /// `spaceConnRef` + `bucket`) and that is missing, each once; an existing one owned by
    /// these credentials is left as it is. Stops at the first failure (naming the connection
    /// and bucket). Local directories need nothing: they are created on first use.
    pub async fn ensure_buckets(&self) -> Result<Vec<BucketStatus>> {
        let cfg = &self.inner.config;
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (_, t) in cfg.targets() {
            let (Some(conn), Some(bucket)) = (&t.space_conn_ref, &t.bucket) else {
                continue;
            };
            if !seen.insert((conn.clone(), bucket.clone())) {
                continue;
            }
            let created = self
                .inner
                .registry
                .space_connection(cfg, conn)
                .await?
                .ensure_bucket(bucket)
                .await?;
            out.push(BucketStatus {
                connection: conn.clone(),
                bucket: bucket.clone(),
                created,
            });
        }
        Ok(out)
    }
}
