//! Hostile bytes, data-driven: each case ends in the expected counted
//! rejection, and either a closed connection or a live session, never a panic.

use bulwark_mqtt::{Rejection, SessionConfig};

use crate::common::{Gateway, PINGREQ, Raw, connect_packet, hex, publish, subscribe};

#[derive(Debug, Clone, Copy)]
enum Prelude {
    /// Bytes are the first thing on the connection.
    None,
    /// After a v3.1.1 handshake.
    V311,
    /// After a v5 handshake.
    V5,
}

struct Case {
    name: &'static str,
    prelude: Prelude,
    bytes: Vec<u8>,
    /// Half-close our side after sending (truncated input).
    eof: bool,
    want: Rejection,
    /// Expected answer packet, when the session stays open.
    answer: Option<Vec<u8>>,
    closed: bool,
}

fn cases() -> Vec<Case> {
    let own = b"bulwark/v1/devices/dev-1/telemetry";
    let other = b"bulwark/v1/devices/dev-2/telemetry";
    let wildcard = b"bulwark/v1/devices/dev-1/+";
    let bad_utf8 = b"bulwark/v1/devices/dev-1/\xff\xfe";
    let c = |name, prelude, bytes, want, closed| Case {
        name,
        prelude,
        bytes,
        eof: false,
        want,
        answer: None,
        closed,
    };
    let mut connect_level3 = connect_packet(false, 60);
    connect_level3[8] = 3;
    let mut v5_alias = publish(true, own, b"x", 0, 0);
    // property length 3: Topic Alias (0x23) = 1; fix the remaining length.
    let idx = 2 + 2 + own.len();
    v5_alias.splice(idx..=idx, [3u8, 0x23, 0, 1]);
    v5_alias[1] += 3;
    vec![
        c(
            "garbage first packet",
            Prelude::None,
            hex("de ad be ef"),
            Rejection::ProtocolViolation,
            true,
        ),
        c(
            "zero bytes",
            Prelude::None,
            hex("00 00 00 00"),
            Rejection::ProtocolViolation,
            true,
        ),
        c(
            "PUBLISH before CONNECT",
            Prelude::None,
            publish(false, own, b"x", 0, 0),
            Rejection::ProtocolViolation,
            true,
        ),
        c(
            "SUBSCRIBE before CONNECT",
            Prelude::None,
            subscribe(false, 1, "#", 0),
            Rejection::ProtocolViolation,
            true,
        ),
        c(
            "CONNECT reserved flags",
            Prelude::None,
            hex("11 0C 00 04 4D 51 54 54 04 02 00 3C 00 00"),
            Rejection::Malformed,
            true,
        ),
        c(
            "CONNECT bad protocol name",
            Prelude::None,
            hex("10 0C 00 04 4D 51 54 58 04 02 00 3C 00 00"),
            Rejection::ProtocolViolation,
            true,
        ),
        c(
            "CONNECT protocol level 3",
            Prelude::None,
            connect_level3,
            Rejection::ProtocolViolation,
            true,
        ),
        c(
            "CONNECT oversized",
            Prelude::None,
            hex("10 FF FF FF 7F"),
            Rejection::Oversized,
            true,
        ),
        Case {
            eof: true,
            ..c(
                "CONNECT truncated",
                Prelude::None,
                hex("10 0C 00 04 4D 51"),
                Rejection::Malformed,
                true,
            )
        },
        c(
            "remaining length over limit v3.1.1",
            Prelude::V311,
            hex("30 FF FF FF 7F"),
            Rejection::Oversized,
            true,
        ),
        c(
            "remaining length over limit v5",
            Prelude::V5,
            hex("30 FF FF FF 7F"),
            Rejection::Oversized,
            true,
        ),
        c(
            "remaining length 5 bytes",
            Prelude::V311,
            hex("30 FF FF FF FF 01"),
            Rejection::Malformed,
            true,
        ),
        Case {
            eof: true,
            ..c(
                "PUBLISH truncated",
                Prelude::V311,
                hex("30 20 00 10 62 75"),
                Rejection::Malformed,
                true,
            )
        },
        c(
            "invalid UTF-8 topic v3.1.1",
            Prelude::V311,
            publish(false, bad_utf8, b"x", 0, 0),
            Rejection::Malformed,
            true,
        ),
        c(
            "invalid UTF-8 topic v5",
            Prelude::V5,
            publish(true, bad_utf8, b"x", 0, 0),
            Rejection::Malformed,
            true,
        ),
        c(
            "PUBLISH QoS 3",
            Prelude::V311,
            hex("36 05 00 01 61 00 01"),
            Rejection::Malformed,
            true,
        ),
        c(
            "second CONNECT",
            Prelude::V311,
            connect_packet(false, 60),
            Rejection::ProtocolViolation,
            true,
        ),
        c(
            "v5 topic alias never granted",
            Prelude::V5,
            v5_alias,
            Rejection::ProtocolViolation,
            true,
        ),
        c(
            "AUTH",
            Prelude::V5,
            hex("F0 00"),
            Rejection::ProtocolViolation,
            true,
        ),
        c(
            "wildcard publish topic v3.1.1",
            Prelude::V311,
            publish(false, wildcard, b"x", 0, 0),
            Rejection::TopicDenied,
            true,
        ),
        c(
            "other device topic v3.1.1 QoS 1",
            Prelude::V311,
            publish(false, other, b"x", 1, 7),
            Rejection::TopicDenied,
            true,
        ),
        c(
            "other device topic v3.1.1 QoS 0",
            Prelude::V311,
            publish(false, other, b"x", 0, 0),
            Rejection::TopicDenied,
            true,
        ),
        Case {
            answer: Some(hex("40 03 00 07 87")),
            ..c(
                "other device topic v5 QoS 1",
                Prelude::V5,
                publish(true, other, b"x", 1, 7),
                Rejection::TopicDenied,
                false,
            )
        },
        Case {
            answer: Some(hex("50 03 00 08 87")),
            ..c(
                "other device topic v5 QoS 2",
                Prelude::V5,
                publish(true, other, b"x", 2, 8),
                Rejection::TopicDenied,
                false,
            )
        },
        // mqtt-protocol-core 0.7.9 panicked on these (found by the
        // mqtt_session fuzz target): checked before the engine sees them.
        c(
            "v5 QoS 2 publish with packet identifier 0",
            Prelude::V5,
            publish(true, own, b"x", 2, 0),
            Rejection::Malformed,
            true,
        ),
        c(
            "v3.1.1 QoS 1 publish with packet identifier 0",
            Prelude::V311,
            publish(false, own, b"x", 1, 0),
            Rejection::Malformed,
            true,
        ),
        c(
            "a good packet, then a publish with packet identifier 0, in one write",
            Prelude::V5,
            [hex(PINGREQ), publish(true, own, b"x", 2, 0)].concat(),
            Rejection::Malformed,
            true,
        ),
        c(
            "fuzzer's v5 QoS 2 publish, DUP and RETAIN, id 0, twice",
            Prelude::V5,
            hex("3d 07 00 01 00 00 00 00 4a 3d 07 00 01 00 00 00 00 00"),
            Rejection::Malformed,
            true,
        ),
        c(
            "wildcard publish topic v5 QoS 0",
            Prelude::V5,
            publish(true, wildcard, b"x", 0, 0),
            Rejection::TopicDenied,
            false,
        ),
        Case {
            answer: Some(hex("90 03 00 01 80")),
            ..c(
                "subscribe # v3.1.1",
                Prelude::V311,
                subscribe(false, 1, "#", 1),
                Rejection::SubscribeDenied,
                false,
            )
        },
        Case {
            answer: Some(hex("90 04 00 01 00 87")),
            ..c(
                "subscribe # v5",
                Prelude::V5,
                subscribe(true, 1, "#", 1),
                Rejection::SubscribeDenied,
                false,
            )
        },
        Case {
            answer: Some(hex("90 03 00 02 80")),
            ..c(
                "subscribe + commands v3.1.1",
                Prelude::V311,
                subscribe(false, 2, "bulwark/v1/devices/+/commands", 1),
                Rejection::SubscribeDenied,
                false,
            )
        },
        Case {
            answer: Some(hex("90 04 00 02 00 87")),
            ..c(
                "subscribe + commands v5",
                Prelude::V5,
                subscribe(true, 2, "bulwark/v1/devices/+/commands", 1),
                Rejection::SubscribeDenied,
                false,
            )
        },
        Case {
            answer: Some(hex("90 03 00 03 80")),
            ..c(
                "subscribe other device commands",
                Prelude::V311,
                subscribe(false, 3, "bulwark/v1/devices/dev-2/commands", 0),
                Rejection::SubscribeDenied,
                false,
            )
        },
    ]
}

#[tokio::test]
async fn hostile_inputs_end_in_counted_rejections() {
    let cfg = SessionConfig {
        max_packet_bytes: 64 * 1024,
        ..SessionConfig::default()
    };
    let mut failures = Vec::new();
    for case in cases() {
        let gw = Gateway::start(cfg.clone()).await;
        let mut raw = match case.prelude {
            Prelude::None => Raw::connect(gw.addr).await,
            Prelude::V311 => Raw::handshake(gw.addr, false).await,
            Prelude::V5 => Raw::handshake(gw.addr, true).await,
        };
        raw.send(&case.bytes).await;
        if case.eof {
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut raw.stream).await;
        }
        if let Some(want) = &case.answer {
            let got = raw.read_packet().await;
            if got.as_ref() != Some(want) {
                failures.push(format!(
                    "{}: answer {got:02x?}, want {want:02x?}",
                    case.name
                ));
            }
        }
        if case.closed {
            if !raw.closed().await {
                failures.push(format!("{}: connection not closed", case.name));
            }
            gw.wait_end(1).await;
        } else if !raw.alive().await {
            failures.push(format!("{}: session not alive afterwards", case.name));
        }
        let got = gw.rejections();
        if !got.contains(&case.want) {
            failures.push(format!(
                "{}: rejections {got:?}, want {:?}",
                case.name, case.want
            ));
        }
        if !gw.publishes().is_empty() {
            failures.push(format!("{}: delivered {:?}", case.name, gw.publishes()));
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

/// Every hostile case, fed in one-byte writes, must behave like the whole
/// write (the decoder is incremental).
#[tokio::test]
async fn hostile_inputs_byte_by_byte() {
    let cfg = SessionConfig {
        max_packet_bytes: 64 * 1024,
        ..SessionConfig::default()
    };
    for case in cases().into_iter().filter(|c| c.closed && !c.eof) {
        let gw = Gateway::start(cfg.clone()).await;
        let mut raw = match case.prelude {
            Prelude::None => Raw::connect(gw.addr).await,
            Prelude::V311 => Raw::handshake(gw.addr, false).await,
            Prelude::V5 => Raw::handshake(gw.addr, true).await,
        };
        for b in &case.bytes {
            raw.send(&[*b]).await;
            tokio::task::yield_now().await;
        }
        assert!(raw.closed().await, "{}: not closed", case.name);
        gw.wait_end(1).await;
        assert!(
            gw.rejections().contains(&case.want),
            "{}: {:?}",
            case.name,
            gw.rejections()
        );
    }
}
