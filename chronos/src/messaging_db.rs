//! Wiring of `chronos-messaging`: [`Chronos::messaging`] opens the configured messaging
//! database (`databases.messaging`, one for every tenant) once and hands out tenant handles.

use chronos_core::{Error, Result};
use chronos_messaging::Messaging;

use crate::Chronos;

impl Chronos {
    /// The messaging database as seen by `tenant` (`chronos.messaging(tenant)` in the
    /// original): shared memory, topics, messages, deliveries and dead letters, every
    /// document and query scoped to `tenant`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use chronos::messaging::{NewMessage, SaveOutcome, Strategy};
    /// use serde_json::json;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let chronos = chronos::Chronos::embedded(dir.path())?;
    /// let m = chronos.messaging("tenant-a").await?;
    /// m.shared().save("config", "feature-flags", &json!({"beta": true}), Strategy::Latest).await?;
    /// let msg = NewMessage::new("payments", "171223123-0", json!({"orderId": "123"}));
    /// assert_eq!(m.messages().save(&msg).await?, SaveOutcome::Saved);
    /// chronos.shutdown().await;
    /// # Ok::<(), chronos::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn messaging(&self, tenant: &str) -> Result<Messaging> {
        let base = self
            .inner
            .messaging
            .get_or_try_init(|| async {
                let cfg = &self.inner.config;
                let section = cfg.databases.messaging.as_ref().ok_or_else(|| {
                    Error::invalid_config("databases.messaging is not configured")
                })?;
                let docs = self
                    .document_store(&section.db_conn_ref, &section.db_name)
                    .await?;
                Messaging::new(docs, section.settings(), tenant)
            })
            .await?;
        base.for_tenant(tenant)
    }
}
