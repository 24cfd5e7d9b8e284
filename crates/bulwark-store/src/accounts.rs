//! Accounts and their API tokens (the hash of each token's secret, never
//! the secret).

use std::fmt;

use async_trait::async_trait;
use bulwark_proto::{JournalAction, state_digest};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::backend::{PostgresStore, SqliteStore, conflict, from_ms, new_id, opt_from_ms, rfc3339};
use crate::model::ms;
use crate::{Audit, Error, Result};

/// What an account may do. Fine-grained policy builds on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything, including accounts and tokens.
    Admin,
    /// Fleet operations: devices, enrollment, rollouts.
    Operator,
    /// Publishes, signs and promotes releases.
    ReleaseManager,
    /// Detection, alerts, quarantine, audit.
    Security,
    /// Read-only.
    Viewer,
}

impl Role {
    /// Every role, in order of decreasing privilege.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Operator,
        Role::ReleaseManager,
        Role::Security,
        Role::Viewer,
    ];

    /// The stored and displayed name (`release-manager`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::ReleaseManager => "release-manager",
            Role::Security => "security",
            Role::Viewer => "viewer",
        }
    }

    /// Parses [`Role::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A person or automation that holds API tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Random id.
    pub id: String,
    /// Unique login name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// Input to [`AccountRepo::create_account`].
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Unique login name.
    pub name: String,
    /// Role.
    pub role: Role,
}

/// A stored API token: never the token itself, only its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    /// Public token id (the `bwk_<id>_…` part).
    pub id: String,
    /// Owning account id.
    pub account_id: String,
    /// Human label.
    pub label: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// Issued at.
    pub created_at: OffsetDateTime,
    /// Optional expiry.
    pub expires_at: Option<OffsetDateTime>,
    /// Set once revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

impl fmt::Debug for ApiTokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiTokenRecord")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("label", &self.label)
            .field("secret_hash", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

/// Input to [`AccountRepo::insert_api_token`].
#[derive(Clone)]
pub struct NewApiToken {
    /// Public token id.
    pub id: String,
    /// Owning account id.
    pub account_id: String,
    /// Human label.
    pub label: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// Optional expiry.
    pub expires_at: Option<OffsetDateTime>,
}

impl fmt::Debug for NewApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiToken")
            .field("id", &self.id)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// Accounts and API tokens.
#[async_trait]
pub trait AccountRepo: Send + Sync + std::fmt::Debug {
    /// Creates an account; [`Error::Conflict`] when the name is taken.
    async fn create_account(&self, new: NewAccount, audit: &Audit) -> Result<Account>;
    /// Looks an account up by name.
    async fn account_by_name(&self, name: &str) -> Result<Option<Account>>;
    /// All accounts, by name.
    async fn list_accounts(&self) -> Result<Vec<Account>>;

    /// Stores a new API token (its hash only).
    async fn insert_api_token(&self, new: NewApiToken, audit: &Audit) -> Result<ApiTokenRecord>;
    /// A token and its account, by token id.
    async fn api_token(&self, id: &str) -> Result<Option<(ApiTokenRecord, Account)>>;
    /// All API tokens, newest first.
    async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRecord>>;
    /// Marks a token revoked; false (and no journal entry) when there was
    /// no such unrevoked token.
    async fn revoke_api_token(&self, id: &str, audit: &Audit) -> Result<bool>;
}

/// Digests of the state snapshots recorded as `before`/`after` in the
/// journal. Secrets and hashes of secrets are never part of a snapshot.
fn account_digest(a: &Account) -> String {
    state_digest(&serde_json::json!({"id": a.id, "name": a.name, "role": a.role.as_str()}))
}

fn token_digest(t: &ApiTokenRecord) -> String {
    state_digest(&serde_json::json!({
        "id": t.id, "account_id": t.account_id, "label": t.label,
        "expires_at": t.expires_at.map(rfc3339), "revoked_at": t.revoked_at.map(rfc3339),
    }))
}

const ACCOUNT_COLUMNS: &str = "id, name, role, created_at";
const API_TOKEN_COLUMNS: &str =
    "id, account_id, label, secret_hash, created_at, expires_at, revoked_at";

macro_rules! impl_account_repo {
    ($store:ty, $db:ty, $row:ty) => {
        impl $store {
            fn account(row: &$row) -> Result<Account> {
                let role: String = row.try_get("role")?;
                Ok(Account {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    role: Role::parse(&role)
                        .ok_or_else(|| Error::Corrupt { what: "account role", detail: role.clone() })?,
                    created_at: from_ms("account created_at", row.try_get("created_at")?)?,
                })
            }

            fn api_token_rec(row: &$row) -> Result<ApiTokenRecord> {
                Ok(ApiTokenRecord {
                    id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    label: row.try_get("label")?,
                    secret_hash: row.try_get("secret_hash")?,
                    created_at: from_ms("token created_at", row.try_get("created_at")?)?,
                    expires_at: opt_from_ms("token expires_at", row.try_get("expires_at")?)?,
                    revoked_at: opt_from_ms("token revoked_at", row.try_get("revoked_at")?)?,
                })
            }
        }

        #[async_trait]
        impl AccountRepo for $store {
            async fn create_account(&self, new: NewAccount, audit: &Audit) -> Result<Account> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO accounts (id, name, role, created_at) VALUES ($1, $2, $3, $4) RETURNING {ACCOUNT_COLUMNS}"
                )))
                .bind(new_id())
                .bind(&new.name)
                .bind(new.role.as_str())
                .bind(ms(audit.time))
                .fetch_one(&mut *tx)
                .await
                .map_err(conflict(&format!("account {:?}", new.name)))?;
                let account = Self::account(&row)?;
                let entry = audit.entry(JournalAction::AccountCreate, format!("account:{}", account.name), None,
                    Some(account_digest(&account)), &[("role", account.role.as_str().to_owned())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(account)
            }

            async fn account_by_name(&self, name: &str) -> Result<Option<Account>> {
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1")))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::account).transpose()
            }

            async fn list_accounts(&self) -> Result<Vec<Account>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY name")))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::account).collect()
            }

            async fn insert_api_token(&self, new: NewApiToken, audit: &Audit) -> Result<ApiTokenRecord> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO api_tokens (id, account_id, label, secret_hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {API_TOKEN_COLUMNS}"
                )))
                .bind(&new.id)
                .bind(&new.account_id)
                .bind(&new.label)
                .bind(&new.secret_hash)
                .bind(ms(audit.time))
                .bind(new.expires_at.map(ms))
                .fetch_one(&mut *tx)
                .await
                .map_err(conflict("API token id"))?;
                let token = Self::api_token_rec(&row)?;
                let entry = audit.entry(JournalAction::TokenCreate, format!("token:{}", token.id), None, Some(token_digest(&token)),
                    &[("account_id", token.account_id.clone()), ("label", token.label.clone())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(token)
            }

            async fn api_token(&self, id: &str) -> Result<Option<(ApiTokenRecord, Account)>> {
                let row = sqlx::query::<$db>(
                    "SELECT t.id, t.account_id, t.label, t.secret_hash, t.created_at, t.expires_at, t.revoked_at, \
                     a.name AS a_name, a.role AS a_role, a.created_at AS a_created_at \
                     FROM api_tokens t JOIN accounts a ON a.id = t.account_id WHERE t.id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let token = Self::api_token_rec(&row)?;
                let role: String = row.try_get("a_role")?;
                let account = Account {
                    id: token.account_id.clone(),
                    name: row.try_get("a_name")?,
                    role: Role::parse(&role).ok_or_else(|| Error::Corrupt { what: "account role", detail: role.clone() })?,
                    created_at: from_ms("account created_at", row.try_get("a_created_at")?)?,
                };
                Ok(Some((token, account)))
            }

            async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRecord>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {API_TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at DESC, id"
                )))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::api_token_rec).collect()
            }

            async fn revoke_api_token(&self, id: &str, audit: &Audit) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else { return Ok(false) };
                let before = Self::api_token_rec(&row)?;
                if before.revoked_at.is_some() {
                    return Ok(false);
                }
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 RETURNING {API_TOKEN_COLUMNS}"
                )))
                .bind(ms(audit.time))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                let after = Self::api_token_rec(&row)?;
                let entry = audit.entry(JournalAction::TokenRevoke, format!("token:{id}"), Some(token_digest(&before)), Some(token_digest(&after)), &[]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

impl_account_repo!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_account_repo!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
