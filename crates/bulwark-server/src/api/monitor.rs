//! Monitoring routes: detection profiles, the live alert stream, and
//! device quarantine.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use bulwark_detect::{DEFAULT_GROUP, MAX_PROFILE_BYTES, Profile};
use bulwark_proto::DeviceId;
use bulwark_store::ProfileRow;
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::devices::device_view;
use super::dto::{
    ApplyProfile, DeviceView, ProfileList, ProfileView, QuarantineDevice, StreamEvent,
};
use super::valid_name;
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, Json};
use crate::state::AppState;

fn profile_view(row: ProfileRow) -> ProfileView {
    let behaviours = Profile::from_toml(&row.body)
        .map(|p| p.behaviours.into_iter().map(|b| b.name).collect())
        .unwrap_or_default();
    ProfileView {
        revision: row.revision,
        group: row.group,
        version: row.version,
        behaviours,
        created_by: row.created_by,
        created_at: row.created_at,
        toml: row.body,
    }
}

/// Apply a detection profile to its group (`group = "*"`: every group
/// without its own). Takes effect at once; versioned and journaled.
#[utoipa::path(post, path = "/api/v1/profiles", tag = "monitor", request_body = ApplyProfile,
    responses((status = 200, body = ProfileView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 409, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn apply_profile(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<ApplyProfile>,
) -> Result<Json<ProfileView>, ApiError> {
    caller.require(Permission::ManageProfiles)?;
    if req.toml.len() > MAX_PROFILE_BYTES {
        return Err(ApiError::InvalidFields(vec![format!(
            "toml: {} bytes is over the {MAX_PROFILE_BYTES}-byte limit",
            req.toml.len()
        )]));
    }
    let profile = Profile::from_toml(&req.toml).map_err(|e| ApiError::InvalidFields(e.problems))?;
    if profile.group != DEFAULT_GROUP && !valid_name(&profile.group) {
        return Err(ApiError::InvalidFields(vec![format!(
            "group: {:?} is not \"*\" or a name of a-z 0-9 - _ .",
            profile.group
        )]));
    }
    if profile.version.is_empty()
        || profile.version.len() > 64
        || profile.version.chars().any(char::is_control)
    {
        return Err(ApiError::InvalidFields(vec![
            "version: 1-64 printable characters".into(),
        ]));
    }
    let now = state.0.clock.now();
    let row = state
        .0
        .store
        .put_profile(
            &profile.group,
            &profile.version,
            &req.toml,
            &caller.audit(now),
        )
        .await?;
    if let Some(m) = state.monitor() {
        m.set_profile(profile);
    }
    Ok(Json(profile_view(row)))
}

/// Every stored profile version, oldest first.
#[utoipa::path(get, path = "/api/v1/profiles", tag = "monitor",
    responses((status = 200, body = ProfileList)))]
pub(crate) async fn list_profiles(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ProfileList>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let rows = state.0.store.profiles().await?;
    Ok(Json(ProfileList {
        profiles: rows.into_iter().map(profile_view).collect(),
    }))
}

fn check_reason(reason: &str) -> Result<&str, ApiError> {
    let reason = reason.trim();
    if reason.is_empty()
        || reason.len() > 1024
        || reason.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(ApiError::InvalidFields(vec![
            "reason: 1-1024 printable characters".into(),
        ]));
    }
    Ok(reason)
}

fn parse_id(id: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(id).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Quarantine a device: refused on the gateway (a live session is closed
/// after the isolate command), updates withheld, check-ins answered with
/// the quarantine so the agent isolates itself.
#[utoipa::path(post, path = "/api/v1/devices/{id}/quarantine", tag = "monitor", request_body = QuarantineDevice,
    params(("id" = String, Path, description = "Device id")),
    responses((status = 200, body = DeviceView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn quarantine_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<QuarantineDevice>,
) -> Result<Json<DeviceView>, ApiError> {
    caller.require(Permission::QuarantineDevices)?;
    let id = parse_id(&id)?;
    let reason = check_reason(&req.reason)?;
    let audit = caller.audit(state.0.clock.now());
    let device = crate::monitor::quarantine(&state, id, reason, None, &audit)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
    Ok(Json(device_view(&state, device)))
}

/// Release a device from quarantine (a separate, journaled decision).
#[utoipa::path(post, path = "/api/v1/devices/{id}/release", tag = "monitor", request_body = QuarantineDevice,
    params(("id" = String, Path, description = "Device id")),
    responses((status = 200, body = DeviceView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn release_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<QuarantineDevice>,
) -> Result<Json<DeviceView>, ApiError> {
    caller.require(Permission::QuarantineDevices)?;
    let id = parse_id(&id)?;
    let reason = check_reason(&req.reason)?;
    let audit = caller.audit(state.0.clock.now());
    let device = crate::monitor::release(&state, id, reason, &audit)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
    Ok(Json(device_view(&state, device)))
}

/// New alerts as they are raised, as Server-Sent Events: event
/// `detection` or `vulnerability` with the alert as JSON data; `lagged`
/// with the number of events skipped when the client reads too slowly.
#[utoipa::path(get, path = "/api/v1/alerts/stream", tag = "monitor",
    responses((status = 200, content_type = "text/event-stream", body = String)))]
pub(crate) async fn alert_stream(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let monitor = state
        .monitor()
        .ok_or_else(|| ApiError::NotFound("monitoring is not enabled".into()))?;
    let rx = monitor.subscribe();
    let closed = Box::pin(monitor.closed());
    let stream = futures_util::stream::unfold((rx, closed), |(mut rx, mut closed)| async move {
        let next = tokio::select! {
            r = rx.recv() => r,
            () = &mut closed => return None,
        };
        let event = match next {
            Ok(e) => {
                let name = match &e {
                    StreamEvent::Detection(_) => "detection",
                    StreamEvent::Vulnerability(_) => "vulnerability",
                };
                let data = match &e {
                    StreamEvent::Detection(a) => serde_json::to_string(a),
                    StreamEvent::Vulnerability(a) => serde_json::to_string(a),
                }
                .unwrap_or_default();
                Event::default().event(name).data(data)
            }
            Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), (rx, closed)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
