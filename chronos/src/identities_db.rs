//! Wiring of `chronos-identities`: [`Chronos::identities`] opens the configured identities
//! database (`databases.identities`, one for every tenant) once and hands out tenant handles.

use chronos_core::{Error, Result};
use chronos_identities::Identities;

use crate::Chronos;

impl Chronos {
    /// The identities database as seen by `tenant`: users (unique email, Argon2id
    /// passwords), sessions (hashed tokens), roles and permissions, accounts and generic
    /// collections with optimistic locking — every document and query scoped to `tenant`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use chronos::identities::NewUser;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let chronos = chronos::Chronos::embedded(dir.path())?;
    /// let ids = chronos.identities("acme-corp").await?;
    /// let user = ids.users().create(NewUser::new("john@acme.com").password("correct horse battery")).await?;
    /// assert!(ids.users().verify_password("john@acme.com", "correct horse battery").await?.is_some());
    /// chronos.shutdown().await;
    /// # let _ = user; Ok::<(), chronos::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn identities(&self, tenant: &str) -> Result<Identities> {
        let base = self
            .inner
            .identities
            .get_or_try_init(|| async {
                let cfg = &self.inner.config;
                let section = cfg.databases.identities.as_ref().ok_or_else(|| {
                    Error::invalid_config("databases.identities is not configured")
                })?;
                let docs = self
                    .document_store(&section.db_conn_ref, &section.db_name)
                    .await?;
                Identities::new(docs, section.settings(), tenant)
            })
            .await?;
        base.for_tenant(tenant)
    }
}
