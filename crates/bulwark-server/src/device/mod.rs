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
use bulwark_pki::{PresentedToken, TokenKind};
use bulwark_proto::{CheckinRequest, CheckinResponse, DeviceId, EnrollRequest, EnrollResponse};
use bulwark_store::{Audit, NewDevice};
use tower::ServiceBuilder;

use crate::api::{middleware_error, observe};
use crate::error::{ApiError, Json};
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

/// A token with no use left: a one-time token used, or a multi-use token
/// used `max_uses` times. Both are the same 409.
fn used_up(token: &bulwark_store::EnrollTokenRecord) -> ApiError {
    ApiError::Conflict(if token.max_uses > 1 {
        format!(
            "enrollment token has already been used (all {} uses)",
            token.max_uses
        )
    } else {
        "enrollment token has already been used".into()
    })
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
    let result = enroll_inner(&state, &ctx, req).await;
    count(
        &state,
        match &result {
            Ok(_) => "ok",
            Err(ApiError::EnrollTokenInvalid) => "invalid_token",
            Err(ApiError::EnrollTokenExpired) => "expired_token",
            Err(ApiError::Conflict(_)) => "used_token",
            Err(_) => "error",
        },
    );
    result.map(|r| (axum::http::StatusCode::CREATED, Json(r)))
}

async fn enroll_inner(
    state: &AppState,
    ctx: &RequestCtx,
    req: EnrollRequest,
) -> Result<EnrollResponse, ApiError> {
    req.validate().map_err(limit_errors)?;
    let presented = PresentedToken::parse(TokenKind::Enroll, &req.token)
        .map_err(|_| ApiError::EnrollTokenInvalid)?;
    let token = state
        .0
        .store
        .enroll_token(&presented.id)
        .await?
        .ok_or(ApiError::EnrollTokenInvalid)?;
    if !presented.matches(&token.secret_hash) {
        return Err(ApiError::EnrollTokenInvalid);
    }
    let now = state.0.clock.now();
    if token.uses >= token.max_uses {
        return Err(used_up(&token));
    }
    if token.expires_at <= now {
        return Err(ApiError::EnrollTokenExpired);
    }
    let mut raw = [0u8; 16];
    state.0.rng.fill(&mut raw).map_err(ApiError::internal)?;
    let id = DeviceId::from_uuid(uuid::Builder::from_random_bytes(raw).into_uuid());
    let cert = state
        .0
        .ca
        .sign_device_csr(
            &req.csr_pem,
            id,
            &*state.0.rng,
            now,
            state.0.settings.device_cert_validity,
        )
        .map_err(|e| match e {
            bulwark_pki::Error::InvalidCsr { reason } => {
                ApiError::InvalidFields(vec![format!("csr_pem: {reason}")])
            }
            other => ApiError::internal(other),
        })?;
    let new = NewDevice {
        id,
        hostname: req.hostname,
        cert_serial: cert.serial_hex.clone(),
        cert_not_after: cert.not_after,
    };
    let device = state
        .0
        .store
        .enroll_device(
            &token.id,
            new,
            &Audit::device(now, id, ctx.source.clone(), ctx.request_id.clone()),
        )
        .await?
        // Lost a race with other enrollments using the same token.
        .ok_or_else(|| used_up(&token))?;
    state.0.presence.load(&device);
    tracing::info!(device = %id, group = %device.group, environment = %device.environment, "device enrolled");
    Ok(EnrollResponse {
        device_id: id,
        certificate_pem: cert.pem,
        ca_pem: state.0.ca.cert_pem().to_owned(),
        poll_interval_secs: state.0.settings.poll_interval.as_secs() as u32,
    })
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
    req.validate().map_err(limit_errors)?;
    let now = state.0.clock.now();
    let mut known_digest = cached.inventory_digest;
    if let Some(inv) = &req.inventory {
        if known_digest.as_deref() != Some(req.inventory_digest.as_str()) {
            let json = serde_json::to_string(inv).map_err(ApiError::internal)?;
            state
                .0
                .store
                .put_inventory(
                    id,
                    &req.inventory_digest,
                    &json,
                    &Audit::device(now, id, ctx.source.clone(), ctx.request_id.clone()),
                )
                .await?;
            state
                .0
                .presence
                .set_inventory_digest(&id, &req.inventory_digest);
        }
        known_digest = Some(req.inventory_digest.clone());
    }
    state
        .0
        .presence
        .record(id, now, &req.agent_version, req.boot_id.as_deref());
    state.0.metrics.checkins.inc();
    Ok(Json(CheckinResponse {
        poll_interval_secs: state.0.settings.poll_interval.as_secs() as u32,
        send_inventory: known_digest.as_deref() != Some(req.inventory_digest.as_str()),
        server_time: now,
        quarantine: cached.quarantine.clone(),
    }))
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
