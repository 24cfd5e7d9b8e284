//! Authorization comes before the body: a caller without the permission
//! (or without a device certificate) is refused whatever it sends, so it
//! learns nothing of a route's schema from 400s and no large body is
//! parsed on its behalf.
//!
//! The routes are enumerated from the OpenAPI document: a new route with a
//! body is covered as soon as it is documented.

use crate::common;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use bulwark_pki::PeerIdentity;
use bulwark_server::device::DeviceConn;
use tower::ServiceExt as _;

/// Operations a viewer may perform on its own tokens (their bodies and
/// targets are then checked).
const VIEWER_MAY: [&str; 2] = ["post /api/v1/tokens", "delete /api/v1/tokens/{id}"];

/// Device-listener operations (mutual TLS, no bearer token).
fn device_route(path: &str) -> bool {
    path.starts_with("/api/v1/device/") || path == "/api/v1/enroll"
}

fn concrete(path: &str) -> String {
    path.replace("{reference}", "fw@1.0")
        .replace("{id}", "00000000-0000-4000-8000-000000000000")
        .replace("{name}", "nobody")
        .replace("{path}", "tile/0/000")
}

#[tokio::test]
async fn callers_without_permission_are_refused_before_the_body() {
    let fx = common::fixture().await;
    let viewer = fx.vars["viewer"].clone();
    let api =
        bulwark_server::api::router(fx.state.clone(), common::MAX_BODY, Duration::from_secs(5));
    let dev =
        bulwark_server::device::router(fx.state.clone(), common::MAX_BODY, Duration::from_secs(5));
    let doc = serde_json::to_value(bulwark_server::api::openapi()).unwrap();
    // A body no route accepts: truncated JSON, and 1 MiB of it.
    let garbage = format!("{{\"x\": \"{}", "A".repeat(1 << 20));
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys().filter(|m| *m != "get") {
            let key = format!("{method} {path}");
            let uri = concrete(path);
            let send = |router: axum::Router, auth: Option<&str>, conn: Option<DeviceConn>| {
                let mut req = Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&uri)
                    .header("content-type", "application/json");
                if let Some(t) = auth {
                    req = req.header("authorization", format!("Bearer {t}"));
                }
                let mut req = req.body(Body::from(garbage.clone())).unwrap();
                if let Some(c) = conn {
                    req.extensions_mut().insert(c);
                }
                async move { router.oneshot(req).await.unwrap().status().as_u16() }
            };
            if device_route(path) {
                if path == "/api/v1/enroll" {
                    continue; // authenticated by the token inside its body
                }
                // No certificate, then a certificate of an unknown device.
                assert_eq!(send(dev.clone(), None, None).await, 401, "{key}");
                let stranger = DeviceConn {
                    identity: Some(PeerIdentity {
                        device_id: bulwark_proto::DeviceId::from_uuid(uuid::Uuid::nil()),
                        serial_hex: "01".into(),
                    }),
                    peer: "127.0.0.1:40000".parse().unwrap(),
                };
                assert_eq!(send(dev.clone(), None, Some(stranger)).await, 403, "{key}");
            } else {
                assert_eq!(send(api.clone(), None, None).await, 401, "{key}");
                let status = send(api.clone(), Some(&viewer), None).await;
                if VIEWER_MAY.contains(&key.as_str()) {
                    assert!(
                        (400..500).contains(&status) && status != 403,
                        "{key}: {status}"
                    );
                } else {
                    assert_eq!(status, 403, "{key}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} routes");
}
