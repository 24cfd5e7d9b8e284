//! MQTT for Bulwark: the device gateway's session (server role) and the
//! client used by the agent (telemetry out, commands in) and by the server
//! (consuming telemetry from an external broker such as Mosquitto).
//!
//! Both ends are thin tokio drivers around the sans-I/O protocol engine of
//! [`mqtt-protocol-core`](https://docs.rs/mqtt-protocol-core) 0.7.9, which
//! decodes, encodes and tracks packet ids, QoS state and pings; this crate
//! adds the I/O, the Bulwark topic scheme and the session rules.
//!
//! # Topics
//!
//! `bulwark/v1/devices/{device}/{suffix}`: devices publish to
//! [`telemetry_topic`] (or any other single-level suffix of their own, which
//! the server interprets) and receive commands on [`command_topic`].
//!
//! # Gateway session rules
//!
//! [`serve_session`] runs one device connection. The device identity comes
//! from the TLS client certificate (passed in by the server), never from the
//! MQTT client id, which is ignored (an empty one is fine). Both MQTT 3.1.1
//! and 5.0 are accepted: the version is taken from CONNECT's protocol level.
//!
//! - The first packet must be CONNECT, complete within
//!   [`SessionConfig::connect_timeout`]. The first byte is checked before
//!   anything is buffered: not CONNECT → [`Rejection::ProtocolViolation`],
//!   close. A CONNECT with an unusable device id (empty, `/`, `+`, `#`) is
//!   refused like [`Refused::NotAuthorized`]. Will messages are ignored
//!   (never published); no session state survives a connection
//!   (`session present` is always 0).
//! - [`GatewayHandler::admit`] decides; a refusal is answered with CONNACK
//!   not-authorized (v5 0x87 / v3.1.1 5) or server-unavailable (0x88 / 3).
//! - PUBLISH is allowed only to `bulwark/v1/devices/{own-id}/{suffix}`,
//!   `suffix` one non-empty level without wildcards; anything else is not
//!   delivered and counted as [`Rejection::TopicDenied`]. On v5 a QoS 1/2
//!   publish is answered PUBACK/PUBREC 0x87 and the session goes on. **On
//!   v3.1.1, which has no negative acknowledgement, the connection is
//!   closed** (MQTT-3.3.5-2 allows ack-and-drop or close; closing makes a
//!   misconfigured or probing device visible instead of silently losing
//!   data).
//! - QoS 2 is accepted: PUBREC, then PUBCOMP on PUBREL; the engine
//!   suppresses duplicates of an unreleased packet id.
//! - SUBSCRIBE is granted (at most QoS 1) only for exactly the device's own
//!   command topic; any other filter gets a failure code in SUBACK (v3.1.1
//!   0x80, v5 0x87) and [`Rejection::SubscribeDenied`]. More than
//!   [`SessionConfig::max_subscriptions`] filters in one packet closes the
//!   connection. UNSUBSCRIBE is always answered.
//! - Packets larger than [`SessionConfig::max_packet_bytes`] (whole packet,
//!   like v5's Maximum Packet Size, which v5 clients are told in CONNACK) are
//!   refused as soon as the remaining length is decoded, before the body is
//!   buffered: [`Rejection::Oversized`], close. Undecodable bytes (bad
//!   lengths, invalid UTF-8, bad flags, QoS 3, a packet cut by EOF, a
//!   QoS 1/2 PUBLISH with packet identifier 0): [`Rejection::Malformed`],
//!   close. The driver frames whole packets from their fixed headers and
//!   checks each before the engine sees it (mqtt-protocol-core 0.7.9
//!   panics on that PUBLISH).
//! - Rate limit: a per-session [`TokenBucket`]; publishes over it are
//!   dropped with [`Rejection::RateLimited`] (v5 QoS 1/2: reason 0x97 quota
//!   exceeded; v3.1.1: positive ack, dropped) and the session stays open.
//!   Sessions share no locks, and the driver yields after every read, so a
//!   flood costs only its own task.
//! - Keep-alive: the client's value capped by
//!   [`SessionConfig::max_keep_alive`] (a client asking for 0 gets the cap;
//!   v5 clients are told with Server Keep Alive, v3.1.1 clients are not and
//!   must use a keep-alive ≤ the cap). No packet within 1.5 × that ends the
//!   session ([`SessionEnd::KeepAliveTimeout`], v5 DISCONNECT 0x8D first).
//!   PINGREQ → PINGRESP.
//! - [`SessionCommand::Publish`] goes out at QoS 1 (QoS 0 if so subscribed)
//!   on the command topic once the device has subscribed; until then up to
//!   [`PENDING_COMMANDS`] are held (oldest dropped), and at most
//!   [`MAX_INFLIGHT`] await PUBACK. [`SessionCommand::Close`] sends a v5
//!   DISCONNECT (0x87 or 0x98, with the reason string) or, on v3.1.1, which
//!   has no server DISCONNECT, just closes.
//! - Memory per session: a read buffer of 512 B that doubles (up to 16 KiB)
//!   whenever a read fills it and drops back to 512 B after a read under a
//!   quarter of it, at most one partial packet of up to `max_packet_bytes`,
//!   and the fixed command queues above.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use bulwark_mqtt::{GatewayHandler, Refused, Rejection, SessionConfig, serve_session};
//!
//! struct Handler;
//! impl GatewayHandler for Handler {
//!     fn admit(&self, _device: &str) -> Result<(), Refused> { Ok(()) }
//!     fn publish(&self, device: &str, suffix: &str, payload: &[u8]) {
//!         println!("{device}/{suffix}: {} bytes", payload.len());
//!     }
//!     fn reject(&self, device: &str, why: Rejection) {
//!         println!("{device}: rejected {}", why.as_str());
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let handler: Arc<dyn GatewayHandler> = Arc::new(Handler);
//! let cfg = Arc::new(SessionConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8883").await?;
//! loop {
//!     let (stream, _) = listener.accept().await?;
//!     // In Bulwark: TLS handshake here; the device id comes from the
//!     // client certificate.
//!     let device = String::from("device-0001");
//!     let (commands, rx) = tokio::sync::mpsc::channel(16);
//!     # drop(commands);
//!     let (handler, cfg) = (handler.clone(), cfg.clone());
//!     tokio::spawn(async move {
//!         let end = serve_session(stream, &device, &cfg, &*handler, rx).await;
//!         println!("{device}: {end:?}");
//!     });
//! }
//! # }
//!
//! // The agent side:
//! # async fn agent() -> Result<(), bulwark_mqtt::ClientError> {
//! use bulwark_mqtt::{ClientOptions, Qos, Version, command_topic, connect, telemetry_topic};
//! let stream = tokio::net::TcpStream::connect("127.0.0.1:8883").await
//!     .map_err(|e| bulwark_mqtt::ClientError::Io(e.to_string()))?;
//! let (client, mut incoming) = connect(stream, ClientOptions::new("", Version::V5)).await?;
//! client.subscribe(&command_topic("device-0001"), Qos::AtLeastOnce).await?;
//! client.publish(&telemetry_topic("device-0001"), b"{}".to_vec(), Qos::AtLeastOnce).await?;
//! while let Some(msg) = incoming.recv().await {
//!     println!("command: {:?}", msg?.payload);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Client
//!
//! [`connect`] speaks 3.1.1 or 5 ([`ClientOptions::version`]) over any
//! already-open stream (TCP or TLS), waits for CONNACK (a refusal is
//! [`ClientError::Refused`] with the code) and spawns a task that owns the
//! connection: it sends PINGREQ on keep-alive (closing if PINGRESP does not
//! come within the keep-alive), acknowledges incoming QoS 1/2 and resolves
//! requests. [`Client`] is `Clone`; [`Client::publish`] at QoS 1 resolves on
//! PUBACK (a v5 failure code is [`ClientError::PublishRejected`]);
//! [`Client::subscribe`] returns the granted QoS or
//! [`ClientError::SubscribeRejected`]. [`Incoming::recv`] ends with the
//! reason (e.g. the server's v5 DISCONNECT code and reason string). The
//! client offers QoS 0 and 1 only, and keeps no session state across
//! connections (no persistence, no automatic reconnect).
//!
//! # Design notes
//!
//! - One protocol engine for both ends, the gateway's server role and the
//!   client, so both speak the same MQTT and are fuzzed together.
//! - The gateway's engine runs with automatic publish acknowledgements *off*
//!   (the ACL decides between PUBACK success and 0x87) and automatic PINGRESP
//!   on. Keep-alive is timed by the driver, not by the engine's timers, so
//!   it can be capped and so the engine's timer callbacks (which assume a
//!   known protocol version) are never invoked before CONNECT.
//! - Version detection uses the engine's `Version::Undetermined` server
//!   mode, which works: CONNECT's protocol level selects 3.1.1 or 5.
//! - The engine enforces the packet size limit before allocating a body
//!   (`ConnectionOptions::maximum_packet_size_recv`), and for v5 adds Maximum
//!   Packet Size to CONNACK itself.
//! - Handler methods are synchronous on purpose: a session never awaits on
//!   shared state, so no lock is held across an await and one slow
//!   dependency cannot stall all sessions.
//!
//! # Rejected designs
//!
//! - `rumqttd` (embedded broker): stale, and pins a `rustls-webpki` with
//!   RUSTSEC advisories; and a general broker (retained messages, wildcard
//!   routing, bridging) is a larger attack surface than a gateway that only
//!   needs per-device ACLs and a callback.
//! - A separate client crate (e.g. `rumqttc`): a second MQTT implementation
//!   with its own event loop next to the gateway's, to audit and fuzz twice.
//! - Hand-written codec: MQTT 5's properties and reason codes are where the
//!   bugs are; `mqtt-protocol-core` is sans-I/O (deterministic, fuzzable,
//!   any runtime) and supports both versions and both roles.
//!
//! # Known limitations
//!
//! - No persistent sessions, retained messages, wills, shared or wildcard
//!   subscriptions, topic aliases or enhanced authentication (AUTH closes
//!   the connection).
//! - A v3.1.1 device cannot be told the keep-alive cap.
//! - The client does not reconnect; callers do.

mod client;
mod gateway;
mod rate;
mod topic;

pub use client::{Client, ClientError, ClientOptions, Incoming, Message, Qos, Version, connect};
pub use gateway::{
    CloseCode, GatewayHandler, MAX_INFLIGHT, PENDING_COMMANDS, Refused, Rejection, SessionCommand,
    SessionConfig, SessionEnd, serve_session,
};
pub use rate::{RateLimit, TokenBucket};
pub use topic::{
    COMMANDS_SUFFIX, TELEMETRY_SUFFIX, TOPIC_PREFIX, command_topic, is_valid_device_id,
    publish_suffix, subscribe_allowed, telemetry_topic,
};

#[cfg(test)]
mod tests {
    /// The server spawns sessions: the future must be `Send`.
    #[test]
    fn serve_session_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let cfg = crate::SessionConfig::default();
        struct H;
        impl crate::GatewayHandler for H {
            fn admit(&self, _: &str) -> Result<(), crate::Refused> {
                Ok(())
            }
            fn publish(&self, _: &str, _: &str, _: &[u8]) {}
            fn reject(&self, _: &str, _: crate::Rejection) {}
        }
        let (_tx, rx) = tokio::sync::mpsc::channel(1);
        let fut = crate::serve_session(tokio::io::empty(), "d", &cfg, &H, rx);
        assert_send(&fut);
    }
}
