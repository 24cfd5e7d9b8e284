//! The release gate's API: verdicts and SBOMs of releases, the gate
//! policy, waivers, advisories and alerts.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_gate::{Policy, Stage, Waiver};
use serde::Deserialize;

use super::dto::{
    AdvisoriesView, AffectedView, AlertList, CreateWaiver, GateView, ImportView, PolicyView,
    WaiverList, WaiverView,
};
use super::dto::{GateState, SbomFormat};
use super::releases::find_release;
use super::words::{self, gate_state};
use crate::auth::{Authorized, need};
use crate::error::{ApiError, Json, Path, Query};
use crate::gate::Gate;
use crate::state::AppState;
use crate::wire::{alert_view, detection_view};

/// Largest advisory archive accepted (compressed).
const MAX_ADVISORY_UPLOAD: usize = 256 << 20;

fn json_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(ApiError::internal)
}

/// A release's gate verdict now, with its evidence.
#[utoipa::path(get, path = "/api/v1/releases/{reference}/gate", tag = "gate",
    params(("reference" = String, Path, description = "name@version", pattern = "^[a-z0-9][a-z0-9._-]{0,63}@[A-Za-z0-9][A-Za-z0-9.+_~-]{0,63}$")),
    responses((status = 200, body = GateView), (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn release_gate(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Path(reference): Path<String>,
) -> Result<Json<GateView>, ApiError> {
    let upd = state.updates();
    let rel = find_release(&state, &reference).await?;
    let now = state.0.clock.now();
    let j = upd
        .gate
        .judge(&*state.0.store, &rel, Stage::Sign, now)
        .await?;
    let (Some((row, scan)), Some(verdict)) = (j.scan, j.verdict) else {
        return Ok(Json(GateView {
            release: rel.reference(),
            state: GateState::Scanning,
            scanned_at: None,
            format: None,
            files_scanned: 0,
            components: 0,
            sbom_source: None,
            verdict: None,
            findings: None,
            notices: Vec::new(),
            warnings: Vec::new(),
        }));
    };
    let mut warnings = scan.warnings.clone();
    warnings.extend(scan.skipped.iter().map(|s| format!("not scanned: {s}")));
    warnings.extend(scan.scan_errors.iter().map(|s| format!("YARA: {s}")));
    Ok(Json(GateView {
        release: rel.reference(),
        state: gate_state(verdict.status),
        scanned_at: Some(row.scanned_at),
        format: Some(scan.format.clone()),
        files_scanned: scan.files_scanned,
        components: scan.sbom.components.len() as u64,
        // Empty when nothing could be taken from an unreadable artifact.
        sbom_source: row.sbom_source.map(words::sbom_source),
        verdict: Some(json_value(&verdict)?),
        findings: Some(json_value(&j.findings)?),
        notices: j.notices,
        warnings,
    }))
}

/// `?format=` of the SBOM export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct SbomQuery {
    /// `cyclonedx` (1.6, default) or `spdx` (2.3).
    #[serde(default)]
    #[param(inline)]
    format: Option<SbomFormat>,
}

/// A release's SBOM as CycloneDX 1.6 or SPDX 2.3 JSON.
#[utoipa::path(get, path = "/api/v1/releases/{reference}/sbom", tag = "gate",
    params(("reference" = String, Path, description = "name@version", pattern = "^[a-z0-9][a-z0-9._-]{0,63}@[A-Za-z0-9][A-Za-z0-9.+_~-]{0,63}$"), SbomQuery),
    responses((status = 200, body = Object), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 404, body = bulwark_proto::ErrorBody), (status = 409, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn release_sbom(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Path(reference): Path<String>,
    Query(q): Query<SbomQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let rel = find_release(&state, &reference).await?;
    let Some(row) = state.0.store.release_scan(&rel.id).await? else {
        return Err(ApiError::GatePending(format!(
            "{} is still being scanned; its SBOM is not ready",
            rel.reference()
        )));
    };
    let sbom: bulwark_sbom::Sbom = serde_json::from_str(&row.sbom).map_err(ApiError::internal)?;
    // Deterministic per release: the document's serial number is derived
    // from the release id, its time is the scan's.
    let id = uuid::Uuid::parse_str(&rel.id).unwrap_or_else(|_| uuid::Uuid::nil());
    let doc = match q.format.unwrap_or(SbomFormat::Cyclonedx) {
        SbomFormat::Cyclonedx => sbom.to_cyclonedx_1_6(id, row.scanned_at),
        SbomFormat::Spdx => sbom.to_spdx_2_3(id, row.scanned_at),
    }
    .map_err(|e| ApiError::Conflict(format!("the stored SBOM cannot be written: {e}")))?;
    Ok(Json(doc))
}

/// The gate policy in force.
#[utoipa::path(get, path = "/api/v1/gate/policy", tag = "gate",
    responses((status = 200, body = PolicyView)))]
pub(crate) async fn get_policy(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
) -> Result<Json<PolicyView>, ApiError> {
    let (version, policy) = Gate::policy(&*state.0.store).await?;
    Ok(Json(PolicyView {
        version,
        policy: json_value(&policy)?,
    }))
}

/// Replace the gate policy (a new version; journaled).
#[utoipa::path(put, path = "/api/v1/gate/policy", tag = "gate", request_body = Object,
    responses((status = 200, body = PolicyView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn put_policy(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageGate>,
    Json(body): Json<serde_json::Value>,
) -> Result<Json<PolicyView>, ApiError> {
    let raw = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let policy =
        Policy::from_json(&raw).map_err(|e| ApiError::InvalidFields(vec![e.to_string()]))?;
    let canonical = serde_json::to_string(&policy).map_err(ApiError::internal)?;
    let now = state.0.clock.now();
    let version = state
        .0
        .store
        .put_policy(&canonical, &caller.audit(now))
        .await?;
    Ok(Json(PolicyView {
        version,
        policy: json_value(&policy)?,
    }))
}

fn waiver_view(w: bulwark_store::WaiverRow, now: time::OffsetDateTime) -> WaiverView {
    WaiverView {
        expired: w.expires_at <= now,
        id: w.id,
        finding: w.finding,
        release: w.release,
        reason: w.reason,
        expires_at: w.expires_at,
        created_by: w.created_by,
        created_at: w.created_at,
    }
}

/// Add a waiver (journaled).
#[utoipa::path(post, path = "/api/v1/waivers", tag = "gate", request_body = CreateWaiver,
    responses((status = 201, body = WaiverView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn add_waiver(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageGate>,
    Json(req): Json<CreateWaiver>,
) -> Result<(StatusCode, Json<WaiverView>), ApiError> {
    let now = state.0.clock.now();
    #[expect(
        clippy::disallowed_methods,
        reason = "waiver row id, not a secret: ids need no RandomSource"
    )]
    let w = Waiver {
        id: uuid::Uuid::new_v4().simple().to_string(),
        finding: req.finding,
        release: req.release,
        reason: req.reason,
        expires_at: req.expires_at,
        created_by: String::new(),
    };
    let row = Gate::add_waiver(&*state.0.store, w, &caller.audit(now)).await?;
    Ok((StatusCode::CREATED, Json(waiver_view(row, now))))
}

/// Waivers (revoked ones are not listed).
#[utoipa::path(get, path = "/api/v1/waivers", tag = "gate",
    responses((status = 200, body = WaiverList)))]
pub(crate) async fn list_waivers(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
) -> Result<Json<WaiverList>, ApiError> {
    let now = state.0.clock.now();
    let waivers = state.0.store.waivers().await?;
    Ok(Json(WaiverList {
        waivers: waivers.into_iter().map(|w| waiver_view(w, now)).collect(),
    }))
}

/// Revoke a waiver (journaled).
#[utoipa::path(post, path = "/api/v1/waivers/{id}/revoke", tag = "gate",
    params(("id" = String, Path, description = "waiver id")),
    responses((status = 204), (status = 403, body = bulwark_proto::ErrorBody),
        (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn revoke_waiver(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageGate>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if id.len() > 64 {
        return Err(ApiError::NotFound(format!("waiver {id:.64}")));
    }
    let now = state.0.clock.now();
    if state.0.store.revoke_waiver(&id, &caller.audit(now)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("waiver {id}")))
    }
}

/// `?source=` of an advisory import.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct ImportQuery {
    /// A name for where the archive came from (e.g. the file name).
    #[serde(default)]
    source: Option<String>,
}

/// Import an OSV archive (OSV's all.zip, tar.gz, tar, or one advisory) or a
/// CISA KEV catalog; re-judges every release and device inventory and
/// raises alerts for new hits.
#[utoipa::path(post, path = "/api/v1/advisories", tag = "gate",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    params(ImportQuery),
    responses((status = 200, body = ImportView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 413, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn import_advisories(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageAdvisories>,
    Query(q): Query<ImportQuery>,
    body: Body,
) -> Result<Json<ImportView>, ApiError> {
    let upd = state.updates();
    let source = q.source.unwrap_or_else(|| "upload".into());
    if source.is_empty() || source.len() > 128 || source.chars().any(char::is_control) {
        return Err(ApiError::InvalidFields(vec![
            "source: 1-128 printable characters".into(),
        ]));
    }
    let bytes = axum::body::to_bytes(body, MAX_ADVISORY_UPLOAD)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let now = state.0.clock.now();
    let s = upd
        .gate
        .import(&*state.0.store, bytes.to_vec(), &source, &caller.audit(now))
        .await?;
    Ok(Json(ImportView {
        summary: s.report,
        changed: s.changed as u64,
        verdicts_changed: s.verdicts_changed as u64,
        alerts: {
            let events: Vec<crate::events::DomainEvent> = s
                .alerts
                .iter()
                .cloned()
                .map(crate::events::DomainEvent::Vulnerability)
                .collect();
            state.events().publish(&events).await;
            s.alerts.into_iter().map(alert_view).collect()
        },
        errors: s.errors,
    }))
}

/// The advisory database's size and when it was last imported.
#[utoipa::path(get, path = "/api/v1/advisories", tag = "gate",
    responses((status = 200, body = AdvisoriesView)))]
pub(crate) async fn advisories(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
) -> Result<Json<AdvisoriesView>, ApiError> {
    let upd = state.updates();
    let db = upd.gate.db();
    Ok(Json(AdvisoriesView {
        count: db.len() as u64,
        updated_at: db.updated_at(),
        kev_catalog: db.kev_catalog_version().map(str::to_owned),
    }))
}

/// Releases and devices an advisory (id or alias) hits now.
#[utoipa::path(get, path = "/api/v1/advisories/{id}/affected", tag = "gate",
    params(("id" = String, Path, description = "advisory id or alias")),
    responses((status = 200, body = AffectedView), (status = 400, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn affected(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Path(id): Path<String>,
) -> Result<Json<AffectedView>, ApiError> {
    let upd = state.updates();
    if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ApiError::BadRequest(format!(
            "{id:.64?} is not an advisory id"
        )));
    }
    let a = upd.gate.affected(&*state.0.store, &id).await?;
    Ok(Json(AffectedView {
        advisory: id,
        releases: a.releases,
        devices: a.devices,
    }))
}

/// Alerts, newest first (at most `limit`, 500, of each kind), filtered by
/// severity, device and age.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "gate", params(super::dto::AlertQuery),
    responses((status = 200, body = AlertList), (status = 400, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn alerts(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Query(q): Query<super::dto::AlertQuery>,
) -> Result<Json<AlertList>, ApiError> {
    let limit = q.limit.unwrap_or(500);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::InvalidFields(vec!["limit: 1-500".into()]));
    }
    let device = q
        .device
        .as_deref()
        .map(super::devices::parse_id)
        .transpose()?;
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => Some(
            state.0.clock.now()
                - bulwark_detect::parse_duration(s)
                    .map_err(|e| ApiError::InvalidFields(vec![format!("since: {e}")]))?,
        ),
    };
    let recent = |t: time::OffsetDateTime| since.is_none_or(|s| t >= s);
    // Filtered here from the newest 500 of each kind.
    let alerts = if q.severity.is_some() {
        Vec::new()
    } else {
        let subject = device.map(|d| format!("device:{d}"));
        state
            .0
            .store
            .alerts(500)
            .await?
            .into_iter()
            .filter(|a| subject.as_ref().is_none_or(|s| &a.subject == s) && recent(a.created_at))
            .take(limit as usize)
            .map(alert_view)
            .collect()
    };
    let detections = state
        .0
        .store
        .detection_alerts(device, 500)
        .await?
        .iter()
        .map(detection_view)
        .filter(|d| q.severity.is_none_or(|s| d.severity == s) && recent(d.created_at))
        .take(limit as usize)
        .collect();
    Ok(Json(AlertList { alerts, detections }))
}
