//! The device gateway end to end: real mTLS, real MQTT clients
//! (Mosquitto's `mosquitto_pub`/`mosquitto_sub`, Python's paho-mqtt and the
//! agent library), the detection engine, alerts over SSE, and quarantine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bulwark_agent::Agent;
use bulwark_agent::monitor::{Isolation, IsolationMode, TelemetryOptions};
use bulwark_proto::DeviceId;
use bulwark_proto::telemetry::Encoding;
use bulwark_server::{ManualClock, RawConfig, Server};
use serde_json::{Value, json};

use super::device_tls::{Admin, fixture_root, now, opts, provider, start_with};

const PROFILE: &str = r#"
group = "lobby-sensors"
version = "1"

[[behaviour]]
name = "telnet-open"
severity = "critical"
action = "quarantine"
metric = "listening_ports"
operator = "in-set"
threshold = ["tcp/23"]

[[behaviour]]
name = "many-processes"
severity = "low"
metric = "process_count"
operator = ">"
threshold = 1000
"#;

fn telemetry(ports: &[u16], processes: u64) -> String {
    let listening: Vec<Value> = ports
        .iter()
        .map(|p| json!({"proto": "tcp", "port": p, "addr": "0.0.0.0"}))
        .collect();
    json!({
        "schema": 1, "time": 1_795_000_000_000u64, "seq": 1,
        "listening": listening, "connections": [],
        "net": {"bytes_in": 0, "bytes_out": 0, "packets_in": 0, "packets_out": 0},
        "connection_attempts": 0, "process_count": processes,
        "cpu_percent": 1.5, "memory_percent": 20.0
    })
    .to_string()
}

struct Device {
    id: DeviceId,
    dir: PathBuf,
}

impl Device {
    async fn enroll(server: &Server, admin: &Admin, dir: &Path, name: &str) -> Device {
        let token = admin.enroll_token(3600).await;
        let state_dir = dir.join(name);
        let r = bulwark_agent::enroll(&opts(server, token, &state_dir))
            .await
            .unwrap();
        Device {
            id: r.device_id,
            dir: state_dir,
        }
    }

    /// Publishes a telemetry sample listening on `ports` to this device's
    /// own topic with `mosquitto_pub` (version `v`): (success, stderr).
    async fn report(&self, port: u16, v: &str, ports: &[u16]) -> (bool, String) {
        mosquitto_pub(
            self,
            port,
            v,
            &self.telemetry_topic(),
            &telemetry(ports, 10),
            true,
        )
        .await
    }

    fn telemetry_topic(&self) -> String {
        format!("bulwark/v1/devices/{}/telemetry", self.id)
    }

    fn command_topic(&self) -> String {
        format!("bulwark/v1/devices/{}/commands", self.id)
    }

    /// Mosquitto client arguments: the gateway, the CA, and this device's
    /// certificate (or none).
    fn tls_args(&self, port: u16, with_cert: bool) -> Vec<String> {
        let mut a = vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "--cafile".into(),
            self.dir.join("ca.pem").display().to_string(),
        ];
        if with_cert {
            a.extend([
                "--cert".into(),
                self.dir.join("device.crt").display().to_string(),
                "--key".into(),
                self.dir.join("device.key").display().to_string(),
            ]);
        }
        a
    }
}

/// Whether the Mosquitto programs a test runs are installed
/// (`bulwark_testpg::require_tools`): false, after a skip line, when one is
/// missing outside CI (the test returns); a failure when `CI` is set.
fn have(programs: &[&str]) -> bool {
    bulwark_testpg::require_tools(programs, "apt-get install -y mosquitto mosquitto-clients")
        .is_some()
}

/// Runs `mosquitto_pub` (version `v`): (exit success, stderr).
async fn mosquitto_pub(
    dev: &Device,
    port: u16,
    v: &str,
    topic: &str,
    msg: &str,
    cert: bool,
) -> (bool, String) {
    let out = tokio::process::Command::new("mosquitto_pub")
        .args(dev.tls_args(port, cert))
        .args([
            "-V",
            v,
            "-i",
            "ignored-client-id",
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            msg,
        ])
        .output()
        .await
        .expect("mosquitto_pub must be installed (Debian package mosquitto-clients)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

async fn start_gateway(dir: &Path) -> (Server, Admin, u16, Arc<ManualClock>) {
    provider();
    let clock = Arc::new(ManualClock::new(now()));
    let server = start_with(
        dir,
        clock.clone(),
        RawConfig {
            mqtt_listen: Some("127.0.0.1:0".into()),
            mqtt_rate_per_second: Some(50),
            mqtt_rate_burst: Some(50),
            // The webhook receiver listens on loopback, refused unless
            // allowed.
            webhook_allow: vec!["127.0.0.1".into()],
            ..Default::default()
        },
    )
    .await;
    let admin = Admin::new(&server);
    let port = server.mqtt_addr().unwrap().port();
    (server, admin, port, clock)
}

/// The server's `/metrics` text.
async fn prometheus_text(server: &Server) -> String {
    reqwest::get(format!("http://{}/metrics", server.api_addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample line that starts with `series` (name and
/// labels), or 0 when there is none.
fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn rejections(admin: &Admin, id: DeviceId) -> Value {
    admin.device(id).await["rejections"].clone()
}

#[tokio::test]
async fn mosquitto_clients_acl_detection_and_quarantine() {
    if !have(&["mosquitto_pub", "mosquitto_sub"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, port, _clock) = start_gateway(dir.path()).await;
    let monitor = server.state().monitor().clone();
    let a = Device::enroll(&server, &admin, dir.path(), "a").await;
    let b = Device::enroll(&server, &admin, dir.path(), "b").await;
    let (s, v) = admin
        .call(
            reqwest::Method::POST,
            "/api/v1/profiles",
            Some(json!({"toml": PROFILE})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["behaviours"], json!(["telnet-open", "many-processes"]));

    // Allowed: own telemetry topic, both protocol versions.
    for v in ["mqttv311", "mqttv5"] {
        let before = monitor.accepted();
        let (ok, err) = a.report(port, v, &[22]).await;
        assert!(ok, "{v}: {err}");
        eventually("telemetry accepted", async || monitor.accepted() > before).await;
    }

    // Another device's topic: not delivered, counted against the sender.
    let before = monitor.accepted();
    let _ = mosquitto_pub(
        &a,
        port,
        "mqttv5",
        &b.telemetry_topic(),
        &telemetry(&[23], 10),
        true,
    )
    .await;
    let _ = mosquitto_pub(&a, port, "mqttv311", "bulwark/v1/devices/#", "x", true).await;
    eventually("ACL rejections counted", async || {
        rejections(&admin, a.id).await["topic_denied"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    })
    .await;
    assert_eq!(monitor.accepted(), before);
    assert!(admin.device(b.id).await["device"]["quarantined_at"].is_null());

    // Invalid JSON and unknown fields: rejected and counted, nothing else.
    let _ = mosquitto_pub(&a, port, "mqttv5", &a.telemetry_topic(), "{not json", true).await;
    let _ = mosquitto_pub(
        &a,
        port,
        "mqttv5",
        &a.telemetry_topic(),
        r#"{"schema":1,"bogus":true}"#,
        true,
    )
    .await;
    eventually("invalid telemetry counted", async || {
        rejections(&admin, a.id).await["invalid_telemetry"]
            .as_u64()
            .unwrap_or(0)
            >= 2
    })
    .await;
    // Fleet-wide, on /metrics, by reason.
    let metrics = prometheus_text(&server).await;
    assert!(
        metric_value(
            &metrics,
            "bulwark_gateway_rejections_total{reason=\"invalid_telemetry\"}"
        ) >= 2.0,
        "{metrics}"
    );
    assert!(
        metric_value(
            &metrics,
            "bulwark_gateway_rejections_total{reason=\"topic_denied\"}"
        ) >= 1.0,
        "{metrics}"
    );

    // No client certificate: refused at CONNECT.
    let (ok, err) = mosquitto_pub(&a, port, "mqttv5", &a.telemetry_topic(), "x", false).await;
    assert!(!ok, "a connection without a certificate was accepted");
    assert!(
        err.to_lowercase().contains("not authorized") || err.contains("Connection"),
        "{err}"
    );

    // The SSE stream, opened before the attack.
    let mut stream = reqwest::Client::new()
        .get(format!("http://{}/api/v1/alerts/stream", server.api_addr()))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    // Telnet appears on A: alert, automatic quarantine.
    let (ok, err) = a.report(port, "mqttv5", &[22, 23]).await;
    assert!(ok, "{err}");
    let mut sse = String::new();
    while !sse.contains("event: detection") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        sse.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(sse.contains("telnet-open"), "{sse}");

    eventually("A quarantined", async || {
        !admin.device(a.id).await["device"]["quarantined_at"].is_null()
    })
    .await;
    let detail = admin.device(a.id).await;
    let alert = &detail["alerts"][0];
    assert_eq!(alert["behaviour"], "telnet-open");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["profile_version"], "1");
    assert_eq!(alert["action"], "quarantine");
    assert_eq!(alert["evidence"][0]["metric"], "listening_ports");
    let (_, list) = admin
        .call(reqwest::Method::GET, "/api/v1/alerts", None)
        .await;
    assert_eq!(list["detections"][0]["id"], alert["id"]);

    // The quarantine is journaled with the alert that caused it.
    let (_, entries) = admin
        .call(
            reqwest::Method::GET,
            "/api/v1/audit/entries?limit=1000",
            None,
        )
        .await;
    let q = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entry"]["action"] == "device.quarantine")
        .unwrap_or_else(|| panic!("no device.quarantine entry in {entries}"));
    assert_eq!(q["entry"]["detail"]["alert"], alert["id"]);
    assert_eq!(q["entry"]["actor"]["kind"], "system");

    // Quarantined: refused at connect; check-ins say so; no update assigned.
    let (ok, _) = a.report(port, "mqttv311", &[22]).await;
    assert!(!ok, "a quarantined device was admitted");
    let agent = Agent::load(&a.dir, fixture_root(dir.path())).unwrap();
    let r = agent.checkin().await.unwrap();
    assert!(
        r.quarantine.as_deref().unwrap().contains("telnet-open"),
        "{r:?}"
    );

    // Device B was never affected.
    assert!(admin.device(b.id).await["device"]["quarantined_at"].is_null());
    let (ok, err) = b.report(port, "mqttv5", &[22]).await;
    assert!(ok, "{err}");

    // Release: a separate, journaled decision; A may connect again.
    let (s, v) = admin
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/devices/{}/release", a.id),
            Some(json!({"reason": "re-imaged"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["quarantined_at"].is_null());
    let (ok, err) = a.report(port, "mqttv5", &[22]).await;
    assert!(ok, "{err}");
    assert!(agent.checkin().await.unwrap().quarantine.is_none());

    // A live mosquitto_sub session of A on its command topic: an operator's
    // quarantine sends it the isolate command, then closes the session.
    let sub = tokio::process::Command::new("mosquitto_sub")
        .args(a.tls_args(port, true))
        .args([
            "-V",
            "mqttv5",
            "-t",
            &a.command_topic(),
            "-C",
            "1",
            "-W",
            "20",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    eventually("A's session open", async || {
        monitor.sessions.is_connected(&a.id)
    })
    .await;
    // Give mosquitto_sub's SUBSCRIBE a moment to land after CONNACK.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (s, v) = admin
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/devices/{}/quarantine", a.id),
            Some(json!({"reason": "operator says so"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let out = tokio::time::timeout(Duration::from_secs(20), sub.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let got = String::from_utf8_lossy(&out.stdout);
    assert!(
        got.contains(r#""command":"isolate""#),
        "mosquitto_sub got {got:?} ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(got.contains("operator says so"), "{got}");
    eventually("A's session closed", async || {
        !monitor.sessions.is_connected(&a.id)
    })
    .await;
    server.shutdown().await.unwrap();
}

const PAHO: &str = r#"
import json, ssl, sys, threading
import paho.mqtt.client as mqtt

port, ca, cert, key, own, other, version = sys.argv[1:8]
proto = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho", protocol=proto)
c.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
granted = {}
done = threading.Event()
def on_subscribe(client, userdata, mid, reason_codes, properties):
    granted[mid] = [int(getattr(r, "value", r)) for r in reason_codes]
    if len(granted) == 2:
        done.set()
c.on_subscribe = on_subscribe
c.connect("127.0.0.1", int(port))
c.loop_start()
_, own_mid = c.subscribe(f"bulwark/v1/devices/{own}/commands", qos=1)
_, other_mid = c.subscribe(f"bulwark/v1/devices/{other}/commands", qos=1)
done.wait(10)
info = c.publish(f"bulwark/v1/devices/{own}/telemetry", sys.stdin.read(), qos=1)
info.wait_for_publish(10)
c.disconnect()
c.loop_stop()
print(json.dumps({"own": granted.get(own_mid), "other": granted.get(other_mid)}))
"#;

/// A sample whose sockets are `n` attempts, still unanswered, to
/// `198.51.100.1..=n` on tcp/23, plus one answered HTTPS connection.
fn scanning_telemetry(n: u8) -> String {
    let mut connections: Vec<Value> = (1..=n)
        .map(|i| {
            json!({"proto": "tcp", "local_port": 40000 + u16::from(i),
                   "remote_addr": format!("198.51.100.{i}"), "remote_port": 23,
                   "state": "syn_sent"})
        })
        .collect();
    connections.push(json!({"proto": "tcp", "local_port": 39999,
        "remote_addr": "203.0.113.80", "remote_port": 443, "state": "established"}));
    json!({
        "schema": 1, "time": 1_795_000_000_000u64, "seq": 1,
        "listening": [{"proto": "tcp", "port": 22, "addr": "0.0.0.0"}],
        "connections": connections,
        "net": {"bytes_in": 0, "bytes_out": 0, "packets_in": 0, "packets_out": 0},
        "connection_attempts": u64::from(n), "process_count": 40,
        "cpu_percent": 1.5, "memory_percent": 20.0
    })
    .to_string()
}

/// Issue 17: nothing applied by hand, yet the first sample of a scanning
/// device is judged (by the built-in profile the first start installed,
/// journaled as the system's), raises `scanning` and quarantines; and the
/// same scenario as a Zeek conn.log through `detect replay` raises the
/// same alerts.
#[tokio::test]
async fn monitoring_is_on_from_the_first_start_and_replay_agrees_with_the_gateway() {
    if !have(&["mosquitto_pub"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, port, _clock) = start_gateway(dir.path()).await;
    let monitor = server.state().monitor().clone();

    let (s, eff) = admin
        .call(
            reqwest::Method::GET,
            "/api/v1/profiles/effective?group=lobby-sensors",
            None,
        )
        .await;
    assert_eq!(s, 200, "{eff}");
    assert_eq!(eff["inherited"], true);
    assert_eq!(eff["builtin"], true);
    assert_eq!(eff["profile"]["group"], "*");
    assert_eq!(eff["profile"]["version"], bulwark_detect::BUILTIN_VERSION);
    assert_eq!(eff["profile"]["created_by"], "bulwark-server");
    let (s, bad) = admin
        .call(
            reqwest::Method::GET,
            "/api/v1/profiles/effective?group=no%20spaces",
            None,
        )
        .await;
    assert_eq!(s, 400, "{bad}");
    let (_, entries) = admin
        .call(
            reqwest::Method::GET,
            "/api/v1/audit/entries?limit=1000",
            None,
        )
        .await;
    let applied = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entry"]["action"] == "profile.apply")
        .unwrap_or_else(|| panic!("the built-in profile was not journaled: {entries}"));
    assert_eq!(applied["entry"]["actor"]["kind"], "system");

    // A quiet sample first: judged, not dropped for lack of a profile.
    let a = Device::enroll(&server, &admin, dir.path(), "a").await;
    let before = monitor.accepted();
    let (ok, err) = a.report(port, "mqttv5", &[22]).await;
    assert!(ok, "{err}");
    eventually("telemetry accepted", async || monitor.accepted() > before).await;
    let r = rejections(&admin, a.id).await;
    assert!(r.get("no_profile").is_none(), "{r}");

    // Then the scan.
    let (ok, err) = mosquitto_pub(
        &a,
        port,
        "mqttv5",
        &a.telemetry_topic(),
        &scanning_telemetry(30),
        true,
    )
    .await;
    assert!(ok, "{err}");
    eventually("the scanner quarantined", async || {
        !admin.device(a.id).await["device"]["quarantined_at"].is_null()
    })
    .await;
    let detail = admin.device(a.id).await;
    let mut live: Vec<String> = detail["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["behaviour"].as_str().unwrap().to_owned())
        .collect();
    live.sort();
    live.dedup();
    let scan = detail["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["behaviour"] == "scanning")
        .unwrap_or_else(|| panic!("no scanning alert: {detail}"));
    assert_eq!(scan["profile_version"], bulwark_detect::BUILTIN_VERSION);
    assert_eq!(scan["action"], "quarantine");
    let message = scan["message"].as_str().unwrap();
    assert!(message.contains("horizontal scan"), "{message}");
    assert!(message.contains("tcp/23"), "{message}");
    assert!(message.contains("100% of attempts unanswered"), "{message}");
    assert!(
        scan["evidence"][0]["value"].as_array().is_some_and(|v| v
            .iter()
            .any(|e| e.as_str().unwrap().contains("198.51.100."))),
        "{scan}"
    );
    assert!(r.get("no_profile").is_none());

    // The same scenario as the conn.log a network tap would have written.
    let mut log = String::new();
    for i in 1..=30u16 {
        log.push_str(
            &json!({"ts": 1_795_000_000.0 + f64::from(i) * 0.01, "uid": format!("C{i}"),
            "id.orig_h": "192.168.1.20", "id.orig_p": 40000 + i,
            "id.resp_h": format!("198.51.100.{i}"), "id.resp_p": 23, "proto": "tcp",
            "duration": 0.0, "conn_state": "S0", "history": "S"})
            .to_string(),
        );
        log.push('\n');
    }
    log.push_str(
        &json!({"ts": 1_795_000_000.0, "uid": "Chttps",
        "id.orig_h": "192.168.1.20", "id.orig_p": 39999, "id.resp_h": "203.0.113.80",
        "id.resp_p": 443, "proto": "tcp", "duration": 1.0, "conn_state": "SF",
        "history": "ShADadFf", "orig_bytes": 500, "resp_bytes": 4000})
        .to_string(),
    );
    log.push('\n');
    let mut csv = Vec::new();
    let summary = bulwark_detect::replay(
        std::io::BufReader::new(log.as_bytes()),
        bulwark_detect::builtin_profile(),
        &mut csv,
    )
    .unwrap();
    let replayed: Vec<String> = summary.alerts_by_behaviour.keys().cloned().collect();
    assert_eq!(replayed, live, "replay and gateway disagree");
    server.shutdown().await.unwrap();
}

/// Issue 17: what a device reports can be looked at: its latest sample in
/// the device detail, its minutes in the telemetry history.
#[tokio::test]
async fn telemetry_history_and_the_latest_sample_are_kept() {
    if !have(&["mosquitto_pub"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, port, clock) = start_gateway(dir.path()).await;
    let monitor = server.state().monitor().clone();
    let a = Device::enroll(&server, &admin, dir.path(), "a").await;
    assert!(admin.device(a.id).await["latest_telemetry"].is_null());
    for (i, ports) in [&[22u16][..], &[22, 8080][..]].into_iter().enumerate() {
        let before = monitor.accepted();
        let (ok, err) = a.report(port, "mqttv5", ports).await;
        assert!(ok, "{err}");
        eventually("telemetry accepted", async || monitor.accepted() > before).await;
        if i == 0 {
            clock.advance(time::Duration::seconds(61));
        }
    }
    // Each mosquitto_pub is a session; its end hands its minute over.
    eventually("both sessions closed", async || {
        server.flush_telemetry().await.unwrap();
        let (_, h) = admin
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/devices/{}/telemetry?since=1h", a.id),
                None,
            )
            .await;
        h["minutes"].as_array().is_some_and(|m| m.len() == 2)
    })
    .await;
    let (s, h) = admin
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/devices/{}/telemetry", a.id),
            None,
        )
        .await;
    assert_eq!(s, 200, "{h}");
    let m = &h["minutes"][0];
    assert_eq!(m["samples"], 1);
    assert_eq!(m["processes_max"], 10);
    assert_eq!(m["cpu_avg"], 1.5);
    assert_eq!(h["minutes"][1]["listening_max"], 2);
    let detail = admin.device(a.id).await;
    let latest = &detail["latest_telemetry"]["telemetry"];
    assert_eq!(latest["listening"].as_array().unwrap().len(), 2, "{detail}");
    // Bad queries are 400s with the JSON error shape; unknown devices 404.
    for q in ["since=yesterday", "since=0s", "limit=0", "bogus=1"] {
        let (s, e) = admin
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/devices/{}/telemetry?{q}", a.id),
                None,
            )
            .await;
        assert_eq!(s, 400, "{q}: {e}");
        assert!(e["error"].is_object() || e["error"].is_string(), "{e}");
    }
    let (s, _) = admin
        .call(
            reqwest::Method::GET,
            "/api/v1/devices/00000000-0000-4000-8000-000000000009/telemetry",
            None,
        )
        .await;
    assert_eq!(s, 404);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn paho_mqtt_both_versions_follow_the_acl() {
    let Some(python) = bulwark_testpg::require_python(
        "python3",
        &["paho.mqtt.client"],
        "python3 -m pip install paho-mqtt==2.2.0",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, port, _clock) = start_gateway(dir.path()).await;
    let monitor = server.state().monitor().clone();
    let a = Device::enroll(&server, &admin, dir.path(), "a").await;
    let b = Device::enroll(&server, &admin, dir.path(), "b").await;
    admin
        .call(
            reqwest::Method::POST,
            "/api/v1/profiles",
            Some(json!({"toml": PROFILE})),
        )
        .await;
    for version in ["311", "5"] {
        let before = monitor.accepted();
        let mut child = tokio::process::Command::new(&python)
            .args(["-c", PAHO, &port.to_string()])
            .arg(a.dir.join("ca.pem"))
            .arg(a.dir.join("device.crt"))
            .arg(a.dir.join("device.key"))
            .args([a.id.to_string(), b.id.to_string(), version.to_owned()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 with paho-mqtt (PyPI) must be installed");
        {
            use tokio::io::AsyncWriteExt as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(telemetry(&[22], 10).as_bytes())
                .await
                .unwrap();
        }
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        // Own command topic granted at QoS 1; another device's refused
        // (0x80 in 3.1.1, 0x87 not authorized in 5).
        let refused = if version == "5" { 0x87 } else { 0x80 };
        assert_eq!(
            got,
            json!({"own": [1], "other": [refused]}),
            "MQTT {version}"
        );
        eventually("paho telemetry accepted", async || {
            monitor.accepted() > before
        })
        .await;
    }
    assert!(
        rejections(&admin, a.id).await["subscribe_denied"]
            .as_u64()
            .unwrap_or(0)
            >= 2
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_agent_publishes_telemetry_and_reports_isolation() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, port, _clock) = start_gateway(dir.path()).await;
    let monitor = server.state().monitor().clone();
    let a = Device::enroll(&server, &admin, dir.path(), "a").await;
    let agent = Agent::load(&a.dir, fixture_root(dir.path())).unwrap();
    let isolation = Isolation::new(IsolationMode::ReportOnly);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let root = fixture_root(dir.path());
    let run = async {
        agent
            .publish_telemetry(
                TelemetryOptions {
                    gateway: format!("localhost:{port}"),
                    interval: Duration::from_millis(200),
                    // The compact encoding; the mosquitto_pub tests above
                    // publish JSON.
                    encoding: Encoding::Cbor,
                },
                root,
                isolation.clone(),
                async {
                    let _ = stop_rx.await;
                },
            )
            .await
    };
    let check = async {
        // Samples flow from the agent library through the gateway.
        eventually("agent telemetry", async || monitor.accepted() >= 2).await;
        let refused = rejections(&admin, a.id).await;
        assert_eq!(
            refused["invalid_telemetry"].as_u64().unwrap_or(0),
            0,
            "CBOR telemetry refused: {refused}"
        );
        // The fleet-wide counters on /metrics agree.
        let metrics = prometheus_text(&server).await;
        let accepted = metric_value(&metrics, "bulwark_gateway_telemetry_accepted_total");
        assert!(accepted >= 2.0, "{metrics}");
        assert!(
            !metrics.contains("reason=\"invalid_telemetry\""),
            "{metrics}"
        );
        assert!(monitor.sessions.is_connected(&a.id));
        // An operator quarantines the device: the agent gets the isolate
        // command and reports that this agent may not isolate.
        let (s, v) = admin
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/devices/{}/quarantine", a.id),
                Some(json!({"reason": "suspicious traffic"})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        eventually("isolation report", async || {
            !admin.device(a.id).await["isolation"].is_null()
        })
        .await;
        let d = admin.device(a.id).await;
        assert_eq!(d["isolation"]["isolated"], false, "{d}");
        assert!(
            d["isolation"]["detail"]
                .as_str()
                .unwrap()
                .contains("--no-isolate")
        );
        assert!(isolation.attempted());
        let _ = stop_tx.send(());
    };
    let (r, ()) = tokio::join!(run, check);
    r.unwrap();
    server.shutdown().await.unwrap();
}

/// A Mosquitto broker on a free loopback port, anonymous, for the
/// external broker mode. Killed on drop.
struct Mosquitto {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Mosquitto {
    async fn start() -> Mosquitto {
        Mosquitto::start_with(tempfile::tempdir().unwrap(), "").await
    }

    /// A broker with a plain listener on `port` plus the `extra` lines
    /// (more listeners), its files in `dir`.
    async fn start_with(dir: tempfile::TempDir, extra: &str) -> Mosquitto {
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "per_listener_settings false\nallow_anonymous true\npersistence false\n\
                 listener {port} 127.0.0.1\n{extra}"
            ),
        )
        .unwrap();
        let bin = bulwark_testpg::require_tool("mosquitto", "apt-get install -y mosquitto")
            .expect("the test checks for mosquitto first (`have`)");
        let child = std::process::Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Killed and waited for on drop, also if it never comes up.
        let broker = Mosquitto {
            child,
            port,
            _dir: dir,
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return broker;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("mosquitto did not start on port {port}");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn external_broker_mode_consumes_telemetry_and_sends_commands_through_it() {
    if !have(&["mosquitto", "mosquitto_pub", "mosquitto_sub"]) {
        return;
    }
    provider();
    let broker = Mosquitto::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(
        dir.path(),
        Arc::new(ManualClock::new(now())),
        RawConfig {
            mqtt_broker: Some(format!("127.0.0.1:{}", broker.port)),
            ..Default::default()
        },
    )
    .await;
    let admin = Admin::new(&server);
    let monitor = server.state().monitor().clone();
    let a = Device::enroll(&server, &admin, dir.path(), "a").await;
    admin
        .call(
            reqwest::Method::POST,
            "/api/v1/profiles",
            Some(json!({"toml": PROFILE})),
        )
        .await;
    eventually("the server subscribed at the broker", async || {
        monitor.broker_connected()
    })
    .await;

    // The device's side, through the broker (plain MQTT on loopback).
    let sub = tokio::process::Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "-V",
            "mqttv5",
        ])
        .args(["-t", &a.command_topic(), "-C", "1", "-W", "20"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let publish = |msg: String| {
        let topic = a.telemetry_topic();
        let port = broker.port.to_string();
        async move {
            let st = tokio::process::Command::new("mosquitto_pub")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-V",
                    "mqttv5",
                    "-t",
                    &topic,
                    "-m",
                    &msg,
                ])
                .status()
                .await
                .unwrap();
            assert!(st.success());
        }
    };
    let before = monitor.accepted();
    publish(telemetry(&[22], 10)).await;
    eventually("telemetry from the broker", async || {
        monitor.accepted() > before
    })
    .await;
    publish(telemetry(&[23], 10)).await;
    eventually("quarantined from broker telemetry", async || {
        !admin.device(a.id).await["device"]["quarantined_at"].is_null()
    })
    .await;
    let out = tokio::time::timeout(Duration::from_secs(20), sub.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let got = String::from_utf8_lossy(&out.stdout);
    assert!(got.contains(r#""command":"isolate""#), "{got:?}");
    // A quarantined device's further telemetry is not admitted.
    publish(telemetry(&[22], 10)).await;
    eventually("not admitted", async || {
        rejections(&admin, a.id).await["not_admitted"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    })
    .await;
    server.shutdown().await.unwrap();
}

/// A CA (certificate PEM, issuer), for the external broker's TLS.
fn test_ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), rcgen::Issuer::new(params, key))
}

/// A leaf certificate for `names` from `issuer`: (certificate PEM, key PEM).
fn test_leaf(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    names: &[&str],
    usage: rcgen::ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn external_broker_mode_over_mutual_tls_verifies_the_broker() {
    if !have(&["mosquitto", "mosquitto_pub"]) {
        return;
    }
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    provider();
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (ca_pem, ca) = test_ca("broker test CA");
    let (broker_cert, broker_key) = test_leaf(&ca, &["127.0.0.1"], ServerAuth);
    let (client_cert, client_key) = test_leaf(&ca, &["bulwark-server"], ClientAuth);
    let ca_file = write("ca.pem", &ca_pem);
    let client_cert_file = write("client.pem", &client_cert);
    let client_key_file = write("client.key", &client_key);
    std::fs::set_permissions(
        &client_key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let (rogue_pem, _) = test_ca("someone else's CA");
    let rogue_file = write("rogue.pem", &rogue_pem);

    // Mosquitto: the plain listener for the devices' side, and a TLS one
    // that requires a client certificate from the CA.
    let broker_dir = tempfile::tempdir().unwrap();
    std::fs::write(broker_dir.path().join("ca.pem"), &ca_pem).unwrap();
    std::fs::write(broker_dir.path().join("broker.pem"), &broker_cert).unwrap();
    std::fs::write(broker_dir.path().join("broker.key"), &broker_key).unwrap();
    let tls_port = free_port();
    let d = broker_dir.path().display().to_string();
    let broker = Mosquitto::start_with(
        broker_dir,
        &format!(
            "listener {tls_port} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/broker.pem\n\
             keyfile {d}/broker.key\nrequire_certificate true\n"
        ),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let broker_addr = format!("127.0.0.1:{tls_port}");
    let server = start_with(
        dir.path(),
        Arc::new(ManualClock::new(now())),
        RawConfig {
            mqtt_broker: Some(broker_addr.clone()),
            mqtt_broker_ca: Some(ca_file.clone()),
            mqtt_broker_cert: Some(client_cert_file.clone()),
            mqtt_broker_key: Some(client_key_file.clone()),
            ..Default::default()
        },
    )
    .await;
    let admin = Admin::new(&server);
    let monitor = server.state().monitor().clone();
    let a = Device::enroll(&server, &admin, dir.path(), "a").await;
    eventually("the server subscribed over mutual TLS", async || {
        monitor.broker_connected()
    })
    .await;
    let before = monitor.accepted();
    let st = tokio::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .args(["-V", "mqttv5", "-t", &a.telemetry_topic()])
        .args(["-m", &telemetry(&[22], 10)])
        .status()
        .await
        .unwrap();
    assert!(st.success());
    eventually("telemetry through the TLS connection", async || {
        monitor.accepted() > before
    })
    .await;
    server.shutdown().await.unwrap();

    // A broker whose certificate does not chain to the configured CA, and
    // a server with no client certificate for a broker that requires one:
    // neither connects (the first attempt takes milliseconds when allowed).
    for (ca, client) in [(rogue_file.clone(), true), (ca_file.clone(), false)] {
        let dir = tempfile::tempdir().unwrap();
        let server = start_with(
            dir.path(),
            Arc::new(ManualClock::new(now())),
            RawConfig {
                mqtt_broker: Some(broker_addr.clone()),
                mqtt_broker_ca: Some(ca.clone()),
                mqtt_broker_cert: client.then(|| client_cert_file.clone()),
                mqtt_broker_key: client.then(|| client_key_file.clone()),
                ..Default::default()
            },
        )
        .await;
        let monitor = server.state().monitor().clone();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            !monitor.broker_connected(),
            "connected with CA {} (client certificate: {client})",
            ca.display()
        );
        server.shutdown().await.unwrap();
    }

    // A client key readable by others stops the start with a clear error.
    std::fs::set_permissions(
        &client_key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = RawConfig {
        data_dir: Some(dir.path().join("data")),
        listen: Some("127.0.0.1:0".into()),
        device_listen: Some("127.0.0.1:0".into()),
        mqtt_broker: Some(broker_addr),
        mqtt_broker_ca: Some(ca_file),
        mqtt_broker_cert: Some(client_cert_file),
        mqtt_broker_key: Some(client_key_file),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let Err(err) = Server::start(config, Arc::new(ManualClock::new(now()))).await else {
        panic!("a group-readable key must stop the start");
    };
    assert!(format!("{err:#}").contains("chmod 600"), "{err:#}");
    drop(broker);
}

/// What the test webhook receiver saw: (timestamp, signature, event, body).
type Seen = Arc<std::sync::Mutex<Vec<(String, String, String, String)>>>;

/// A webhook receiver on loopback that fails its first request with 500.
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let s = s.clone();
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let mut seen = s.lock().unwrap();
                seen.push((
                    h("x-bulwark-timestamp"),
                    h("x-bulwark-signature"),
                    h("x-bulwark-event"),
                    body,
                ));
                if seen.len() == 1 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn alerts_reach_webhooks_signed_and_retried() {
    if !have(&["mosquitto_pub"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, port, clock) = start_gateway(dir.path()).await;
    let a = Device::enroll(&server, &admin, dir.path(), "a").await;
    admin
        .call(
            reqwest::Method::POST,
            "/api/v1/profiles",
            Some(json!({"toml": PROFILE})),
        )
        .await;
    let (url, seen) = receiver().await;
    let secret = "whsec-0123456789abcdef";
    let (s, hook) = admin
        .call(
            reqwest::Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": url, "secret": secret})),
        )
        .await;
    assert_eq!(s, 201, "{hook}");
    assert!(
        !hook.to_string().contains(secret),
        "the secret is never returned"
    );

    let (ok, err) = a.report(port, "mqttv5", &[23]).await;
    assert!(ok, "{err}");
    // The first attempt gets 500; the retry, due 1 s later on the server's
    // clock, is delivered.
    for _ in 0..400 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(seen.lock().unwrap().len(), 1, "no retry before it is due");
    clock.advance(time::Duration::seconds(1));
    for _ in 0..400 {
        if seen.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    for (ts, sig, event, body) in &got {
        assert_eq!(event, "detection");
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["type"], "detection");
        assert_eq!(v["alert"]["behaviour"], "telnet-open");
        // The receiver's check: HMAC-SHA256(secret, ts + "." + body), in
        // constant time.
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
        let mac = hex::decode(sig.strip_prefix("v1=").unwrap()).unwrap();
        aws_lc_rs::hmac::verify(&key, format!("{ts}.{body}").as_bytes(), &mac)
            .expect("signature verifies");
        assert!(aws_lc_rs::hmac::verify(&key, format!("{ts}.{body} ").as_bytes(), &mac).is_err());
    }
    let id = hook["id"].as_str().unwrap();
    let mut log = Value::Null;
    for _ in 0..200 {
        log = admin
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/webhooks/{id}/deliveries"),
                None,
            )
            .await
            .1;
        if log["deliveries"][0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let d = &log["deliveries"][0];
    assert_eq!(d["state"], "delivered", "{log}");
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["last_status"], 204);
    server.shutdown().await.unwrap();
}
