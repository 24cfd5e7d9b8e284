//! Accounts and API tokens.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// Id.
    pub id: String,
    /// Login name.
    pub name: String,
    /// `admin`, `operator`, `release-manager`, `security` or `viewer`.
    pub role: String,
    /// Created at.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// `POST /api/v1/accounts`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Login name: 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit.
    pub name: String,
    /// Role name.
    pub role: String,
}

/// The caller's identity.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// The account.
    pub account: AccountView,
    /// The token used.
    pub token_id: String,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Label, e.g. `ci`.
    pub label: String,
    /// Account name to issue for (admins only; default: the caller).
    #[serde(default)]
    pub account: Option<String>,
    /// Lifetime in seconds (default: no expiry).
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
}

/// A token just created. `token` is shown this once and never again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// Public id.
    pub id: String,
    /// The secret token.
    pub token: String,
    /// Account name.
    pub account: String,
    /// Expiry.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
}

/// A stored API token (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// Public id.
    pub id: String,
    /// Owning account id.
    pub account_id: String,
    /// Label.
    pub label: String,
    /// Created at.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Expiry.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// When revoked.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
}
