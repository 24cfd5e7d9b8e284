//! Session rules over raw bytes: timeouts, keep-alive, refusal, rate limit,
//! command delivery.

use std::time::Duration;

use bulwark_mqtt::{
    ClientOptions, Qos, RateLimit, Refused, Rejection, SessionCommand, SessionConfig, SessionEnd,
    Version, connect, telemetry_topic,
};
use tokio::net::TcpStream;

use crate::common::{
    DEVICE, Gateway, PINGRESP, Raw, connect_packet, hex, lock, publish, subscribe, wait_until,
};

#[tokio::test]
async fn connect_timeout_closes_silent_connections() {
    let gw = Gateway::start(SessionConfig {
        connect_timeout: Duration::from_millis(200),
        ..SessionConfig::default()
    })
    .await;
    let mut raw = Raw::connect(gw.addr).await;
    assert!(raw.closed().await);
    assert_eq!(gw.wait_end(1).await, vec![SessionEnd::ConnectTimeout]);
    assert!(gw.rejections().is_empty());
}

#[tokio::test]
async fn keep_alive_is_capped_and_enforced() {
    let gw = Gateway::start(SessionConfig {
        max_keep_alive: 1,
        ..SessionConfig::default()
    })
    .await;
    // v5 client asks for 60 s: CONNACK carries Server Keep Alive = 1.
    let mut raw = Raw::connect(gw.addr).await;
    raw.send(&connect_packet(true, 60)).await;
    let ack = raw.read_packet().await.expect("CONNACK");
    assert_eq!(&ack[..4], &[0x20, ack[1], 0x00, 0x00][..], "{ack:02x?}");
    assert!(
        ack.windows(3).any(|w| w == [0x13, 0x00, 0x01]),
        "Server Keep Alive 1 missing: {ack:02x?}"
    );
    let started = tokio::time::Instant::now();
    // Pings keep it alive past the deadline...
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(raw.alive().await, "PINGREQ not answered");
    }
    assert!(started.elapsed() > Duration::from_millis(1500));
    // ...silence ends it (v5: DISCONNECT 0x8D first).
    let disconnect = raw.read_packet().await.expect("DISCONNECT");
    assert_eq!(disconnect[0], 0xE0);
    assert_eq!(disconnect[2], 0x8D, "{disconnect:02x?}");
    assert!(raw.closed().await);
    assert_eq!(gw.wait_end(1).await, vec![SessionEnd::KeepAliveTimeout]);

    // v3.1.1 client asking for no keep-alive gets the cap anyway.
    let mut raw = Raw::connect(gw.addr).await;
    raw.send(&connect_packet(false, 0)).await;
    assert_eq!(raw.read_packet().await, Some(hex("20 02 00 00")));
    assert!(raw.closed().await);
    assert_eq!(gw.wait_end(2).await[1], SessionEnd::KeepAliveTimeout);
}

#[tokio::test]
async fn pingreq_gets_pingresp() {
    let gw = Gateway::start(SessionConfig::default()).await;
    for v5 in [false, true] {
        let mut raw = Raw::handshake(gw.addr, v5).await;
        raw.send(&hex("C0 00")).await;
        assert_eq!(raw.read_packet().await.as_deref(), Some(PINGRESP));
    }
}

#[tokio::test]
async fn refused_devices_get_connack_codes() {
    let table: &[(Refused, bool, &str)] = &[
        (Refused::NotAuthorized(String::new()), false, "20 02 00 05"),
        (
            Refused::ServerUnavailable(String::new()),
            false,
            "20 02 00 03",
        ),
        (
            Refused::NotAuthorized(String::new()),
            true,
            "20 03 00 87 00",
        ),
        (
            Refused::ServerUnavailable(String::new()),
            true,
            "20 03 00 88 00",
        ),
    ];
    for (refused, v5, want) in table {
        let gw = Gateway::start_with(SessionConfig::default(), Some(refused.clone())).await;
        let mut raw = Raw::connect(gw.addr).await;
        raw.send(&connect_packet(*v5, 60)).await;
        assert_eq!(
            raw.read_packet().await,
            Some(hex(want)),
            "{refused:?} v5={v5}"
        );
        assert!(raw.closed().await);
        assert_eq!(gw.wait_end(1).await, vec![SessionEnd::Refused]);
    }
    // Our client surfaces the code and the v5 reason string.
    let gw = Gateway::start_with(
        SessionConfig::default(),
        Some(Refused::NotAuthorized("revoked".into())),
    )
    .await;
    let stream = TcpStream::connect(gw.addr).await.expect("tcp");
    let err = connect(stream, ClientOptions::new("x", Version::V5))
        .await
        .expect_err("refused");
    match err {
        bulwark_mqtt::ClientError::Refused { code, reason } => {
            assert_eq!(code, 0x87);
            assert!(reason.contains("revoked"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn client_id_is_not_identity() {
    // A CONNECT claiming to be dev-2 still publishes as dev-1 only.
    let gw = Gateway::start(SessionConfig::default()).await;
    let stream = TcpStream::connect(gw.addr).await.expect("tcp");
    let (client, _incoming) = connect(stream, ClientOptions::new("dev-2", Version::V5))
        .await
        .expect("connect");
    let err = client
        .publish(
            &telemetry_topic("dev-2"),
            b"spoof".to_vec(),
            Qos::AtLeastOnce,
        )
        .await
        .expect_err("denied");
    assert_eq!(
        err,
        bulwark_mqtt::ClientError::PublishRejected { code: 0x87 }
    );
    client
        .publish(&telemetry_topic(DEVICE), b"mine".to_vec(), Qos::AtLeastOnce)
        .await
        .expect("own topic");
    assert_eq!(
        gw.publishes(),
        vec![(DEVICE.to_owned(), "telemetry".to_owned(), b"mine".to_vec())]
    );
}

#[tokio::test]
async fn qos2_publish_is_accepted_once() {
    let gw = Gateway::start(SessionConfig::default()).await;
    let mut raw = Raw::handshake(gw.addr, false).await;
    let own = telemetry_topic(DEVICE);
    raw.send(&publish(false, own.as_bytes(), b"q2", 2, 9)).await;
    assert_eq!(raw.read_packet().await, Some(hex("50 02 00 09")));
    // Retransmission before PUBREL: acknowledged, not delivered twice.
    let mut dup = publish(false, own.as_bytes(), b"q2", 2, 9);
    dup[0] |= 0x08;
    raw.send(&dup).await;
    assert_eq!(raw.read_packet().await, Some(hex("50 02 00 09")));
    raw.send(&hex("62 02 00 09")).await;
    assert_eq!(raw.read_packet().await, Some(hex("70 02 00 09")));
    assert!(raw.alive().await);
    assert_eq!(gw.publishes().len(), 1);
}

#[tokio::test]
async fn commands_wait_for_the_subscription() {
    let gw = Gateway::start(SessionConfig::default()).await;
    let mut raw = Raw::handshake(gw.addr, false).await;
    let commands = gw.session(0).await;
    commands
        .send(SessionCommand::Publish {
            payload: b"early".to_vec(),
        })
        .await
        .expect("send");
    // Nothing is sent before the device subscribes.
    assert!(raw.alive().await);
    raw.send(&subscribe(false, 5, "bulwark/v1/devices/dev-1/commands", 1))
        .await;
    assert_eq!(raw.read_packet().await, Some(hex("90 03 00 05 01")));
    let publish = raw.read_packet().await.expect("command PUBLISH");
    assert_eq!(publish[0], 0x32, "QoS 1 PUBLISH: {publish:02x?}");
    assert!(
        publish.ends_with(b"bulwark/v1/devices/dev-1/commands\x00\x01early"),
        "{publish:02x?}"
    );
    raw.send(&hex("40 02 00 01")).await;
    assert!(raw.alive().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_is_rate_limited_without_starving_other_sessions() {
    let gw = Gateway::start(SessionConfig {
        rate: RateLimit {
            per_second: 5.0,
            burst: 10,
        },
        ..SessionConfig::default()
    })
    .await;
    let mut flooder = Raw::handshake(gw.addr, false).await;
    let topic = telemetry_topic(DEVICE);
    let one = publish(false, topic.as_bytes(), b"flood", 0, 0);
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 500).collect();
    let flood = tokio::spawn(async move {
        let until = tokio::time::Instant::now() + Duration::from_millis(1500);
        let mut sent = 0usize;
        while tokio::time::Instant::now() < until {
            flooder.send(&batch).await;
            sent += 500;
        }
        (flooder, sent)
    });
    // While the flood runs, a second session's publish gets through quickly.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stream = TcpStream::connect(gw.addr).await.expect("tcp");
    let started = tokio::time::Instant::now();
    let (client, _incoming) = connect(stream, ClientOptions::new("other", Version::V3_1_1))
        .await
        .expect("connect during flood");
    client
        .publish(&topic, b"calm".to_vec(), Qos::AtLeastOnce)
        .await
        .expect("publish during flood");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(1),
        "second session took {elapsed:?}"
    );
    gw.wait_publish("telemetry", b"calm").await;

    let (mut flooder, sent) = flood.await.expect("flood task");
    assert!(
        flooder.alive().await,
        "rate limiting must not close the session"
    );
    let limited = gw.count(Rejection::RateLimited);
    let delivered = gw
        .publishes()
        .iter()
        .filter(|(_, _, p)| p == b"flood")
        .count();
    assert!(
        delivered <= 10 + 5 * 3,
        "{delivered} flood messages got through"
    );
    assert!(limited >= 1000, "only {limited} rate-limited of {sent}");
    assert!(lock(&gw.ends).is_empty());
    wait_until("flood fully processed", || {
        gw.count(Rejection::RateLimited) + delivered >= sent
    })
    .await;
}

#[tokio::test]
async fn rate_limited_acks_per_version() {
    let gw = Gateway::start(SessionConfig {
        rate: RateLimit {
            per_second: 0.0,
            burst: 1,
        },
        ..SessionConfig::default()
    })
    .await;
    let own = telemetry_topic(DEVICE);
    // v5: 0x97 quota exceeded; v3.1.1: plain PUBACK (ack and drop).
    for (v5, over) in [(true, "40 03 00 02 97"), (false, "40 02 00 02")] {
        let mut raw = Raw::handshake(gw.addr, v5).await;
        raw.send(&publish(v5, own.as_bytes(), b"first", 1, 1)).await;
        assert_eq!(raw.read_packet().await, Some(hex("40 02 00 01")), "v5={v5}");
        raw.send(&publish(v5, own.as_bytes(), b"second", 1, 2))
            .await;
        assert_eq!(raw.read_packet().await, Some(hex(over)), "v5={v5}");
        assert!(raw.alive().await);
    }
    assert_eq!(gw.count(Rejection::RateLimited), 2);
    let delivered: Vec<_> = gw.publishes().into_iter().map(|(_, _, p)| p).collect();
    assert_eq!(delivered, vec![b"first".to_vec(), b"first".to_vec()]);
}
