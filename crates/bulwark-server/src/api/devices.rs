//! Devices and enrollment tokens.

use axum::extract::State;
use axum::http::StatusCode;
use bulwark_proto::{DeviceId, Inventory};
use bulwark_services::enrollment::TokenRequest;
use bulwark_store::{Device, DeviceFilter, EnrollTokenRecord};

use super::dto::{
    CreateEnrollToken, CreatedEnrollToken, DeviceDetail, DeviceList, DeviceQuery, DeviceView,
    EnrollTokenView, RenameDevice, RevokeDevice, TagDevice,
};
use super::valid_name;
use super::words::{self, device_state, device_status};
use crate::auth::{Authorized, need};
use crate::error::{ApiError, Json, Path, Query};
use crate::presence::{self, is_online};
use crate::state::AppState;

use super::dto::words::MAX_TAGS_PER_REQUEST;

pub(crate) fn parse_id(id: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(id).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The API view of a device, with check-ins not yet flushed overlaid.
pub(crate) fn device_view(state: &AppState, d: Device) -> DeviceView {
    let now = state.0.clock.now();
    let poll = state.0.settings.poll_interval;
    let mut last_seen = d.last_seen;
    let mut agent_version = d.agent_version.clone();
    let mut boot_id = d.boot_id.clone();
    if let Some(seen) = state.0.presence.seen(&d.id)
        && seen.last_seen > last_seen
    {
        last_seen = seen.last_seen;
        agent_version = seen.agent_version;
        boot_id = seen.boot_id;
    }
    DeviceView {
        name: d.name.clone(),
        state: device_state(presence::device_state(&d, last_seen, now, poll)),
        release: d.installed_release,
        id: d.id,
        hostname: d.hostname,
        group: d.group,
        environment: d.environment,
        tags: d.tags,
        status: device_status(d.status),
        online: d.status == bulwark_store::DeviceStatus::Active && is_online(last_seen, now, poll),
        last_seen,
        enrolled_at: d.enrolled_at,
        agent_version,
        boot_id,
        cert_serial: d.cert_serial,
        cert_not_after: d.cert_not_after,
        inventory_digest: d.inventory_digest,
        revoked_at: d.revoked_at,
        revoked_reason: d.revoked_reason,
        quarantined_at: d.quarantined_at,
        quarantine_reason: d.quarantine_reason,
    }
}

/// Whether a device view passes the listing's filters that the store
/// does not apply (state, release, search).
fn listed(v: &DeviceView, q: &DeviceQuery, search: Option<&str>) -> bool {
    if q.state.is_some_and(|s| s != v.state) {
        return false;
    }
    if let Some(want) = q.release.as_deref() {
        let Some(have) = v.release.as_deref() else {
            return false;
        };
        let product = have.split_once('@').map_or(have, |(name, _)| name);
        if have != want && (want.contains('@') || product != want) {
            return false;
        }
    }
    if let Some(needle) = search {
        let id = v.id.to_string();
        let hit = id.starts_with(needle)
            || v.name.contains(needle)
            || v.hostname
                .as_deref()
                .is_some_and(|h| h.to_lowercase().contains(needle))
            || v.tags
                .iter()
                .any(|(k, val)| format!("{k}={val}").to_lowercase().contains(needle));
        if !hit {
            return false;
        }
    }
    true
}

/// Devices read from the store per pass while filtering on state, release
/// or search.
const SCAN_PAGE: u32 = 1000;

/// List devices, filtered and paginated by id.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", params(DeviceQuery),
    responses((status = 200, body = DeviceList), (status = 400, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn list_devices(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Query(q): Query<DeviceQuery>,
) -> Result<Json<DeviceList>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::InvalidFields(vec![
            "limit: must be between 1 and 1000".into(),
        ]));
    }
    let search = match q.search.as_deref().map(str::trim) {
        Some("") => {
            return Err(ApiError::InvalidFields(vec![
                "search: must not be empty".into(),
            ]));
        }
        Some(s) if s.len() > 256 => {
            return Err(ApiError::InvalidFields(vec![
                "search: at most 256 bytes".into(),
            ]));
        }
        other => other.map(str::to_lowercase),
    };
    if q.release
        .as_deref()
        .is_some_and(|r| r.is_empty() || r.len() > 129)
    {
        return Err(ApiError::InvalidFields(vec![
            "release: 1-129 bytes, name@version or a product name".into(),
        ]));
    }
    let filtered = q.state.is_some() || q.release.is_some() || search.is_some();
    if q.name.as_deref().is_some_and(|n| !valid_name(n)) {
        return Err(ApiError::InvalidFields(vec![
            "name: 1-64 of a-z 0-9 - _ .".into(),
        ]));
    }
    let mut filter = DeviceFilter {
        group: q.group.clone(),
        environment: q.environment.clone(),
        name: q.name.clone(),
        after: q.after.as_deref().map(parse_id).transpose()?,
        limit: if filtered { SCAN_PAGE } else { limit },
    };
    // The store applies group and environment; state depends on check-ins
    // not yet flushed, so it (and release and search, with it) is applied
    // here, reading on until the page is full or the fleet is exhausted.
    let mut devices = Vec::new();
    'scan: loop {
        let page = state.0.store.list_devices(&filter).await?;
        let read = page.len();
        for d in page {
            filter.after = Some(d.id);
            let v = device_view(&state, d);
            if listed(&v, &q, search.as_deref()) {
                devices.push(v);
                if devices.len() == limit as usize {
                    break 'scan;
                }
            }
        }
        if read < filter.limit as usize {
            break;
        }
    }
    let next_after = (devices.len() == limit as usize)
        .then(|| devices.last().map(|d| d.id))
        .flatten();
    Ok(Json(DeviceList {
        devices,
        next_after,
    }))
}

/// One device with its inventory.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "Device id", pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")),
    responses((status = 200, body = DeviceDetail), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn show_device(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Path(id): Path<String>,
) -> Result<Json<DeviceDetail>, ApiError> {
    let id = parse_id(&id)?;
    let device = state
        .0
        .store
        .device(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
    let inventory = match state.0.store.inventory(id).await? {
        Some(stored) => {
            Some(serde_json::from_str::<Inventory>(&stored.json).map_err(ApiError::internal)?)
        }
        None => None,
    };
    let view = |s: bulwark_store::UpdateStatus| -> Result<_, ApiError> {
        Ok(super::dto::UpdateStatusView {
            release: s.release,
            phase: words::update_phase(s.phase),
            outcome: s.outcome,
            detail: s.detail,
            at: s.at,
        })
    };
    let update = state
        .0
        .store
        .device_update(id)
        .await?
        .map(view)
        .transpose()?;
    let update_history = state
        .0
        .store
        .update_events(id, 20)
        .await?
        .into_iter()
        .map(view)
        .collect::<Result<_, _>>()?;
    let monitor = state.monitor();
    let isolation = monitor
        .isolation(&device.id)
        .map(|r| super::dto::IsolationView {
            isolated: r.isolated,
            detail: r.detail,
        });
    let rejections = monitor
        .rejections(&device.id)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let alerts = state
        .0
        .store
        .detection_alerts(Some(device.id), 20)
        .await?
        .iter()
        .map(crate::wire::detection_view)
        .collect();
    let latest_telemetry = state
        .0
        .store
        .latest_telemetry(device.id)
        .await?
        .and_then(|l| {
            serde_json::from_str(&l.body)
                .ok()
                .map(|telemetry| super::dto::LatestTelemetryView {
                    received_at: l.received_at,
                    telemetry,
                })
        });
    Ok(Json(DeviceDetail {
        device: device_view(&state, device),
        inventory,
        update,
        update_history,
        isolation,
        rejections,
        alerts,
        latest_telemetry,
    }))
}

/// A device's per-minute telemetry history (kept for the configured
/// retention, 7 days by default), oldest first.
#[utoipa::path(get, path = "/api/v1/devices/{id}/telemetry", tag = "devices",
    params(("id" = String, Path, description = "Device id", pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"), super::dto::TelemetryQuery),
    responses((status = 200, body = super::dto::TelemetryHistory), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn device_telemetry(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Path(id): Path<String>,
    Query(q): Query<super::dto::TelemetryQuery>,
) -> Result<Json<super::dto::TelemetryHistory>, ApiError> {
    let id = parse_id(&id)?;
    let since = match q.since.as_deref() {
        None => time::Duration::hours(1),
        Some(s) => bulwark_detect::parse_duration(s)
            .map_err(|e| ApiError::InvalidFields(vec![format!("since: {e}")]))?,
    };
    let limit = q.limit.unwrap_or(1440);
    if !(1..=10_080).contains(&limit) {
        return Err(ApiError::InvalidFields(vec!["limit: 1-10080".into()]));
    }
    state
        .0
        .store
        .device(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
    let from = crate::monitor::history::minute_of(state.0.clock.now() - since);
    let minutes = state
        .0
        .store
        .telemetry_minutes(id, from, limit)
        .await?
        .into_iter()
        .map(|m| {
            let n = m.samples.max(1) as f64;
            super::dto::TelemetryMinuteView {
                minute: m.minute,
                samples: m.samples,
                cpu_avg: m.cpu_sum / n,
                cpu_max: m.cpu_max,
                memory_avg: m.memory_sum / n,
                memory_max: m.memory_max,
                processes_max: m.processes_max,
                bytes_in: m.bytes_in,
                bytes_out: m.bytes_out,
                packets_in: m.packets_in,
                packets_out: m.packets_out,
                connection_attempts: m.connection_attempts,
                failed_logins: m.failed_logins,
                failed_attempts: m.failed_attempts,
                listening_max: m.listening_max,
                connections_max: m.connections_max,
                destinations_max: m.destinations_max,
                unanswered_max: m.unanswered_max,
            }
        })
        .collect();
    Ok(Json(super::dto::TelemetryHistory {
        device_id: id.to_string(),
        minutes,
    }))
}

/// Set or remove tags.
#[utoipa::path(post, path = "/api/v1/devices/{id}/tags", tag = "devices", request_body = TagDevice,
    params(("id" = String, Path, description = "Device id", pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")),
    responses((status = 200, body = DeviceView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn tag_device(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageDevices>,
    Path(id): Path<String>,
    Json(req): Json<TagDevice>,
) -> Result<Json<DeviceView>, ApiError> {
    let id = parse_id(&id)?;
    let mut errors = Vec::new();
    if req.tags.is_empty() || req.tags.len() > MAX_TAGS_PER_REQUEST {
        errors.push(format!(
            "tags: between 1 and {MAX_TAGS_PER_REQUEST} per request"
        ));
    }
    for (k, v) in &req.tags {
        if !valid_name(k) {
            errors.push(format!("tags.{k}: keys are 1-64 of a-z 0-9 - _ ."));
        }
        if v.len() > 256 || v.chars().any(char::is_control) {
            errors.push(format!(
                "tags.{k}: values are at most 256 printable characters"
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::InvalidFields(errors));
    }
    let tags: Vec<(String, String)> = req.tags.into_iter().collect();
    let device = state
        .0
        .store
        .tag_device(id, &tags, &caller.audit(state.0.clock.now()))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
    Ok(Json(device_view(&state, device)))
}

/// Rename a device (names are unique).
#[utoipa::path(post, path = "/api/v1/devices/{id}/rename", tag = "devices", request_body = RenameDevice,
    params(("id" = String, Path, description = "Device id", pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")),
    responses((status = 200, body = DeviceView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 404, body = bulwark_proto::ErrorBody), (status = 409, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn rename_device(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageDevices>,
    Path(id): Path<String>,
    Json(req): Json<RenameDevice>,
) -> Result<Json<DeviceView>, ApiError> {
    let id = parse_id(&id)?;
    if !valid_name(&req.name) || DeviceId::parse(&req.name).is_ok() {
        return Err(ApiError::InvalidFields(vec![
            "name: 1-64 of a-z 0-9 - _ . and not a device id".into(),
        ]));
    }
    let device = state
        .0
        .store
        .rename_device(id, &req.name, &caller.audit(state.0.clock.now()))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
    Ok(Json(device_view(&state, device)))
}

/// Revoke a device: its certificate is refused from now on.
#[utoipa::path(post, path = "/api/v1/devices/{id}/revoke", tag = "devices", request_body = RevokeDevice,
    params(("id" = String, Path, description = "Device id", pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")),
    responses((status = 200, body = DeviceView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn revoke_device(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::RevokeDevices>,
    Path(id): Path<String>,
    Json(req): Json<RevokeDevice>,
) -> Result<Json<DeviceView>, ApiError> {
    let id = parse_id(&id)?;
    let reason = check_reason(&req.reason)?;
    let device = state
        .0
        .store
        .revoke_device(id, reason, &caller.audit(state.0.clock.now()))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
    state.0.revoked.insert(device.cert_serial.clone());
    state.0.presence.mark_revoked(&id);
    tracing::info!(device = %id, by = %caller.account.name, "device revoked");
    Ok(Json(device_view(&state, device)))
}

/// A recorded reason (revoke, quarantine, release): 1–1024 printable
/// characters, trimmed.
pub(crate) fn check_reason(reason: &str) -> Result<&str, ApiError> {
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

fn enroll_token_view(t: EnrollTokenRecord) -> EnrollTokenView {
    EnrollTokenView {
        id: t.id,
        group: t.group,
        environment: t.environment,
        created_at: t.created_at,
        expires_at: t.expires_at,
        used_at: t.used_at,
        device_id: t.device_id,
        max_uses: t.max_uses,
        uses: t.uses,
    }
}

/// Create an enrollment token for a group and environment (`uses`, default 1).
#[utoipa::path(post, path = "/api/v1/enroll-tokens", tag = "enrollment", request_body = CreateEnrollToken,
    responses((status = 201, body = CreatedEnrollToken), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn create_enroll_token(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageEnrollment>,
    Json(req): Json<CreateEnrollToken>,
) -> Result<(StatusCode, Json<CreatedEnrollToken>), ApiError> {
    let (token, rec) = state
        .enrollment()
        .create_token(
            TokenRequest {
                group: req.group,
                environment: req.environment,
                ttl_secs: req.ttl_secs,
                uses: req.uses,
                created_by: caller.account.id.clone(),
            },
            &caller.audit(state.0.clock.now()),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEnrollToken {
            id: rec.id,
            token,
            group: rec.group,
            environment: rec.environment,
            expires_at: rec.expires_at,
            max_uses: rec.max_uses,
        }),
    ))
}

/// List enrollment tokens.
#[utoipa::path(get, path = "/api/v1/enroll-tokens", tag = "enrollment",
    responses((status = 200, body = Vec<EnrollTokenView>), (status = 403, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn list_enroll_tokens(
    State(state): State<AppState>,
    _: Authorized<need::ManageEnrollment>,
) -> Result<Json<Vec<EnrollTokenView>>, ApiError> {
    Ok(Json(
        state
            .0
            .store
            .list_enroll_tokens()
            .await?
            .into_iter()
            .map(enroll_token_view)
            .collect(),
    ))
}
