//! Two server processes on one PostgreSQL behave as one system: a
//! quarantine, release or revocation made through one takes effect at the
//! other's gateway within a second, and each webhook delivery is made once.
//!
//! The processes are this test binary started again on
//! [`server_process`], each a whole `Server` with its own caches, sharing
//! only the data directory (keys, CA) and the database.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bulwark_agent::EnrollOptions;
use serde_json::{Value, json};

use super::device_tls::provider;

/// The variable that makes [`server_process`] run a server.
const CONFIG_ENV: &str = "BULWARK_REPLICA_SERVER_CONFIG";

/// Not a test of its own: the entry point of the server processes that
/// [`two_processes_on_one_postgres_act_as_one`] starts (this binary again,
/// with `--exact replicas::server_process`). Without [`CONFIG_ENV`] it
/// returns at once. With it, it starts a server from that TOML, prints
/// `REPLICA <api> <device> <mqtt>` and serves until its stdin closes.
#[test]
fn server_process() {
    let Ok(toml) = std::env::var(CONFIG_ENV) else {
        return;
    };
    provider();
    let cfg = bulwark_server::RawConfig::from_toml(&toml)
        .unwrap()
        .validate()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let server = bulwark_server::Server::start(cfg, Arc::new(bulwark_server::SystemClock))
            .await
            .unwrap();
        println!(
            "REPLICA {} {} {}",
            server.api_addr(),
            server.device_addr(),
            server.mqtt_addr().unwrap()
        );
        std::io::stdout().flush().unwrap();
        // Serve until the parent closes our stdin (or dies).
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
        })
        .await
        .unwrap();
        server.shutdown().await.unwrap();
    });
}

struct Replica {
    child: Child,
    api: SocketAddr,
    device: SocketAddr,
    mqtt: u16,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(data: &Path, db: &str) -> Replica {
    let toml = format!(
        "data_dir = {data:?}\ndatabase_url = {db:?}\nlisten = \"127.0.0.1:0\"\n\
         device_listen = \"127.0.0.1:0\"\nmqtt_listen = \"127.0.0.1:0\"\n\
         poll_interval_secs = 5\nwebhook_allow = [\"127.0.0.1\"]\n",
        data = data.display().to_string(),
    );
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "replicas::server_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CONFIG_ENV, toml)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let ready = loop {
        let line = lines
            .next()
            .expect("the server process ended before it was ready")
            .unwrap();
        // libtest prints `test replicas::server_process ... ` before it.
        if let Some((_, rest)) = line.split_once("REPLICA ") {
            break rest.to_owned();
        }
    };
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let parts: Vec<&str> = ready.split(' ').collect();
    let mqtt: SocketAddr = parts[2].parse().unwrap();
    Replica {
        child,
        api: parts[0].parse().unwrap(),
        device: parts[1].parse().unwrap(),
        mqtt: mqtt.port(),
    }
}

struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(r: &Replica, data: &Path) -> Api {
        Api {
            base: format!("http://{}", r.api),
            token: std::fs::read_to_string(data.join("admin.token"))
                .unwrap()
                .trim()
                .to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

struct Dev {
    id: String,
    dir: PathBuf,
}

impl Dev {
    async fn enroll(api: &Api, r: &Replica, data: &Path, dir: &Path, name: &str) -> Dev {
        let (s, v) = api
            .post(
                "/api/v1/enroll-tokens",
                json!({"group": "lobby-sensors", "environment": "staging", "ttl_secs": 600}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let state_dir = dir.join(name);
        let e = bulwark_agent::enroll(&EnrollOptions {
            server: format!("https://{}", r.device),
            ca_pem: std::fs::read_to_string(data.join("ca.pem")).unwrap(),
            token: v["token"].as_str().unwrap().to_owned(),
            state_dir: state_dir.clone(),
            hostname: Some(name.into()),
        })
        .await
        .unwrap();
        Dev {
            id: e.device_id.to_string(),
            dir: state_dir,
        }
    }

    /// Publishes one telemetry sample through a gateway: whether the
    /// gateway took it (CONNACK accepted, QoS 1 acknowledged).
    async fn publish(&self, port: u16, processes: u64) -> bool {
        let sample = json!({
            "schema": 1, "time": 1_795_000_000_000u64, "seq": 1,
            "listening": [], "connections": [],
            "net": {"bytes_in": 0, "bytes_out": 0, "packets_in": 0, "packets_out": 0},
            "connection_attempts": 0, "process_count": processes,
            "cpu_percent": 1.5, "memory_percent": 20.0
        });
        let d = |f: &str| self.dir.join(f).display().to_string();
        tokio::process::Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["--cafile", &d("ca.pem"), "--cert", &d("device.crt")])
            .args(["--key", &d("device.key"), "-V", "mqttv311", "-q", "1"])
            .args(["-t", &format!("bulwark/v1/devices/{}/telemetry", self.id)])
            .args(["-m", &sample.to_string()])
            .output()
            .await
            .expect("mosquitto_pub must be installed (Debian package mosquitto-clients)")
            .status
            .success()
    }
}

/// How long until `publish` gives `want` (polled), at most `limit`.
async fn until_gateway_says(dev: &Dev, port: u16, want: bool, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if dev.publish(port, 10).await == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "the other process's gateway still answered {} after {limit:?}",
            !want
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_processes_on_one_postgres_act_as_one() {
    provider();
    if bulwark_testpg::require_tool("mosquitto_pub", "apt-get install -y mosquitto-clients")
        .is_none()
    {
        return;
    }
    let Some(pg) = bulwark_testpg::TempPostgres::require() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // The first process creates the data directory and the schema; the
    // second joins them.
    let a = spawn(&data, pg.url());
    let b = spawn(&data, pg.url());
    let api = Api::new(&a, &data);
    let dev = Dev::enroll(&api, &a, &data, tmp.path(), "d1").await;

    // Connected at B first, so B has the device cached as allowed.
    assert!(
        dev.publish(b.mqtt, 10).await,
        "B's gateway admits the device"
    );

    // Quarantined through A: refused at B's gateway within a second.
    let (s, v) = api
        .post(
            &format!("/api/v1/devices/{}/quarantine", dev.id),
            json!({"reason": "replica test"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let took = until_gateway_says(&dev, b.mqtt, false, Duration::from_secs(1)).await;
    eprintln!("quarantine through A refused at B after {took:?}");

    // Released through A: admitted at B again.
    let (s, v) = api
        .post(
            &format!("/api/v1/devices/{}/release", dev.id),
            json!({"reason": "replica test done"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let took = until_gateway_says(&dev, b.mqtt, true, Duration::from_secs(1)).await;
    eprintln!("release through A admitted at B after {took:?}");

    // Webhook deliveries of alerts raised at B: each made exactly once,
    // although both processes run a delivery worker.
    let (url, seen) = receiver().await;
    let (s, v) = api
        .post(
            "/api/v1/webhooks",
            json!({"url": url, "secret": "whsec-0123456789abcdef"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = api
        .post(
            "/api/v1/profiles",
            json!({"toml": "group = \"lobby-sensors\"\nversion = \"r1\"\n[[behaviour]]\nname = \"many-processes\"\nseverity = \"low\"\nmetric = \"process_count\"\noperator = \">\"\nthreshold = 1000\n"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let mut devs = vec![dev];
    for i in 2..=4 {
        devs.push(Dev::enroll(&api, &a, &data, tmp.path(), &format!("d{i}")).await);
    }
    // The profile was applied through A; B's engine gets it from the
    // journal. Each device then fires once at B.
    let start = Instant::now();
    for d in &devs {
        loop {
            assert!(d.publish(b.mqtt, 5_000).await);
            let n = seen
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, body)| body.contains(&d.id))
                .count();
            if n > 0 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no alert delivered for {}",
                d.id
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Both workers poll every 500 ms: give them time to double-deliver.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = seen.lock().unwrap().clone();
    let mut ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "a delivery was made twice: {seen:?}");

    // Revoked through A: refused at B within a second (its certificate
    // serial reaches B's TLS verifier and its cache).
    let d = &devs[1];
    let (s, v) = api
        .post(
            &format!("/api/v1/devices/{}/revoke", d.id),
            json!({"reason": "replica test"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let took = until_gateway_says(d, b.mqtt, false, Duration::from_secs(1)).await;
    eprintln!("revocation through A refused at B after {took:?}");
    drop((a, b));
}

type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A receiver that accepts every delivery: (delivery id, body) each.
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let s = s.clone();
            async move {
                let id = headers
                    .get("x-bulwark-delivery")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                s.lock().unwrap().push((id, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}
