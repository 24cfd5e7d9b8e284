//! The client against canned HTTP answers from a bare TCP listener: error
//! mapping, caps, request shapes and event streams.

use std::time::Duration;

use bulwark_api::{DeviceQuery, QuarantineDevice, StreamEvent};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{Client, ClientError, MAX_EVENT_BYTES, MAX_RESPONSE_BYTES};

/// Serves one connection: reads the request (head and `content-length`
/// body), writes `head` (status line and headers, without the blank
/// line), then `body` in one piece, and closes. Returns the base URL and
/// the request as received.
async fn serve_once(head: &str, body: Vec<u8>) -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let head = head.to_owned();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let request = read_request(&mut s).await;
        let mut out = head.into_bytes();
        out.extend_from_slice(b"connection: close\r\n\r\n");
        out.extend_from_slice(&body);
        // The client may hang up first (a refused answer).
        let _ = s.write_all(&out).await;
        let _ = s.shutdown().await;
        request
    });
    (base, task)
}

async fn read_request(s: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len || n == 0 {
                return text;
            }
        } else if n == 0 {
            return text;
        }
    }
}

fn json_head(status: &str, len: usize) -> String {
    format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n")
}

async fn answer(status: &str, body: &str) -> (Client, JoinHandle<String>) {
    let (base, task) = serve_once(&json_head(status, body.len()), body.as_bytes().to_vec()).await;
    (Client::new(&base, " tok3n\n").unwrap(), task)
}

const WHOAMI: &str = r#"{"account":{"id":"a1","name":"admin","role":"admin","created_at":"2025-01-01T00:00:00Z"},"token_id":"t1","later":1}"#;

#[tokio::test]
async fn a_json_answer_is_typed_and_kept_raw() {
    let (client, task) = answer("200 OK", WHOAMI).await;
    let w = client.whoami().await.unwrap();
    assert_eq!(w.value.account.name, "admin");
    assert_eq!(w.json["later"], 1, "fields this client does not know stay");
    let request = task.await.unwrap();
    assert!(
        request.starts_with("GET /api/v1/whoami HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer tok3n\r\n"),
        "the token is sent trimmed: {request}"
    );
}

#[tokio::test]
async fn an_error_body_gives_code_message_and_request_id() {
    let body = r#"{"error":{"code":"internal","message":"internal error","request_id":"r-42"}}"#;
    let (client, _) = answer("500 Internal Server Error", body).await;
    let e = client.whoami().await.unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(e.code(), Some("internal"));
    assert!(
        matches!(&e, ClientError::Http { request_id: Some(id), .. } if id == "r-42"),
        "{e:?}"
    );
    // What the CLI prints (its tests assert on it).
    assert_eq!(e.to_string(), "internal error (request id r-42) (HTTP 500)");

    let body = r#"{"error":{"code":"not_found","message":"device 7 not found"}}"#;
    let (client, _) = answer("404 Not Found", body).await;
    let e = client.show_device("7").await.unwrap_err();
    assert_eq!(e.to_string(), "device 7 not found (HTTP 404)");
    assert_eq!(e.code(), Some("not_found"));
}

#[tokio::test]
async fn an_error_without_the_json_shape_shows_its_text() {
    let page = format!("<html>bad gateway</html>{}", "x".repeat(400));
    let (base, _) = serve_once(
        &format!(
            "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: {}\r\n",
            page.len()
        ),
        page.clone().into_bytes(),
    )
    .await;
    let e = Client::new(&base, "t")
        .unwrap()
        .list_releases()
        .await
        .unwrap_err();
    let ClientError::Http {
        status,
        code,
        message,
        request_id,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!((*status, code, request_id), (502, &None, &None));
    assert_eq!(message.chars().count(), 300, "cut at 300 characters");
    assert!(e.to_string().ends_with(" (HTTP 502)"), "{e}");
}

#[tokio::test]
async fn not_json_wrong_shape_and_empty_answers_are_told_apart() {
    let (client, _) = answer("200 OK", "<html>").await;
    let e = client.whoami().await.unwrap_err();
    assert!(matches!(e, ClientError::NotJson(_)), "{e:?}");
    assert_eq!(e.to_string(), "the server's answer is not JSON");

    let (client, _) = answer("200 OK", r#"{"account":7}"#).await;
    let e = client.whoami().await.unwrap_err();
    assert!(matches!(e, ClientError::Shape(_)), "{e:?}");
    assert_eq!(e.to_string(), "unexpected answer shape");

    let (client, _) = answer("200 OK", "").await;
    let e = client.whoami().await.unwrap_err();
    assert!(matches!(e, ClientError::Empty { .. }), "{e:?}");

    // An empty 204 is what a delete answers.
    let (base, task) = serve_once("HTTP/1.1 204 No Content\r\n", Vec::new()).await;
    Client::new(&base, "t")
        .unwrap()
        .revoke_token("a b/c")
        .await
        .unwrap();
    let request = task.await.unwrap();
    assert!(
        request.starts_with("DELETE /api/v1/tokens/a%20b%2Fc HTTP/1.1\r\n"),
        "{request}"
    );
}

#[tokio::test]
async fn an_answer_over_the_cap_is_refused() {
    // Announced too large: refused before reading.
    let (base, _) = serve_once(&json_head("200 OK", MAX_RESPONSE_BYTES + 1), b"{}".to_vec()).await;
    let e = Client::new(&base, "t").unwrap().whoami().await.unwrap_err();
    assert!(
        matches!(e, ClientError::TooLarge { limit, .. } if limit == MAX_RESPONSE_BYTES),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .ends_with(&format!("is larger than {MAX_RESPONSE_BYTES} bytes")),
        "{e}"
    );

    // Not announced (read to the end of the connection): refused once
    // more than the cap has arrived.
    let (base, _) = serve_once(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n",
        vec![b' '; MAX_RESPONSE_BYTES + 1],
    )
    .await;
    let e = Client::new(&base, "t").unwrap().whoami().await.unwrap_err();
    assert!(matches!(e, ClientError::TooLarge { .. }), "{e:?}");
}

#[tokio::test]
async fn an_unreachable_server_names_its_url() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::builder(format!("http://127.0.0.1:{port}/"), "t")
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert_eq!(client.base_url(), format!("http://127.0.0.1:{port}"));
    let e = client.whoami().await.unwrap_err();
    assert!(matches!(e, ClientError::Unreachable { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("cannot reach http://127.0.0.1:{port}/api/v1/whoami")
    );
    assert!(std::error::Error::source(&e).is_some(), "the cause is kept");
}

#[test]
fn the_base_url_must_be_http_or_https() {
    let e = Client::new("ftp://x", "t").unwrap_err();
    assert_eq!(
        e.to_string(),
        "server URL must start with http:// or https:// (got \"ftp://x\")"
    );
    assert!(matches!(
        Client::new("http://", "t"),
        Err(ClientError::InvalidUrl(_))
    ));
    // (Building it also needs the system's roots, which a bare container
    // may lack: only the URL is checked here.)
    assert!(!matches!(
        Client::new("https://bulwark.example:8443", "t"),
        Err(ClientError::InvalidUrl(_))
    ));
    let debug = format!("{:?}", Client::new("http://h", "secret-token").unwrap());
    assert!(!debug.contains("secret-token"), "{debug}");
}

#[tokio::test]
async fn queries_and_bodies_are_encoded() {
    let list = r#"{"devices":[],"next_after":null}"#;
    let (client, task) = answer("200 OK", list).await;
    let query = DeviceQuery {
        group: Some("lab & co".into()),
        limit: Some(1000),
        ..Default::default()
    };
    let page = client.list_devices(&query).await.unwrap();
    assert!(page.value.devices.is_empty());
    let request = task.await.unwrap();
    assert!(
        request.starts_with("GET /api/v1/devices?group=lab%20%26%20co&limit=1000 HTTP/1.1\r\n"),
        "{request}"
    );

    let device = r#"{"id":"0194b9a0-0000-7000-8000-000000000001"}"#;
    let (client, task) = answer("200 OK", device).await;
    let reason = QuarantineDevice {
        reason: "beaconing".into(),
    };
    // The answer is not a DeviceView: the request is what is checked.
    let e = client
        .quarantine_device("0194b9a0-0000-7000-8000-000000000001", &reason)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Shape(_)), "{e:?}");
    let request = task.await.unwrap();
    assert!(
        request.starts_with(
            "POST /api/v1/devices/0194b9a0-0000-7000-8000-000000000001/quarantine HTTP/1.1\r\n"
        ),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("content-type: application/json\r\n"),
        "{request}"
    );
    assert!(request.ends_with(r#"{"reason":"beaconing"}"#), "{request}");
}

#[tokio::test]
async fn a_file_is_uploaded_with_its_length_and_digest_header() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("artifact.bin");
    std::fs::write(&file, b"artifact bytes").unwrap();
    let blob = r#"{"sha256":"ab","length":14}"#;
    let (client, task) = answer("201 Created", blob).await;
    let b = client.upload_blob(&file, Some("ab")).await.unwrap();
    assert_eq!(b.value.length, 14);
    let request = task.await.unwrap().to_ascii_lowercase();
    assert!(
        request.starts_with("post /api/v1/blobs http/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains("content-length: 14\r\n"), "{request}");
    assert!(request.contains("x-bulwark-sha256: ab\r\n"), "{request}");
    assert!(request.ends_with("artifact bytes"), "{request}");

    let e = client
        .upload_blob(&dir.path().join("missing"), None)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::File { .. }), "{e:?}");
}

#[tokio::test]
async fn an_event_stream_yields_events_and_alerts() {
    let alert = r#"{"id":"a1","kind":"vulnerability","advisory":"CVE-1","subject":"release:fw@1","message":"hit","created_at":"2025-01-01T00:00:00Z"}"#;
    let body = format!(
        ": keep-alive\r\n\r\nevent: vulnerability\r\ndata: {alert}\r\n\r\nevent: lagged\ndata: 3\n\ndata: a\ndata: b\n\n"
    );
    let (base, task) = serve_once(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n",
        body.into_bytes(),
    )
    .await;
    let client = Client::new(&base, "t").unwrap();
    let mut stream = client.alert_stream().await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.event, "vulnerability");
    match first.alert().unwrap() {
        Some(StreamEvent::Vulnerability(a)) => assert_eq!(a.advisory, "CVE-1"),
        other => panic!("{other:?}"),
    }
    let lagged = stream.next().await.unwrap().unwrap();
    assert_eq!(
        (lagged.event.as_str(), lagged.data.as_str()),
        ("lagged", "3")
    );
    assert_eq!(lagged.alert().unwrap(), None);
    let plain = stream.next().await.unwrap().unwrap();
    assert_eq!(
        (plain.event.as_str(), plain.data.as_str()),
        ("message", "a\nb")
    );
    assert_eq!(stream.next().await.unwrap(), None);
    let request = task.await.unwrap().to_ascii_lowercase();
    assert!(
        request.contains("accept: text/event-stream\r\n"),
        "{request}"
    );

    // A refused stream is an HTTP error; an endless line is refused.
    let denied = r#"{"error":{"code":"forbidden","message":"not allowed"}}"#;
    let (client, _) = answer("403 Forbidden", denied).await;
    let e = client.alert_stream().await.unwrap_err();
    assert_eq!(e.to_string(), "not allowed (HTTP 403)");
    let (base, _) = serve_once(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n",
        vec![b'x'; MAX_EVENT_BYTES + 2],
    )
    .await;
    let mut stream = Client::new(&base, "t").unwrap().sse("/s").await.unwrap();
    let e = stream.next().await.unwrap_err();
    assert!(matches!(e, ClientError::LineTooLong { .. }), "{e:?}");
}

#[test]
fn components_are_percent_encoded() {
    assert_eq!(crate::encode_component("fw@1.2.3-rc~1"), "fw%401.2.3-rc~1");
    assert_eq!(crate::encode_component("a/b?c=d"), "a%2Fb%3Fc%3Dd");
    let q = crate::with_query("/p", &DeviceQuery::default()).unwrap();
    assert_eq!(q, "/p");
}
