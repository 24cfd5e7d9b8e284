//! The device listener (`--device-listen`): HTTPS with optional client
//! certificates. `POST /api/v1/enroll` needs no certificate (it is how a
//! device gets one); every other device route needs a verified one.

pub(crate) mod tls;
pub(crate) mod updates;

pub use tls::{DeviceConn, serve, tls_config};

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Extension, Router};
use bulwark_proto::{CheckinRequest, CheckinResponse, DeviceId, EnrollRequest, EnrollResponse};
use bulwark_services::enrollment::Origin;
use tower::ServiceBuilder;

use crate::error::{ApiError, Json};
use crate::http::{middleware_error, observe};
use crate::metrics::ResultLabels;
use crate::state::AppState;

/// Request id and peer address, for the journal.
#[derive(Debug, Clone)]
pub(crate) struct RequestCtx {
    pub(crate) request_id: Option<String>,
    pub(crate) source: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestCtx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self {
            request_id: crate::auth::request_id(parts),
            source: crate::auth::source(parts),
        })
    }
}

fn count(state: &AppState, result: &'static str) {
    state
        .0
        .metrics
        .enrollments
        .get_or_create(&ResultLabels { result })
        .inc();
}

fn limit_errors(errs: Vec<bulwark_proto::LimitError>) -> ApiError {
    ApiError::InvalidFields(errs.iter().map(ToString::to_string).collect())
}

impl RequestCtx {
    fn origin(&self) -> Origin {
        Origin {
            request_id: self.request_id.clone(),
            source: self.source.clone(),
        }
    }
}

/// Trade one use of an enrollment token and a CSR for a device certificate.
#[utoipa::path(post, path = "/api/v1/enroll", tag = "device", request_body = EnrollRequest,
    security(()),
    responses((status = 201, body = EnrollResponse), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 401, body = bulwark_proto::ErrorBody), (status = 409, body = bulwark_proto::ErrorBody),
        (status = 410, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn enroll(
    State(state): State<AppState>,
    ctx: RequestCtx,
    Json(req): Json<EnrollRequest>,
) -> Result<(axum::http::StatusCode, Json<EnrollResponse>), ApiError> {
    let result = state.enrollment().enroll(req, ctx.origin()).await;
    count(
        &state,
        match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        },
    );
    Ok((axum::http::StatusCode::CREATED, Json(result?)))
}

/// Periodic check-in: presence, agent version, boot id, inventory.
#[utoipa::path(post, path = "/api/v1/device/checkin", tag = "device", request_body = CheckinRequest,
    security(("device_mtls" = [])),
    responses((status = 200, body = CheckinResponse), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 401, body = bulwark_proto::ErrorBody), (status = 403, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn checkin(
    State(state): State<AppState>,
    ctx: RequestCtx,
    AuthenticatedDevice { id, cached }: AuthenticatedDevice,
    Json(req): Json<CheckinRequest>,
) -> Result<Json<CheckinResponse>, ApiError> {
    let resp = state
        .enrollment()
        .checkin(id, cached, req, ctx.origin())
        .await?;
    state.0.metrics.checkins.inc();
    Ok(Json(resp))
}

/// The authenticated device of a request, as an extractor: it runs
/// before the body is read, so a peer without a valid device certificate
/// is refused before its body is parsed (and learns nothing of the schema
/// from a 400).
pub(crate) struct AuthenticatedDevice {
    pub(crate) id: DeviceId,
    pub(crate) cached: crate::presence::Cached,
}

impl axum::extract::FromRequestParts<AppState> for AuthenticatedDevice {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let identity = parts
            .extensions
            .get::<DeviceConn>()
            .and_then(|c| c.identity.clone());
        let (id, cached) = authenticate_identity(state, identity).await?;
        Ok(Self { id, cached })
    }
}

/// The device behind a connection, with its cached presence entry: a
/// verified certificate that is not revoked and is the device's current
/// one, of a device that is not revoked.
pub(crate) async fn authenticate(
    state: &AppState,
    conn: Option<Extension<DeviceConn>>,
) -> Result<(DeviceId, crate::presence::Cached), ApiError> {
    authenticate_identity(state, conn.and_then(|Extension(c)| c.identity)).await
}

/// [`authenticate`] for a connection's certificate identity (the HTTPS
/// device listener and the MQTT gateway share it).
pub(crate) async fn authenticate_identity(
    state: &AppState,
    identity: Option<bulwark_pki::PeerIdentity>,
) -> Result<(DeviceId, crate::presence::Cached), ApiError> {
    let identity = identity.ok_or(ApiError::ClientCertRequired)?;
    if state.0.revoked.contains(&identity.serial_hex) {
        return Err(ApiError::Forbidden(
            "device certificate has been revoked".into(),
        ));
    }
    let id = identity.device_id;
    let cached =
        match state.0.presence.cached(&id) {
            Some(c) => c,
            None => {
                let device = state
                    .0
                    .store
                    .device(id)
                    .await?
                    .ok_or_else(|| ApiError::Forbidden("unknown device".into()))?;
                if device.cert_serial != identity.serial_hex {
                    return Err(ApiError::Forbidden(
                        "certificate is not this device's current certificate".into(),
                    ));
                }
                state.0.presence.load(&device);
                state.0.presence.cached(&id).ok_or_else(|| {
                    ApiError::internal(anyhow::anyhow!("presence cache lost {id}"))
                })?
            }
        };
    if cached.revoked {
        return Err(ApiError::Forbidden("device has been revoked".into()));
    }
    Ok((id, cached))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route".into())
}

/// The device router. Requests reach it with a [`DeviceConn`] extension
/// set by [`serve`].
pub fn router(state: AppState, max_body_bytes: usize, timeout: Duration) -> Router {
    let obs_state = state.clone();
    Router::new()
        .route("/api/v1/enroll", post(enroll))
        .route("/api/v1/device/checkin", post(checkin))
        .route(
            "/api/v1/device/tuf/image/{name}",
            get(updates::image_metadata),
        )
        .route(
            "/api/v1/device/tuf/director/{name}",
            get(updates::director_metadata),
        )
        .route("/api/v1/device/blobs/{sha256}", get(updates::blob))
        .route("/api/v1/device/update-report", post(updates::update_report))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(move |req, next| {
                    observe("device", obs_state.clone(), req, next)
                }))
                .layer(HandleErrorLayer::new(middleware_error))
                .timeout(timeout)
                .layer(DefaultBodyLimit::max(max_body_bytes)),
        )
        .with_state(state)
}
