//! Accounts and API tokens.

use axum::extract::State;
use axum::http::StatusCode;
use bulwark_store::{Account, ApiTokenRecord};

use super::dto::{AccountView, CreateAccount, CreateToken, CreatedToken, TokenView, WhoAmI};
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
    let account = state
        .accounts()
        .create(
            req.name,
            store_role(req.role),
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
            .accounts()
            .list()
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
    let accounts = state.accounts();
    let owner = match req.account {
        Some(name) if name != caller.account.name => {
            caller.require(Permission::ManageAccounts)?;
            accounts.by_name(&name).await?
        }
        _ => caller.account.clone(),
    };
    let token = accounts
        .issue_token(
            owner,
            req.label,
            req.expires_in_secs,
            &caller.audit(state.0.clock.now()),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: token.id,
            token: token.plaintext,
            account: token.owner.name,
            expires_at: token.expires_at,
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
    let owner = (!all).then_some(caller.account.id.as_str());
    let tokens = state.accounts().tokens(owner).await?;
    Ok(Json(tokens.into_iter().map(token_view).collect()))
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
    // Someone else's token: admins only, and others learn nothing about it.
    let admin = caller.require(Permission::ManageAccounts).is_ok();
    let own = caller.account.id.clone();
    state
        .accounts()
        .revoke_token(
            &id,
            |owner| admin || owner == own,
            &caller.audit(state.0.clock.now()),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
