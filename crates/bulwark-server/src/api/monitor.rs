//! Monitoring routes: detection profiles, the live alert stream, and
//! device quarantine.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use bulwark_detect::{DEFAULT_GROUP, MAX_PROFILE_BYTES, Profile};
use bulwark_store::ProfileRow;
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::devices::{check_reason, device_view, parse_id};
use super::dto::{
    ApplyProfile, CreateWebhook, DeliveryList, DeliveryView, DeviceView, EffectiveProfile,
    EffectiveProfileQuery, ProfileList, ProfileView, QuarantineDevice, StreamEvent, WebhookList,
    WebhookView,
};
use super::valid_name;
use super::words;
use crate::auth::{Authorized, Caller, Permission, need};
use crate::error::{ApiError, Json, Path, Query};
use crate::state::AppState;
use crate::webhooks::DestinationPolicy;

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
    Authorized(caller, _): Authorized<need::ManageProfiles>,
    Json(req): Json<ApplyProfile>,
) -> Result<Json<ProfileView>, ApiError> {
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
    state.monitor().set_profile(profile);
    Ok(Json(profile_view(row)))
}

/// Every stored profile version, oldest first.
#[utoipa::path(get, path = "/api/v1/profiles", tag = "monitor",
    responses((status = 200, body = ProfileList)))]
pub(crate) async fn list_profiles(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
) -> Result<Json<ProfileList>, ApiError> {
    let rows = state.0.store.profiles().await?;
    Ok(Json(ProfileList {
        profiles: rows.into_iter().map(profile_view).collect(),
    }))
}

/// The profile a group runs under: its own latest version, or else the
/// latest for every group (`*`).
#[utoipa::path(get, path = "/api/v1/profiles/effective", tag = "monitor",
    params(EffectiveProfileQuery),
    responses((status = 200, body = EffectiveProfile), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn effective_profile(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Query(q): Query<EffectiveProfileQuery>,
) -> Result<Json<EffectiveProfile>, ApiError> {
    let group = q.group.unwrap_or_else(|| DEFAULT_GROUP.to_owned());
    if group != DEFAULT_GROUP && !valid_name(&group) {
        return Err(ApiError::InvalidFields(vec![format!(
            "group: {group:?} is not \"*\" or a name of a-z 0-9 - _ ."
        )]));
    }
    let rows = state.0.store.profiles().await?;
    let latest = |g: &str| rows.iter().rev().find(|r| r.group == g).cloned();
    let (row, inherited) = match latest(&group) {
        Some(row) => (row, false),
        None => (
            latest(DEFAULT_GROUP).ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no profile for group {group:?} nor for every group"
                ))
            })?,
            group != DEFAULT_GROUP,
        ),
    };
    let builtin = row.group == DEFAULT_GROUP
        && row.version == bulwark_detect::BUILTIN_VERSION
        && row.body == bulwark_detect::BUILTIN_PROFILE;
    Ok(Json(EffectiveProfile {
        group,
        inherited,
        builtin,
        profile: profile_view(row),
    }))
}

/// Quarantines (`on`) or releases a device for an operator.
async fn set_quarantine(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: &QuarantineDevice,
    on: bool,
) -> Result<Json<DeviceView>, ApiError> {
    caller.require(Permission::QuarantineDevices)?;
    let id = parse_id(id)?;
    let reason = check_reason(&req.reason)?;
    let audit = caller.audit(state.0.clock.now());
    let device = if on {
        state.devices().quarantine(id, reason, None, &audit).await?
    } else {
        state.devices().release(id, reason, &audit).await?
    }
    .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
    Ok(Json(device_view(state, device)))
}

/// Quarantine a device: refused on the gateway (a live session is closed
/// after the isolate command), updates withheld, check-ins answered with
/// the quarantine so the agent isolates itself.
#[utoipa::path(post, path = "/api/v1/devices/{id}/quarantine", tag = "monitor", request_body = QuarantineDevice,
    params(("id" = String, Path, description = "Device id", pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")),
    responses((status = 200, body = DeviceView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn quarantine_device(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::QuarantineDevices>,
    Path(id): Path<String>,
    Json(req): Json<QuarantineDevice>,
) -> Result<Json<DeviceView>, ApiError> {
    set_quarantine(&state, &caller, &id, &req, true).await
}

/// Release a device from quarantine (a separate, journaled decision).
#[utoipa::path(post, path = "/api/v1/devices/{id}/release", tag = "monitor", request_body = QuarantineDevice,
    params(("id" = String, Path, description = "Device id", pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")),
    responses((status = 200, body = DeviceView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody), (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn release_device(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::QuarantineDevices>,
    Path(id): Path<String>,
    Json(req): Json<QuarantineDevice>,
) -> Result<Json<DeviceView>, ApiError> {
    set_quarantine(&state, &caller, &id, &req, false).await
}

/// New alerts as they are raised, as Server-Sent Events: event
/// `detection` or `vulnerability` with the alert as JSON data; `lagged`
/// with the number of events skipped when the client reads too slowly.
#[utoipa::path(get, path = "/api/v1/alerts/stream", tag = "monitor",
    responses((status = 200, content_type = "text/event-stream", body = String)))]
pub(crate) async fn alert_stream(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let events = state.events();
    let rx = events.subscribe();
    let closed = Box::pin(events.closed());
    let stream = futures_util::stream::unfold((rx, closed), |(mut rx, mut closed)| async move {
        let next = tokio::select! {
            r = rx.recv() => r,
            () = &mut closed => return None,
        };
        let event = match next {
            Ok(e) => {
                let data = match crate::wire::event(&e) {
                    StreamEvent::Detection(a) => serde_json::to_string(&a),
                    StreamEvent::Vulnerability(a) => serde_json::to_string(&a),
                }
                .unwrap_or_default();
                Event::default().event(e.kind()).data(data)
            }
            Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), (rx, closed)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn webhook_view(h: bulwark_store::WebhookRow, full_url: bool) -> WebhookView {
    WebhookView {
        id: h.id,
        // A path or query may carry a receiver's token: only those who
        // may manage webhooks see them.
        url: if full_url { h.url } else { url_origin(&h.url) },
        created_by: h.created_by,
        created_at: h.created_at,
    }
}

/// The scheme, host and port of `url`, then `/…` when anything followed.
fn url_origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let origin = u.origin().ascii_serialization();
            if u.path() == "/" && u.query().is_none() && u.fragment().is_none() {
                origin
            } else {
                format!("{origin}/…")
            }
        }
        Err(_) => "(unparseable url)".into(),
    }
}

/// `https://…`, or `http://` to a loopback address; no credentials in the
/// URL; at most 2048 bytes; a host the destination policy allows (an
/// address, or a name's form; the names' addresses are checked at each
/// delivery).
fn check_webhook_destination(url: &str, policy: &DestinationPolicy) -> Result<(), String> {
    check_webhook_url(url)?;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url: {e}"))?;
    let host = parsed.host_str().ok_or("url: has no host")?;
    policy.check_host(host).map_err(|e| format!("url: {e}"))
}

/// `https://…`, or `http://` to a loopback address; no credentials in the
/// URL; at most 2048 bytes.
fn check_webhook_url(url: &str) -> Result<(), String> {
    if url.len() > 2048 || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("url: at most 2048 printable characters without spaces".into());
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("url: must start with https:// (or http:// to a loopback address)")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err("url: has no host".into());
    }
    if authority.contains('@') {
        return Err("url: must not carry credentials (the secret signs deliveries)".into());
    }
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            if !p.is_empty() && p.parse::<u16>().is_err() && !h.starts_with('[') {
                return Err("url: bad port".into());
            }
            h
        }
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match scheme {
        "https" => Ok(()),
        "http"
            if host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback()) =>
        {
            Ok(())
        }
        "http" => Err("url: plain http is only allowed to a loopback address; use https".into()),
        _ => Err("url: must start with https://".into()),
    }
}

/// Register a webhook: every new alert is POSTed to it, signed with
/// HMAC-SHA256 over timestamp + body, retried with backoff.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "monitor", request_body = CreateWebhook,
    responses((status = 201, body = WebhookView), (status = 400, body = bulwark_proto::ErrorBody),
        (status = 403, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn add_webhook(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageWebhooks>,
    Json(req): Json<CreateWebhook>,
) -> Result<(axum::http::StatusCode, Json<WebhookView>), ApiError> {
    let w = state.webhooks();
    let mut problems = Vec::new();
    if let Err(p) = check_webhook_destination(req.url.trim(), w.policy()) {
        problems.push(p);
    }
    let secret = req.secret.trim();
    if secret.len() < 16 || secret.len() > 1024 {
        problems.push("secret: 16-1024 bytes".into());
    }
    if !problems.is_empty() {
        return Err(ApiError::InvalidFields(problems));
    }
    let now = state.0.clock.now();
    #[expect(
        clippy::disallowed_methods,
        reason = "webhook row id, not a secret: ids need no RandomSource"
    )]
    let row = bulwark_store::WebhookRow {
        id: uuid::Uuid::new_v4().simple().to_string(),
        url: req.url.trim().to_owned(),
        secret_sealed: w
            .seal(secret.as_bytes(), &*state.0.rng)
            .map_err(ApiError::internal)?,
        created_by: caller.account.name.clone(),
        created_at: now,
        removed_at: None,
    };
    state.0.store.add_webhook(&row, &caller.audit(now)).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(webhook_view(row, true)),
    ))
}

/// Registered webhooks.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "monitor",
    responses((status = 200, body = WebhookList)))]
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ReadFleet>,
) -> Result<Json<WebhookList>, ApiError> {
    let full = caller.require(Permission::ManageWebhooks).is_ok();
    let hooks = state.0.store.webhooks().await?;
    Ok(Json(WebhookList {
        webhooks: hooks.into_iter().map(|h| webhook_view(h, full)).collect(),
    }))
}

/// Remove a webhook; its pending deliveries are dropped.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "monitor",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 204), (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn remove_webhook(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<need::ManageWebhooks>,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    if id.len() > 64 {
        return Err(ApiError::NotFound(format!("webhook {id}")));
    }
    let now = state.0.clock.now();
    if state
        .0
        .store
        .remove_webhook(&id, &caller.audit(now))
        .await?
    {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("webhook {id}")))
    }
}

/// A webhook's delivery log, newest first (at most 200).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "monitor",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = DeliveryList), (status = 404, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn webhook_deliveries(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryList>, ApiError> {
    if id.len() > 64 || state.0.store.webhook(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("webhook {id}")));
    }
    let log = state.0.store.deliveries(&id, 200).await?;
    Ok(Json(DeliveryList {
        deliveries: log
            .into_iter()
            .map(|d| {
                Ok(DeliveryView {
                    id: d.id,
                    event: words::event_kind(d.event),
                    alert_id: d.alert_id,
                    state: words::delivery_state(d.state),
                    attempts: d.attempts,
                    last_status: d.last_status,
                    last_error: d.last_error,
                    next_attempt_at: d.next_attempt_at,
                    created_at: d.created_at,
                    delivered_at: d.delivered_at,
                })
            })
            .collect::<Result<_, ApiError>>()?,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn webhook_urls() {
        for ok in [
            "https://hooks.example/bulwark",
            "https://hooks.example:8443/x?y=1",
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://[::1]:9000/hook",
        ] {
            assert_eq!(super::check_webhook_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://hooks.example/bulwark",
            "ftp://hooks.example/",
            "hooks.example",
            "https://",
            "https://user:pw@hooks.example/",
            "https://hooks.example/a b",
            "http://127.0.0.1.evil.example/",
        ] {
            assert!(super::check_webhook_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn webhook_destinations_follow_the_policy() {
        use crate::webhooks::DestinationPolicy;
        let default = DestinationPolicy::default();
        for bad in [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.5/hook",
            "https://[fd00:ec2::254]/",
            "https://[::ffff:127.0.0.1]/",
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "https://metadata.google.internal/",
            "https://0.0.0.0/",
            "https://intranet/hook",
        ] {
            let e = super::check_webhook_destination(bad, &default).unwrap_err();
            assert!(e.contains("webhook_allow"), "{bad}: {e}");
        }
        assert_eq!(
            super::check_webhook_destination("https://hooks.example/bulwark", &default),
            Ok(())
        );
        let lo = DestinationPolicy::new(&["127.0.0.0/8", "localhost"]).unwrap();
        assert_eq!(
            super::check_webhook_destination("http://127.0.0.1:9000/hook", &lo),
            Ok(())
        );
        assert_eq!(
            super::check_webhook_destination("http://localhost/hook", &lo),
            Ok(())
        );
    }

    #[test]
    fn viewers_see_the_origin_only() {
        for (url, shown) in [
            (
                "https://hooks.example/bulwark?token=abc",
                "https://hooks.example/…",
            ),
            (
                "https://hooks.example:8443/x",
                "https://hooks.example:8443/…",
            ),
            ("https://hooks.example", "https://hooks.example"),
            ("https://hooks.example/", "https://hooks.example"),
            ("http://[::1]:9000/hook", "http://[::1]:9000/…"),
        ] {
            assert_eq!(super::url_origin(url), shown, "{url}");
        }
    }
}
