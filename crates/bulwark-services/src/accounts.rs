//! The accounts service: operator accounts and their API tokens (stored
//! hashed; the plaintext is shown once, at creation), and bearer-token
//! authentication. Who may call what is decided at the edge (roles and
//! permissions); this service keeps the rules of the records themselves.

use std::sync::Arc;

use bulwark_pki::{IssuedToken, PresentedToken, RandomSource, TokenKind};
use bulwark_store::{Account, AccountRepo, ApiTokenRecord, Audit, NewAccount, NewApiToken, Role};
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::valid_name;

/// Shortest token lifetime, in seconds.
pub const MIN_TOKEN_SECS: u64 = 60;
/// Longest token lifetime, in seconds (five years).
pub const MAX_TOKEN_SECS: u64 = 5 * 365 * 86_400;

/// Why an account or token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The request breaks a field rule (each message names its field).
    #[error("invalid request: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// No such account or token (the message names what was asked for).
    #[error("{0} not found")]
    NotFound(String),
    /// The change conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// No valid token was presented (the same answer whatever was wrong).
    #[error("not authenticated")]
    Unauthenticated,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] bulwark_store::Error),
    /// Anything else (the random source).
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// A token just issued: the plaintext exists only here.
#[derive(Debug)]
pub struct NewToken {
    /// The token's record id.
    pub id: String,
    /// The bearer token, shown once.
    pub plaintext: String,
    /// Its owner.
    pub owner: Account,
    /// When it stops working, if ever.
    pub expires_at: Option<OffsetDateTime>,
}

/// Accounts, tokens, authentication.
#[derive(Debug)]
pub struct Accounts {
    store: Arc<dyn AccountRepo>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
}

impl Accounts {
    /// The service over `store`; tokens drawn from `rng`.
    pub fn new(
        store: Arc<dyn AccountRepo>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
    ) -> Self {
        Self { store, clock, rng }
    }

    /// The account and token id behind a bearer token, if it is valid: a
    /// known id, a matching secret, not revoked, not expired.
    pub async fn authenticate(&self, bearer: &str) -> Result<(Account, String), AccountError> {
        let presented = PresentedToken::parse(TokenKind::Api, bearer.trim())
            .map_err(|_| AccountError::Unauthenticated)?;
        let (token, account) = self
            .store
            .api_token(&presented.id)
            .await?
            .ok_or(AccountError::Unauthenticated)?;
        let now = self.clock.now();
        let live = token.revoked_at.is_none() && token.expires_at.is_none_or(|t| now < t);
        // Hash compare first, always: the answer must not depend on which
        // check failed.
        if !presented.matches(&token.secret_hash) || !live {
            return Err(AccountError::Unauthenticated);
        }
        Ok((account, token.id))
    }

    /// Creates an account.
    pub async fn create(
        &self,
        name: String,
        role: Role,
        audit: &Audit,
    ) -> Result<Account, AccountError> {
        if !valid_name(&name) {
            return Err(AccountError::Invalid(vec![
                "name: 1-64 of a-z 0-9 - _ . starting with a letter or digit".to_owned(),
            ]));
        }
        Ok(self
            .store
            .create_account(NewAccount { name, role }, audit)
            .await?)
    }

    /// Every account.
    pub async fn list(&self) -> Result<Vec<Account>, AccountError> {
        Ok(self.store.list_accounts().await?)
    }

    /// The account called `name`.
    pub async fn by_name(&self, name: &str) -> Result<Account, AccountError> {
        self.store
            .account_by_name(name)
            .await?
            .ok_or_else(|| AccountError::NotFound(format!("account {name:?}")))
    }

    /// Issues a token for `owner`, labelled `label`, expiring after
    /// `expires_in_secs` (never when `None`).
    pub async fn issue_token(
        &self,
        owner: Account,
        label: String,
        expires_in_secs: Option<u64>,
        audit: &Audit,
    ) -> Result<NewToken, AccountError> {
        let mut errors = Vec::new();
        if label.trim().is_empty() || label.len() > 128 || label.chars().any(char::is_control) {
            errors.push("label: 1-128 printable characters".to_owned());
        }
        if let Some(s) = expires_in_secs
            && !(MIN_TOKEN_SECS..=MAX_TOKEN_SECS).contains(&s)
        {
            errors.push(format!(
                "expires_in_secs: must be between {MIN_TOKEN_SECS} and {MAX_TOKEN_SECS}"
            ));
        }
        if !errors.is_empty() {
            return Err(AccountError::Invalid(errors));
        }
        let expires_at = expires_in_secs.map(|s| audit.time + time::Duration::seconds(s as i64));
        let token = IssuedToken::generate(TokenKind::Api, &*self.rng)
            .map_err(|e| AccountError::Internal(e.into()))?;
        self.store
            .insert_api_token(
                NewApiToken {
                    id: token.id.clone(),
                    account_id: owner.id.clone(),
                    label,
                    secret_hash: token.secret_hash.to_vec(),
                    expires_at,
                },
                audit,
            )
            .await?;
        Ok(NewToken {
            id: token.id,
            plaintext: token.plaintext.expose().to_owned(),
            owner,
            expires_at,
        })
    }

    /// Tokens: every one, or those of the account `owner_id`.
    pub async fn tokens(
        &self,
        owner_id: Option<&str>,
    ) -> Result<Vec<ApiTokenRecord>, AccountError> {
        let tokens = self.store.list_api_tokens().await?;
        Ok(tokens
            .into_iter()
            .filter(|t| owner_id.is_none_or(|o| t.account_id == o))
            .collect())
    }

    /// Revokes token `id`. `may_revoke` says whether the caller may revoke
    /// a token of this owner (account id); when not, the token is as
    /// good as absent to them.
    pub async fn revoke_token(
        &self,
        id: &str,
        may_revoke: impl FnOnce(&str) -> bool,
        audit: &Audit,
    ) -> Result<(), AccountError> {
        let not_found = || {
            AccountError::NotFound(format!(
                "token {:?}",
                id.chars().take(32).collect::<String>()
            ))
        };
        let (token, _) = self.store.api_token(id).await?.ok_or_else(not_found)?;
        if !may_revoke(&token.account_id) {
            return Err(not_found());
        }
        if token.revoked_at.is_some() {
            return Err(AccountError::Conflict(format!(
                "token {id} is already revoked"
            )));
        }
        self.store.revoke_api_token(id, audit).await?;
        Ok(())
    }

    /// The clock the service stamps with (for callers building audits).
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}
