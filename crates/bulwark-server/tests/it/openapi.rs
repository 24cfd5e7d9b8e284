//! The OpenAPI document: committed (docs/openapi.json) and up to date,
//! every path it documents is served by a router, and path parameters
//! carry the server's field rules. `UPDATE_EXPECT=1` rewrites the
//! committed copy.

use crate::common;

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

#[test]
fn committed_openapi_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let fresh = format!(
        "{}\n",
        bulwark_server::api::openapi().to_pretty_json().unwrap()
    );
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/openapi.json is stale: run `UPDATE_EXPECT=1 cargo test -p bulwark-server --test it committed_openapi`"
    );
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let fx = common::fixture().await;
    let api =
        bulwark_server::api::router(fx.state.clone(), common::MAX_BODY, Duration::from_secs(5));
    let dev =
        bulwark_server::device::router(fx.state.clone(), common::MAX_BODY, Duration::from_secs(5));
    let doc = serde_json::to_value(bulwark_server::api::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 10);
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let uri = path.replace("{id}", "00000000-0000-4000-8000-000000000001");
            let router = if path.starts_with("/api/v1/enroll")
                && !path.starts_with("/api/v1/enroll-tokens")
                || path.starts_with("/api/v1/device/")
            {
                dev.clone()
            } else {
                api.clone()
            };
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let route_missing = status == 405
                || (status == 404 && String::from_utf8_lossy(&body).contains("route not found"));
            assert!(
                !route_missing,
                "{method} {path} is documented but not routed ({status})"
            );
        }
    }
}

#[test]
fn path_parameters_carry_the_field_rules() {
    use bulwark_api::words::{DEVICE_ID_PATTERN, REFERENCE_PATTERN};
    let doc = serde_json::to_value(bulwark_server::api::openapi()).unwrap();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let want = match (p["in"].as_str(), p["name"].as_str()) {
                    (Some("path"), Some("id")) if path.starts_with("/api/v1/devices/") => {
                        DEVICE_ID_PATTERN
                    }
                    (Some("path"), Some("reference")) => REFERENCE_PATTERN,
                    _ => continue,
                };
                assert_eq!(
                    p["schema"]["pattern"].as_str(),
                    Some(want),
                    "{method} {path}: {p}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 12, "{checked} path parameters checked");
}
