//! The JSON error body shared by every HTTP endpoint.

use serde::{Deserialize, Serialize};

/// `{"error": {"code": "...", "message": "...", "request_id": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The detail of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_request`, `unauthorized`.
    pub code: String,
    /// Human-readable explanation, safe to show (never internal details).
    pub message: String,
    /// The request id, to find the server's log line for a 5xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}
