//! Roles and permissions: a role is a named set of permissions (`orders:write`,
//! `orders:*`, `*`); a user has a permission when one of its roles grants it. System roles
//! (installed by the operator with [`Roles::install_system_role`]) cannot be changed or
//! deleted through the tenant's role calls.

use chronos_core::{check_key_part, doc_key, Document, Error, ErrorKind, Result, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::collections::ROLES;
use crate::users::obj;
use crate::{now_text, Identities};

/// A role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    /// The tenant.
    pub tenant_id: String,
    /// The role name.
    pub name: String,
    /// What it grants.
    pub permissions: Vec<String>,
    /// Installed by the operator; tenants cannot change or delete it.
    pub is_system_role: bool,
    /// When created.
    #[serde(with = "crate::instant")]
    pub created_at: Timestamp,
}

/// Roles of one tenant ([`Identities::roles`]).
#[derive(Debug, Clone, Copy)]
pub struct Roles<'a> {
    pub(crate) ids: &'a Identities,
}

fn check_permission(p: &str) -> Result<()> {
    check_key_part("permissions", p)?;
    if p.contains(char::is_whitespace) {
        return Err(
            Error::validation(format!("permission '{p}' contains whitespace"))
                .with("field", "permissions"),
        );
    }
    Ok(())
}

/// Whether `granted` covers `wanted`: equal, `*`, or `prefix:*` covering `prefix:…`.
pub fn grants(granted: &str, wanted: &str) -> bool {
    granted == "*"
        || granted == wanted
        || granted
            .strip_suffix('*')
            .is_some_and(|prefix| prefix.ends_with(':') && wanted.starts_with(prefix))
}

impl Roles<'_> {
    fn key(&self, name: &str) -> Result<String> {
        check_key_part("role", name)?;
        Ok(doc_key("R", &[self.ids.tenant(), name]))
    }

    async fn write(&self, name: &str, permissions: &[&str], system: bool) -> Result<Role> {
        let key = self.key(name)?;
        for p in permissions {
            check_permission(p)?;
        }
        let docs = self.ids.docs().await?;
        let existing = docs.get(ROLES, &key).await?;
        let created = existing
            .as_ref()
            .and_then(|d| d.body.get("createdAt").cloned())
            .unwrap_or_else(|| now_text().into());
        if !system
            && existing
                .as_ref()
                .is_some_and(|d| d.body.get("isSystemRole") == Some(&Value::Bool(true)))
        {
            return Err(system_role(name));
        }
        let body = obj(
            json!({"tenantId": self.ids.tenant(), "name": name, "permissions": permissions,
            "isSystemRole": system, "createdAt": created}),
        );
        let doc = Document {
            id: key.clone(),
            body,
        };
        match existing {
            None => match docs.insert(ROLES, doc.clone()).await {
                Ok(()) => {}
                // Created meanwhile: go through the checks again.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    return Box::pin(self.write(name, permissions, system)).await
                }
                Err(e) => return Err(e),
            },
            Some(old) => {
                // Replace only what was read (a concurrent install of a system role wins).
                let expect = chronos_core::Filter::parse(
                    &json!({"isSystemRole": old.body.get("isSystemRole")}),
                )?;
                let up = crate::users::set(
                    &doc.body
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.clone()))
                        .collect::<Vec<_>>(),
                );
                if docs.update_where(ROLES, &key, &expect, up).await?.is_none() {
                    return Box::pin(self.write(name, permissions, system)).await;
                }
            }
        }
        crate::decode(ROLES, doc)
    }

    /// Creates or replaces a tenant role. A system role of that name is `Validation`.
    pub async fn put(&self, name: &str, permissions: &[&str]) -> Result<Role> {
        self.write(name, permissions, false).await
    }

    /// Installs (or updates) a system role: an operator call, not one for tenants.
    pub async fn install_system_role(&self, name: &str, permissions: &[&str]) -> Result<Role> {
        self.write(name, permissions, true).await
    }

    /// A role.
    pub async fn get(&self, name: &str) -> Result<Option<Role>> {
        let d = self.ids.docs().await?.get(ROLES, &self.key(name)?).await?;
        d.map(|d| crate::decode(ROLES, d)).transpose()
    }

    /// Deletes a tenant role; a system role is `Validation` and stays.
    pub async fn delete(&self, name: &str) -> Result<bool> {
        let key = self.key(name)?;
        let docs = self.ids.docs().await?;
        match docs.get(ROLES, &key).await? {
            None => Ok(false),
            Some(d) if d.body.get("isSystemRole") == Some(&Value::Bool(true)) => {
                Err(system_role(name))
            }
            Some(_) => {
                let f = self
                    .ids
                    .filter(obj(json!({"name": name, "isSystemRole": false})))?;
                Ok(docs.delete_where(ROLES, &f).await? > 0)
            }
        }
    }

    /// Whether `user_id` has `permission` through one of its roles (an unknown user or
    /// role grants nothing).
    pub async fn has_permission(&self, user_id: &str, permission: &str) -> Result<bool> {
        check_permission(permission)?;
        let Some(user) = self.ids.users().get(user_id).await? else {
            return Ok(false);
        };
        for r in &user.roles {
            if let Some(role) = self.get(r).await? {
                if role.permissions.iter().any(|g| grants(g, permission)) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

fn system_role(name: &str) -> Error {
    Error::validation(format!(
        "role '{name}' is a system role: tenants cannot change or delete it"
    ))
    .with("role", name)
}

#[cfg(test)]
mod tests {
    use super::grants;

    #[test]
    fn wildcards_cover_their_prefix_only() {
        assert!(grants("orders:write", "orders:write"));
        assert!(grants("orders:*", "orders:write"));
        assert!(grants("*", "anything:at-all"));
        assert!(!grants("orders:*", "ordersx:write"));
        assert!(!grants("orders:read", "orders:write"));
        assert!(!grants("orders*", "orders:write"));
    }
}
