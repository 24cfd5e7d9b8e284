//! The admin API router (`--listen`): `/api/v1/…` (bearer tokens),
//! `/healthz`, `/metrics` and `/api/v1/openapi.json`.

pub(crate) mod accounts;
pub(crate) mod audit;
pub(crate) mod devices;
/// The request and response bodies: the `bulwark-api` crate, the API's contract.
pub use bulwark_api as dto;
pub(crate) mod gate;
pub(crate) mod monitor;
pub(crate) mod releases;
pub(crate) mod words;

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use bulwark_proto::{ErrorBody, ErrorDetail};
use tower::ServiceBuilder;
use utoipa::OpenApi;

use crate::error::ApiError;
use crate::http::{middleware_error, observe};
use crate::state::AppState;

/// Names of groups, environments, accounts and tag keys (the services'
/// rule, one definition).
pub(crate) use bulwark_services::valid_name;

#[derive(OpenApi)]
#[openapi(
    info(title = "Bulwark control plane API", description = "Fleet, identity and enrollment. Every /api/v1 route except openapi.json needs `Authorization: Bearer <token>`."),
    paths(
        accounts::whoami, accounts::create_account, accounts::list_accounts,
        accounts::create_token, accounts::list_tokens, accounts::revoke_token,
        devices::list_devices, devices::show_device, devices::device_telemetry, devices::tag_device, devices::rename_device, devices::revoke_device,
        devices::create_enroll_token, devices::list_enroll_tokens,
        audit::entries, audit::entry, audit::consistency, audit::checkpoints, audit::key,
        audit::log_checkpoint, audit::log_tile,
        releases::upload_blob, releases::gc_blobs, releases::create_release, releases::list_releases,
        releases::show_release, releases::signing, releases::add_signature, releases::promote,
        releases::create_deployment, releases::list_deployments, releases::online_key,
        releases::put_root, releases::repo_metadata, releases::repo_target,
        gate::release_gate, gate::release_sbom, gate::get_policy, gate::put_policy,
        gate::add_waiver, gate::list_waivers, gate::revoke_waiver, gate::import_advisories,
        gate::advisories, gate::affected, gate::alerts,
        monitor::apply_profile, monitor::list_profiles, monitor::effective_profile,
        monitor::quarantine_device,
        monitor::release_device, monitor::alert_stream, monitor::add_webhook,
        monitor::list_webhooks, monitor::remove_webhook, monitor::webhook_deliveries,
        crate::device::enroll, crate::device::checkin,
        crate::device::updates::image_metadata, crate::device::updates::director_metadata,
        crate::device::updates::blob, crate::device::updates::update_report,
    ),
    modifiers(&BearerAuth, &CommonResponses)
)]
struct ApiDoc;

/// The answers every route can give that no handler names: 401 without
/// credentials, 400/413/415 for a body, 408 for the request timeout, 429
/// and 503 from the API's admission limits. Device-listener routes are
/// marked with their own server (mutual TLS on another port).
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
        let error = |description: &str| -> RefOr<Response> {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
                .into()
        };
        for (path, item) in &mut openapi.paths.paths {
            let device = path.starts_with("/api/v1/device/") || path == "/api/v1/enroll";
            let public = path == "/api/v1/enroll";
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let mut add = |code: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| error(description));
                };
                if !public {
                    add(
                        "401",
                        if device {
                            "no valid device client certificate"
                        } else {
                            "missing or invalid API token"
                        },
                    );
                    add(
                        "403",
                        if device {
                            "the device or its certificate is revoked, unknown or replaced"
                        } else {
                            "the caller's role does not allow this"
                        },
                    );
                }
                if path.contains('{') {
                    add("400", "a malformed path parameter");
                    add("404", "no such object");
                }
                if op.request_body.is_some() {
                    add("400", "malformed body or invalid fields");
                    add("413", "body over the size limit");
                    add("415", "wrong content type");
                }
                add("408", "the request took longer than the server allows");
                if !device {
                    add("429", "too many requests of this caller in flight");
                    add("503", "the server is at capacity");
                }
                if device {
                    use utoipa::openapi::server::{ServerBuilder, ServerVariableBuilder};
                    op.servers = Some(vec![
                        ServerBuilder::new()
                            .url("https://{device_listener}")
                            .description(Some(
                                "the device listener (mutual TLS with a device certificate), \
                                 not the API listener",
                            ))
                            .parameter(
                                "device_listener",
                                ServerVariableBuilder::new()
                                    .default_value("127.0.0.1:8443")
                                    .description(Some("the `device_listen` address")),
                            )
                            .build(),
                    ]);
                }
            }
        }
    }
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "device_mtls",
            SecurityScheme::MutualTls {
                description: Some(
                    "device certificate issued by the server's device CA (device listener only)"
                        .into(),
                ),
                extensions: None,
            },
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The OpenAPI document, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn openapi_json() -> impl IntoResponse {
    axum::Json(openapi())
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.0.metrics.render(),
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route".into())
}

async fn method_not_allowed() -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: "method_not_allowed".into(),
            message: "method not allowed on this route".into(),
            request_id: None,
        },
    };
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// Most admin API requests in flight at once; more are refused with 503
/// (incident actions have a reserve above it; see [`crate::listen`]).
pub const MAX_CONCURRENT_API_REQUESTS: usize = crate::listen::GLOBAL;

/// The admin API router.
pub fn router(state: AppState, max_body_bytes: usize, timeout: Duration) -> Router {
    let api = Router::new()
        .route("/whoami", get(accounts::whoami))
        .route(
            "/accounts",
            get(accounts::list_accounts).post(accounts::create_account),
        )
        .route(
            "/tokens",
            get(accounts::list_tokens).post(accounts::create_token),
        )
        .route("/tokens/{id}", delete(accounts::revoke_token))
        .route(
            "/enroll-tokens",
            get(devices::list_enroll_tokens).post(devices::create_enroll_token),
        )
        .route("/devices", get(devices::list_devices))
        .route("/devices/{id}", get(devices::show_device))
        .route("/devices/{id}/telemetry", get(devices::device_telemetry))
        .route("/devices/{id}/tags", post(devices::tag_device))
        .route("/devices/{id}/rename", post(devices::rename_device))
        .route("/devices/{id}/revoke", post(devices::revoke_device))
        .route("/audit/entries", get(audit::entries))
        .route("/audit/entries/{seq}", get(audit::entry))
        .route("/audit/consistency", get(audit::consistency))
        .route("/audit/checkpoints", get(audit::checkpoints))
        .route("/audit/key", get(audit::key))
        .route("/audit/log/checkpoint", get(audit::log_checkpoint))
        .route("/audit/log/{*path}", get(audit::log_tile))
        .route("/blobs", post(releases::upload_blob))
        .route("/blobs/gc", post(releases::gc_blobs))
        .route(
            "/releases",
            get(releases::list_releases).post(releases::create_release),
        )
        .route("/releases/{reference}", get(releases::show_release))
        .route("/releases/{reference}/signing", get(releases::signing))
        .route(
            "/releases/{reference}/signatures",
            post(releases::add_signature),
        )
        .route("/releases/{reference}/promote", post(releases::promote))
        .route(
            "/deployments",
            get(releases::list_deployments).post(releases::create_deployment),
        )
        .route("/repo/online-key", get(releases::online_key))
        .route("/repo/root", post(releases::put_root))
        .route("/repo/metadata/{name}", get(releases::repo_metadata))
        .route("/repo/targets/{*path}", get(releases::repo_target))
        .route("/releases/{reference}/gate", get(gate::release_gate))
        .route("/releases/{reference}/sbom", get(gate::release_sbom))
        .route("/gate/policy", get(gate::get_policy).put(gate::put_policy))
        .route("/waivers", get(gate::list_waivers).post(gate::add_waiver))
        .route("/waivers/{id}/revoke", post(gate::revoke_waiver))
        .route(
            "/advisories",
            get(gate::advisories).post(gate::import_advisories),
        )
        .route("/advisories/{id}/affected", get(gate::affected))
        .route("/alerts", get(gate::alerts))
        .route("/alerts/stream", get(monitor::alert_stream))
        .route(
            "/profiles",
            get(monitor::list_profiles).post(monitor::apply_profile),
        )
        .route("/profiles/effective", get(monitor::effective_profile))
        .route("/devices/{id}/quarantine", post(monitor::quarantine_device))
        .route("/devices/{id}/release", post(monitor::release_device))
        .route(
            "/webhooks",
            get(monitor::list_webhooks).post(monitor::add_webhook),
        )
        .route("/webhooks/{id}", delete(monitor::remove_webhook))
        .route(
            "/webhooks/{id}/deliveries",
            get(monitor::webhook_deliveries),
        )
        .route("/openapi.json", get(openapi_json));
    let obs_state = state.clone();
    let admission = std::sync::Arc::new(crate::listen::Admission::default());
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(move |req, next| {
                    observe("api", obs_state.clone(), req, next)
                }))
                // Per caller, with room for incident actions (see
                // `crate::listen`); before the timeout and the body.
                .layer(axum::middleware::from_fn(move |req, next| {
                    crate::listen::admit(std::sync::Arc::clone(&admission), req, next)
                }))
                .layer(HandleErrorLayer::new(middleware_error))
                .timeout(timeout)
                .layer(DefaultBodyLimit::max(max_body_bytes)),
        )
        .with_state(state)
}
