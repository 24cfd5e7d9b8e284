//! Accounts and API tokens.

use axum::extract::State;
use axum::http::StatusCode;
use bulwark_pki::{IssuedToken, TokenKind};
use bulwark_store::{Account, ApiTokenRecord, NewAccount, NewApiToken};

use super::dto::{AccountView, CreateAccount, CreateToken, CreatedToken, TokenView, WhoAmI};
use super::valid_name;
use super::words::{role, store_role};
use crate::auth::{Authorized, Caller, Permission, need};
use crate::error::{ApiError, Json, Path};
use crate::state::AppState;

pub(crate) fn account_view(a: Account) -> AccountView {
    AccountView {
        id: a.id,
        name: a.name,
        role: role(a.role),
        created_at: a.created_at,
    }
}

fn token_view(t: ApiTokenRecord) -> TokenView {
    TokenView {
        id: t.id,
        account_id: t.account_id,
        label: t.label,
        created_at: t.created_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
    }
}

/// Who am I?
#[utoipa::path(get, path = "/api/v1/whoami", tag = "accounts",
    responses((status = 200, body = WhoAmI), (status = 401, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn whoami(caller: Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        account: account_view(caller.account),
        token_id: caller.token_id,
    })
}

/// Create an account (admin).
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = CreateAccount,
    responses((status = 201, body = AccountView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 409, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn create_account(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageAccounts>,
    Json(req): Json<CreateAccount>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    // The role is one of the API's words already (another is refused as
    // the body is read).
    if !valid_name(&req.name) {
        return Err(ApiError::InvalidFields(vec![
            "name: 1-64 of a-z 0-9 - _ . starting with a letter or digit".to_owned(),
        ]));
    }
    let account = state
        .0
        .store
        .create_account(
            NewAccount {
                name: req.name,
                role: store_role(req.role),
            },
            &caller.audit(state.0.clock.now()),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(account_view(account))))
}

/// List accounts (admin).
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts",
    responses((status = 200, body = Vec<AccountView>), (status = 403, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn list_accounts(
    State(state): State<AppState>,
    _: Authorized<need::ManageAccounts>,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    Ok(Json(
        state
            .0
            .store
            .list_accounts()
            .await?
            .into_iter()
            .map(account_view)
            .collect(),
    ))
}

/// Create an API token, for yourself or (admin) for another account.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageOwnTokens>,
    Json(req): Json<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let mut errors = Vec::new();
    if req.label.trim().is_empty()
        || req.label.len() > 128
        || req.label.chars().any(char::is_control)
    {
        errors.push("label: 1-128 printable characters".to_owned());
    }
    if let Some(s) = req.expires_in_secs
        && !(60..=5 * 365 * 86_400).contains(&s)
    {
        errors.push("expires_in_secs: must be between 60 and 157680000".to_owned());
    }
    if !errors.is_empty() {
        return Err(ApiError::InvalidFields(errors));
    }
    let owner = match req.account {
        Some(name) if name != caller.account.name => {
            caller.require(Permission::ManageAccounts)?;
            state
                .0
                .store
                .account_by_name(&name)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("account {name:?}")))?
        }
        _ => caller.account.clone(),
    };
    let now = state.0.clock.now();
    let expires_at = req
        .expires_in_secs
        .map(|s| now + time::Duration::seconds(s as i64));
    let token = IssuedToken::generate(TokenKind::Api, &*state.0.rng).map_err(ApiError::internal)?;
    state
        .0
        .store
        .insert_api_token(
            NewApiToken {
                id: token.id.clone(),
                account_id: owner.id.clone(),
                label: req.label,
                secret_hash: token.secret_hash.to_vec(),
                expires_at,
            },
            &caller.audit(now),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: token.id,
            token: token.plaintext.expose().to_owned(),
            account: owner.name,
            expires_at,
        }),
    ))
}

/// List API tokens: all for admins, one's own otherwise.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageOwnTokens>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let all = caller.require(Permission::ManageAccounts).is_ok();
    let tokens = state.0.store.list_api_tokens().await?;
    Ok(Json(
        tokens
            .into_iter()
            .filter(|t| all || t.account_id == caller.account.id)
            .map(token_view)
            .collect(),
    ))
}

/// Revoke an API token (one's own, or any for admins).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204), (status = 404, body = bulwark_proto::ErrorBody),
        (status = 409, description = "already revoked", body = bulwark_proto::ErrorBody)))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageOwnTokens>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || {
        ApiError::NotFound(format!(
            "token {:?}",
            id.chars().take(32).collect::<String>()
        ))
    };
    let (token, _) = state.0.store.api_token(&id).await?.ok_or_else(not_found)?;
    if token.account_id != caller.account.id {
        // Someone else's token: admins only, and others learn nothing about it.
        if caller.require(Permission::ManageAccounts).is_err() {
            return Err(not_found());
        }
    }
    if token.revoked_at.is_some() {
        return Err(ApiError::Conflict(format!("token {id} is already revoked")));
    }
    state
        .0
        .store
        .revoke_api_token(&id, &caller.audit(state.0.clock.now()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
