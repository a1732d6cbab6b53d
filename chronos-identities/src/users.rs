//! Users: unique `(tenant, email)` — case-insensitive — enforced by the store, without
//! multi-document transactions.
//!
//! A user is a document `U|tenant|userId`; its email is claimed by a create-only document
//! `E|tenant|<lower-cased email>` holding the user id and a state. Sign-up: claim
//! (`pending`), insert the user (`pending: true`), then *activate* the claim by
//! compare-and-set (`pending` → `active`, for this user id), then clear the user's flag.
//! Of concurrent sign-ups with one email exactly one inserts the claim; the others get
//! `AlreadyExists`. A claim left `pending` by a process that died may be taken over after
//! [`CLAIM_TTL`] — by a compare-and-set on the same claim that the original sign-up's
//! activation also needs, so at most one of them wins and the loser removes its user
//! document. A pending user whose claim is active (the last step did not run) is completed
//! on its next read; until then it is not listed.

use std::time::Duration;

use chronos_core::time::{now_ms, parse_instant};
use chronos_core::{
    check_key_part, doc_key, DocQuery, DocUpdate, Document, Error, ErrorKind, ItemId, Result,
    SortField, Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::collections::{USERS, USER_EMAILS};
use crate::password::{self, Verdict};
use crate::{now_text, Identities};

/// How long a pending email claim protects a sign-up in progress.
pub const CLAIM_TTL: Duration = Duration::from_secs(30);

/// A user's status (the spec's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// May log in.
    #[default]
    Active,
    /// May not log in.
    Suspended,
    /// Marked deleted (the document stays; `Users::delete` removes it).
    Deleted,
}

/// A user as returned (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user id.
    #[serde(rename = "userId")]
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The email as given at sign-up.
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Role names.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Status.
    pub status: UserStatus,
    /// Optimistic-locking version: 0 at creation, +1 per update.
    pub ov: u64,
    /// When created.
    #[serde(with = "crate::instant")]
    pub created_at: Timestamp,
    /// When last updated.
    #[serde(with = "crate::instant")]
    pub updated_at: Timestamp,
}

/// A user to create.
#[derive(Clone, Default)]
pub struct NewUser {
    email: String,
    name: Option<String>,
    roles: Vec<String>,
    status: UserStatus,
    password: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("status", &self.status)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl NewUser {
    /// A user with this email, active, no roles, no password.
    pub fn new(email: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            ..Self::default()
        }
    }
    /// With a display name.
    pub fn name(mut self, n: impl Into<String>) -> Self {
        self.name = Some(n.into());
        self
    }
    /// With these roles.
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, r: I) -> Self {
        self.roles = r.into_iter().map(Into::into).collect();
        self
    }
    /// With this status.
    pub fn status(mut self, s: UserStatus) -> Self {
        self.status = s;
        self
    }
    /// With a password (hashed before anything is stored).
    pub fn password(mut self, p: impl Into<String>) -> Self {
        self.password = Some(p.into());
        self
    }
}

/// Changes to a user (absent fields stay).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    /// New display name.
    pub name: Option<String>,
    /// New roles.
    pub roles: Option<Vec<String>>,
    /// New status.
    pub status: Option<UserStatus>,
}

/// Users of one tenant ([`Identities::users`]).
#[derive(Debug, Clone, Copy)]
pub struct Users<'a> {
    pub(crate) ids: &'a Identities,
}

/// The comparable form of an email: trimmed, lower-cased.
fn email_key(email: &str) -> Result<String> {
    let e = email.trim();
    check_key_part("email", e)?;
    let at = e.find('@');
    if !matches!(at, Some(i) if i > 0 && i + 1 < e.len()) || e.contains(char::is_whitespace) {
        return Err(Error::validation("email must look like name@domain").with("field", "email"));
    }
    Ok(e.to_lowercase())
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("user '{id}' not found")).with("userId", id)
}

impl Users<'_> {
    fn user_key(&self, id: &str) -> Result<String> {
        check_key_part("userId", id)?;
        Ok(doc_key("U", &[self.ids.tenant(), id]))
    }
    fn claim_key(&self, email_key: &str) -> String {
        doc_key("E", &[self.ids.tenant(), email_key])
    }

    /// Creates a user; `AlreadyExists` when the tenant has a user with this email (any
    /// letter case).
    pub async fn create(&self, new: NewUser) -> Result<User> {
        let key = email_key(&new.email)?;
        if let Some(n) = &new.name {
            check_key_part("name", n)?;
        }
        for r in &new.roles {
            check_key_part("roles", r)?;
        }
        // Hash first: nothing is claimed for a password that will be refused.
        let hash = match &new.password {
            Some(p) => Some(password::hash(self.ids.settings().hash, p).await?),
            None => None,
        };
        let docs = self.ids.docs().await?;
        let id = ItemId::generate().to_string();
        let ck = self.claim_key(&key);
        self.claim(&ck, &id, &new.email).await?;
        let now = now_text();
        let mut body = json!({"tenantId": self.ids.tenant(), "userId": id, "email": new.email.trim(),
            "emailKey": key, "name": new.name, "roles": new.roles, "status": new.status,
            "ov": 0, "createdAt": now, "updatedAt": now, "pending": true});
        if let Some(h) = hash {
            body["passwordHash"] = Value::String(h);
        }
        let uk = self.user_key(&id)?;
        let body = body.as_object().cloned().unwrap_or_default();
        docs.insert(
            USERS,
            Document {
                id: uk.clone(),
                body,
            },
        )
        .await?;
        let activate = DocUpdate {
            set: vec![("state".into(), "active".into())],
            inc: vec![],
        };
        let mine = self
            .ids
            .filter(obj(json!({"userId": id, "state": "pending"})))?;
        if docs
            .update_where(USER_EMAILS, &ck, &mine, activate)
            .await?
            .is_none()
        {
            // Taken over while this sign-up was too slow: undo it.
            docs.delete(USERS, &uk).await?;
            return Err(taken(&new.email));
        }
        let done = docs
            .update(USERS, &uk, set(&[("pending", Value::Bool(false))]), false)
            .await?
            .ok_or_else(|| not_found(&id))?;
        crate::decode(USERS, done)
    }

    /// Claims `ck` for user `id`: inserts it, or takes over a stale pending claim or one
    /// whose user is gone.
    async fn claim(&self, ck: &str, id: &str, email: &str) -> Result<()> {
        let docs = self.ids.docs().await?;
        for _ in 0..8 {
            let body = obj(
                json!({"tenantId": self.ids.tenant(), "userId": id, "state": "pending", "at": now_text()}),
            );
            match docs
                .insert(
                    USER_EMAILS,
                    Document {
                        id: ck.to_string(),
                        body,
                    },
                )
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
                Err(_) => {}
            }
            let Some(c) = docs.get(USER_EMAILS, ck).await? else {
                continue;
            };
            let owner = c
                .body
                .get("userId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let state = c
                .body
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let at = c
                .body
                .get("at")
                .and_then(Value::as_str)
                .and_then(|t| parse_instant(t).ok());
            let stale = at
                .is_none_or(|t| now_ms().duration_since(t).as_secs_f64() > CLAIM_TTL.as_secs_f64());
            let orphan = match state.as_str() {
                // An active claim's user was inserted before activation: if it is gone, it
                // was deleted (the claim's removal did not happen).
                "active" => docs.get(USERS, &self.user_key(&owner)?).await?.is_none(),
                _ => stale,
            };
            if !orphan {
                return Err(taken(email));
            }
            let expect = self
                .ids
                .filter(obj(json!({"userId": owner, "state": state})))?;
            let take = set(&[
                ("userId", id.into()),
                ("state", "pending".into()),
                ("at", now_text().into()),
            ]);
            if docs
                .update_where(USER_EMAILS, ck, &expect, take)
                .await?
                .is_some()
            {
                tracing::info!(tenant = %self.ids.tenant(), "took over an abandoned email claim");
                return Ok(());
            }
        }
        Err(Error::unavailable("email claim kept changing; retry").with("field", "email"))
    }

    /// A user's stored document, completing an interrupted sign-up; `None` for a user that
    /// does not exist (or whose sign-up lost).
    async fn load(&self, id: &str) -> Result<Option<Document>> {
        let docs = self.ids.docs().await?;
        let uk = self.user_key(id)?;
        let Some(d) = docs.get(USERS, &uk).await? else {
            return Ok(None);
        };
        if d.body.get("pending") != Some(&Value::Bool(true)) {
            return Ok(Some(d));
        }
        let key = d
            .body
            .get("emailKey")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let claim = docs.get(USER_EMAILS, &self.claim_key(key)).await?;
        let active_mine = claim.is_some_and(|c| {
            c.body.get("userId").and_then(Value::as_str) == Some(id)
                && c.body.get("state").and_then(Value::as_str) == Some("active")
        });
        if !active_mine {
            return Ok(None);
        }
        docs.update(USERS, &uk, set(&[("pending", Value::Bool(false))]), false)
            .await
    }

    /// A user by id.
    pub async fn get(&self, id: &str) -> Result<Option<User>> {
        self.load(id)
            .await?
            .map(|d| crate::decode(USERS, d))
            .transpose()
    }

    /// A user by email (any letter case).
    pub async fn find_by_email(&self, email: &str) -> Result<Option<User>> {
        Ok(self.by_email(email).await?.map(|(u, _)| u))
    }

    async fn by_email(&self, email: &str) -> Result<Option<(User, Option<String>)>> {
        let key = email_key(email)?;
        let docs = self.ids.docs().await?;
        let Some(c) = docs.get(USER_EMAILS, &self.claim_key(&key)).await? else {
            return Ok(None);
        };
        if c.body.get("state").and_then(Value::as_str) != Some("active") {
            return Ok(None);
        }
        let owner = c
            .body
            .get("userId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(d) = self.load(owner).await? else {
            return Ok(None);
        };
        let hash = d
            .body
            .get("passwordHash")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(Some((crate::decode(USERS, d)?, hash)))
    }

    /// The tenant's users matching `filter` (the filter language over the user fields:
    /// `status`, `roles`, `email`, `name` …), sorted by `sort` (a field; default the id).
    pub async fn query(
        &self,
        filter: &Value,
        sort: Option<&str>,
        limit: usize,
    ) -> Result<Vec<User>> {
        let f = self
            .ids
            .filter_and(&json!({"$and": [filter, {"pending": false}]}))?;
        let q = DocQuery {
            filter: f,
            sort: Some((SortField::Meta(sort.unwrap_or("userId").to_string()), false)),
            skip: 0,
            limit: crate::collection::check_limit(limit)?,
        };
        let docs = self.ids.docs().await?.find(USERS, &q).await?;
        docs.into_iter().map(|d| crate::decode(USERS, d)).collect()
    }

    /// Updates a user; with `expected_ov`, only if the user is still at that version
    /// (`Conflict` otherwise).
    pub async fn update(
        &self,
        id: &str,
        patch: &UserPatch,
        expected_ov: Option<u64>,
    ) -> Result<User> {
        let mut fields: Vec<(&str, Value)> = vec![("updatedAt", now_text().into())];
        if let Some(n) = &patch.name {
            check_key_part("name", n)?;
            fields.push(("name", n.clone().into()));
        }
        if let Some(r) = &patch.roles {
            for role in r {
                check_key_part("roles", role)?;
            }
            fields.push(("roles", json!(r)));
        }
        if let Some(s) = patch.status {
            fields.push(("status", json!(s)));
        }
        self.apply(id, expected_ov, &fields).await
    }

    async fn apply(
        &self,
        id: &str,
        expected_ov: Option<u64>,
        fields: &[(&str, Value)],
    ) -> Result<User> {
        let docs = self.ids.docs().await?;
        let Some(cur) = self.load(id).await? else {
            return Err(not_found(id));
        };
        let uk = self.user_key(id)?;
        let ov = cur.body.get("ov").and_then(Value::as_u64).unwrap_or(0);
        if let Some(e) = expected_ov {
            if e != ov {
                return Err(stale(id, e, ov));
            }
        }
        let mut up = set(fields);
        up.inc.push(("ov".into(), 1.into()));
        let at = self.ids.filter(obj(json!({"ov": ov, "pending": false})))?;
        match docs.update_where(USERS, &uk, &at, up).await? {
            Some(d) => crate::decode(USERS, d),
            None => match self.load(id).await? {
                None => Err(not_found(id)),
                Some(now) => Err(stale(
                    id,
                    expected_ov.unwrap_or(ov),
                    now.body.get("ov").and_then(Value::as_u64).unwrap_or(0),
                )),
            },
        }
    }

    /// Sets (or replaces) a user's password.
    pub async fn set_password(&self, id: &str, password: &str) -> Result<()> {
        let h = password::hash(self.ids.settings().hash, password).await?;
        let docs = self.ids.docs().await?;
        if self.load(id).await?.is_none() {
            return Err(not_found(id));
        }
        let up = set(&[("passwordHash", h.into()), ("updatedAt", now_text().into())]);
        docs.update(USERS, &self.user_key(id)?, up, false).await?;
        Ok(())
    }

    /// Checks a login: the user when the email exists, the user is active and the password
    /// is right; `None` otherwise (the same Argon2 work either way). A right password with a
    /// hash weaker than the current parameters is rehashed.
    pub async fn verify_password(&self, email: &str, password: &str) -> Result<Option<User>> {
        let params = self.ids.settings().hash;
        let found = match email_key(email) {
            Ok(_) => self.by_email(email).await?,
            Err(_) => None,
        };
        let (user, stored) = match found {
            Some((u, h)) => (Some(u), h),
            None => (None, None),
        };
        let verdict = password::verify(params, stored.clone(), password).await?;
        let Some(user) = user.filter(|u| u.status == UserStatus::Active) else {
            return Ok(None);
        };
        match verdict {
            Verdict::Wrong => Ok(None),
            Verdict::Right => Ok(Some(user)),
            Verdict::RightButWeak => {
                let h = password::hash(params, password).await?;
                let docs = self.ids.docs().await?;
                // Only if nobody changed the password meanwhile.
                let same = self.ids.filter(obj(json!({"passwordHash": stored})))?;
                let up = set(&[("passwordHash", h.into())]);
                if docs
                    .update_where(USERS, &self.user_key(&user.id)?, &same, up)
                    .await?
                    .is_some()
                {
                    tracing::info!(tenant = %self.ids.tenant(), user = %user.id, "password rehashed with current parameters");
                }
                Ok(Some(user))
            }
        }
    }

    /// Removes a user (its document, then its email claim); returns whether it existed.
    pub async fn delete(&self, id: &str) -> Result<bool> {
        let docs = self.ids.docs().await?;
        let uk = self.user_key(id)?;
        let Some(d) = docs.get(USERS, &uk).await? else {
            return Ok(false);
        };
        docs.delete(USERS, &uk).await?;
        if let Some(key) = d.body.get("emailKey").and_then(Value::as_str) {
            // Only this user's claim: a newer sign-up may own the email already.
            let mine = self.ids.filter(obj(json!({"userId": id})))?;
            let ck = self.claim_key(key);
            if docs
                .get(USER_EMAILS, &ck)
                .await?
                .is_some_and(|c| mine.matches(&c.body))
            {
                docs.delete(USER_EMAILS, &ck).await?;
            }
        }
        Ok(true)
    }
}

fn taken(email: &str) -> Error {
    let _ = email;
    // The email is personal data: the error says what happened without repeating it.
    Error::already_exists("a user with this email already exists in the tenant")
        .with("field", "email")
}

fn stale(id: &str, expected: u64, actual: u64) -> Error {
    Error::conflict(format!(
        "user '{id}' is at ov {actual}, not the expected {expected}"
    ))
    .with("userId", id)
}

pub(crate) fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub(crate) fn set(fields: &[(&str, Value)]) -> DocUpdate {
    DocUpdate {
        set: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        inc: vec![],
    }
}
