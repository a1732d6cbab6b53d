//! `Collection::diff`: what changed between two versions of a record, as an RFC 6902 JSON
//! Patch (the `json-patch` crate) over the versions' data.

use serde_json::Value;

use super::{Collection, ReadOptions};
use crate::error::{Error, Result};
use crate::id::ItemId;

impl Collection {
    /// The JSON Patch that turns version `from_ov`'s data into version `to_ov`'s: applying
    /// it to the one gives the other (`json_patch::patch`). Either order works (a later
    /// `from` gives the patch back in time); equal versions give an empty patch. The data is
    /// as stored — externalised properties as their refs, a tombstone's data its last
    /// content. A version that does not exist is `NotFound` naming it.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use chronos_core::{CollectionConfig, CreateOptions, WriteOptions};
    /// use serde_json::json;
    /// let engine = chronos_testkit::memory_engine();
    /// let users = engine.collection(CollectionConfig::new("users")).await?;
    /// let w = users.create(&json!({"name": "Ada", "plan": "free"}), CreateOptions::new()).await?;
    /// users.update(w.id, &json!({"name": "Ada", "plan": "pro"}), WriteOptions::new()).await?;
    /// let patch = users.diff(w.id, 0, 1).await?;
    /// assert_eq!(serde_json::to_value(&patch)?, json!([{"op": "replace", "path": "/plan", "value": "pro"}]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn diff(&self, id: ItemId, from_ov: u64, to_ov: u64) -> Result<json_patch::Patch> {
        if from_ov == to_ov {
            // Still an error when the version does not exist.
            self.version_data(id, from_ov).await?;
            return Ok(json_patch::Patch(Vec::new()));
        }
        let (from, to) =
            futures::try_join!(self.version_data(id, from_ov), self.version_data(id, to_ov))?;
        Ok(json_patch::diff(&from, &to))
    }

    async fn version_data(&self, id: ItemId, ov: u64) -> Result<Value> {
        match self
            .get_version(id, ov, ReadOptions::new().include_deleted(true))
            .await?
        {
            Some(r) => Ok(Value::Object(r.data)),
            None => Err(
                Error::not_found(format!("version {ov} of record {id} does not exist"))
                    .with("collection", self.name())
                    .with("id", id)
                    .with("ov", ov),
            ),
        }
    }
}
