//! Device update routes (mTLS): the image repository and this device's
//! director metadata, artifact downloads with `Range`, and update reports.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bulwark_proto::{DeviceId, UpdateReport};
use bulwark_store::{Audit, UpdatePhase, UpdateStatus};

use super::{DeviceConn, RequestCtx, limit_errors};
use crate::error::{ApiError, Json, Path};
use crate::http::json_bytes;
use crate::state::AppState;

/// The device behind this connection: a verified, unrevoked certificate
/// that is the device's current one.
pub(crate) async fn authenticated_device(
    state: &AppState,
    conn: Option<Extension<DeviceConn>>,
) -> Result<DeviceId, ApiError> {
    super::authenticate(state, conn).await.map(|(id, _)| id)
}

/// Image repository metadata, for devices.
#[utoipa::path(get, path = "/api/v1/device/tuf/image/{name}", tag = "device",
    security(("device_mtls" = [])),
    params(("name" = String, Path, description = "metadata file name, e.g. timestamp.json or 3.root.json")),
    responses((status = 200, content_type = "application/json", body = Object), (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn image_metadata(
    State(state): State<AppState>,
    conn: Option<Extension<DeviceConn>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    authenticated_device(&state, conn).await?;
    let upd = state.updates();
    let now = state.0.clock.now();
    Ok(json_bytes(
        upd.image_file(&*state.0.store, &name, now).await?,
    ))
}

/// This device's director metadata.
#[utoipa::path(get, path = "/api/v1/device/tuf/director/{name}", tag = "device",
    security(("device_mtls" = [])),
    params(("name" = String, Path, description = "metadata file name")),
    responses((status = 200, content_type = "application/json", body = Object), (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn director_metadata(
    State(state): State<AppState>,
    conn: Option<Extension<DeviceConn>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let id = authenticated_device(&state, conn).await?;
    let upd = state.updates();
    let now = state.0.clock.now();
    Ok(json_bytes(
        upd.director_file(&*state.0.store, id, &name, now).await?,
    ))
}

/// An artifact by digest; honours `Range` for resumed downloads.
#[utoipa::path(get, path = "/api/v1/device/blobs/{sha256}", tag = "device",
    security(("device_mtls" = [])),
    params(("sha256" = String, Path, description = "artifact digest")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = bulwark_proto::ErrorBody), (status = 416, description = "range not satisfiable")))]
pub(crate) async fn blob(
    State(state): State<AppState>,
    conn: Option<Extension<DeviceConn>>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticated_device(&state, conn).await?;
    let upd = state.updates();
    crate::blobs::serve(&upd.blobs, &sha256, &headers).await
}

/// Report update progress or a refusal.
#[utoipa::path(post, path = "/api/v1/device/update-report", tag = "device", request_body = UpdateReport,
    security(("device_mtls" = [])),
    responses((status = 204, description = "recorded"), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 401, body = bulwark_proto::ErrorBody), (status = 403, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn update_report(
    State(state): State<AppState>,
    ctx: RequestCtx,
    super::AuthenticatedDevice { id, .. }: super::AuthenticatedDevice,
    Json(req): Json<UpdateReport>,
) -> Result<StatusCode, ApiError> {
    req.validate().map_err(limit_errors)?;
    let now = state.0.clock.now();
    // `validate` refused any other phase.
    let phase = UpdatePhase::parse(&req.phase).ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "update phase {:?} is valid but not stored",
            req.phase
        ))
    })?;
    let status = UpdateStatus {
        release: req.release,
        phase,
        outcome: req.outcome,
        detail: req.detail,
        at: now,
    };
    if matches!(
        status.phase,
        UpdatePhase::Refused | UpdatePhase::RolledBack | UpdatePhase::Failed
    ) {
        tracing::warn!(device = %id, release = %status.release, phase = %status.phase,
            outcome = ?status.outcome, detail = ?status.detail, "device update did not install");
    }
    state
        .0
        .store
        .record_update(
            id,
            &status,
            &Audit::device(now, id, ctx.source, ctx.request_id),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
