//! The blob store through the API: streaming upload with a size limit,
//! dedupe, resumable downloads (`Range`) for devices, and garbage
//! collection of blobs no release references.

use crate::common;

use axum::body::Body;
use axum::http::Request;
use bulwark_pki::PeerIdentity;
use bulwark_server::device::DeviceConn;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

async fn call(router: &axum::Router, req: Request<Body>) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(b))
}

#[tokio::test]
async fn upload_dedupe_range_and_gc() {
    let fx = common::fixture().await;
    let admin = fx.vars["admin"].clone();
    let api = bulwark_server::api::router(
        fx.state.clone(),
        common::MAX_BODY,
        std::time::Duration::from_secs(5),
    );
    let dev = bulwark_server::device::router(
        fx.state.clone(),
        common::MAX_BODY,
        std::time::Duration::from_secs(5),
    );
    let upload = |bytes: Vec<u8>| {
        Request::post("/api/v1/blobs")
            .header("authorization", format!("Bearer {admin}"))
            .header("content-type", "application/octet-stream")
            .body(Body::from(bytes))
            .unwrap()
    };
    // Larger than the JSON body limit: blobs stream past it.
    let a: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (st, _, body) = call(&api, upload(a.clone())).await;
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["sha256"], sha256(&a));
    assert_eq!(v["length"], 200_000);
    // The same bytes again: one file.
    let (st, _, _) = call(&api, upload(a.clone())).await;
    assert_eq!(st, 201);
    let files = walk(fx.blob_dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    // Over the store's limit (1 MiB in the fixture): refused, nothing kept.
    let (st, _, body) = call(&api, upload(vec![7u8; (1 << 20) + 1])).await;
    assert_eq!(st, 413, "{}", String::from_utf8_lossy(&body));
    assert_eq!(walk(fx.blob_dir.path()).len(), 1);

    // Devices download with Range.
    let conn = DeviceConn {
        identity: Some(PeerIdentity {
            device_id: fx.device,
            serial_hex: "00aa".into(),
        }),
        peer: "127.0.0.1:40000".parse().unwrap(),
    };
    let get = |range: Option<&str>| {
        let mut r = Request::get(format!("/api/v1/device/blobs/{}", sha256(&a)));
        if let Some(range) = range {
            r = r.header("range", range);
        }
        let mut r = r.body(Body::empty()).unwrap();
        r.extensions_mut().insert(conn.clone());
        r
    };
    let (st, h, body) = call(&dev, get(None)).await;
    assert_eq!(st, 200);
    assert_eq!(body, a);
    assert_eq!(h["accept-ranges"], "bytes");
    let (st, h, body) = call(&dev, get(Some("bytes=150000-"))).await;
    assert_eq!(st, 206);
    assert_eq!(body, &a[150_000..]);
    assert_eq!(h["content-range"], "bytes 150000-199999/200000");
    let (st, _, _) = call(&dev, get(Some("bytes=200000-"))).await;
    assert_eq!(st, 416);
    let (st, _, _) = call(&dev, get(Some("bytes=5-1"))).await;
    assert_eq!(st, 400);
    // Without a device certificate: refused.
    let mut anon = Request::get(format!("/api/v1/device/blobs/{}", sha256(&a)))
        .body(Body::empty())
        .unwrap();
    anon.extensions_mut().insert(DeviceConn {
        identity: None,
        peer: "127.0.0.1:40001".parse().unwrap(),
    });
    let (st, _, _) = call(&dev, anon).await;
    assert_eq!(st, 401);

    // A second blob referenced by a release survives GC; the first does not
    // once it is older than the grace period.
    let b = b"release bytes".to_vec();
    call(&api, upload(b.clone())).await;
    let rel = Request::post("/api/v1/releases")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({"name": "fw", "version": "1.0", "sha256": sha256(&b), "installer": "ab"})
                .to_string(),
        ))
        .unwrap();
    assert_eq!(call(&api, rel).await.0, 201);
    let gc = || {
        Request::post("/api/v1/blobs/gc")
            .header("authorization", format!("Bearer {admin}"))
            .body(Body::empty())
            .unwrap()
    };
    let (st, _, body) = call(&api, gc()).await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["deleted"],
        serde_json::json!([]),
        "within the grace period"
    );
    fx.clock.advance(time::Duration::hours(2));
    let (_, _, body) = call(&api, gc()).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["deleted"], serde_json::json!([sha256(&a)]));
    assert_eq!(v["freed_bytes"], 200_000);
    let left = walk(fx.blob_dir.path());
    assert_eq!(left.len(), 1);
    assert!(left[0].ends_with(&sha256(&b)));
    let (st, _, _) = call(&dev, get(None)).await;
    assert_eq!(st, 404);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir.join("sha256")).unwrap().flatten() {
        for f in std::fs::read_dir(e.path()).unwrap().flatten() {
            out.push(f.path().display().to_string());
        }
    }
    out.sort();
    out
}
