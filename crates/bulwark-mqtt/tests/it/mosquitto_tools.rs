//! mosquitto_pub / mosquitto_sub against the gateway.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bulwark_mqtt::{Rejection, SessionCommand, SessionConfig, command_topic, telemetry_topic};
use tokio::process::Command;

use crate::common::{DEVICE, Gateway, OTHER, tool};

const VERSIONS: [&str; 2] = ["mqttv311", "mqttv5"];

async fn run(mut cmd: Command) -> std::process::Output {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .expect("tool timed out")
        .expect("tool runs")
}

fn pub_cmd(bin: &Path, gw: &Gateway, version: &str, topic: &str, msg: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &gw.addr.port().to_string(),
        "-V",
        version,
    ])
    .args(["-q", "1", "-t", topic, "-m", msg]);
    cmd
}

fn sub_cmd(bin: &Path, gw: &Gateway, version: &str, topic: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &gw.addr.port().to_string(),
        "-V",
        version,
    ])
    .args(["-q", "1", "-t", topic, "-C", "1", "-W", "10"]);
    cmd
}

#[tokio::test]
async fn mosquitto_pub_own_topic_is_delivered() {
    let Some(bin) = tool("mosquitto_pub") else {
        return;
    };
    for version in VERSIONS {
        let gw = Gateway::start(SessionConfig::default()).await;
        let out = run(pub_cmd(
            &bin,
            &gw,
            version,
            &telemetry_topic(DEVICE),
            "hello",
        ))
        .await;
        assert!(out.status.success(), "{version}: {out:?}");
        gw.wait_publish("telemetry", b"hello").await;
        assert!(
            gw.rejections().is_empty(),
            "{version}: {:?}",
            gw.rejections()
        );
    }
}

#[tokio::test]
async fn mosquitto_pub_other_topic_is_denied() {
    let Some(bin) = tool("mosquitto_pub") else {
        return;
    };
    for version in VERSIONS {
        let gw = Gateway::start(SessionConfig::default()).await;
        let out = run(pub_cmd(&bin, &gw, version, &telemetry_topic(OTHER), "nope")).await;
        gw.wait_rejection(Rejection::TopicDenied).await;
        assert!(gw.publishes().is_empty(), "{version}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if version == "mqttv5" {
            // mosquitto_pub reports the negative PUBACK.
            assert!(stderr.contains("Not authorized"), "{version}: {out:?}");
        }
        // v3.1.1: the gateway closes the connection (no negative ack there).
    }
}

#[tokio::test]
async fn mosquitto_sub_receives_commands() {
    let Some(bin) = tool("mosquitto_sub") else {
        return;
    };
    for version in VERSIONS {
        let gw = Gateway::start(SessionConfig::default()).await;
        let child = sub_cmd(&bin, &gw, version, &command_topic(DEVICE))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto_sub runs");
        // Sent at once: held by the session until the SUBSCRIBE arrives.
        gw.session(0)
            .await
            .send(SessionCommand::Publish {
                payload: b"update-now".to_vec(),
            })
            .await
            .expect("command");
        let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
            .await
            .expect("mosquitto_sub timed out")
            .expect("wait");
        assert!(out.status.success(), "{version}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "update-now",
            "{version}"
        );
    }
}

#[tokio::test]
async fn mosquitto_sub_other_topics_are_refused() {
    let Some(bin) = tool("mosquitto_sub") else {
        return;
    };
    for version in VERSIONS {
        for topic in ["#", "bulwark/v1/devices/+/commands", &command_topic(OTHER)] {
            let gw = Gateway::start(SessionConfig::default()).await;
            let out = run(sub_cmd(&bin, &gw, version, topic)).await;
            // mosquitto_sub reports refused filters (0x80 on v3.1.1, 0x87 on
            // v5) with this message; 2.0.11 then exits 0 on v3.1.1.
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("All subscription requests were denied"),
                "{version} {topic}: {out:?}"
            );
            assert!(out.stdout.is_empty(), "{version} {topic}: {out:?}");
            gw.wait_rejection(Rejection::SubscribeDenied).await;
        }
    }
}
