//! [`ApiError`]: every failure the HTTP layer can report, mapped to a status
//! in one exhaustive `match` (no wildcard arm: a new variant forces a
//! decision), plus the [`Json`] and [`Query`] extractors whose rejections use
//! the same JSON error shape.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bulwark_proto::{ErrorBody, ErrorDetail};
use serde::de::DeserializeOwned;

/// An API failure. 4xx variants carry a message that is safe to show;
/// [`ApiError::Internal`] carries the real cause, which is logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request (bad JSON, bad id, bad parameter).
    #[error("{0}")]
    BadRequest(String),
    /// The body is valid JSON but breaks field rules; all problems listed.
    #[error("invalid fields: {}", .0.join("; "))]
    InvalidFields(Vec<String>),
    /// No or bad bearer token.
    #[error("missing or invalid API token")]
    Unauthenticated,
    /// A device route without a verified client certificate.
    #[error("a device client certificate is required")]
    ClientCertRequired,
    /// An enrollment token that is malformed, unknown or wrong.
    #[error("invalid enrollment token")]
    EnrollTokenInvalid,
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing.
    #[error("{0} not found")]
    NotFound(String),
    /// The request collides with existing state.
    #[error("{0}")]
    Conflict(String),
    /// The stored journal lacks what the request needs (a row deleted or
    /// its hashes damaged): `bulwark audit verify` names the bad entry.
    #[error(
        "the stored journal is damaged ({0}); run `bulwark audit verify` to find the bad entry"
    )]
    JournalDamaged(String),
    /// The release gate blocks this release; the message lists every reason.
    #[error("{0}")]
    GateBlocked(String),
    /// The release gate has no verdict yet (the scan is running).
    #[error("{0}")]
    GatePending(String),
    /// The enrollment token was valid once, but has expired.
    #[error("enrollment token has expired")]
    EnrollTokenExpired,
    /// Body over the size limit.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// Wrong content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request took longer than the server allows.
    #[error("request timed out")]
    Timeout,
    /// This caller has too many requests in flight.
    #[error("{0}")]
    TooManyRequests(String),
    /// The server is at capacity.
    #[error("server is overloaded, retry later")]
    Overloaded,
    /// Anything else: logged with the request id, reported generically.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// Marker put in a 5xx response's extensions so the logging middleware can
/// log the real cause next to the request id.
#[derive(Debug, Clone)]
pub(crate) struct InternalCause(pub(crate) String);

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            // 400
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::InvalidFields(_) => (StatusCode::BAD_REQUEST, "invalid_fields"),
            // 401
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::ClientCertRequired => {
                (StatusCode::UNAUTHORIZED, "client_certificate_required")
            }
            ApiError::EnrollTokenInvalid => (StatusCode::UNAUTHORIZED, "invalid_enrollment_token"),
            // 403
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            // 404
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            // 408
            ApiError::Timeout => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            // 409
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::GateBlocked(_) => (StatusCode::CONFLICT, "gate_blocked"),
            ApiError::JournalDamaged(_) => (StatusCode::CONFLICT, "journal_damaged"),
            ApiError::GatePending(_) => (StatusCode::CONFLICT, "gate_pending"),
            // 410
            ApiError::EnrollTokenExpired => (StatusCode::GONE, "enrollment_token_expired"),
            // 413
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            // 415
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            // 429
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            // 500
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            // 503
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
        }
    }

    /// Wraps any error as an internal one.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }
}

/// The update service's refusals as HTTP answers.
impl From<crate::updates::UpdateError> for ApiError {
    fn from(e: crate::updates::UpdateError) -> Self {
        use crate::updates::UpdateError;
        match e {
            UpdateError::Invalid(m) => ApiError::InvalidFields(vec![m]),
            UpdateError::TooLarge => ApiError::PayloadTooLarge,
            UpdateError::NotFound(m) => ApiError::NotFound(m),
            UpdateError::Conflict(m) => ApiError::Conflict(m),
            UpdateError::Forbidden(m) => ApiError::Forbidden(m),
            UpdateError::Overloaded => ApiError::Overloaded,
            UpdateError::Gate(e) => ApiError::from(e),
            UpdateError::Store(e) => ApiError::from(e),
            UpdateError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// The gate's refusals as HTTP answers.
impl From<crate::gate::GateError> for ApiError {
    fn from(e: crate::gate::GateError) -> Self {
        use crate::gate::GateError;
        match e {
            GateError::Blocked(m) => ApiError::GateBlocked(m),
            GateError::Pending(m) => ApiError::GatePending(m),
            GateError::Invalid(m) => ApiError::InvalidFields(vec![m]),
            GateError::Store(e) => ApiError::from(e),
            GateError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// The journal's read failures as HTTP answers.
impl From<crate::journal::JournalError> for ApiError {
    fn from(e: crate::journal::JournalError) -> Self {
        use crate::journal::JournalError;
        match e {
            JournalError::Damaged(m) => ApiError::JournalDamaged(m),
            JournalError::Store(e) => ApiError::from(e),
            JournalError::Internal(e) => ApiError::internal(e),
        }
    }
}

/// The accounts service's refusals as HTTP answers.
impl From<bulwark_services::accounts::AccountError> for ApiError {
    fn from(e: bulwark_services::accounts::AccountError) -> Self {
        use bulwark_services::accounts::AccountError;
        match e {
            AccountError::Invalid(m) => ApiError::InvalidFields(m),
            AccountError::NotFound(m) => ApiError::NotFound(m),
            AccountError::Conflict(m) => ApiError::Conflict(m),
            AccountError::Unauthenticated => ApiError::Unauthenticated,
            AccountError::Store(e) => ApiError::from(e),
            AccountError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// Enrollment's and check-in's refusals as HTTP answers.
impl From<bulwark_services::enrollment::EnrollError> for ApiError {
    fn from(e: bulwark_services::enrollment::EnrollError) -> Self {
        use bulwark_services::enrollment::EnrollError;
        match e {
            EnrollError::TokenInvalid => ApiError::EnrollTokenInvalid,
            EnrollError::TokenExpired => ApiError::EnrollTokenExpired,
            EnrollError::TokenUsedUp(m) => ApiError::Conflict(m),
            EnrollError::Invalid(m) => ApiError::InvalidFields(m),
            EnrollError::Store(e) => ApiError::from(e),
            EnrollError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// The devices service's failures as HTTP answers.
impl From<bulwark_services::devices::DeviceError> for ApiError {
    fn from(e: bulwark_services::devices::DeviceError) -> Self {
        use bulwark_services::devices::DeviceError;
        match e {
            DeviceError::Store(e) => ApiError::from(e),
        }
    }
}

impl From<bulwark_store::Error> for ApiError {
    fn from(e: bulwark_store::Error) -> Self {
        match e {
            bulwark_store::Error::Conflict { what } => {
                ApiError::Conflict(format!("{what} already exists"))
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(_) => {
                "internal server error; see the server log for this request id".to_owned()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
                request_id: None,
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let ApiError::Internal(cause) = &self {
            resp.extensions_mut()
                .insert(InternalCause(format!("{cause:#}")));
        }
        resp
    }
}

fn from_rejection(status: StatusCode, text: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(text),
        _ => ApiError::BadRequest(text),
    }
}

/// `axum::Json`, but a rejection is an [`ApiError`] with the JSON error shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    if let JsonRejection::JsonDataError(e) = &rej
        && let Some(problem) = unknown_word(&e.body_text())
    {
        return ApiError::InvalidFields(vec![problem]);
    }
    from_rejection(rej.status(), rej.body_text())
}

/// A body whose JSON is well formed but one of whose fields holds a word
/// outside its closed vocabulary (a role, an installer: `bulwark_api`'s
/// enums) breaks a field rule like any value a handler refuses: the
/// problem, with the field's path, for a 400 `invalid_fields`. Serde names
/// it in one fixed form (`de::Error::unknown_variant`), after the field's
/// path and axum's prefix: `…: role: unknown variant `root`, expected …`.
fn unknown_word(text: &str) -> Option<String> {
    let (_, problem) = text.split_once(": ")?;
    problem
        .contains(": unknown variant `")
        .then(|| problem.to_owned())
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` with [`ApiError`] rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(rej) => Err(query_rejection(rej)),
        }
    }
}

fn query_rejection(rej: QueryRejection) -> ApiError {
    from_rejection(rej.status(), rej.body_text())
}

/// `axum::extract::Path` whose rejection (a segment that is not valid
/// percent-encoded UTF-8, a value of the wrong type) is an [`ApiError`]
/// in the JSON error shape, like every other error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(rej) => Err(ApiError::BadRequest(format!(
                "path parameter: {}",
                rej.body_text()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let resp = ApiError::internal(anyhow::anyhow!("password=hunter2 in connection string"))
            .into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            resp.extensions()
                .get::<InternalCause>()
                .unwrap()
                .0
                .contains("hunter2")
        );
    }

    #[tokio::test]
    async fn an_unknown_word_is_an_invalid_field_other_type_errors_a_bad_request() {
        use bulwark_api::CreateAccount;
        async fn read(body: &'static str) -> ApiError {
            let req = axum::http::Request::post("/")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            Json::<CreateAccount>::from_request(req, &())
                .await
                .unwrap_err()
        }
        match read(r#"{"name":"eve","role":"root"}"#).await {
            ApiError::InvalidFields(p) => {
                assert_eq!(p.len(), 1);
                assert!(p[0].starts_with("role: unknown variant `root`"), "{p:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read(r#"{"name":7,"role":"admin"}"#).await,
            ApiError::BadRequest(_)
        ));
        assert!(matches!(
            read(r#"{"name":"eve","role":"admin","x":1}"#).await,
            ApiError::BadRequest(_)
        ));
    }

    #[test]
    fn store_conflicts_are_409() {
        let e: ApiError = bulwark_store::Error::Conflict {
            what: "account \"a\"".into(),
        }
        .into();
        assert_eq!(e.status_and_code().0, StatusCode::CONFLICT);
    }
}
