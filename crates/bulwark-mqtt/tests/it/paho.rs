//! paho-mqtt (Python) against the gateway.

use std::path::Path;
use std::time::Duration;

use bulwark_mqtt::{Rejection, SessionConfig};
use tokio::process::Command;

use crate::common::{DEVICE, Gateway, OTHER, paho_python};

async fn probe(python: &Path, gw: &Gateway, version: &str) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/paho_probe.py");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(python)
            .arg(&script)
            .args([
                "127.0.0.1",
                &gw.addr.port().to_string(),
                version,
                DEVICE,
                OTHER,
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("paho probe timed out")
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "paho probe failed (is python3-paho-mqtt 2.x installed?): {out:?}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("probe output {stdout}: {e}"))
}

#[tokio::test]
async fn paho_v5() {
    let Some(python) = paho_python() else {
        return;
    };
    let gw = Gateway::start(SessionConfig::default()).await;
    let r = probe(&python, &gw, "v5").await;
    assert_eq!(r["connack"], 0, "{r} {:?} {:?}", gw.ends(), gw.rejections());
    assert_eq!(r["suback"]["own_commands"], serde_json::json!([1]), "{r}");
    assert_eq!(r["suback"]["hash"], serde_json::json!([0x87]), "{r}");
    assert_eq!(
        r["suback"]["other_commands"],
        serde_json::json!([0x87]),
        "{r}"
    );
    assert_eq!(r["puback"]["own_telemetry"], 0, "{r}");
    assert_eq!(r["puback"]["other_telemetry"], 0x87, "{r}");
    gw.wait_publish("telemetry", b"paho-own_telemetry").await;
    assert_eq!(gw.publishes().len(), 1);
    assert_eq!(gw.count(Rejection::SubscribeDenied), 2);
    assert_eq!(gw.count(Rejection::TopicDenied), 1);
}

#[tokio::test]
async fn paho_v311() {
    let Some(python) = paho_python() else {
        return;
    };
    let gw = Gateway::start(SessionConfig::default()).await;
    let r = probe(&python, &gw, "v311").await;
    assert_eq!(r["connack"], 0, "{r}");
    assert_eq!(r["suback"]["own_commands"], serde_json::json!([1]), "{r}");
    assert_eq!(r["suback"]["hash"], serde_json::json!([0x80]), "{r}");
    assert_eq!(
        r["suback"]["other_commands"],
        serde_json::json!([0x80]),
        "{r}"
    );
    assert_eq!(r["puback"]["own_telemetry"], 0, "{r}");
    // No negative PUBACK in v3.1.1: the gateway closes the connection.
    assert_eq!(r["puback"]["other_telemetry"], "none", "{r}");
    assert_eq!(r["disconnected"], true, "{r}");
    gw.wait_publish("telemetry", b"paho-own_telemetry").await;
    assert_eq!(gw.publishes().len(), 1);
    assert_eq!(gw.count(Rejection::SubscribeDenied), 2);
    assert_eq!(gw.count(Rejection::TopicDenied), 1);
}
