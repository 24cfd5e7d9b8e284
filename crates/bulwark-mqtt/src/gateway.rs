//! The device gateway: one MQTT session (server role) per device connection.
//!
//! [`serve_session`] is a thin async driver around [`Core`], a synchronous
//! state machine that owns the `mqtt-protocol-core` server connection, applies
//! the Bulwark session rules and queues the bytes to write.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use mqtt::common::Cursor;
use mqtt::connection::{ConnectionOptions, Event};
use mqtt::packet::{GenericPacket, GenericPacketTrait, Property, Qos as MQos, v3_1_1, v5_0};
use mqtt::result_code::{
    ConnectReasonCode, ConnectReturnCode, DisconnectReasonCode, MqttError, PubackReasonCode,
    PubrecReasonCode, SubackReasonCode, SubackReturnCode, UnsubackReasonCode,
};
use mqtt::{Connection, Version as WireVersion, role};
use mqtt_protocol_core::mqtt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::rate::{RateLimit, TokenBucket};
use crate::topic::{command_topic, is_valid_device_id, publish_suffix, subscribe_allowed};

/// Read buffer of an idle or slow session: small, since a gateway holds
/// one per connected device (the TLS layer buffers records itself).
const READ_MIN: usize = 512;
/// Read buffer of a busy session: a read that fills the buffer doubles it
/// up to this; a read under a quarter of it shrinks it back to
/// [`READ_MIN`].
const READ_MAX: usize = 16 * 1024;
/// Commands held while the device has not (yet) subscribed to its command
/// topic, or while [`MAX_INFLIGHT`] command publishes await their PUBACK.
/// Beyond this the oldest is dropped.
pub const PENDING_COMMANDS: usize = 16;
/// QoS 1 command publishes awaiting PUBACK at once.
pub const MAX_INFLIGHT: usize = 16;

/// Limits of one gateway session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Largest packet accepted from the device, whole packet (fixed header
    /// included), as MQTT 5's Maximum Packet Size. Checked as soon as the
    /// fixed header's remaining length is decoded, before the body is
    /// buffered. Advertised to v5 clients in CONNACK. Default 1 MiB.
    pub max_packet_bytes: usize,
    /// Time allowed from accept to a complete CONNECT. Default 10 s.
    pub connect_timeout: Duration,
    /// Cap on the keep-alive interval, seconds. A client asking for more, or
    /// for 0 (none), gets this; v5 clients are told via Server Keep Alive.
    /// 0 disables the cap. Default 120.
    pub max_keep_alive: u16,
    /// PUBLISH rate limit per session.
    pub rate: RateLimit,
    /// Most topic filters accepted in one SUBSCRIBE or UNSUBSCRIBE; more is a
    /// protocol violation (the connection is closed). Default 8.
    pub max_subscriptions: usize,
    /// Time allowed for one write to the device to complete. Default 30 s.
    pub write_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_packet_bytes: 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            max_keep_alive: 120,
            rate: RateLimit::default(),
            max_subscriptions: 8,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a packet from a device was rejected. Reported through
/// [`GatewayHandler::reject`]; [`Rejection::as_str`] is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// Bytes that do not decode as MQTT (bad lengths, invalid UTF-8, bad
    /// flags, truncated packet). The connection is closed.
    Malformed,
    /// A packet larger than [`SessionConfig::max_packet_bytes`]. Closed.
    Oversized,
    /// PUBLISH to a topic outside `bulwark/v1/devices/{own-id}/{suffix}`.
    TopicDenied,
    /// SUBSCRIBE to anything but the device's own command topic.
    SubscribeDenied,
    /// PUBLISH over the session's rate limit; dropped, session stays open.
    RateLimited,
    /// Well-formed but not allowed here: first packet not CONNECT, second
    /// CONNECT, AUTH, unsupported protocol level, topic alias, too many
    /// filters in one SUBSCRIBE. Closed.
    ProtocolViolation,
}

impl Rejection {
    /// Stable lowercase label, for metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Oversized => "oversized",
            Self::TopicDenied => "topic_denied",
            Self::SubscribeDenied => "subscribe_denied",
            Self::RateLimited => "rate_limited",
            Self::ProtocolViolation => "protocol_violation",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused connection, returned by [`GatewayHandler::admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// CONNACK not-authorized (v5 0x87, v3.1.1 return code 5). The string is
    /// sent to v5 clients as the Reason String; keep it short and vague.
    NotAuthorized(String),
    /// CONNACK server-unavailable (v5 0x88, v3.1.1 return code 3).
    ServerUnavailable(String),
}

/// What the server plugs into a session. The methods are synchronous and
/// must not block (the server answers from in-memory caches): they run on the
/// session's task between reads.
pub trait GatewayHandler: Send + Sync + 'static {
    /// Called once the CONNECT decodes. `device` is the identity given to
    /// [`serve_session`] (from the TLS client certificate), never the MQTT
    /// client id. `Err` answers CONNACK with the refusal, then closes.
    fn admit(&self, device: &str) -> Result<(), Refused>;
    /// An accepted PUBLISH to `bulwark/v1/devices/{device}/{suffix}`.
    fn publish(&self, device: &str, suffix: &str, payload: &[u8]);
    /// A rejected packet.
    fn reject(&self, device: &str, why: Rejection);
    /// Every packet of one read from the device has been handled: a
    /// handler that batches what [`GatewayHandler::publish`] gave it hands
    /// the batch on now, so batching adds no latency.
    fn flush(&self, device: &str) {
        let _ = device;
    }
}

/// v5 DISCONNECT reason for [`SessionCommand::Close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 0x87 Not authorized (e.g. the device was revoked).
    NotAuthorized,
    /// 0x98 Administrative action.
    AdministrativeAction,
}

/// Instructions from the server to a running session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCommand {
    /// PUBLISH `payload` to the device's command topic, QoS 1 (or 0 if the
    /// device subscribed with QoS 0). Held (up to [`PENDING_COMMANDS`], oldest
    /// dropped) until the device subscribes to its command topic.
    Publish {
        /// Message body.
        payload: Vec<u8>,
    },
    /// End the session. v5: DISCONNECT with `code` and `reason` as the Reason
    /// String, then close; v3.1.1 has no server DISCONNECT: just close.
    Close {
        /// v5 reason code.
        code: CloseCode,
        /// v5 Reason String (may be empty).
        reason: String,
    },
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The device sent DISCONNECT, or closed the connection between packets.
    ClientDisconnected,
    /// [`GatewayHandler::admit`] refused (or the device id is unusable).
    Refused,
    /// Ended by [`SessionCommand::Close`].
    Closed,
    /// The device broke the protocol or a session rule; the matching
    /// [`Rejection`] was reported first.
    ProtocolError(String),
    /// Read or write failure (including the write timeout).
    Io(String),
    /// No packet within 1.5 × the effective keep-alive.
    KeepAliveTimeout,
    /// No CONNECT within [`SessionConfig::connect_timeout`].
    ConnectTimeout,
}

/// Runs one device session on an accepted (and TLS-authenticated) stream
/// until it ends. `device` is the authenticated identity; see the crate docs
/// for the rules enforced. Never panics on input; memory is bounded by
/// `cfg.max_packet_bytes` plus small fixed queues.
pub async fn serve_session<S>(
    mut stream: S,
    device: &str,
    cfg: &SessionConfig,
    handler: &dyn GatewayHandler,
    mut commands: mpsc::Receiver<SessionCommand>,
) -> SessionEnd
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut core = Core::new(device, cfg, handler);
    let mut buf = vec![0u8; READ_MIN];
    let connect_deadline = Instant::now() + cfg.connect_timeout;
    let mut commands_open = true;
    loop {
        let deadline = core.deadline(connect_deadline);
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => core.on_eof(),
                Ok(n) => {
                    let data = buf.get(..n).unwrap_or_default();
                    core.feed(data, Instant::now());
                    handler.flush(device);
                    if n == buf.len() && buf.len() < READ_MAX {
                        buf = vec![0u8; buf.len() * 2];
                    } else if n < buf.len() / 4 && buf.len() > READ_MIN {
                        buf = vec![0u8; READ_MIN];
                        buf.shrink_to_fit();
                    }
                }
                Err(e) => core.finish(SessionEnd::Io(e.to_string())),
            },
            cmd = commands.recv(), if commands_open => match cmd {
                Some(cmd) => core.command(cmd),
                // The server dropped its sender: no more commands, the
                // session goes on.
                None => commands_open = false,
            },
            () = sleep_until_opt(deadline) => core.on_deadline(),
        }
        if !core.out.is_empty() {
            let out = std::mem::take(&mut core.out);
            match tokio::time::timeout(cfg.write_timeout, async {
                stream.write_all(&out).await?;
                stream.flush().await
            })
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => core.finish(SessionEnd::Io(e.to_string())),
                Err(_) => core.finish(SessionEnd::Io("write timed out".into())),
            }
        }
        if let Some(end) = core.end.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
            tracing::debug!(device, ?end, "mqtt session ended");
            return end;
        }
        // A flooding device must not hog a worker thread.
        tokio::task::yield_now().await;
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingConnect,
    Connected,
}

/// The synchronous session state machine.
/// Length of the MQTT packet at the start of `b` from its fixed header:
/// `None` while the header is incomplete, `Some(Err(()))` for a remaining
/// length of more than four bytes.
fn packet_len(b: &[u8]) -> Option<Result<usize, ()>> {
    let mut len = 0usize;
    for i in 1..5 {
        let byte = *b.get(i)?;
        len += usize::from(byte & 0x7f) << (7 * (i - 1));
        if byte & 0x80 == 0 {
            return Some(Ok(1 + i + len));
        }
    }
    Some(Err(()))
}

/// How many bytes at the start of `b` are whole packets. A packet larger
/// than `max` (plus its header) or with a bad length ends the count
/// *after* it: the engine refuses it as it always did.
fn whole_packets(b: &[u8], max: usize) -> usize {
    let mut at = 0;
    while at < b.len() {
        match packet_len(&b[at..]) {
            Some(Ok(n)) if n <= max.saturating_add(5) => {
                if at + n > b.len() {
                    return at;
                }
                at += n;
            }
            None => return at,
            Some(_) => return b.len(),
        }
    }
    at
}

/// What the engine must not be handed (it panics on them; found by the
/// `mqtt_session` fuzz target in mqtt-protocol-core 0.7.9): a PUBLISH at
/// QoS 1 or 2 whose packet identifier is 0, or that ends before it has
/// one. `b` starts at a packet; only a whole PUBLISH header is judged.
fn check_packet(b: &[u8]) -> Option<&'static str> {
    let first = *b.first()?;
    if first >> 4 != 3 || (first >> 1) & 3 == 0 {
        return None;
    }
    let Some(Ok(total)) = packet_len(b) else {
        return None;
    };
    let header = b
        .iter()
        .skip(1)
        .take(4)
        .take_while(|&&x| x & 0x80 != 0)
        .count()
        + 2;
    let packet = b.get(..total)?;
    let Some(&[hi, lo]) = packet.get(header..header + 2) else {
        return Some("PUBLISH ends before its topic");
    };
    let topic_len = usize::from(u16::from_be_bytes([hi, lo]));
    let id_at = header + 2 + topic_len;
    match packet.get(id_at..id_at + 2) {
        None => Some("PUBLISH ends before its packet identifier"),
        Some([0, 0]) => Some("PUBLISH at QoS 1 or 2 with packet identifier 0"),
        Some(_) => None,
    }
}

struct Core<'a> {
    device: &'a str,
    handler: &'a dyn GatewayHandler,
    cfg: &'a SessionConfig,
    conn: Connection<role::Server>,
    state: State,
    version: WireVersion,
    bucket: TokenBucket,
    /// Granted QoS of the subscription to the command topic, if any.
    subscribed: Option<MQos>,
    pending: VecDeque<Vec<u8>>,
    inflight: usize,
    /// 1.5 × effective keep-alive, once connected (None: no keep-alive).
    keep_alive: Option<Duration>,
    last_packet: Instant,
    /// A packet has started but not completed.
    partial: bool,
    /// The start of a packet that the previous read did not complete,
    /// held until it is whole so that it can be checked before the
    /// engine sees it (see [`check_packet`]); at most
    /// `max_packet_bytes` + 5.
    carry: Vec<u8>,
    seen_first_byte: bool,
    out: Vec<u8>,
    end: Option<SessionEnd>,
}

impl<'a> Core<'a> {
    fn new(device: &'a str, cfg: &'a SessionConfig, handler: &'a dyn GatewayHandler) -> Self {
        let max = u32::try_from(cfg.max_packet_bytes)
            .unwrap_or(u32::MAX)
            .max(2);
        let mut conn = Connection::<role::Server>::with_options(
            WireVersion::Undetermined,
            ConnectionOptions::new().maximum_packet_size_recv(max),
        );
        // Acks are ours: an ACL-denied QoS 1 PUBLISH gets PUBACK 0x87 on v5.
        conn.set_auto_pub_response(false);
        conn.set_auto_ping_response(true);
        Self {
            device,
            handler,
            cfg,
            conn,
            state: State::AwaitingConnect,
            version: WireVersion::Undetermined,
            bucket: TokenBucket::new(cfg.rate),
            subscribed: None,
            pending: VecDeque::new(),
            inflight: 0,
            keep_alive: None,
            last_packet: Instant::now(),
            partial: false,
            carry: Vec::new(),
            seen_first_byte: false,
            out: Vec::new(),
            end: None,
        }
    }

    /// Sets the end reason unless one is already set.
    fn finish(&mut self, end: SessionEnd) {
        if self.end.is_none() {
            self.end = Some(end);
        }
    }

    fn reject_and_close(&mut self, why: Rejection, detail: impl Into<String>) {
        self.handler.reject(self.device, why);
        self.finish(SessionEnd::ProtocolError(detail.into()));
    }

    fn deadline(&self, connect_deadline: Instant) -> Option<Instant> {
        match self.state {
            State::AwaitingConnect => Some(connect_deadline),
            State::Connected => self.keep_alive.map(|ka| self.last_packet + ka),
        }
    }

    fn on_deadline(&mut self) {
        match self.state {
            State::AwaitingConnect => {
                if self.partial {
                    self.handler.reject(self.device, Rejection::Malformed);
                }
                self.finish(SessionEnd::ConnectTimeout);
            }
            State::Connected => {
                self.finish(SessionEnd::KeepAliveTimeout);
                if self.version == WireVersion::V5_0 {
                    self.send_disconnect(DisconnectReasonCode::KeepAliveTimeout, "");
                }
            }
        }
    }

    fn on_eof(&mut self) {
        if self.partial {
            self.reject_and_close(Rejection::Malformed, "connection closed inside a packet");
        } else {
            self.finish(SessionEnd::ClientDisconnected);
        }
    }

    /// Feeds bytes read from the device.
    fn feed(&mut self, data: &[u8], now: Instant) {
        if data.is_empty() || self.end.is_some() {
            return;
        }
        if !self.seen_first_byte {
            self.seen_first_byte = true;
            // Decide on the very first byte: no body is buffered for a
            // connection that does not start with CONNECT.
            let first = data.first().copied().unwrap_or_default();
            if first >> 4 != 1 {
                self.reject_and_close(Rejection::ProtocolViolation, "first packet is not CONNECT");
                return;
            }
            if first != 0x10 {
                self.reject_and_close(Rejection::Malformed, "CONNECT with reserved flags set");
                return;
            }
        }
        // Whole packets go to the engine, each checked first; the start of
        // one that this read does not complete waits in `carry`.
        let mut rest = data;
        while !self.carry.is_empty() {
            match packet_len(&self.carry) {
                Some(Ok(n)) if n <= self.cfg.max_packet_bytes.saturating_add(5) => {
                    let take = n.saturating_sub(self.carry.len()).min(rest.len());
                    self.carry.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if self.carry.len() < n {
                        self.partial = true;
                        return;
                    }
                    let packet = std::mem::take(&mut self.carry);
                    self.feed_packets(&packet, now);
                }
                // The length itself is still incomplete: one more byte.
                None => {
                    let Some((&b, tail)) = rest.split_first() else {
                        self.partial = true;
                        return;
                    };
                    self.carry.push(b);
                    rest = tail;
                }
                // Oversized or a bad length: the engine refuses it, as it
                // always did, from what it has seen.
                _ => {
                    let mut all = std::mem::take(&mut self.carry);
                    all.extend_from_slice(rest);
                    self.feed_packets(&all, now);
                    return;
                }
            }
        }
        let whole = whole_packets(rest, self.cfg.max_packet_bytes);
        if self.end.is_none() {
            self.feed_packets(&rest[..whole], now);
        }
        if self.end.is_none() && whole < rest.len() {
            self.carry.extend_from_slice(&rest[whole..]);
            self.partial = true;
        }
    }

    /// Hands whole packets (or an oversized or malformed remainder, which
    /// the engine refuses) to the engine, checking each first.
    fn feed_packets(&mut self, data: &[u8], now: Instant) {
        let mut cursor = Cursor::new(data);
        while self.end.is_none() && (cursor.position() as usize) < data.len() {
            let before = cursor.position();
            if let Some(why) = check_packet(&data[before as usize..]) {
                self.reject_and_close(Rejection::Malformed, why);
                return;
            }
            let events = self.conn.recv(&mut cursor);
            self.partial = events.is_empty();
            if !events.is_empty() {
                self.last_packet = now;
            }
            self.handle_events(events, true, now);
            if cursor.position() == before {
                // Defensive: the engine always consumes input; never spin.
                self.reject_and_close(Rejection::Malformed, "decoder made no progress");
            }
        }
    }

    fn handle_events(&mut self, events: Vec<Event>, from_recv: bool, now: Instant) {
        let mut close_requested = false;
        for event in events {
            match event {
                Event::RequestSendPacket { packet, .. } => {
                    self.out.extend_from_slice(&packet.to_continuous_buffer());
                }
                Event::NotifyPacketReceived(packet) => {
                    if self.end.is_none() {
                        self.on_packet(packet, now);
                    }
                }
                Event::NotifyPacketIdReleased(_) => {
                    self.inflight = self.inflight.saturating_sub(1);
                }
                Event::RequestTimerReset { .. } | Event::RequestTimerCancel(_) => {
                    // Keep-alive is enforced by the driver (capped); the
                    // engine's timers are not used on the server side.
                }
                Event::NotifyError(e) => {
                    if from_recv {
                        let why = classify(e);
                        // The engine's own close (e.g. a v5 DISCONNECT it
                        // queued) may already have set a generic end.
                        self.handler.reject(self.device, why);
                        self.end = Some(SessionEnd::ProtocolError(e.to_string()));
                    } else {
                        tracing::debug!(device = self.device, error = %e, "mqtt send refused");
                    }
                }
                Event::RequestClose => close_requested = true,
            }
        }
        if close_requested {
            self.finish(SessionEnd::ProtocolError(
                "closed by the protocol engine".into(),
            ));
        }
        if self.end.is_none() {
            self.flush_pending();
        }
    }

    fn on_packet(&mut self, packet: GenericPacket<u16>, now: Instant) {
        match packet {
            GenericPacket::V3_1_1Connect(c) => self.on_connect(c.keep_alive()),
            GenericPacket::V5_0Connect(c) => self.on_connect(c.keep_alive()),
            GenericPacket::V3_1_1Publish(p) => self.on_publish(
                p.topic_name(),
                p.payload().as_slice(),
                p.qos(),
                p.packet_id(),
                now,
            ),
            GenericPacket::V5_0Publish(p) => self.on_publish(
                p.topic_name(),
                p.payload().as_slice(),
                p.qos(),
                p.packet_id(),
                now,
            ),
            GenericPacket::V3_1_1Pubrel(p) => {
                if let Ok(pubcomp) = v3_1_1::Pubcomp::builder().packet_id(p.packet_id()).build() {
                    self.send(pubcomp.into());
                }
            }
            GenericPacket::V5_0Pubrel(p) => {
                if let Ok(pubcomp) = v5_0::Pubcomp::builder().packet_id(p.packet_id()).build() {
                    self.send(pubcomp.into());
                }
            }
            GenericPacket::V3_1_1Subscribe(s) => {
                let filters = s
                    .entries()
                    .iter()
                    .map(|e| (e.topic_filter().to_owned(), e.sub_opts().qos()))
                    .collect();
                self.on_subscribe(s.packet_id(), filters);
            }
            GenericPacket::V5_0Subscribe(s) => {
                let filters = s
                    .entries()
                    .iter()
                    .map(|e| (e.topic_filter().to_owned(), e.sub_opts().qos()))
                    .collect();
                self.on_subscribe(s.packet_id(), filters);
            }
            GenericPacket::V3_1_1Unsubscribe(u) => {
                let filters: Vec<String> =
                    u.entries().iter().map(|f| f.as_str().to_owned()).collect();
                if self.unsubscribe_ok(&filters).is_some()
                    && let Ok(ack) = v3_1_1::Unsuback::builder().packet_id(u.packet_id()).build()
                {
                    self.send(ack.into());
                }
            }
            GenericPacket::V5_0Unsubscribe(u) => {
                let filters: Vec<String> =
                    u.entries().iter().map(|f| f.as_str().to_owned()).collect();
                if let Some(codes) = self.unsubscribe_ok(&filters)
                    && let Ok(ack) = v5_0::Unsuback::builder()
                        .packet_id(u.packet_id())
                        .reason_codes(codes)
                        .build()
                {
                    self.send(ack.into());
                }
            }
            GenericPacket::V3_1_1Disconnect(_) | GenericPacket::V5_0Disconnect(_) => {
                self.finish(SessionEnd::ClientDisconnected);
            }
            GenericPacket::V5_0Auth(_) => {
                self.reject_and_close(Rejection::ProtocolViolation, "AUTH is not supported");
            }
            // PINGREQ is answered by the engine; PUBACK/PUBREC/PUBCOMP for
            // our command publishes are tracked by it (packet id release).
            _ => {}
        }
    }

    fn on_connect(&mut self, client_keep_alive: u16) {
        self.version = self.conn.get_protocol_version();
        let verdict = if is_valid_device_id(self.device) {
            self.handler.admit(self.device)
        } else {
            Err(Refused::NotAuthorized(String::new()))
        };
        if let Err(refused) = verdict {
            self.finish(SessionEnd::Refused);
            self.send_refusal(&refused);
            return;
        }
        let effective = match (client_keep_alive, self.cfg.max_keep_alive) {
            (c, 0) => c,
            (0, m) => m,
            (c, m) => c.min(m),
        };
        self.keep_alive =
            (effective > 0).then(|| Duration::from_millis(u64::from(effective) * 1500));
        match self.version {
            WireVersion::V5_0 => {
                let mut props: Vec<Property> = Vec::new();
                if effective != client_keep_alive
                    && let Ok(p) = mqtt::packet::ServerKeepAlive::new(effective)
                {
                    props.push(p.into());
                }
                // Tell well-behaved clients what not to try.
                if let Ok(p) = mqtt::packet::WildcardSubscriptionAvailable::new(0) {
                    props.push(p.into());
                }
                if let Ok(p) = mqtt::packet::SharedSubscriptionAvailable::new(0) {
                    props.push(p.into());
                }
                if let Ok(p) = mqtt::packet::RetainAvailable::new(0) {
                    props.push(p.into());
                }
                match v5_0::Connack::builder()
                    .session_present(false)
                    .reason_code(ConnectReasonCode::Success)
                    .props(props)
                    .build()
                {
                    Ok(ack) => {
                        self.send(ack.into());
                    }
                    Err(e) => self.finish(SessionEnd::ProtocolError(e.to_string())),
                }
            }
            _ => match v3_1_1::Connack::builder()
                .session_present(false)
                .return_code(ConnectReturnCode::Accepted)
                .build()
            {
                Ok(ack) => {
                    self.send(ack.into());
                }
                Err(e) => self.finish(SessionEnd::ProtocolError(e.to_string())),
            },
        }
        if self.end.is_none() {
            self.state = State::Connected;
        }
    }

    fn send_refusal(&mut self, refused: &Refused) {
        match self.version {
            WireVersion::V5_0 => {
                let (code, text) = match refused {
                    Refused::NotAuthorized(t) => (ConnectReasonCode::NotAuthorized, t),
                    Refused::ServerUnavailable(t) => (ConnectReasonCode::ServerUnavailable, t),
                };
                let mut props: Vec<Property> = Vec::new();
                if !text.is_empty()
                    && let Ok(p) = mqtt::packet::ReasonString::new(text.as_str())
                {
                    props.push(p.into());
                }
                if let Ok(ack) = v5_0::Connack::builder()
                    .session_present(false)
                    .reason_code(code)
                    .props(props)
                    .build()
                {
                    self.send(ack.into());
                }
            }
            _ => {
                let code = match refused {
                    Refused::NotAuthorized(_) => ConnectReturnCode::NotAuthorized,
                    Refused::ServerUnavailable(_) => ConnectReturnCode::ServerUnavailable,
                };
                if let Ok(ack) = v3_1_1::Connack::builder()
                    .session_present(false)
                    .return_code(code)
                    .build()
                {
                    self.send(ack.into());
                }
            }
        }
    }

    fn on_publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: MQos,
        packet_id: Option<u16>,
        now: Instant,
    ) {
        if !self.bucket.try_take(now.into_std()) {
            self.handler.reject(self.device, Rejection::RateLimited);
            // v5: negative ack (quota exceeded); v3.1.1: positive ack so the
            // device does not retransmit, message dropped. Session stays up.
            self.ack_publish(qos, packet_id, Some(PubackReasonCode::QuotaExceeded));
            return;
        }
        match publish_suffix(self.device, topic) {
            Some(suffix) => {
                self.handler.publish(self.device, suffix, payload);
                self.ack_publish(qos, packet_id, None);
            }
            None => {
                if self.version == WireVersion::V5_0 {
                    self.handler.reject(self.device, Rejection::TopicDenied);
                    self.ack_publish(qos, packet_id, Some(PubackReasonCode::NotAuthorized));
                } else {
                    // v3.1.1 cannot say "denied": close (MQTT-3.3.5-2).
                    self.reject_and_close(
                        Rejection::TopicDenied,
                        "PUBLISH to a denied topic (v3.1.1: connection closed)",
                    );
                }
            }
        }
    }

    /// PUBACK (QoS 1) or PUBREC (QoS 2); `failure` is only sent on v5.
    fn ack_publish(
        &mut self,
        qos: MQos,
        packet_id: Option<u16>,
        failure: Option<PubackReasonCode>,
    ) {
        let Some(pid) = packet_id else { return };
        let packet: Option<GenericPacket<u16>> = match (self.version, qos) {
            (WireVersion::V5_0, MQos::AtLeastOnce) => {
                let mut b = v5_0::Puback::builder().packet_id(pid);
                if let Some(rc) = failure {
                    b = b.reason_code(rc);
                }
                b.build().ok().map(Into::into)
            }
            (WireVersion::V5_0, MQos::ExactlyOnce) => {
                let mut b = v5_0::Pubrec::builder().packet_id(pid);
                if let Some(rc) = failure {
                    b = b.reason_code(match rc {
                        PubackReasonCode::QuotaExceeded => PubrecReasonCode::QuotaExceeded,
                        _ => PubrecReasonCode::NotAuthorized,
                    });
                }
                b.build().ok().map(Into::into)
            }
            (_, MQos::AtLeastOnce) => v3_1_1::Puback::builder()
                .packet_id(pid)
                .build()
                .ok()
                .map(Into::into),
            (_, MQos::ExactlyOnce) => v3_1_1::Pubrec::builder()
                .packet_id(pid)
                .build()
                .ok()
                .map(Into::into),
            (_, MQos::AtMostOnce) => None,
        };
        if let Some(p) = packet {
            self.send(p);
        }
    }

    fn on_subscribe(&mut self, packet_id: u16, filters: Vec<(String, MQos)>) {
        if filters.len() > self.cfg.max_subscriptions {
            self.reject_and_close(Rejection::ProtocolViolation, "too many topic filters");
            return;
        }
        // Granted: at most QoS 1 (commands are sent at QoS 1).
        let mut granted: Vec<Option<MQos>> = Vec::with_capacity(filters.len());
        for (filter, qos) in &filters {
            if subscribe_allowed(self.device, filter) {
                let g = if *qos == MQos::AtMostOnce {
                    MQos::AtMostOnce
                } else {
                    MQos::AtLeastOnce
                };
                self.subscribed = Some(g);
                granted.push(Some(g));
            } else {
                self.handler.reject(self.device, Rejection::SubscribeDenied);
                granted.push(None);
            }
        }
        let packet: Option<GenericPacket<u16>> = if self.version == WireVersion::V5_0 {
            let codes = granted
                .iter()
                .map(|g| match g {
                    Some(MQos::AtMostOnce) => SubackReasonCode::GrantedQos0,
                    Some(_) => SubackReasonCode::GrantedQos1,
                    None => SubackReasonCode::NotAuthorized,
                })
                .collect();
            v5_0::Suback::builder()
                .packet_id(packet_id)
                .reason_codes(codes)
                .build()
                .ok()
                .map(Into::into)
        } else {
            let codes = granted
                .iter()
                .map(|g| match g {
                    Some(MQos::AtMostOnce) => SubackReturnCode::SuccessMaximumQos0,
                    Some(_) => SubackReturnCode::SuccessMaximumQos1,
                    None => SubackReturnCode::Failure,
                })
                .collect();
            v3_1_1::Suback::builder()
                .packet_id(packet_id)
                .return_codes(codes)
                .build()
                .ok()
                .map(Into::into)
        };
        match packet {
            Some(p) => {
                self.send(p);
            }
            None => self.reject_and_close(Rejection::Malformed, "cannot answer SUBSCRIBE"),
        }
    }

    /// Drops the command subscription if asked; the v5 reason codes.
    fn unsubscribe_ok(&mut self, filters: &[String]) -> Option<Vec<UnsubackReasonCode>> {
        if filters.len() > self.cfg.max_subscriptions {
            self.reject_and_close(Rejection::ProtocolViolation, "too many topic filters");
            return None;
        }
        let own = command_topic(self.device);
        Some(
            filters
                .iter()
                .map(|f| {
                    if *f == own && self.subscribed.take().is_some() {
                        UnsubackReasonCode::Success
                    } else {
                        UnsubackReasonCode::NoSubscriptionExisted
                    }
                })
                .collect(),
        )
    }

    fn command(&mut self, cmd: SessionCommand) {
        match cmd {
            SessionCommand::Publish { payload } => {
                if self.pending.len() >= PENDING_COMMANDS {
                    self.pending.pop_front();
                    tracing::warn!(device = self.device, "command queue full, oldest dropped");
                }
                self.pending.push_back(payload);
                self.flush_pending();
            }
            SessionCommand::Close { code, reason } => {
                if self.state == State::Connected && self.version == WireVersion::V5_0 {
                    let rc = match code {
                        CloseCode::NotAuthorized => DisconnectReasonCode::NotAuthorized,
                        CloseCode::AdministrativeAction => {
                            DisconnectReasonCode::AdministrativeAction
                        }
                    };
                    self.finish(SessionEnd::Closed);
                    self.send_disconnect(rc, &reason);
                }
                self.finish(SessionEnd::Closed);
            }
        }
    }

    fn send_disconnect(&mut self, rc: DisconnectReasonCode, reason: &str) {
        let mut b = v5_0::Disconnect::builder().reason_code(rc);
        if !reason.is_empty()
            && let Ok(p) = mqtt::packet::ReasonString::new(reason)
        {
            b = b.props(vec![p.into()]);
        }
        if let Ok(d) = b.build() {
            self.send(d.into());
        }
    }

    /// Sends held commands while subscribed and under the in-flight bound.
    fn flush_pending(&mut self) {
        if self.state != State::Connected {
            return;
        }
        let Some(qos) = self.subscribed else { return };
        let topic = command_topic(self.device);
        while self.end.is_none() && self.inflight < MAX_INFLIGHT {
            // v5: the device's Receive Maximum bounds QoS 1 in flight too.
            if qos != MQos::AtMostOnce
                && self.conn.get_receive_maximum_vacancy_for_send() == Some(0)
            {
                return;
            }
            let Some(payload) = self.pending.pop_front() else {
                return;
            };
            let pid = if qos == MQos::AtMostOnce {
                None
            } else {
                match self.conn.acquire_packet_id() {
                    Ok(pid) => Some(pid),
                    Err(_) => {
                        self.pending.push_front(payload);
                        return;
                    }
                }
            };
            let packet: Result<GenericPacket<u16>, MqttError> = if self.version == WireVersion::V5_0
            {
                v5_0::Publish::builder()
                    .topic_name(topic.as_str())
                    .map(|b| {
                        let b = b.qos(qos).payload(payload);
                        match pid {
                            Some(pid) => b.packet_id(pid),
                            None => b,
                        }
                    })
                    .and_then(|b| b.build())
                    .map(Into::into)
            } else {
                v3_1_1::Publish::builder()
                    .topic_name(topic.as_str())
                    .map(|b| {
                        let b = b.qos(qos).payload(payload);
                        match pid {
                            Some(pid) => b.packet_id(pid),
                            None => b,
                        }
                    })
                    .and_then(|b| b.build())
                    .map(Into::into)
            };
            let sent = match packet {
                Ok(p) => self.send(p),
                Err(_) => false,
            };
            match (sent, pid) {
                (true, Some(_)) => self.inflight += 1,
                (false, Some(pid)) => {
                    let _ = self.conn.release_packet_id(pid);
                    tracing::warn!(device = self.device, "command publish refused, dropped");
                }
                _ => {}
            }
        }
    }

    /// Queues a packet through the engine; true if it produced bytes. The
    /// engine asks to close after a refused CONNACK or a DISCONNECT; callers
    /// of those set the session end themselves.
    fn send(&mut self, packet: GenericPacket<u16>) -> bool {
        let events = self.conn.send(packet);
        let mut sent = false;
        for event in events {
            match event {
                Event::RequestSendPacket { packet, .. } => {
                    self.out.extend_from_slice(&packet.to_continuous_buffer());
                    sent = true;
                }
                Event::NotifyError(e) => {
                    tracing::debug!(device = self.device, error = %e, "mqtt send refused");
                }
                Event::NotifyPacketIdReleased(_) => {
                    self.inflight = self.inflight.saturating_sub(1);
                }
                _ => {}
            }
        }
        sent
    }
}

fn classify(e: MqttError) -> Rejection {
    match e {
        MqttError::PacketTooLarge => Rejection::Oversized,
        MqttError::TopicNameInvalid | MqttError::NotAuthorized => Rejection::TopicDenied,
        MqttError::TopicFilterInvalid => Rejection::SubscribeDenied,
        MqttError::ProtocolError
        | MqttError::UnsupportedProtocolVersion
        | MqttError::TopicAliasInvalid
        | MqttError::ReceiveMaximumExceeded
        | MqttError::PacketIdentifierInvalid
        | MqttError::PacketIdentifierConflict
        | MqttError::InvalidPacketForRole => Rejection::ProtocolViolation,
        _ => Rejection::Malformed,
    }
}
