//! Routes: which database an operation binds to (`databaseType`, `tier`, tenant or domain).

use std::fmt;
use std::str::FromStr;

use chronos_core::{Error, ErrorKind, Result};

use crate::config::{ChronosConfig, DatabaseTarget};

/// The spec's database types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatabaseType {
    /// System configuration, settings, schemas.
    Metadata,
    /// Content and reference data.
    Knowledge,
    /// Tenant application data.
    Runtime,
    /// Logs and audit trails.
    Logs,
    /// Messaging: no versioned collections; see [`crate::Chronos::messaging`].
    Messaging,
    /// Identities: no versioned collections; see [`crate::Chronos::identities`].
    Identities,
}

impl FromStr for DatabaseType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "metadata" => Self::Metadata,
            "knowledge" => Self::Knowledge,
            "runtime" => Self::Runtime,
            "logs" => Self::Logs,
            "messaging" => Self::Messaging,
            "identities" => Self::Identities,
            other => {
                return Err(Error::validation(format!(
                    "unknown databaseType '{other}' (metadata, knowledge, runtime, logs, messaging, identities)"
                )))
            }
        })
    }
}

impl fmt::Display for DatabaseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Metadata => "metadata",
            Self::Knowledge => "knowledge",
            Self::Runtime => "runtime",
            Self::Logs => "logs",
            Self::Messaging => "messaging",
            Self::Identities => "identities",
        })
    }
}

/// The spec's tiers (ordered generic < domain < tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Shared by everyone.
    Generic,
    /// Shared within a domain.
    Domain,
    /// One tenant.
    Tenant,
}

impl FromStr for Tier {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "generic" => Self::Generic,
            "domain" => Self::Domain,
            "tenant" => Self::Tenant,
            other => {
                return Err(Error::validation(format!(
                    "unknown tier '{other}' (generic, domain, tenant)"
                )))
            }
        })
    }
}

/// Where an operation goes: the spec's `with({ databaseType, tier, tenantId | domain, collection })`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// Database type.
    pub database_type: DatabaseType,
    /// Tier (ignored for logs).
    pub tier: Tier,
    /// Tenant, for the tenant tier.
    pub tenant_id: Option<String>,
    /// Domain, for the domain tier.
    pub domain: Option<String>,
    /// Collection.
    pub collection: String,
}

impl Route {
    /// A tenant's runtime collection.
    pub fn runtime(tenant_id: impl Into<String>, collection: impl Into<String>) -> Self {
        Self::tenant(DatabaseType::Runtime, tenant_id, collection)
    }
    /// A tenant-tier collection of any tiered type.
    pub fn tenant(
        db: DatabaseType,
        tenant_id: impl Into<String>,
        collection: impl Into<String>,
    ) -> Self {
        Self {
            database_type: db,
            tier: Tier::Tenant,
            tenant_id: Some(tenant_id.into()),
            domain: None,
            collection: collection.into(),
        }
    }
    /// A domain-tier collection.
    pub fn domain(
        db: DatabaseType,
        domain: impl Into<String>,
        collection: impl Into<String>,
    ) -> Self {
        Self {
            database_type: db,
            tier: Tier::Domain,
            tenant_id: None,
            domain: Some(domain.into()),
            collection: collection.into(),
        }
    }
    /// A generic-tier collection.
    pub fn generic(db: DatabaseType, collection: impl Into<String>) -> Self {
        Self {
            database_type: db,
            tier: Tier::Generic,
            tenant_id: None,
            domain: None,
            collection: collection.into(),
        }
    }
    /// A logs collection.
    pub fn logs(collection: impl Into<String>) -> Self {
        Self::generic(DatabaseType::Logs, collection)
    }

    /// Resolves the database this route names. A tenant or domain that is not configured is
    /// `TenantNotConfigured` — never a fallback to another database.
    pub fn resolve(&self, cfg: &ChronosConfig) -> Result<DatabaseTarget> {
        let db = self.database_type;
        let missing = |what: &str| Error::invalid_config(format!("databases.{db} has no {what}"));
        let not_configured = |kind: &str, name: &str| {
            Error::new(
                ErrorKind::TenantNotConfigured,
                format!("{kind} '{name}' is not configured for {db} databases"),
            )
            .with(if kind == "tenant" { "tenant" } else { "domain" }, name)
        };
        let tenant = || {
            self.tenant_id
                .as_deref()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    Error::validation(format!(
                        "tenantId is required for the tenant tier of {db} databases"
                    ))
                })
        };
        match db {
            DatabaseType::Messaging => Err(Error::validation(
                "the messaging database has no versioned collections: use Chronos::messaging(tenant)",
            )
            .with("databaseType", db)),
            DatabaseType::Identities => Err(Error::validation(
                "the identities database has no versioned collections: use Chronos::identities(tenant) (collection(name), users(), sessions(), roles())",
            )
            .with("databaseType", db)),
            DatabaseType::Logs => {
                if self.tenant_id.is_some() || self.domain.is_some() {
                    return Err(Error::validation(
                        "logs databases have no tiers: give no tenantId or domain",
                    ));
                }
                cfg.databases
                    .logs
                    .clone()
                    .ok_or_else(|| Error::invalid_config("databases.logs is not configured"))
            }
            DatabaseType::Runtime => {
                if self.tier != Tier::Tenant {
                    return Err(Error::validation(
                        "runtime databases only have the tenant tier",
                    ));
                }
                let t = tenant()?;
                let rt = cfg
                    .databases
                    .runtime
                    .as_ref()
                    .ok_or_else(|| missing("runtime section"))?;
                rt.tenant_databases
                    .iter()
                    .find(|d| d.tenant_id == t)
                    .map(|d| d.target())
                    .ok_or_else(|| not_configured("tenant", t))
            }
            DatabaseType::Metadata | DatabaseType::Knowledge => {
                let tiers = if db == DatabaseType::Metadata {
                    &cfg.databases.metadata
                } else {
                    &cfg.databases.knowledge
                };
                let tiers = tiers.as_ref().ok_or_else(|| {
                    Error::invalid_config(format!("databases.{db} is not configured"))
                })?;
                match self.tier {
                    Tier::Generic => tiers
                        .generic_database
                        .clone()
                        .ok_or_else(|| missing("genericDatabase")),
                    Tier::Domain => {
                        let d = self
                            .domain
                            .as_deref()
                            .filter(|d| !d.is_empty())
                            .ok_or_else(|| {
                                Error::validation(format!(
                                    "domain is required for the domain tier of {db} databases"
                                ))
                            })?;
                        tiers
                            .domains_databases
                            .iter()
                            .find(|x| x.domain == d)
                            .map(|x| x.target())
                            .ok_or_else(|| not_configured("domain", d))
                    }
                    Tier::Tenant => {
                        let t = tenant()?;
                        tiers
                            .tenant_databases
                            .iter()
                            .find(|x| x.tenant_id == t)
                            .map(|x| x.target())
                            .ok_or_else(|| not_configured("tenant", t))
                    }
                }
            }
        }
    }
}
