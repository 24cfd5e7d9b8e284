//! Our client against a real Mosquitto broker started by the test.

use std::process::Stdio;
use std::time::Duration;

use bulwark_mqtt::{ClientError, ClientOptions, Qos, Version, command_topic, connect};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::common::tool;

struct Broker {
    port: u16,
    _child: Child,
    _dir: tempfile::TempDir,
}

/// `None` when `mosquitto` is missing (outside CI: the test returns).
async fn start_broker(allow_anonymous: bool) -> Option<Broker> {
    let mosquitto = tool("mosquitto")?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous {allow_anonymous}\npersistence false\n"
        ),
    )
    .expect("write config");
    let child = Command::new(mosquitto)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("mosquitto starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "mosquitto did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(Broker {
        port,
        _child: child,
        _dir: dir,
    })
}

async fn client(
    broker: &Broker,
    id: &str,
    version: Version,
) -> Result<(bulwark_mqtt::Client, bulwark_mqtt::Incoming), ClientError> {
    let stream = TcpStream::connect(("127.0.0.1", broker.port))
        .await
        .expect("tcp");
    connect(stream, ClientOptions::new(id, version)).await
}

#[tokio::test]
async fn round_trip_through_mosquitto() {
    let Some(broker) = start_broker(true).await else {
        return;
    };
    for version in [Version::V3_1_1, Version::V5] {
        let topic = command_topic(&format!("dev-{version:?}"));
        let (sub, mut incoming) = client(&broker, &format!("sub-{version:?}"), version)
            .await
            .expect("subscriber connects");
        let granted = sub
            .subscribe(&topic, Qos::AtLeastOnce)
            .await
            .expect("subscribe");
        assert_eq!(granted, Qos::AtLeastOnce);
        let (publ, _) = client(&broker, &format!("pub-{version:?}"), version)
            .await
            .expect("publisher connects");
        for (qos, body) in [(Qos::AtLeastOnce, "one"), (Qos::AtMostOnce, "zero")] {
            publ.publish(&topic, body.as_bytes().to_vec(), qos)
                .await
                .expect("publish");
            let msg = tokio::time::timeout(Duration::from_secs(5), incoming.recv())
                .await
                .expect("message in time")
                .expect("open")
                .expect("ok");
            assert_eq!(msg.topic, topic);
            assert_eq!(msg.payload, body.as_bytes());
        }
        publ.disconnect().await.expect("disconnect");
        sub.disconnect().await.expect("disconnect");
        assert!(incoming.recv().await.is_none());
    }
}

#[tokio::test]
async fn refused_by_mosquitto() {
    let Some(broker) = start_broker(false).await else {
        return;
    };
    for (version, code) in [(Version::V3_1_1, 5u8), (Version::V5, 0x87)] {
        let err = client(&broker, "anon", version).await.expect_err("refused");
        assert!(
            matches!(err, ClientError::Refused { code: c, .. } if c == code),
            "{version:?}: {err:?}"
        );
    }
}
