//! Sessions: a 256-bit random token is returned once; only its SHA-256 digest is stored (the
//! document id `S|<digest>`), so a copy of the database logs no one in.
//!
//! `authenticate` looks the digest up, checks the tenant, the expiry and that the user is
//! still active. Expired sessions are refused on read, removed by the store's TTL where it
//! has one (MongoDB) and by [`Sessions::purge_expired`] (which the worker schedules).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chronos_core::time::{format_instant, now_ms};
use chronos_core::{check_key_part, doc_key, Document, Error, Result, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::collections::{SESSIONS, USERS};
use crate::users::{obj, UserStatus};
use crate::Identities;

/// A session token: shown once, at creation. `Debug` and `Display` never print it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// The token text, to hand to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// Options of a new session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewSession {
    /// Lifetime (default: the handle's `session_ttl`).
    pub ttl: Option<Duration>,
    /// The client's address.
    pub ip_address: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
}

/// A stored session (no token: it is not stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The session id: the token's digest (it cannot be turned back into the token).
    #[serde(rename = "digest")]
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The user.
    pub user_id: String,
    /// When created.
    #[serde(with = "crate::instant")]
    pub created_at: Timestamp,
    /// When it expires.
    #[serde(with = "crate::instant")]
    pub expires_at: Timestamp,
    /// The client's address.
    #[serde(default)]
    pub ip_address: Option<String>,
    /// The client's user agent.
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// Sessions of one tenant ([`Identities::sessions`]).
#[derive(Debug, Clone, Copy)]
pub struct Sessions<'a> {
    pub(crate) ids: &'a Identities,
}

fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Tokens are 32 random bytes in URL-safe base64 (43 characters).
fn plausible(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Sessions<'_> {
    /// Starts a session for an existing, active user; returns it and its token (the only
    /// time the token is available).
    pub async fn create(&self, user_id: &str, opts: NewSession) -> Result<(Session, SessionToken)> {
        let user = self.ids.users().get(user_id).await?.ok_or_else(|| {
            Error::not_found(format!("user '{user_id}' not found")).with("userId", user_id)
        })?;
        if user.status != UserStatus::Active {
            return Err(Error::validation(format!("user '{user_id}' is not active"))
                .with("userId", user_id));
        }
        for (field, v) in [
            ("ipAddress", &opts.ip_address),
            ("userAgent", &opts.user_agent),
        ] {
            if let Some(v) = v {
                check_key_part(field, v)?;
            }
        }
        let ttl = opts.ttl.unwrap_or(self.ids.settings().session_ttl);
        let span = jiff::SignedDuration::try_from(ttl)
            .map_err(|_| Error::validation("session ttl is too long").with("field", "ttl"))?;
        let now = now_ms();
        let expires = now
            .checked_add(span)
            .map_err(|_| Error::validation("session ttl is too long").with("field", "ttl"))?;
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes)
            .map_err(|e| Error::unavailable(format!("the OS random generator failed: {e}")))?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let d = digest(&token);
        let body = obj(
            json!({"tenantId": self.ids.tenant(), "digest": d, "userId": user.id,
            "createdAt": format_instant(now), "expiresAt": format_instant(expires),
            "ipAddress": opts.ip_address, "userAgent": opts.user_agent}),
        );
        self.ids
            .docs()
            .await?
            .insert(
                SESSIONS,
                Document {
                    id: doc_key("S", &[&d]),
                    body: body.clone(),
                },
            )
            .await?;
        let session = crate::decode(SESSIONS, Document { id: d, body })?;
        Ok((session, SessionToken(token)))
    }

    /// The session a token opens: `None` when it is unknown, another tenant's, expired, or
    /// its user is no longer active.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Session>> {
        if !plausible(token) {
            return Ok(None);
        }
        let docs = self.ids.docs().await?;
        let key = doc_key("S", &[&digest(token)]);
        let Some(d) = docs.get(SESSIONS, &key).await? else {
            return Ok(None);
        };
        if d.body.get("tenantId").and_then(Value::as_str) != Some(self.ids.tenant()) {
            return Ok(None);
        }
        let s: Session = crate::decode(SESSIONS, d)?;
        if s.expires_at <= now_ms() {
            docs.delete(SESSIONS, &key).await?;
            return Ok(None);
        }
        let user = docs
            .get(USERS, &doc_key("U", &[self.ids.tenant(), &s.user_id]))
            .await?;
        let active = user.is_some_and(|u| {
            u.body.get("status").and_then(Value::as_str) == Some("active")
                && u.body.get("pending") == Some(&Value::Bool(false))
        });
        Ok(active.then_some(s))
    }

    /// Ends one session (by its id); returns whether it existed.
    pub async fn revoke(&self, session_id: &str) -> Result<bool> {
        check_key_part("sessionId", session_id)?;
        let f = self.ids.filter(obj(json!({"digest": session_id})))?;
        Ok(self.ids.docs().await?.delete_where(SESSIONS, &f).await? > 0)
    }

    /// Ends every session of a user; returns how many.
    pub async fn revoke_all(&self, user_id: &str) -> Result<u64> {
        check_key_part("userId", user_id)?;
        let f = self.ids.filter(obj(json!({"userId": user_id})))?;
        self.ids.docs().await?.delete_where(SESSIONS, &f).await
    }

    /// A user's live sessions.
    pub async fn list(&self, user_id: &str) -> Result<Vec<Session>> {
        check_key_part("userId", user_id)?;
        let f = self.ids.filter(obj(
            json!({"userId": user_id, "expiresAt": {"$gt": format_instant(now_ms())}}),
        ))?;
        let q = chronos_core::DocQuery {
            filter: f,
            sort: Some((chronos_core::SortField::Meta("createdAt".into()), false)),
            skip: 0,
            limit: 10_000,
        };
        let docs = self.ids.docs().await?.find(SESSIONS, &q).await?;
        docs.into_iter()
            .map(|d| crate::decode(SESSIONS, d))
            .collect()
    }

    /// Removes this tenant's sessions that expired before `now`; returns how many.
    pub async fn purge_expired(&self, now: Timestamp) -> Result<u64> {
        let f = self
            .ids
            .filter(obj(json!({"expiresAt": {"$lte": format_instant(now)}})))?;
        self.ids.docs().await?.delete_where(SESSIONS, &f).await
    }
}
