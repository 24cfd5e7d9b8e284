//! HTTP plumbing shared by both listeners (admin API and device
//! listener): request ids, the `observe` middleware, middleware failures
//! as [`ApiError`]s, JSON served byte for byte, the device connection's
//! identity ([`DeviceConn`]).

use std::net::SocketAddr;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bulwark_pki::PeerIdentity;
use bulwark_proto::{ErrorBody, ErrorDetail};

use crate::error::{ApiError, InternalCause};
use crate::metrics::HttpLabels;
use crate::state::AppState;

/// The request id, also sent back as `x-request-id` and journaled.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

/// A process-unique request id: a random per-process prefix and a counter.
/// (A fresh random UUID per request cost a `getrandom` system call each:
/// about 2% of the check-in path.)
fn next_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    #[expect(
        clippy::disallowed_methods,
        reason = "request-id prefix, drawn once per process: not a secret"
    )]
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_owned());
    format!("{prefix}{:016x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Assigns a request id, counts the response, and for a 5xx logs the real
/// cause (kept out of the body) and puts the request id in the body.
pub(crate) async fn observe(
    listener: &'static str,
    state: AppState,
    mut req: Request,
    next: Next,
) -> Response {
    let id = next_request_id();
    req.extensions_mut().insert(RequestId(id.clone()));
    // Kept for the 5xx log line; both clones are cheap (no allocation).
    let method = req.method().clone();
    let uri = req.uri().clone();
    let mut resp = next.run(req).await;
    let status = resp.status();
    state
        .0
        .metrics
        .http_requests
        .get_or_create(&HttpLabels {
            listener,
            status: status.as_u16(),
        })
        .inc();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    if status.is_server_error() {
        let cause = resp
            .extensions()
            .get::<InternalCause>()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        tracing::error!(request_id = %id, %method, path = uri.path(), status = status.as_u16(), error = %cause, "request failed");
        let body = ErrorBody {
            error: ErrorDetail {
                code: "internal".into(),
                message: "internal server error; see the server log for this request id".into(),
                request_id: Some(id),
            },
        };
        let headers = resp.headers().clone();
        let mut fresh = (status, axum::Json(body)).into_response();
        for (k, v) in &headers {
            if k != axum::http::header::CONTENT_LENGTH && k != axum::http::header::CONTENT_TYPE {
                fresh.headers_mut().insert(k, v.clone());
            }
        }
        return fresh;
    }
    resp
}

/// Turns a tower middleware failure (timeout, overload) into an [`ApiError`].
pub(crate) async fn middleware_error(err: tower::BoxError) -> ApiError {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::Timeout
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Overloaded
    } else {
        ApiError::Internal(anyhow::anyhow!("middleware: {err}"))
    }
}

/// Signed metadata, served byte for byte.
pub(crate) fn json_bytes(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The verified identity of a device connection, attached to each request.
#[derive(Debug, Clone)]
pub struct DeviceConn {
    /// The device, when a valid client certificate was presented.
    pub identity: Option<PeerIdentity>,
    /// The peer's address.
    pub peer: SocketAddr,
}
