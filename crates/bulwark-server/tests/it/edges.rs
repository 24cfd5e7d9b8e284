//! The API listener's edges, probed as a hostile client would: silent and
//! half-sent connections are closed, the connection cap holds, and one
//! caller holding slow requests sheds its own, not an admin's quarantine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use bulwark_server::ManualClock;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::device_tls::{Admin, start_with};

/// Reads until the peer closes (`Some(bytes read)`) or `wait` passes (`None`).
async fn closed_within(s: &mut TcpStream, wait: Duration) -> Option<usize> {
    let mut total = 0;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(total),
            Ok(Ok(n)) => total += n,
        }
    }
}

async fn get_once(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn silent_and_half_sent_connections_are_closed_and_the_cap_holds() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/x", get(|| async { "ok" }));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bulwark_server::listen::serve_api(
        listener,
        router,
        2,
        Duration::from_millis(300),
        Duration::from_millis(100),
        async {
            let _ = rx.await;
        },
    ));
    // A connection that never sends, one that stops inside its headers,
    // and one idle after a complete request: all closed by the server.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /x HTTP/1.1\r\nhost: t\r\nx-slow: ")
        .await
        .unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(5))
            .await
            .is_some()
    );
    assert!(
        closed_within(&mut half, Duration::from_secs(5))
            .await
            .is_some()
    );
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let n = closed_within(&mut idle, Duration::from_secs(5)).await;
    assert!(n.is_some_and(|n| n > 0), "answered, then closed when idle");

    // At the cap (2), a third connection waits until one closes.
    let a = TcpStream::connect(addr).await.unwrap();
    let _b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let third = tokio::spawn(get_once(addr));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!third.is_finished(), "served beyond the connection cap");
    drop(a);
    let answer = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let _ = stop.send(());
    server.await.unwrap();
}

#[tokio::test]
async fn one_caller_with_slow_bodies_does_not_stop_a_quarantine() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let server = start_with(dir.path(), clock, Default::default()).await;
    let admin = Admin::new(&server);
    let (s, v) = admin
        .call(
            reqwest::Method::POST,
            "/api/v1/accounts",
            Some(json!({"name": "vic", "role": "viewer"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"label": "vic", "account": "vic"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let viewer = v["token"].as_str().unwrap().to_owned();
    let addr = server.api_addr();

    // The viewer opens many requests it may make (its own tokens) and
    // never finishes their bodies.
    let mut held = Vec::new();
    for _ in 0..bulwark_server::listen::PER_CALLER + 16 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!(
                "POST /api/v1/tokens HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {viewer}\r\n\
                 content-type: application/json\r\ncontent-length: 4096\r\n\r\n{{\"label\":"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        held.push(s);
    }
    // Its further requests are refused with 429 ...
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let r = http
            .get(format!("http://{addr}/api/v1/whoami"))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        if r.status() == 429 || Instant::now() > deadline {
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
            break 429;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, 429);
    // ... while the admin is served: a quarantine is handled (404: no such
    // device), not shed.
    let (s, v) = admin
        .call(
            reqwest::Method::POST,
            "/api/v1/devices/00000000-0000-4000-8000-000000000000/quarantine",
            Some(json!({"reason": "probe"})),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    let (s, _) = admin
        .call(reqwest::Method::GET, "/api/v1/whoami", None)
        .await;
    assert_eq!(s, 200);
    drop(held);
    server.shutdown().await.unwrap();
}
