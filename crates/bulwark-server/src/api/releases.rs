//! Blobs, the image repository, releases, promotion and deployments.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bulwark_gate::Stage;
use bulwark_store::Release;

use super::dto::Installer;
use super::dto::{
    AddSignature, BlobView, CreateDeployment, CreateRelease, DeploymentList, DeploymentView,
    GcView, OnlineKeyView, PromoteRelease, ReleaseList, ReleaseView, RootAccepted, SigningView,
};
use super::valid_name;
use super::words::{installer, release_status, store_installer};
use crate::auth::{Authorized, need};
use crate::error::{ApiError, Json, Path};
use crate::http::json_bytes;
use crate::state::AppState;
use crate::updates::Updates;
use crate::updates::blobs::valid_sha256;

/// Blobs younger than this are never collected (an upload whose release
/// is about to be created).
const GC_GRACE: time::Duration = time::Duration::hours(1);
/// Longest smoke test timeout a release may ask for.
const MAX_SMOKE_TIMEOUT_SECS: u64 = 3600;

fn view(r: Release) -> ReleaseView {
    ReleaseView {
        reference: r.reference(),
        target: r.target_path(),
        name: r.name,
        version: r.version,
        sha256: r.sha256,
        length: r.length,
        installer: installer(r.installer),
        install_path: r.install_path,
        smoke_test: r.smoke_test,
        smoke_timeout_secs: r.smoke_timeout_secs,
        status: release_status(r.status),
        environments: r.environments,
        created_at: r.created_at,
        published_at: r.published_at,
    }
}

fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.as_bytes()[0].is_ascii_alphanumeric()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'_' | b'~'))
}

/// Splits `name@version`.
pub(crate) fn parse_reference(reference: &str) -> Result<(&str, &str), ApiError> {
    match reference.split_once('@') {
        Some((n, v)) if valid_name(n) && valid_version(v) => Ok((n, v)),
        _ => Err(ApiError::BadRequest(format!(
            "release reference {reference:?} is not of the form name@version"
        ))),
    }
}

pub(crate) async fn find_release(state: &AppState, reference: &str) -> Result<Release, ApiError> {
    let (name, version) = parse_reference(reference)?;
    state
        .0
        .store
        .release(name, version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("release {reference}")))
}

/// Upload an artifact (streamed; stored by SHA-256, deduplicated).
#[utoipa::path(post, path = "/api/v1/blobs", tag = "releases",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    params(("x-bulwark-sha256" = Option<String>, Header, description = "Expected digest; a mismatch is refused", pattern = "^[0-9a-f]{64}$")),
    responses((status = 201, body = BlobView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 413, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn upload_blob(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageReleases>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<BlobView>), ApiError> {
    let upd = state.updates();
    let expected = match headers.get("x-bulwark-sha256") {
        None => None,
        Some(v) => {
            let s = v.to_str().unwrap_or("").to_owned();
            if !valid_sha256(&s) {
                return Err(ApiError::InvalidFields(vec![
                    "x-bulwark-sha256: expected 64 lowercase hex characters".into(),
                ]));
            }
            Some(s)
        }
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > upd.blobs.max_bytes()
    {
        return Err(ApiError::PayloadTooLarge);
    }
    let (sha256, length) = upd
        .blobs
        .ingest(body.into_data_stream(), expected.as_deref())
        .await?;
    let now = state.0.clock.now();
    state
        .0
        .store
        .put_blob(&sha256, length, &caller.audit(now))
        .await?;
    Ok((StatusCode::CREATED, Json(BlobView { sha256, length })))
}

/// Delete blobs no release references (older than an hour).
#[utoipa::path(post, path = "/api/v1/blobs/gc", tag = "releases",
    responses((status = 200, body = GcView), (status = 403, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn gc_blobs(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageReleases>,
) -> Result<Json<GcView>, ApiError> {
    let upd = state.updates();
    let now = state.0.clock.now();
    let deleted = state
        .0
        .store
        .gc_blobs(now - GC_GRACE, &caller.audit(now))
        .await?;
    let freed_bytes = upd.blobs.remove(&deleted).await;
    Ok(Json(GcView {
        deleted,
        freed_bytes,
    }))
}

/// Create a release from an uploaded blob. One name and version holds one
/// artifact forever.
#[utoipa::path(post, path = "/api/v1/releases", tag = "releases", request_body = CreateRelease,
    responses((status = 201, body = ReleaseView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 409, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn create_release(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageReleases>,
    Json(req): Json<CreateRelease>,
) -> Result<(StatusCode, Json<ReleaseView>), ApiError> {
    let mut errors = Vec::new();
    if !valid_name(&req.name) {
        errors.push("name: 1-64 of a-z 0-9 - _ . starting with a letter or digit".to_owned());
    }
    if !valid_version(&req.version) {
        errors.push(
            "version: 1-64 of A-Z a-z 0-9 . + - _ ~ starting with a letter or digit".to_owned(),
        );
    }
    if !valid_sha256(&req.sha256) {
        errors.push("sha256: expected 64 lowercase hex characters".to_owned());
    }
    match (req.installer, &req.install_path) {
        (Installer::File, Some(p))
            if p.starts_with('/') && p.len() <= 1024 && !p.split('/').any(|c| c == "..") => {}
        (Installer::File, _) => errors
            .push("install_path: the file installer needs an absolute path without ..".to_owned()),
        (Installer::Ab | Installer::Script, None) => {}
        (Installer::Ab | Installer::Script, Some(_)) => {
            errors.push("install_path: only the file installer takes a path".to_owned())
        }
    }
    if req
        .smoke_test
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.len() > 4096)
    {
        errors.push("smoke_test: 1-4096 bytes".to_owned());
    }
    let timeout = req.smoke_timeout_secs.unwrap_or(60);
    if timeout == 0 || timeout > MAX_SMOKE_TIMEOUT_SECS {
        errors.push(format!("smoke_timeout_secs: 1-{MAX_SMOKE_TIMEOUT_SECS}"));
    }
    if req.sbom_sha256.as_ref().is_some_and(|d| !valid_sha256(d)) {
        errors.push("sbom_sha256: expected 64 lowercase hex characters".to_owned());
    }
    if !errors.is_empty() {
        return Err(ApiError::InvalidFields(errors));
    }
    let upd = state.updates();
    let sbom = match &req.sbom_sha256 {
        Some(d) => Some(read_sbom(&state, upd, d).await?),
        None => None,
    };
    let blob = state.0.store.blob(&req.sha256).await?.ok_or_else(|| {
        ApiError::InvalidFields(vec![format!("sha256: no uploaded blob {}", req.sha256)])
    })?;
    if let Some(existing) = state.0.store.release(&req.name, &req.version).await? {
        return Err(ApiError::Conflict(if existing.sha256 == req.sha256 {
            format!(
                "release {} already exists with these bytes",
                existing.reference()
            )
        } else {
            format!(
                "release {} already exists with different bytes (sha256 {}); a name and version never changes its artifact",
                existing.reference(),
                existing.sha256
            )
        }));
    }
    let now = state.0.clock.now();
    let rel = state
        .0
        .store
        .create_release(
            bulwark_store::NewRelease {
                name: req.name,
                version: req.version,
                sha256: blob.sha256,
                length: blob.length,
                installer: store_installer(req.installer),
                install_path: req.install_path,
                smoke_test: req.smoke_test,
                smoke_timeout_secs: timeout,
            },
            &caller.audit(now),
        )
        .await?;
    upd.gate.spawn_scan(
        state.0.store.clone(),
        upd.blobs.path(&rel.sha256),
        sbom,
        rel.clone(),
        state.0.clock.clone(),
    );
    Ok((StatusCode::CREATED, Json(view(rel))))
}

/// Largest uploaded SBOM the gate reads.
const MAX_SBOM_BYTES: u64 = 64 << 20;

/// Reads and validates an uploaded SBOM blob.
async fn read_sbom(
    state: &AppState,
    upd: &Updates,
    sha256: &str,
) -> Result<bulwark_sbom::Sbom, ApiError> {
    let blob = state.0.store.blob(sha256).await?.ok_or_else(|| {
        ApiError::InvalidFields(vec![format!("sbom_sha256: no uploaded blob {sha256}")])
    })?;
    if blob.length > MAX_SBOM_BYTES {
        return Err(ApiError::InvalidFields(vec![format!(
            "sbom_sha256: the SBOM is {} bytes; at most {MAX_SBOM_BYTES}",
            blob.length
        )]));
    }
    let bytes = tokio::fs::read(upd.blobs.path(sha256))
        .await
        .map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(move || {
        bulwark_sbom::Sbom::from_json(&bytes, &bulwark_sbom::Limits::default())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::InvalidFields(vec![format!("sbom_sha256: {e}")]))
}

/// Signatures on a release's signing proposal (each checked when added).
async fn signatures(state: &AppState, rel: &Release) -> Result<u32, ApiError> {
    Ok(state
        .0
        .store
        .proposal(&rel.id)
        .await?
        .map_or(0, |p| u32::try_from(p.signatures.len()).unwrap_or(u32::MAX)))
}

/// All releases.
#[utoipa::path(get, path = "/api/v1/releases", tag = "releases",
    responses((status = 200, body = ReleaseList)))]
pub(crate) async fn list_releases(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
) -> Result<Json<ReleaseList>, ApiError> {
    let releases = state.0.store.list_releases().await?;
    Ok(Json(ReleaseList {
        releases: releases.into_iter().map(view).collect(),
    }))
}

/// One release.
#[utoipa::path(get, path = "/api/v1/releases/{reference}", tag = "releases",
    params(("reference" = String, Path, description = "name@version", pattern = "^[a-z0-9][a-z0-9._-]{0,63}@[A-Za-z0-9][A-Za-z0-9.+_~-]{0,63}$")),
    responses((status = 200, body = ReleaseView), (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn show_release(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Path(reference): Path<String>,
) -> Result<Json<ReleaseView>, ApiError> {
    Ok(Json(view(find_release(&state, &reference).await?)))
}

fn signing_view(
    reference: String,
    s: crate::updates::SigningStatus,
) -> Result<SigningView, ApiError> {
    Ok(SigningView {
        release: reference,
        base_version: s.base_version,
        signed_canonical: String::from_utf8(s.signed).map_err(ApiError::internal)?,
        keyids: s.keyids,
        threshold: s.threshold,
        valid_signatures: s.valid,
        published: s.published,
    })
}

/// The targets metadata this release's signers must sign (offline).
#[utoipa::path(get, path = "/api/v1/releases/{reference}/signing", tag = "releases",
    params(("reference" = String, Path, description = "name@version", pattern = "^[a-z0-9][a-z0-9._-]{0,63}@[A-Za-z0-9][A-Za-z0-9.+_~-]{0,63}$")),
    responses((status = 200, body = SigningView), (status = 404, body = bulwark_proto::ErrorBody),
        (status = 409, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn signing(
    State(state): State<AppState>,
    _: Authorized<need::ManageReleases>,
    Path(reference): Path<String>,
) -> Result<Json<SigningView>, ApiError> {
    let upd = state.updates();
    let rel = find_release(&state, &reference).await?;
    let now = state.0.clock.now();
    let s = upd.signing_status(&*state.0.store, &rel, now).await?;
    Ok(Json(signing_view(rel.reference(), s)?))
}

/// Add one offline signature; publishes when the threshold is met.
#[utoipa::path(post, path = "/api/v1/releases/{reference}/signatures", tag = "releases",
    request_body = AddSignature,
    params(("reference" = String, Path, description = "name@version", pattern = "^[a-z0-9][a-z0-9._-]{0,63}@[A-Za-z0-9][A-Za-z0-9.+_~-]{0,63}$")),
    responses((status = 200, body = SigningView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 409, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn add_signature(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageReleases>,
    Path(reference): Path<String>,
    Json(req): Json<AddSignature>,
) -> Result<Json<SigningView>, ApiError> {
    let upd = state.updates();
    if req.keyid.len() != 64 || !req.keyid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::InvalidFields(vec![
            "keyid: expected 64 hex characters".into(),
        ]));
    }
    if req.sig.is_empty() || req.sig.len() > 2048 || !req.sig.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(ApiError::InvalidFields(vec![
            "sig: expected at most 2048 hex characters".into(),
        ]));
    }
    let rel = find_release(&state, &reference).await?;
    let now = state.0.clock.now();
    upd.gate
        .require_pass(&*state.0.store, &rel, Stage::Sign, "signing", now)
        .await?;
    let s = upd
        .add_signature(
            &*state.0.store,
            &rel,
            &req.keyid,
            &req.sig,
            &caller.audit(now),
        )
        .await?;
    Ok(Json(signing_view(rel.reference(), s)?))
}

/// Promote a published release to the next environment (same digest).
#[utoipa::path(post, path = "/api/v1/releases/{reference}/promote", tag = "releases",
    request_body = PromoteRelease,
    params(("reference" = String, Path, description = "name@version", pattern = "^[a-z0-9][a-z0-9._-]{0,63}@[A-Za-z0-9][A-Za-z0-9.+_~-]{0,63}$")),
    responses((status = 200, body = ReleaseView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 409, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn promote(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageReleases>,
    Path(reference): Path<String>,
    Json(req): Json<PromoteRelease>,
) -> Result<Json<ReleaseView>, ApiError> {
    let upd = state.updates();
    let rel = find_release(&state, &reference).await?;
    let Some(pos) = upd.environments.iter().position(|e| *e == req.environment) else {
        return Err(ApiError::InvalidFields(vec![format!(
            "environment: one of {}",
            upd.environments.join(", ")
        )]));
    };
    if rel.status != bulwark_store::ReleaseStatus::Published {
        return Err(ApiError::Conflict(format!(
            "{} is not published yet (it needs its targets signatures)",
            rel.reference()
        )));
    }
    if rel.environments.contains(&req.environment) {
        return Err(ApiError::Conflict(format!(
            "{} is already in {}",
            rel.reference(),
            req.environment
        )));
    }
    if pos > 0 && !rel.environments.contains(&upd.environments[pos - 1]) {
        return Err(ApiError::Conflict(format!(
            "{} must be promoted to {} before {}",
            rel.reference(),
            upd.environments[pos - 1],
            req.environment
        )));
    }
    let now = state.0.clock.now();
    let stage = Stage::Promote {
        signatures: signatures(&state, &rel).await?,
    };
    upd.gate
        .require_pass(
            &*state.0.store,
            &rel,
            stage,
            &format!("promotion to {}", req.environment),
            now,
        )
        .await?;
    state
        .0
        .store
        .promote_release(&rel.id, &req.environment, &caller.audit(now))
        .await?;
    Ok(Json(view(find_release(&state, &reference).await?)))
}

/// Deploy a release to a group in an environment.
#[utoipa::path(post, path = "/api/v1/deployments", tag = "releases", request_body = CreateDeployment,
    responses((status = 201, body = DeploymentView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 404, body = bulwark_proto::ErrorBody),
        (status = 409, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn create_deployment(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::Deploy>,
    Json(req): Json<CreateDeployment>,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    let upd = state.updates();
    if !valid_name(&req.group) || !valid_name(&req.environment) {
        return Err(ApiError::InvalidFields(vec![
            "group, environment: 1-64 of a-z 0-9 - _ .".into(),
        ]));
    }
    let rel = find_release(&state, &req.release).await?;
    if !rel.environments.contains(&req.environment) {
        return Err(ApiError::Conflict(format!(
            "{} is not promoted to {} (it is in: {})",
            rel.reference(),
            req.environment,
            if rel.environments.is_empty() {
                "none".to_owned()
            } else {
                rel.environments.join(", ")
            }
        )));
    }
    let now = state.0.clock.now();
    // Deployments to the first environment answer to the signing-time
    // rules; later ones also to the signature count, like promotion.
    let stage = if upd.environments.first() == Some(&req.environment) {
        Stage::Sign
    } else {
        Stage::Promote {
            signatures: signatures(&state, &rel).await?,
        }
    };
    upd.gate
        .require_pass(
            &*state.0.store,
            &rel,
            stage,
            &format!("deployment to {}/{}", req.group, req.environment),
            now,
        )
        .await?;
    let d = state
        .0
        .store
        .create_deployment_marked(
            &rel.id,
            &req.group,
            &req.environment,
            req.remediation,
            &caller.audit(now),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(DeploymentView {
            id: d.id,
            seq: d.seq,
            release: d.release,
            group: d.group,
            environment: d.environment,
            created_at: d.created_at,
            remediation: d.remediation,
        }),
    ))
}

/// All deployments.
#[utoipa::path(get, path = "/api/v1/deployments", tag = "releases",
    responses((status = 200, body = DeploymentList)))]
pub(crate) async fn list_deployments(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
) -> Result<Json<DeploymentList>, ApiError> {
    let deployments = state
        .0
        .store
        .list_deployments()
        .await?
        .into_iter()
        .map(|d| DeploymentView {
            id: d.id,
            seq: d.seq,
            release: d.release,
            group: d.group,
            environment: d.environment,
            created_at: d.created_at,
            remediation: d.remediation,
        })
        .collect();
    Ok(Json(DeploymentList { deployments }))
}

/// The server's online key, which an image root must name for snapshot
/// and timestamp.
#[utoipa::path(get, path = "/api/v1/repo/online-key", tag = "releases",
    responses((status = 200, body = OnlineKeyView)))]
pub(crate) async fn online_key(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
) -> Result<Json<OnlineKeyView>, ApiError> {
    let upd = state.updates();
    let key = upd.image_online_key();
    Ok(Json(OnlineKeyView {
        keyid: key.key_id().to_string(),
        key: serde_json::to_value(key).map_err(ApiError::internal)?,
        environments: upd.environments.clone(),
    }))
}

/// Upload a signed image root: version 1 initializes the repository, the
/// next version rotates it (signed by the old and the new root keys).
#[utoipa::path(post, path = "/api/v1/repo/root", tag = "releases",
    request_body(content = Object, content_type = "application/json"),
    responses((status = 201, body = RootAccepted), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 409, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn put_root(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageReleases>,
    body: Bytes,
) -> Result<(StatusCode, Json<RootAccepted>), ApiError> {
    let upd = state.updates();
    let now = state.0.clock.now();
    let version = upd
        .put_root(&*state.0.store, &body, &caller.audit(now))
        .await?;
    Ok((StatusCode::CREATED, Json(RootAccepted { version })))
}

/// An image repository metadata file (`root.json`, `N.root.json`,
/// `timestamp.json`, `N.snapshot.json`, `N.targets.json`).
#[utoipa::path(get, path = "/api/v1/repo/metadata/{name}", tag = "releases",
    params(("name" = String, Path, description = "metadata file name")),
    responses((status = 200, content_type = "application/json", body = Object), (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn repo_metadata(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let upd = state.updates();
    let now = state.0.clock.now();
    Ok(json_bytes(
        upd.image_file(&*state.0.store, &name, now).await?,
    ))
}

/// A target by its consistent-snapshot path (`DIR/SHA256.NAME`).
#[utoipa::path(get, path = "/api/v1/repo/targets/{path}", tag = "releases",
    params(("path" = String, Path, description = "hash-prefixed target path")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn repo_target(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let upd = state.updates();
    let base = path.rsplit('/').next().unwrap_or("");
    let digest = base.split('.').next().unwrap_or("");
    if !valid_sha256(digest) {
        return Err(ApiError::NotFound(format!("target {path}")));
    }
    crate::blobs::serve(&upd.blobs, digest, &headers).await
}
