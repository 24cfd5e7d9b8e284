//! End to end over real sockets and real mutual TLS: the server started by
//! [`Server::start`] on free ports, the agent library enrolling and checking
//! in, and hostile clients.

use std::path::Path;
use std::sync::Arc;

use bulwark_agent::{Agent, EnrollOptions};
use bulwark_pki::{DeviceCa, DeviceKey, SystemRandom};
use bulwark_proto::{DeviceId, ErrorBody};
use bulwark_server::{Clock as _, ManualClock, RawConfig, Server};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// TLS checks certificates against the real clock, so the manual clock
/// starts at the real now (whole seconds, to compare timestamps simply).
pub(crate) fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap()
}

pub(crate) fn provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

async fn start(dir: &Path, clock: Arc<ManualClock>, database_url: Option<String>) -> Server {
    start_with(
        dir,
        clock,
        RawConfig {
            database_url: database_url.map(Into::into),
            ..Default::default()
        },
    )
    .await
}

/// Starts a server on free ports with `extra` settings overlaid.
pub(crate) async fn start_with(dir: &Path, clock: Arc<ManualClock>, extra: RawConfig) -> Server {
    let cfg = RawConfig {
        data_dir: Some(dir.join("data")),
        listen: Some("127.0.0.1:0".into()),
        device_listen: Some("127.0.0.1:0".into()),
        poll_interval_secs: Some(60),
        ..Default::default()
    }
    .overlay(extra)
    .validate()
    .unwrap();
    Server::start(cfg, clock).await.unwrap()
}

pub(crate) struct Admin {
    base: String,
    pub(crate) token: String,
    http: reqwest::Client,
}

impl Admin {
    pub(crate) fn new(server: &Server) -> Self {
        let token = std::fs::read_to_string(server.data_dir().join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        Self {
            base: format!("http://{}", server.api_addr()),
            token,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        if let Err(e) = crate::conform::check(method.as_str(), path, status, &bytes) {
            panic!("the response does not match the OpenAPI document: {e}");
        }
        (
            status,
            if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            },
        )
    }

    pub(crate) async fn enroll_token(&self, ttl: u64) -> String {
        let (s, v) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/enroll-tokens",
                Some(json!({"group":"lobby-sensors","environment":"staging","ttl_secs":ttl})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn device(&self, id: DeviceId) -> Value {
        let (s, v) = self
            .call(reqwest::Method::GET, &format!("/api/v1/devices/{id}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }
}

pub(crate) fn opts(server: &Server, token: String, state_dir: &Path) -> EnrollOptions {
    EnrollOptions {
        server: format!("https://{}", server.device_addr()),
        ca_pem: std::fs::read_to_string(server.data_dir().join("ca.pem")).unwrap(),
        token,
        state_dir: state_dir.into(),
        hostname: Some("sensor-1".into()),
    }
}

pub(crate) fn fixture_root(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("root");
    let w = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w(
        "etc/os-release",
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    );
    w("proc/sys/kernel/osrelease", "6.1.0-18-arm64\n");
    w(
        "proc/sys/kernel/random/boot_id",
        "11111111-2222-4333-8444-555555555555\n",
    );
    w(
        "var/lib/dpkg/status",
        "Package: openssl\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\nArchitecture: arm64\n",
    );
    root
}

/// A reqwest client presenting `cert`/`key` (or nothing) and trusting `ca_pem`.
fn raw_client(ca_pem: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let cfg = match identity {
        Some((cert, key)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .build()
        .unwrap()
}

async fn full_flow(database_url: Option<String>) {
    provider();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(now()));
    let server = start(dir.path(), clock.clone(), database_url).await;
    let admin = Admin::new(&server);
    let token = admin.enroll_token(3600).await;

    let state_dir = dir.path().join("agent");
    let enrolled = bulwark_agent::enroll(&opts(&server, token.clone(), &state_dir))
        .await
        .unwrap();
    // The private key was generated here and is 0600.
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(state_dir.join("device.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Same token again: refused, and no second device appears.
    let err = bulwark_agent::enroll(&opts(&server, token, &dir.path().join("agent2")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, bulwark_agent::Error::Refused { status: 409, .. }),
        "{err}"
    );

    let agent = Agent::load(&state_dir, fixture_root(dir.path())).unwrap();
    assert_eq!(agent.device_id(), enrolled.device_id);
    let r = agent.checkin().await.unwrap();
    assert_eq!(r.poll_interval_secs, 60);
    assert!(!r.send_inventory);

    let v = admin.device(enrolled.device_id).await;
    assert_eq!(v["device"]["online"], json!(true));
    assert_eq!(v["device"]["group"], json!("lobby-sensors"));
    assert_eq!(v["device"]["environment"], json!("staging"));
    assert_eq!(
        v["device"]["boot_id"],
        json!("11111111-2222-4333-8444-555555555555")
    );
    assert_eq!(v["inventory"]["os"]["id"], json!("debian"));
    assert_eq!(v["inventory"]["kernel"], json!("6.1.0-18-arm64"));
    assert_eq!(v["inventory"]["packages"][0]["name"], json!("openssl"));

    // Offline is two poll intervals plus slack, not hours.
    clock.advance(time::Duration::seconds(131));
    assert_eq!(
        admin.device(enrolled.device_id).await["device"]["online"],
        json!(false)
    );
    agent.checkin().await.unwrap();
    assert_eq!(
        admin.device(enrolled.device_id).await["device"]["online"],
        json!(true)
    );

    // Revoke: refused at TLS on a fresh connection.
    let (s, _) = admin
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/devices/{}/revoke", enrolled.device_id),
            Some(json!({"reason":"stolen"})),
        )
        .await;
    assert_eq!(s, 200);
    let fresh = Agent::load(&state_dir, fixture_root(dir.path())).unwrap();
    let err = fresh.checkin().await.unwrap_err();
    assert!(
        matches!(err, bulwark_agent::Error::Refused { status: 403, .. }),
        "{err}"
    );
    // And on the agent's still-open keep-alive connection, at the HTTP layer.
    let err = agent.checkin().await.unwrap_err();
    assert!(
        matches!(err, bulwark_agent::Error::Refused { status: 403, .. }),
        "{err}"
    );

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn enroll_checkin_offline_revoke_on_sqlite() {
    full_flow(None).await;
}

#[tokio::test]
async fn enroll_checkin_offline_revoke_on_postgres() {
    let Some(pg) = bulwark_testpg::TempPostgres::require() else {
        return;
    };
    full_flow(Some(pg.url().to_owned())).await;
}

#[tokio::test]
async fn expired_and_unknown_enrollment_tokens_are_refused() {
    provider();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(now()));
    let server = start(dir.path(), clock.clone(), None).await;
    let admin = Admin::new(&server);
    let token = admin.enroll_token(60).await;
    clock.advance(time::Duration::seconds(61));
    let err = bulwark_agent::enroll(&opts(&server, token.clone(), &dir.path().join("a")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, bulwark_agent::Error::Refused { status: 410, .. }),
        "{err}"
    );
    // Change the last character (to one it is not), so the secret differs.
    let last = if token.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    let err = bulwark_agent::enroll(&opts(&server, forged, &dir.path().join("b")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, bulwark_agent::Error::Refused { status: 401, .. }),
        "{err}"
    );
    let err = bulwark_agent::enroll(&opts(&server, "garbage".into(), &dir.path().join("c")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, bulwark_agent::Error::Refused { status: 401, .. }),
        "{err}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_multi_use_token_enrolls_as_many_devices_as_its_uses() {
    provider();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(now()));
    let server = start(dir.path(), clock.clone(), None).await;
    let admin = Admin::new(&server);
    let (s, v) = admin
        .call(
            reqwest::Method::POST,
            "/api/v1/enroll-tokens",
            Some(json!({"group":"lobby-sensors","environment":"staging","uses":2})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["max_uses"], json!(2));
    let token = v["token"].as_str().unwrap().to_owned();
    let id = v["id"].as_str().unwrap().to_owned();
    let mut devices = Vec::new();
    for name in ["a", "b"] {
        let e = bulwark_agent::enroll(&opts(&server, token.clone(), &dir.path().join(name)))
            .await
            .unwrap();
        devices.push(e.device_id);
    }
    assert_ne!(devices[0], devices[1]);
    for d in &devices {
        assert_eq!(
            admin.device(*d).await["device"]["group"],
            json!("lobby-sensors")
        );
    }
    // The third use is refused as a used one-time token is: 409.
    let err = bulwark_agent::enroll(&opts(&server, token, &dir.path().join("c")))
        .await
        .unwrap_err();
    match &err {
        bulwark_agent::Error::Refused {
            status: 409,
            message,
        } => {
            assert!(message.contains("already been used"), "{message}");
        }
        other => panic!("{other}"),
    }
    let (s, list) = admin
        .call(reqwest::Method::GET, "/api/v1/enroll-tokens", None)
        .await;
    assert_eq!(s, 200);
    let t = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == json!(id))
        .unwrap();
    assert_eq!((&t["uses"], &t["max_uses"]), (&json!(2), &json!(2)));
    assert_eq!(t["device_id"], json!(devices[1].to_string()));
    // A token created without `uses` is one-time.
    let (s, v) = admin
        .call(
            reqwest::Method::POST,
            "/api/v1/enroll-tokens",
            Some(json!({"group":"lobby-sensors","environment":"staging"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["max_uses"], json!(1));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn foreign_ca_and_missing_certificates_are_refused() {
    provider();
    let dir = tempfile::tempdir().unwrap();
    let now = now();
    let server = start(dir.path(), Arc::new(ManualClock::new(now)), None).await;
    let ca_pem = std::fs::read_to_string(server.data_dir().join("ca.pem")).unwrap();
    let url = format!("https://{}/api/v1/device/checkin", server.device_addr());
    let body = json!({"agent_version":"1","inventory_digest":"0".repeat(64)});

    // A certificate for a plausible device id, signed by another CA: TLS refuses it.
    let (rogue, _) = DeviceCa::generate("rogue CA", now).unwrap();
    let key = DeviceKey::generate().unwrap();
    let cert = rogue
        .sign_device_csr(
            &key.csr_pem("x").unwrap(),
            DeviceId::from_uuid(uuid::Uuid::nil()),
            &SystemRandom,
            now,
            time::Duration::days(1),
        )
        .unwrap();
    let client = raw_client(&ca_pem, Some((&cert.pem, key.to_pem().expose())));
    let err = client.post(&url).json(&body).send().await.unwrap_err();
    assert!(
        format!("{err:?}").contains("UnknownCA") || format!("{err:?}").contains("alert"),
        "{err:?}"
    );

    // No certificate: the TLS handshake succeeds (enrollment needs that) but
    // every device route answers 401 with the JSON error shape.
    let client = raw_client(&ca_pem, None);
    let resp = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let e: ErrorBody = resp.json().await.unwrap();
    assert_eq!(e.error.code, "client_certificate_required");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn hostile_checkins_get_clear_4xx() {
    provider();
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Arc::new(ManualClock::new(now())), None).await;
    let admin = Admin::new(&server);
    let state_dir = dir.path().join("agent");
    bulwark_agent::enroll(&opts(&server, admin.enroll_token(600).await, &state_dir))
        .await
        .unwrap();
    let read = |f: &str| std::fs::read_to_string(state_dir.join(f)).unwrap();
    let client = raw_client(
        &read("ca.pem"),
        Some((&read("device.crt"), &read("device.key"))),
    );
    let url = format!("https://{}/api/v1/device/checkin", server.device_addr());
    let digest = "0".repeat(64);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("malformed JSON", "{\"agent_version\":".into(), 400, "bad_request"),
        ("unknown field (device id spoofing)", json!({"agent_version":"1","inventory_digest":digest,"device_id":"00000000-0000-4000-8000-000000000000"}).to_string(), 400, "bad_request"),
        ("bad digest", json!({"agent_version":"1","inventory_digest":"xyz"}).to_string(), 400, "invalid_fields"),
        ("inventory not matching digest", json!({"agent_version":"1","inventory_digest":digest,"inventory":{"arch":"x86_64"}}).to_string(), 400, "invalid_fields"),
        ("control characters", json!({"agent_version":"1\u{1b}[31m","inventory_digest":digest}).to_string(), 400, "invalid_fields"),
        ("oversized body", json!({"agent_version":"x".repeat(5 << 20),"inventory_digest":digest}).to_string(), 413, "payload_too_large"),
    ];
    for (name, body, status, code) in cases {
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{name}");
        let e: ErrorBody = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("{name}: not the error shape: {e}"));
        assert_eq!(e.error.code, code, "{name}: {}", e.error.message);
    }
    // The device is still fine after all that.
    Agent::load(&state_dir, fixture_root(dir.path()))
        .unwrap()
        .checkin()
        .await
        .unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn restart_keeps_ca_identity_and_flushed_presence() {
    provider();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(now()));
    let server = start(dir.path(), clock.clone(), None).await;
    let admin = Admin::new(&server);
    let state_dir = dir.path().join("agent");
    let id = bulwark_agent::enroll(&opts(&server, admin.enroll_token(600).await, &state_dir))
        .await
        .unwrap()
        .device_id;
    Agent::load(&state_dir, fixture_root(dir.path()))
        .unwrap()
        .checkin()
        .await
        .unwrap();
    let ca_before = std::fs::read_to_string(server.data_dir().join("ca.pem")).unwrap();
    server.shutdown().await.unwrap();

    let server = start(dir.path(), clock.clone(), None).await;
    assert!(
        server.admin_token_file().is_none(),
        "the admin token is written once, on first start"
    );
    assert_eq!(
        std::fs::read_to_string(server.data_dir().join("ca.pem")).unwrap(),
        ca_before
    );
    let admin = Admin::new(&server);
    let v = admin.device(id).await;
    let expected = clock
        .now()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(
        v["device"]["last_seen"],
        json!(expected),
        "flushed at shutdown"
    );
    // The agent's identity still works, but it needs a new port: reload its state.
    let mut agent_opts = opts(&server, String::new(), &state_dir);
    agent_opts.token.clear();
    let toml_path = state_dir.join("agent.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    let updated: String = toml
        .lines()
        .map(|l| {
            if l.starts_with("server") {
                format!("server = \"{}\"", agent_opts.server)
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&toml_path, updated).unwrap();
    Agent::load(&state_dir, fixture_root(dir.path()))
        .unwrap()
        .checkin()
        .await
        .unwrap();
    server.shutdown().await.unwrap();
}

/// A raw TLS connection to the device listener, trusting `ca_pem`; returns
/// it and the serial (hex) of the certificate the server presented.
async fn raw_tls(
    server: &Server,
    ca_pem: &str,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    String,
) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.device_addr())
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let der = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    (tls, cert.raw_serial_as_string())
}

/// One `GET /healthz` on an open HTTP/1.1 connection.
async fn healthz_on(tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !(got.starts_with(b"HTTP/1.1 200") && got.ends_with(b"\r\n\r\nok\n")) {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), tls.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no whole answer in 5 s: {:?}",
                    String::from_utf8_lossy(&got)
                )
            })
            .unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

/// The listeners' own certificate lasts 30 days and the server renews it
/// before it expires, by its own clock and with no restart (issue 19):
/// a connection made before the renewal keeps working, new handshakes get
/// the new certificate, and a server "started" 31 days ago, whose first
/// certificate has expired, still enrolls and checks devices in.
#[tokio::test]
async fn the_listener_certificate_is_renewed_before_it_expires() {
    provider();
    let real = now();

    // Up 25 days: the first certificate has 5 days left, inside the
    // renewal window (10 days), but nobody has connected since it opened.
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(real - time::Duration::days(25)));
    let server = start(dir.path(), clock.clone(), None).await;
    let ca_pem = std::fs::read_to_string(server.data_dir().join("ca.pem")).unwrap();
    let (mut before, first) = raw_tls(&server, &ca_pem).await;
    healthz_on(&mut before).await;
    clock.advance(time::Duration::days(25));
    let (mut after, second) = raw_tls(&server, &ca_pem).await;
    assert_ne!(first, second, "the certificate was not renewed");
    healthz_on(&mut after).await;
    // The connection made with the old certificate is still served.
    healthz_on(&mut before).await;
    // Renewed once: the next handshake gets the same new certificate.
    let (_, third) = raw_tls(&server, &ca_pem).await;
    assert_eq!(second, third);
    server.shutdown().await.unwrap();

    // "Started" 31 days ago: its first certificate expired yesterday.
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(real - time::Duration::days(31)));
    let server = start(dir.path(), clock.clone(), None).await;
    let admin = Admin::new(&server);
    clock.advance(time::Duration::days(31));
    let token = admin.enroll_token(3600).await;
    let state_dir = dir.path().join("agent");
    let enrolled = bulwark_agent::enroll(&opts(&server, token, &state_dir))
        .await
        .unwrap();
    let agent = Agent::load(&state_dir, fixture_root(dir.path())).unwrap();
    agent.checkin().await.unwrap();
    let v = admin.device(enrolled.device_id).await;
    assert_eq!(v["device"]["online"], json!(true));
    server.shutdown().await.unwrap();
}
