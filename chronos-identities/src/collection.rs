//! Generic identities collections (`with({databaseType: 'identities', collection})` in the
//! spec): documents with an `ov` for optimistic locking, no history, no blobs — and
//! accounts, a generic collection with typed helpers.
//!
//! A document is stored as `G|tenant|id` with the caller's fields at top level beside
//! `tenantId`, `_docId`, `_ov`, `_createdAt` and `_updatedAt` (names a caller may not use), so filters
//! and sorts address the caller's fields directly.

use chronos_core::{
    check_key_part, doc_key, DocQuery, DocUpdate, Document, Error, ErrorKind, ItemId, Result,
    SortField,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::collections::{ROLES, SESSIONS, USERS, USER_EMAILS};
use crate::users::obj;
use crate::{now_text, Identities};

const RESERVED: [&str; 6] = [
    "tenantId",
    "_docId",
    "_ov",
    "_createdAt",
    "_updatedAt",
    "_id",
];
/// The largest page.
pub const MAX_PAGE: usize = 1000;

pub(crate) fn check_limit(limit: usize) -> Result<usize> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(
            Error::validation(format!("limit must be 1..={MAX_PAGE}, not {limit}"))
                .with("field", "limit"),
        );
    }
    Ok(limit)
}

/// A stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityDoc {
    /// Its id.
    pub id: String,
    /// Optimistic-locking version: 0 at creation, +1 per update.
    pub ov: u64,
    /// The caller's fields.
    pub data: Map<String, Value>,
    /// When created (ISO-8601).
    pub created_at: String,
    /// When last updated (ISO-8601).
    pub updated_at: String,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    /// The document id.
    pub id: String,
    /// Its version after the write.
    pub ov: u64,
}

/// Query options: sort by a field (ascending unless `descending`), skip, limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOptions {
    /// A field to sort by (default: the id).
    pub sort: Option<String>,
    /// Descending.
    pub descending: bool,
    /// Skip this many.
    pub skip: usize,
    /// At most this many (1..=1000).
    pub limit: usize,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            sort: None,
            descending: false,
            skip: 0,
            limit: 100,
        }
    }
}

/// One generic collection of one tenant ([`Identities::collection`]).
#[derive(Debug, Clone)]
pub struct IdentityCollection<'a> {
    pub(crate) ids: &'a Identities,
    pub(crate) name: String,
}

fn check_data(data: &Map<String, Value>) -> Result<()> {
    for k in RESERVED {
        if data.contains_key(k) {
            return Err(
                Error::validation(format!("field '{k}' is reserved by Chronos")).with("field", k),
            );
        }
    }
    chronos_core::check_map_depth(data)
}

fn to_doc(d: Document) -> IdentityDoc {
    let mut data = d.body;
    let ov = data.remove("_ov").and_then(|v| v.as_u64()).unwrap_or(0);
    let text = |v: Option<Value>| {
        v.and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let created_at = text(data.remove("_createdAt"));
    let updated_at = text(data.remove("_updatedAt"));
    data.remove("tenantId");
    let id = text(data.remove("_docId"));
    IdentityDoc {
        id,
        ov,
        data,
        created_at,
        updated_at,
    }
}

impl<'a> IdentityCollection<'a> {
    pub(crate) fn new(ids: &'a Identities, name: &str) -> Result<Self> {
        chronos_core::engine::validate_collection_name(name)?;
        if [USERS, USER_EMAILS, SESSIONS, ROLES].contains(&name) {
            return Err(Error::validation(format!(
                "'{name}' belongs to the typed helpers (users(), sessions(), roles()): it holds hashes and digests only they handle"
            ))
            .with("collection", name));
        }
        Ok(Self {
            ids,
            name: name.to_string(),
        })
    }

    fn key(&self, id: &str) -> Result<String> {
        check_key_part("id", id)?;
        Ok(doc_key("G", &[self.ids.tenant(), id]))
    }

    /// Creates a document (with `id`, or a new ObjectId-style one); `AlreadyExists` when the
    /// id is taken.
    pub async fn create(&self, data: &Map<String, Value>, id: Option<&str>) -> Result<Written> {
        check_data(data)?;
        let id = id.map_or_else(|| ItemId::generate().to_string(), str::to_string);
        let mut body = data.clone();
        let now = now_text();
        body.insert("tenantId".into(), self.ids.tenant().into());
        body.insert("_docId".into(), id.clone().into());
        body.insert("_ov".into(), 0.into());
        body.insert("_createdAt".into(), now.clone().into());
        body.insert("_updatedAt".into(), now.into());
        let doc = Document {
            id: self.key(&id)?,
            body,
        };
        match self.ids.docs().await?.insert(&self.name, doc).await {
            Ok(()) => Ok(Written { id, ov: 0 }),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(Error::already_exists(format!(
                "document '{id}' already exists in {}",
                self.name
            ))
            .with("collection", &self.name)
            .with("id", &id)),
            Err(e) => Err(e),
        }
    }

    /// A document by id.
    pub async fn get(&self, id: &str) -> Result<Option<IdentityDoc>> {
        let d = self
            .ids
            .docs()
            .await?
            .get(&self.name, &self.key(id)?)
            .await?;
        Ok(
            d.filter(|d| d.body.get("tenantId").and_then(Value::as_str) == Some(self.ids.tenant()))
                .map(to_doc),
        )
    }

    /// The tenant's documents matching `filter` (the filter language over the caller's
    /// fields).
    pub async fn query(&self, filter: &Value, opts: &QueryOptions) -> Result<Vec<IdentityDoc>> {
        let q = DocQuery {
            filter: self.ids.filter_and(filter)?,
            sort: Some((
                opts.sort
                    .as_ref()
                    .map_or(SortField::Id, |s| SortField::Meta(s.clone())),
                opts.descending,
            )),
            skip: opts.skip,
            limit: check_limit(opts.limit)?,
        };
        let docs = self.ids.docs().await?.find(&self.name, &q).await?;
        Ok(docs.into_iter().map(to_doc).collect())
    }

    /// Sets the given fields (others stay); with `expected_ov`, only if the document is still
    /// at that version (`Conflict` otherwise). `NotFound` when it does not exist.
    pub async fn update(
        &self,
        id: &str,
        fields: &Map<String, Value>,
        expected_ov: Option<u64>,
    ) -> Result<Written> {
        check_data(fields)?;
        let key = self.key(id)?;
        let mut expect = obj(json!({}));
        if let Some(ov) = expected_ov {
            expect.insert("_ov".into(), ov.into());
        }
        let mut set: Vec<(String, Value)> =
            fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        set.push(("_updatedAt".into(), now_text().into()));
        let up = DocUpdate {
            set,
            inc: vec![("_ov".into(), 1.into())],
        };
        let docs = self.ids.docs().await?;
        match docs
            .update_where(&self.name, &key, &self.ids.filter(expect)?, up)
            .await?
        {
            Some(d) => Ok(Written {
                id: id.to_string(),
                ov: d.body.get("_ov").and_then(Value::as_u64).unwrap_or(0),
            }),
            None => match self.get(id).await? {
                None => Err(Error::not_found(format!(
                    "document '{id}' not found in {}",
                    self.name
                ))
                .with("id", id)),
                Some(cur) => Err(Error::conflict(format!(
                    "document '{id}' is at ov {}, not the expected {}",
                    cur.ov,
                    expected_ov.unwrap_or_default()
                ))
                .with("id", id)),
            },
        }
    }

    /// Deletes a document (with `expected_ov`, only at that version); returns whether it
    /// existed.
    pub async fn delete(&self, id: &str, expected_ov: Option<u64>) -> Result<bool> {
        check_key_part("id", id)?;
        let docs = self.ids.docs().await?;
        let Some(cur) = self.get(id).await? else {
            return Ok(false);
        };
        if let Some(ov) = expected_ov {
            if ov != cur.ov {
                return Err(Error::conflict(format!(
                    "document '{id}' is at ov {}, not the expected {ov}",
                    cur.ov
                ))
                .with("id", id));
            }
        }
        // Conditional on the version read: a concurrent update makes this delete nothing.
        let f = self.ids.filter(obj(json!({"_docId": id, "_ov": cur.ov})))?;
        let n = docs.delete_where(&self.name, &f).await?;
        if n == 0 && expected_ov.is_some() {
            return Err(
                Error::conflict(format!("document '{id}' changed while being deleted"))
                    .with("id", id),
            );
        }
        Ok(n > 0)
    }
}

/// An account (B2B SaaS): the spec's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// The account id.
    #[serde(default)]
    pub id: String,
    /// Company name.
    pub company_name: String,
    /// Plan: `free`, `pro`, `enterprise` …
    pub plan: String,
    /// The owning user.
    pub owner_id: String,
    /// Seats.
    pub seats: u32,
    /// Billing references.
    #[serde(default)]
    pub billing: Option<Value>,
    /// Optimistic-locking version.
    #[serde(default)]
    pub ov: u64,
}

/// An account to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAccount {
    /// Company name.
    pub company_name: String,
    /// Plan.
    pub plan: String,
    /// The owning user (must exist in the tenant).
    pub owner_id: String,
    /// Seats.
    pub seats: u32,
    /// Billing references (`{customerId, subscriptionId}`).
    pub billing: Option<Value>,
}

impl IdentityCollection<'_> {
    /// Creates an account owned by an existing user of the tenant.
    pub async fn create_account(&self, a: &NewAccount) -> Result<Account> {
        check_key_part("companyName", &a.company_name)?;
        check_key_part("plan", &a.plan)?;
        if self.ids.users().get(&a.owner_id).await?.is_none() {
            return Err(Error::not_found(format!(
                "owner '{}' is not a user of the tenant",
                a.owner_id
            ))
            .with("field", "ownerId"));
        }
        let data = obj(
            json!({"companyName": a.company_name, "plan": a.plan, "ownerId": a.owner_id,
            "seats": a.seats, "billing": a.billing}),
        );
        let w = self.create(&data, None).await?;
        self.account(&w.id)
            .await?
            .ok_or_else(|| Error::internal("account vanished after create"))
    }

    /// An account by id.
    pub async fn account(&self, id: &str) -> Result<Option<Account>> {
        let Some(d) = self.get(id).await? else {
            return Ok(None);
        };
        let mut data = d.data;
        data.insert("id".into(), d.id.clone().into());
        data.insert("ov".into(), d.ov.into());
        crate::decode(
            &self.name,
            Document {
                id: d.id,
                body: data,
            },
        )
        .map(Some)
    }
}
