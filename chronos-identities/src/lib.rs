//! Chronos identities: the spec's identities database — users, accounts, sessions, roles and
//! permissions, plus generic collections — in one database shared by every tenant, each
//! document and each query carrying its `tenantId`. No version history, no blobs: documents
//! with an `ov` for optimistic locking.
//!
//! Built on core only (`DocumentStore`), so it runs on memory, SQLite and MongoDB alike. The
//! safe way is built in: passwords are Argon2id PHC strings (OWASP parameters, rehashed on
//! login when weaker), a session token is returned once and only its SHA-256 digest is
//! stored, and no password, token or hash appears in `Debug`, errors or logs.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use chronos_identities::{Identities, NewUser, Settings};
//! use chronos_testkit::MemoryDocumentStore;
//!
//! let ids = Identities::new(Arc::new(MemoryDocumentStore::new()), Settings::default(), "acme-corp")?;
//! let user = ids.users().create(NewUser::new("john@acme.com").name("John Doe").password("correct horse battery")).await?;
//! let login = ids.users().verify_password("JOHN@acme.com", "correct horse battery").await?;
//! assert_eq!(login.map(|u| u.id), Some(user.id.clone()));
//! let (session, token) = ids.sessions().create(&user.id, Default::default()).await?;
//! assert_eq!(ids.sessions().authenticate(token.expose()).await?.map(|s| s.id), Some(session.id));
//! # Ok::<(), chronos_core::Error>(())
//! # }).unwrap();
//! ```

pub mod collection;
pub mod config;
pub mod password;
pub mod roles;
pub mod sessions;
pub mod users;

use std::sync::Arc;

use chronos_core::time::{format_instant, now_ms};
use chronos_core::{check_key_part, DocLayout, DocumentStore, Error, Filter, Result};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

pub use collection::{Account, IdentityCollection, IdentityDoc, NewAccount, QueryOptions, Written};
pub use config::{IdentitiesDatabase, Settings};
pub use password::HashParams;
pub use roles::{Role, Roles};
pub use sessions::{NewSession, Session, SessionToken, Sessions};
pub use users::{NewUser, User, UserPatch, UserStatus, Users};

/// The collections the typed helpers own (not available as generic collections).
pub mod collections {
    /// Users.
    pub const USERS: &str = "users";
    /// Email claims: the arbiter of unique `(tenant, email)`.
    pub const USER_EMAILS: &str = "user_emails";
    /// Sessions (token digests).
    pub const SESSIONS: &str = "sessions";
    /// Roles.
    pub const ROLES: &str = "roles";
    /// Accounts (typed helpers over a generic collection).
    pub const ACCOUNTS: &str = "accounts";
}

/// The identities database as seen by one tenant (`chronos.identities(tenant)`).
#[derive(Clone)]
pub struct Identities {
    inner: Arc<Inner>,
    tenant: String,
}

/// The tenant and settings; never the store (whose `Debug` a backend may fill with data).
impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("tenant", &self.tenant)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Inner {
    docs: Arc<dyn DocumentStore>,
    settings: Settings,
    prepared: OnceCell<()>,
}

impl Identities {
    /// A tenant's handle on the identities database stored in `docs`.
    pub fn new(docs: Arc<dyn DocumentStore>, settings: Settings, tenant: &str) -> Result<Self> {
        check_key_part("tenantId", tenant)?;
        Ok(Self {
            inner: Arc::new(Inner {
                docs,
                settings,
                prepared: OnceCell::new(),
            }),
            tenant: tenant.to_string(),
        })
    }

    /// Another tenant's handle on the same store.
    pub fn for_tenant(&self, tenant: &str) -> Result<Self> {
        check_key_part("tenantId", tenant)?;
        Ok(Self {
            inner: self.inner.clone(),
            tenant: tenant.to_string(),
        })
    }

    /// Every tenant with a session in this identities database, sorted, at most `max` (any
    /// tenant's handle sees them all): what the worker's session purge runs over. One
    /// indexed query per tenant.
    pub async fn session_tenants(&self, max: usize) -> Result<Vec<String>> {
        let docs = self.docs().await?;
        chronos_core::distinct_strings(docs, collections::SESSIONS, "tenantId", max).await
    }

    /// The tenant this handle reads and writes.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Users: unique email per tenant, passwords.
    pub fn users(&self) -> Users<'_> {
        Users { ids: self }
    }

    /// Sessions.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions { ids: self }
    }

    /// Roles and permissions.
    pub fn roles(&self) -> Roles<'_> {
        Roles { ids: self }
    }

    /// A generic collection (create / get / query / update with `expected_ov` / delete).
    /// The typed helpers' collections (`users`, `user_emails`, `sessions`, `roles`) are not
    /// available this way: they hold hashes and digests that only their helpers handle.
    pub fn collection(&self, name: &str) -> Result<IdentityCollection<'_>> {
        IdentityCollection::new(self, name)
    }

    /// Accounts (a generic collection with typed helpers).
    pub fn accounts(&self) -> IdentityCollection<'_> {
        IdentityCollection {
            ids: self,
            name: collections::ACCOUNTS.to_string(),
        }
    }

    pub(crate) async fn docs(&self) -> Result<&dyn DocumentStore> {
        let docs = &*self.inner.docs;
        self.inner
            .prepared
            .get_or_try_init(|| async {
                use collections::*;
                let layouts = [
                    (
                        USERS,
                        DocLayout::new(
                            [vec!["tenantId", "status"], vec!["tenantId", "email"]],
                            &["createdAt", "updatedAt"],
                        ),
                    ),
                    (
                        USER_EMAILS,
                        DocLayout::new(Vec::<Vec<&str>>::new(), &["at"]),
                    ),
                    (
                        SESSIONS,
                        DocLayout::new([vec!["tenantId", "userId"]], &["createdAt", "expiresAt"])
                            .expire_at("expiresAt"),
                    ),
                    (
                        ROLES,
                        DocLayout::new([vec!["tenantId", "name"]], &["createdAt"]),
                    ),
                ];
                for (coll, layout) in &layouts {
                    docs.prepare(coll, layout).await?;
                }
                Ok::<(), Error>(())
            })
            .await?;
        Ok(docs)
    }

    /// A filter on this tenant's documents.
    pub(crate) fn filter(&self, mut conds: Map<String, Value>) -> Result<Filter> {
        conds.insert("tenantId".into(), Value::String(self.tenant.clone()));
        Filter::parse(&Value::Object(conds))
    }

    /// A filter on this tenant's documents and `user`'s (a filter in the filter language).
    pub(crate) fn filter_and(&self, user: &Value) -> Result<Filter> {
        let mut tenant = Map::new();
        tenant.insert("tenantId".into(), Value::String(self.tenant.clone()));
        Filter::parse(&serde_json::json!({"$and": [Value::Object(tenant), user]}))
    }
}

pub(crate) fn now_text() -> String {
    format_instant(now_ms())
}

pub(crate) use chronos_core::docs::decode_body as decode;

pub(crate) use chronos_core::time::serde_instant as instant;
