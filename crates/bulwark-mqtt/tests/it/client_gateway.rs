//! Our client against our gateway, both protocol versions.

use std::time::Duration;

use bulwark_mqtt::{
    ClientError, ClientOptions, CloseCode, Message, Qos, SessionCommand, SessionConfig, SessionEnd,
    Version, command_topic, connect, telemetry_topic,
};
use tokio::net::TcpStream;

use crate::common::{DEVICE, Gateway, OTHER};

async fn client(gw: &Gateway, version: Version) -> (bulwark_mqtt::Client, bulwark_mqtt::Incoming) {
    let stream = TcpStream::connect(gw.addr).await.expect("tcp");
    connect(stream, ClientOptions::new("", version))
        .await
        .expect("connect")
}

async fn next(incoming: &mut bulwark_mqtt::Incoming) -> Option<Result<Message, ClientError>> {
    tokio::time::timeout(Duration::from_secs(5), incoming.recv())
        .await
        .expect("incoming timed out")
}

#[tokio::test]
async fn publish_subscribe_and_commands() {
    for version in [Version::V3_1_1, Version::V5] {
        let gw = Gateway::start(SessionConfig::default()).await;
        let (client, mut incoming) = client(&gw, version).await;
        client
            .publish(&telemetry_topic(DEVICE), b"t1".to_vec(), Qos::AtLeastOnce)
            .await
            .expect("QoS 1 publish");
        client
            .publish(&telemetry_topic(DEVICE), b"t0".to_vec(), Qos::AtMostOnce)
            .await
            .expect("QoS 0 publish");
        gw.wait_publish("telemetry", b"t1").await;
        gw.wait_publish("telemetry", b"t0").await;

        let denied = client.subscribe("#", Qos::AtLeastOnce).await;
        let code = if version == Version::V5 { 0x87 } else { 0x80 };
        assert_eq!(denied, Err(ClientError::SubscribeRejected { code }));
        let granted = client
            .subscribe(&command_topic(DEVICE), Qos::AtLeastOnce)
            .await
            .expect("own command topic");
        assert_eq!(granted, Qos::AtLeastOnce);

        // Several tasks share the client.
        let c2 = client.clone();
        tokio::spawn(async move {
            c2.publish(
                &telemetry_topic(DEVICE),
                b"from-clone".to_vec(),
                Qos::AtLeastOnce,
            )
            .await
        })
        .await
        .expect("join")
        .expect("publish from clone");
        gw.wait_publish("telemetry", b"from-clone").await;

        let commands = gw.session(0).await;
        commands
            .send(SessionCommand::Publish {
                payload: b"scan-now".to_vec(),
            })
            .await
            .expect("command");
        let msg = next(&mut incoming).await.expect("message").expect("ok");
        assert_eq!(msg.topic, command_topic(DEVICE));
        assert_eq!(msg.payload, b"scan-now");

        client.disconnect().await.expect("disconnect");
        assert!(next(&mut incoming).await.is_none(), "{version:?}");
        assert_eq!(gw.wait_end(1).await, vec![SessionEnd::ClientDisconnected]);
    }
}

#[tokio::test]
async fn denied_publish_v5_is_a_negative_puback() {
    let gw = Gateway::start(SessionConfig::default()).await;
    let (client, _incoming) = client(&gw, Version::V5).await;
    let err = client
        .publish(&telemetry_topic(OTHER), b"x".to_vec(), Qos::AtLeastOnce)
        .await;
    assert_eq!(err, Err(ClientError::PublishRejected { code: 0x87 }));
    // The session goes on.
    client
        .publish(
            &telemetry_topic(DEVICE),
            b"after".to_vec(),
            Qos::AtLeastOnce,
        )
        .await
        .expect("still connected");
    gw.wait_publish("telemetry", b"after").await;
}

#[tokio::test]
async fn denied_publish_v311_closes_the_connection() {
    let gw = Gateway::start(SessionConfig::default()).await;
    let (client, mut incoming) = client(&gw, Version::V3_1_1).await;
    let err = client
        .publish(&telemetry_topic(OTHER), b"x".to_vec(), Qos::AtLeastOnce)
        .await
        .expect_err("closed");
    assert!(
        matches!(err, ClientError::Io(_) | ClientError::Closed),
        "{err:?}"
    );
    assert!(matches!(
        next(&mut incoming).await,
        Some(Err(ClientError::Io(_)))
    ));
    assert!(next(&mut incoming).await.is_none());
    assert!(matches!(
        gw.wait_end(1).await[0],
        SessionEnd::ProtocolError(_)
    ));
    assert!(gw.publishes().is_empty());
}

#[tokio::test]
async fn close_command_reaches_the_client() {
    for version in [Version::V3_1_1, Version::V5] {
        let gw = Gateway::start(SessionConfig::default()).await;
        let (_client, mut incoming) = client(&gw, version).await;
        gw.session(0)
            .await
            .send(SessionCommand::Close {
                code: CloseCode::AdministrativeAction,
                reason: "revoked".into(),
            })
            .await
            .expect("close");
        let end = next(&mut incoming).await.expect("an error before None");
        match version {
            Version::V5 => assert_eq!(
                end,
                Err(ClientError::Disconnected {
                    code: 0x98,
                    reason: Some("revoked".into())
                })
            ),
            Version::V3_1_1 => assert!(matches!(end, Err(ClientError::Io(_))), "{end:?}"),
        }
        assert!(next(&mut incoming).await.is_none());
        assert_eq!(gw.wait_end(1).await, vec![SessionEnd::Closed]);
    }
}

#[tokio::test]
async fn client_keeps_the_connection_alive_with_pings() {
    for version in [Version::V3_1_1, Version::V5] {
        let gw = Gateway::start(SessionConfig {
            max_keep_alive: 1,
            ..SessionConfig::default()
        })
        .await;
        let stream = TcpStream::connect(gw.addr).await.expect("tcp");
        let opts = ClientOptions {
            keep_alive: 1,
            ..ClientOptions::new("", version)
        };
        let (client, _incoming) = connect(stream, opts).await.expect("connect");
        // Idle for twice the server's 1.5 s deadline: only PINGREQs flow.
        tokio::time::sleep(Duration::from_secs(3)).await;
        client
            .publish(
                &telemetry_topic(DEVICE),
                b"still here".to_vec(),
                Qos::AtLeastOnce,
            )
            .await
            .expect("session survived the idle period");
        assert!(gw.ends().is_empty(), "{version:?}: {:?}", gw.ends());
    }
}
