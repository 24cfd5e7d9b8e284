//! Accounts and API tokens.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::words::api_enum;

api_enum! {
    /// What an account may do (the server's role policy decides what each
    /// allows).
    Role, "role" {
        /// Everything, including accounts and tokens.
        Admin = "admin",
        /// Fleet operations: devices, enrollment, deployments, quarantine.
        Operator = "operator",
        /// Publishes, signs, promotes and deploys releases.
        ReleaseManager = "release-manager",
        /// Detection, gate policy, waivers, advisories, quarantine.
        Security = "security",
        /// Read-only.
        Viewer = "viewer",
    }
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// Id.
    pub id: String,
    /// Login name.
    pub name: String,
    /// Its role.
    pub role: Role,
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
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub name: String,
    /// Its role.
    pub role: Role,
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
    /// Label, e.g. `ci`: 1–128 bytes of one line, not only white space.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub label: String,
    /// Account name to issue for (admins only; default: the caller).
    #[serde(default)]
    pub account: Option<String>,
    /// Lifetime in seconds, 60 – 5 years (default: no expiry).
    #[serde(default)]
    #[schema(minimum = 60, maximum = 157680000)]
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
