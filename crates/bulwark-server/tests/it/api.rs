//! The admin API against request fixtures in `tests/api_cases/*.http`.
//!
//! Each fixture is a request (method and path, headers, blank line, body)
//! followed by `--- expect` and `STATUS [error_code]`. `{name}` is replaced
//! by the fixture's tokens and ids (see `common.rs`). Every case runs on a
//! fresh state; every non-2xx answer must be the JSON error shape, and no
//! case may produce a 5xx.

use crate::common;

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bulwark_proto::ErrorBody;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

struct Case {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
    status: u16,
    code: Option<String>,
}

fn parse(text: &str) -> Case {
    let (req, expect) = text.split_once("--- expect").expect("a `--- expect` line");
    let mut lines = req.lines();
    let first = lines.next().expect("request line");
    let (method, path) = first.split_once(' ').expect("METHOD PATH");
    let mut headers = Vec::new();
    let mut body = String::new();
    let mut in_body = false;
    for line in lines {
        if in_body {
            body.push_str(line);
            body.push('\n');
        } else if line.is_empty() {
            in_body = true;
        } else {
            let (k, v) = line.split_once(':').expect("header: value");
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut exp = expect.split_whitespace();
    let status = exp.next().expect("status").parse().expect("numeric status");
    Case {
        method: method.into(),
        path: path.into(),
        headers,
        body: body.trim_end().to_owned(),
        status,
        code: exp.next().map(str::to_owned),
    }
}

#[tokio::test]
async fn api_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api_cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 30, "fixture folder went missing");
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let fx = common::fixture().await;
        let subst = |s: &str| {
            let mut out = s.to_owned();
            for (k, v) in &fx.vars {
                out = out.replace(&format!("{{{k}}}"), v);
            }
            out
        };
        let case = parse(&std::fs::read_to_string(file).unwrap());
        let mut req = Request::builder()
            .method(case.method.as_str())
            .uri(subst(&case.path));
        for (k, v) in &case.headers {
            req = req.header(k, subst(v));
        }
        let req = req.body(Body::from(subst(&case.body))).unwrap();
        let app =
            bulwark_server::api::router(fx.state.clone(), common::MAX_BODY, Duration::from_secs(5));
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let mut problems = Vec::new();
        if status.as_u16() != case.status {
            problems.push(format!(
                "status {} (expected {})",
                status.as_u16(),
                case.status
            ));
        }
        if status.is_server_error() {
            problems.push("server error".into());
        }
        if let Err(e) =
            crate::conform::check(&case.method, &subst(&case.path), status.as_u16(), &bytes)
        {
            problems.push(e);
        }
        if !status.is_success() {
            match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => {
                    if let Some(code) = &case.code
                        && &body.error.code != code
                    {
                        problems.push(format!(
                            "code {:?} (expected {code:?}): {}",
                            body.error.code, body.error.message
                        ));
                    }
                    if ctype.as_deref() != Some("application/json") {
                        problems.push(format!("content-type {ctype:?}"));
                    }
                }
                Err(_) => problems.push(format!(
                    "body is not the JSON error shape: {:?}",
                    String::from_utf8_lossy(&bytes)
                )),
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn oversized_body_is_413_json() {
    let fx = common::fixture().await;
    let app =
        bulwark_server::api::router(fx.state.clone(), common::MAX_BODY, Duration::from_secs(5));
    let big = format!(
        "{{\"group\":\"{}\",\"environment\":\"e\"}}",
        "a".repeat(common::MAX_BODY)
    );
    let req = Request::post("/api/v1/enroll-tokens")
        .header("authorization", format!("Bearer {}", fx.vars["admin"]))
        .header("content-type", "application/json")
        .body(Body::from(big))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: ErrorBody =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body.error.code, "payload_too_large");
}

#[tokio::test]
async fn created_tokens_work_once_shown_and_stop_after_revoke() {
    let fx = common::fixture().await;
    let app =
        bulwark_server::api::router(fx.state.clone(), common::MAX_BODY, Duration::from_secs(5));
    let call = |method: &str, path: &str, token: &str, body: Option<&str>| {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        b.body(Body::from(body.unwrap_or("").to_owned())).unwrap()
    };
    let resp = app
        .clone()
        .oneshot(call(
            "POST",
            "/api/v1/tokens",
            &fx.vars["operator"],
            Some(r#"{"label":"ci"}"#),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    // The listing never shows secrets or hashes.
    let resp = app
        .clone()
        .oneshot(call("GET", "/api/v1/tokens", &token, None))
        .await
        .unwrap();
    let listing = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(listing.contains(&id));
    assert!(
        !listing.contains(token.rsplit('_').next().unwrap()),
        "secret leaked in listing"
    );
    assert!(!listing.contains("hash"));
    let resp = app
        .clone()
        .oneshot(call(
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            &token,
            None,
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app
        .clone()
        .oneshot(call("GET", "/api/v1/whoami", &token, None))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn metrics_are_exported() {
    let fx = common::fixture().await;
    let app =
        bulwark_server::api::router(fx.state.clone(), common::MAX_BODY, Duration::from_secs(5));
    let _ = app
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let resp = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("bulwark_http_requests_total{listener=\"api\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains("bulwark_device_checkins_total"), "{text}");
}
