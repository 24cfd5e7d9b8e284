//! The MQTT client: the agent's link to the gateway, and the server's link to
//! an external broker.
//!
//! [`connect`] performs the CONNECT/CONNACK exchange, then hands the stream
//! and the `mqtt-protocol-core` client connection to a background task. The
//! [`Client`] handle (cloneable) sends requests to it; [`Incoming`] yields
//! received messages.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use mqtt::common::Cursor;
use mqtt::connection::{ConnectionOptions, Event, TimerKind};
use mqtt::packet::{
    GenericPacket, GenericPacketTrait, Qos as MQos, SubEntry, SubOpts, v3_1_1, v5_0,
};
use mqtt::result_code::ConnectReturnCode;
use mqtt::{Connection, Version as WireVersion, role};
use mqtt_protocol_core::mqtt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

const READ_CHUNK: usize = 4096;
/// Received messages buffered for [`Incoming`]. When full, the connection
/// task stops reading the socket until the application catches up.
const INCOMING_CAPACITY: usize = 256;
const REQUEST_CAPACITY: usize = 64;

/// MQTT protocol version spoken by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V3_1_1,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

/// Delivery guarantee for publish and subscribe. QoS 2 is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    /// Fire and forget.
    AtMostOnce,
    /// Acknowledged (PUBACK); may be delivered more than once.
    AtLeastOnce,
}

impl Qos {
    fn wire(self) -> MQos {
        match self {
            Self::AtMostOnce => MQos::AtMostOnce,
            Self::AtLeastOnce => MQos::AtLeastOnce,
        }
    }
}

/// Connection parameters.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// MQTT client identifier (the gateway ignores it; brokers use it).
    pub client_id: String,
    /// Protocol version.
    pub version: Version,
    /// Keep-alive in seconds (0: none). PINGREQ is sent when idle; no
    /// PINGRESP within the same interval closes the connection.
    pub keep_alive: u16,
    /// Clean session (v3.1.1) / clean start (v5).
    pub clean_start: bool,
    /// Largest packet accepted from the peer (whole packet); advertised in
    /// the v5 CONNECT as Maximum Packet Size.
    pub max_packet_bytes: usize,
    /// Time allowed for the CONNACK.
    pub connect_timeout: Duration,
}

impl ClientOptions {
    /// Defaults (keep-alive 60 s, clean start, 1 MiB, 10 s) for `client_id`.
    pub fn new(client_id: impl Into<String>, version: Version) -> Self {
        Self {
            client_id: client_id.into(),
            version,
            keep_alive: 60,
            clean_start: true,
            max_packet_bytes: 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A received application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic name.
    pub topic: String,
    /// Body.
    pub payload: Vec<u8>,
}

/// Client failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Transport failure.
    #[error("i/o: {0}")]
    Io(String),
    /// No CONNACK within the connect timeout.
    #[error("timed out waiting for CONNACK")]
    ConnectTimeout,
    /// The broker refused the connection (CONNACK return/reason code).
    #[error("connection refused by the broker: code {code:#04x} ({reason})")]
    Refused {
        /// v3.1.1 return code or v5 reason code.
        code: u8,
        /// Code name, plus the v5 Reason String if any.
        reason: String,
    },
    /// The peer broke the protocol (or our engine refused a packet).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// PUBACK with a failure reason code (v5).
    #[error("publish rejected by the broker: reason code {code:#04x}")]
    PublishRejected {
        /// v5 PUBACK reason code.
        code: u8,
    },
    /// SUBACK with a failure code (v3.1.1 0x80, v5 reason code).
    #[error("subscription refused by the broker: code {code:#04x}")]
    SubscribeRejected {
        /// v3.1.1 return code or v5 reason code.
        code: u8,
    },
    /// The broker sent DISCONNECT (v5).
    #[error("disconnected by the broker: reason code {code:#04x}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Disconnected {
        /// v5 DISCONNECT reason code.
        code: u8,
        /// v5 Reason String, if sent.
        reason: Option<String>,
    },
    /// The connection has ended; see [`Incoming::recv`] for why.
    #[error("connection closed")]
    Closed,
    /// A topic, filter or option the protocol does not allow.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

enum Request {
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
        done: oneshot::Sender<Result<(), ClientError>>,
    },
    Subscribe {
        filter: String,
        qos: Qos,
        done: oneshot::Sender<Result<Qos, ClientError>>,
    },
    Disconnect {
        done: oneshot::Sender<Result<(), ClientError>>,
    },
}

/// Handle to a connection. Cheap to clone; usable from several tasks.
#[derive(Debug, Clone)]
pub struct Client {
    requests: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Publish { topic, .. } => write!(f, "Publish({topic})"),
            Self::Subscribe { filter, .. } => write!(f, "Subscribe({filter})"),
            Self::Disconnect { .. } => f.write_str("Disconnect"),
        }
    }
}

/// Messages received on the connection's subscriptions.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<Result<Message, ClientError>>,
}

impl Incoming {
    /// Next message. When the connection ends abnormally, yields one `Err`
    /// (e.g. [`ClientError::Disconnected`] with the broker's reason), then
    /// `None`; after [`Client::disconnect`], just `None`. Keep draining it:
    /// when 256 messages are buffered the connection
    /// stops reading (and so stops seeing acknowledgements) until you do.
    pub async fn recv(&mut self) -> Option<Result<Message, ClientError>> {
        self.rx.recv().await
    }
}

impl Client {
    /// Publishes. QoS 0 resolves once written; QoS 1 on PUBACK, with
    /// [`ClientError::PublishRejected`] for a v5 failure reason code.
    pub async fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        qos: Qos,
    ) -> Result<(), ClientError> {
        let (done, rx) = oneshot::channel();
        self.requests
            .send(Request::Publish {
                topic: topic.to_owned(),
                payload,
                qos,
                done,
            })
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Subscribes to one filter; resolves on SUBACK with the granted QoS, or
    /// [`ClientError::SubscribeRejected`] with the failure code.
    pub async fn subscribe(&self, filter: &str, qos: Qos) -> Result<Qos, ClientError> {
        let (done, rx) = oneshot::channel();
        self.requests
            .send(Request::Subscribe {
                filter: filter.to_owned(),
                qos,
                done,
            })
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Sends DISCONNECT (normal) and closes the connection, for all clones.
    pub async fn disconnect(self) -> Result<(), ClientError> {
        let (done, rx) = oneshot::channel();
        self.requests
            .send(Request::Disconnect { done })
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }
}

/// Connects over an already-open stream (TCP or TLS): sends CONNECT, waits
/// for CONNACK, then spawns the connection task (keep-alive pings, acks).
/// Fails with the broker's reason when refused.
pub async fn connect<S>(stream: S, opts: ClientOptions) -> Result<(Client, Incoming), ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let version = match opts.version {
        Version::V3_1_1 => WireVersion::V3_1_1,
        Version::V5 => WireVersion::V5_0,
    };
    let max = u32::try_from(opts.max_packet_bytes)
        .unwrap_or(u32::MAX)
        .max(2);
    let mut conn = Connection::<role::Client>::with_options(
        version,
        ConnectionOptions::new().maximum_packet_size_recv(max),
    );
    conn.set_auto_pub_response(true);
    conn.set_auto_ping_response(true);
    if opts.keep_alive > 0 {
        conn.set_pingresp_recv_timeout(u64::from(opts.keep_alive) * 1000);
    }
    let mut driver = Driver {
        stream,
        conn,
        version,
        timers: [None; 3],
        pending_pub: HashMap::new(),
        pending_sub: HashMap::new(),
        inbox: VecDeque::new(),
        out: Vec::new(),
        connack: None,
        end: None,
        disconnect_done: None,
    };
    let connect: Result<GenericPacket<u16>, mqtt::result_code::MqttError> = match version {
        WireVersion::V5_0 => v5_0::Connect::builder()
            .client_id(opts.client_id.as_str())
            .map(|b| b.keep_alive(opts.keep_alive).clean_start(opts.clean_start))
            .and_then(|b| b.build())
            .map(Into::into),
        _ => v3_1_1::Connect::builder()
            .client_id(opts.client_id.as_str())
            .map(|b| {
                b.keep_alive(opts.keep_alive)
                    .clean_session(opts.clean_start)
            })
            .and_then(|b| b.build())
            .map(Into::into),
    };
    let connect = connect.map_err(|e| ClientError::InvalidArgument(format!("CONNECT: {e}")))?;
    driver.send(connect)?;

    let handshake = async {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            driver.flush().await?;
            if let Some(result) = driver.connack.take() {
                return result;
            }
            if let Some(end) = driver.end.take() {
                return Err(end.unwrap_or(ClientError::Closed));
            }
            driver.read_once(&mut buf).await;
        }
    };
    match tokio::time::timeout(opts.connect_timeout, handshake).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(ClientError::ConnectTimeout),
    }

    let (req_tx, req_rx) = mpsc::channel(REQUEST_CAPACITY);
    let (inc_tx, inc_rx) = mpsc::channel(INCOMING_CAPACITY);
    tokio::spawn(driver.run(req_rx, inc_tx));
    Ok((Client { requests: req_tx }, Incoming { rx: inc_rx }))
}

fn timer_index(kind: TimerKind) -> usize {
    match kind {
        TimerKind::PingreqSend => 0,
        TimerKind::PingreqRecv => 1,
        TimerKind::PingrespRecv => 2,
    }
}

const TIMER_KINDS: [TimerKind; 3] = [
    TimerKind::PingreqSend,
    TimerKind::PingreqRecv,
    TimerKind::PingrespRecv,
];

type PubDone = oneshot::Sender<Result<(), ClientError>>;
type SubDone = oneshot::Sender<Result<Qos, ClientError>>;

struct Driver<S> {
    stream: S,
    conn: Connection<role::Client>,
    version: WireVersion,
    timers: [Option<Instant>; 3],
    pending_pub: HashMap<u16, PubDone>,
    pending_sub: HashMap<u16, SubDone>,
    inbox: VecDeque<Message>,
    out: Vec<u8>,
    connack: Option<Result<(), ClientError>>,
    /// Set when the connection is over: `None` inside for a normal end.
    end: Option<Option<ClientError>>,
    disconnect_done: Option<PubDone>,
}

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn finish(&mut self, why: Option<ClientError>) {
        if self.end.is_none() {
            self.end = Some(why);
        }
    }

    async fn flush(&mut self) -> Result<(), ClientError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let res = async {
            self.stream.write_all(&out).await?;
            self.stream.flush().await
        }
        .await;
        res.map_err(|e| {
            let err = ClientError::Io(e.to_string());
            self.finish(Some(err.clone()));
            err
        })
    }

    async fn read_once(&mut self, buf: &mut [u8]) {
        match self.stream.read(buf).await {
            Ok(0) => self.finish(Some(ClientError::Io("connection closed by peer".into()))),
            Ok(n) => self.feed(buf.get(..n).unwrap_or_default()),
            Err(e) => self.finish(Some(ClientError::Io(e.to_string()))),
        }
    }

    fn feed(&mut self, data: &[u8]) {
        let mut cursor = Cursor::new(data);
        while self.end.is_none() && (cursor.position() as usize) < data.len() {
            let before = cursor.position();
            let events = self.conn.recv(&mut cursor);
            self.handle_events(events, true);
            if cursor.position() == before {
                self.finish(Some(ClientError::Protocol(
                    "decoder made no progress".into(),
                )));
            }
        }
    }

    /// Sends through the engine; an engine refusal is returned.
    fn send(&mut self, packet: GenericPacket<u16>) -> Result<(), ClientError> {
        let events = self.conn.send(packet);
        let error = events.iter().find_map(|e| match e {
            Event::NotifyError(e) => Some(*e),
            _ => None,
        });
        self.handle_events(events, false);
        match error {
            Some(e) => Err(ClientError::Protocol(e.to_string())),
            None => Ok(()),
        }
    }

    fn handle_events(&mut self, events: Vec<Event>, from_recv: bool) {
        for event in events {
            match event {
                Event::RequestSendPacket { packet, .. } => {
                    self.out.extend_from_slice(&packet.to_continuous_buffer());
                }
                Event::NotifyPacketReceived(p) => self.on_packet(p),
                Event::NotifyPacketIdReleased(_) => {}
                Event::RequestTimerReset { kind, duration_ms } => {
                    self.timers[timer_index(kind)] =
                        Some(Instant::now() + Duration::from_millis(duration_ms));
                }
                Event::RequestTimerCancel(kind) => self.timers[timer_index(kind)] = None,
                Event::NotifyError(e) => {
                    if from_recv {
                        self.finish(Some(ClientError::Protocol(e.to_string())));
                    }
                }
                Event::RequestClose => {
                    self.finish(Some(ClientError::Protocol(
                        "closed by the protocol engine (e.g. no PINGRESP)".into(),
                    )));
                }
            }
        }
    }

    fn on_packet(&mut self, packet: GenericPacket<u16>) {
        match packet {
            GenericPacket::V3_1_1Connack(c) => {
                let rc = c.return_code();
                self.connack = Some(if rc == ConnectReturnCode::Accepted {
                    Ok(())
                } else {
                    Err(ClientError::Refused {
                        code: rc as u8,
                        reason: rc.to_string(),
                    })
                });
            }
            GenericPacket::V5_0Connack(c) => {
                let rc = c.reason_code();
                self.connack = Some(if (rc as u8) < 0x80 {
                    Ok(())
                } else {
                    let mut reason = rc.to_string();
                    if let Some(text) = reason_string(c.props()) {
                        reason = format!("{reason}: {text}");
                    }
                    Err(ClientError::Refused {
                        code: rc as u8,
                        reason,
                    })
                });
            }
            GenericPacket::V3_1_1Publish(p) => self.inbox.push_back(Message {
                topic: p.topic_name().to_owned(),
                payload: p.payload().as_slice().to_vec(),
            }),
            GenericPacket::V5_0Publish(p) => self.inbox.push_back(Message {
                topic: p.topic_name().to_owned(),
                payload: p.payload().as_slice().to_vec(),
            }),
            GenericPacket::V3_1_1Puback(p) => {
                if let Some(done) = self.pending_pub.remove(&p.packet_id()) {
                    let _ = done.send(Ok(()));
                }
            }
            GenericPacket::V5_0Puback(p) => {
                if let Some(done) = self.pending_pub.remove(&p.packet_id()) {
                    let result = match p.reason_code() {
                        Some(rc) if rc as u8 >= 0x80 => {
                            Err(ClientError::PublishRejected { code: rc as u8 })
                        }
                        _ => Ok(()),
                    };
                    let _ = done.send(result);
                }
            }
            GenericPacket::V3_1_1Suback(s) => {
                if let Some(done) = self.pending_sub.remove(&s.packet_id()) {
                    let code = s.return_codes().first().map(|c| *c as u8).unwrap_or(0x80);
                    let _ = done.send(granted(code));
                }
            }
            GenericPacket::V5_0Suback(s) => {
                if let Some(done) = self.pending_sub.remove(&s.packet_id()) {
                    let code = s.reason_codes().first().map(|c| *c as u8).unwrap_or(0x80);
                    let _ = done.send(granted(code));
                }
            }
            GenericPacket::V5_0Disconnect(d) => {
                let code = d.reason_code().map(|c| c as u8).unwrap_or(0);
                let reason = d.props().as_ref().and_then(|p| reason_string(p));
                self.finish(Some(ClientError::Disconnected { code, reason }));
            }
            _ => {}
        }
    }

    fn on_request(&mut self, req: Request) {
        match req {
            Request::Publish {
                topic,
                payload,
                qos,
                done,
            } => {
                let pid = match qos {
                    Qos::AtMostOnce => None,
                    Qos::AtLeastOnce => match self.conn.acquire_packet_id() {
                        Ok(pid) => Some(pid),
                        Err(e) => {
                            let _ = done.send(Err(ClientError::Protocol(e.to_string())));
                            return;
                        }
                    },
                };
                let packet = build_publish(self.version, &topic, payload, qos, pid);
                let result = packet.and_then(|p| self.send(p));
                match (result, pid) {
                    (Err(e), pid) => {
                        if let Some(pid) = pid {
                            let _ = self.conn.release_packet_id(pid);
                        }
                        let _ = done.send(Err(e));
                    }
                    (Ok(()), Some(pid)) => {
                        self.pending_pub.insert(pid, done);
                    }
                    (Ok(()), None) => {
                        let _ = done.send(Ok(()));
                    }
                }
            }
            Request::Subscribe { filter, qos, done } => {
                let pid = match self.conn.acquire_packet_id() {
                    Ok(pid) => pid,
                    Err(e) => {
                        let _ = done.send(Err(ClientError::Protocol(e.to_string())));
                        return;
                    }
                };
                let packet = build_subscribe(self.version, &filter, qos, pid);
                match packet.and_then(|p| self.send(p)) {
                    Ok(()) => {
                        self.pending_sub.insert(pid, done);
                    }
                    Err(e) => {
                        let _ = self.conn.release_packet_id(pid);
                        let _ = done.send(Err(e));
                    }
                }
            }
            Request::Disconnect { done } => {
                let packet: Option<GenericPacket<u16>> = match self.version {
                    WireVersion::V5_0 => v5_0::Disconnect::builder().build().ok().map(Into::into),
                    _ => v3_1_1::Disconnect::builder().build().ok().map(Into::into),
                };
                // Normal end first: the engine asks to close after sending.
                self.finish(None);
                if let Some(p) = packet {
                    let _ = self.send(p);
                }
                self.disconnect_done = Some(done);
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        for kind in TIMER_KINDS {
            let idx = timer_index(kind);
            if self.timers[idx].is_some_and(|t| t <= now) {
                self.timers[idx] = None;
                let events = self.conn.notify_timer_fired(kind);
                self.handle_events(events, false);
            }
        }
    }

    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        incoming: mpsc::Sender<Result<Message, ClientError>>,
    ) {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut requests_open = true;
        loop {
            while let Some(msg) = self.inbox.pop_front() {
                // A dropped Incoming just discards messages.
                let _ = incoming.send(Ok(msg)).await;
            }
            let _ = self.flush().await;
            if self.end.is_some() {
                break;
            }
            if !requests_open && incoming.is_closed() {
                // Nobody can use the connection any more.
                self.finish(None);
                let _ = self.send_disconnect();
                let _ = self.flush().await;
                break;
            }
            let next_timer = self.timers.iter().flatten().min().copied();
            tokio::select! {
                () = read_into(&mut self, &mut buf) => {},
                req = requests.recv(), if requests_open => match req {
                    Some(req) => self.on_request(req),
                    None => requests_open = false,
                },
                () = sleep_until_opt(next_timer) => self.fire_timers(),
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
        let why = self.end.take().flatten();
        let pending_error = why.clone().unwrap_or(ClientError::Closed);
        for (_, done) in self.pending_pub.drain() {
            let _ = done.send(Err(pending_error.clone()));
        }
        for (_, done) in self.pending_sub.drain() {
            let _ = done.send(Err(pending_error.clone()));
        }
        while let Ok(req) = requests.try_recv() {
            match req {
                Request::Publish { done, .. } | Request::Disconnect { done } => {
                    let _ = done.send(Err(ClientError::Closed));
                }
                Request::Subscribe { done, .. } => {
                    let _ = done.send(Err(ClientError::Closed));
                }
            }
        }
        if let Some(done) = self.disconnect_done.take() {
            let _ = done.send(Ok(()));
        }
        if let Some(err) = why {
            let _ = incoming.send(Err(err)).await;
        }
    }

    fn send_disconnect(&mut self) -> Result<(), ClientError> {
        let packet: Option<GenericPacket<u16>> = match self.version {
            WireVersion::V5_0 => v5_0::Disconnect::builder().build().ok().map(Into::into),
            _ => v3_1_1::Disconnect::builder().build().ok().map(Into::into),
        };
        match packet {
            Some(p) => self.send(p),
            None => Ok(()),
        }
    }
}

async fn read_into<S>(driver: &mut Driver<S>, buf: &mut [u8])
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    driver.read_once(buf).await;
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn granted(code: u8) -> Result<Qos, ClientError> {
    match code {
        0 => Ok(Qos::AtMostOnce),
        1 | 2 => Ok(Qos::AtLeastOnce),
        code => Err(ClientError::SubscribeRejected { code }),
    }
}

fn reason_string(props: &[mqtt::packet::Property]) -> Option<String> {
    props.iter().find_map(|p| match p {
        mqtt::packet::Property::ReasonString(r) => Some(r.val().to_owned()),
        _ => None,
    })
}

fn build_publish(
    version: WireVersion,
    topic: &str,
    payload: Vec<u8>,
    qos: Qos,
    pid: Option<u16>,
) -> Result<GenericPacket<u16>, ClientError> {
    let invalid =
        |e: mqtt::result_code::MqttError| ClientError::InvalidArgument(format!("PUBLISH: {e}"));
    if topic.is_empty() || topic.contains(['+', '#']) {
        return Err(ClientError::InvalidArgument(format!("topic {topic:?}")));
    }
    match version {
        WireVersion::V5_0 => {
            let mut b = v5_0::Publish::builder()
                .topic_name(topic)
                .map_err(invalid)?
                .qos(qos.wire())
                .payload(payload);
            if let Some(pid) = pid {
                b = b.packet_id(pid);
            }
            b.build().map(Into::into).map_err(invalid)
        }
        _ => {
            let mut b = v3_1_1::Publish::builder()
                .topic_name(topic)
                .map_err(invalid)?
                .qos(qos.wire())
                .payload(payload);
            if let Some(pid) = pid {
                b = b.packet_id(pid);
            }
            b.build().map(Into::into).map_err(invalid)
        }
    }
}

fn build_subscribe(
    version: WireVersion,
    filter: &str,
    qos: Qos,
    pid: u16,
) -> Result<GenericPacket<u16>, ClientError> {
    let invalid =
        |e: mqtt::result_code::MqttError| ClientError::InvalidArgument(format!("SUBSCRIBE: {e}"));
    let entry = SubEntry::new(filter, SubOpts::new().set_qos(qos.wire())).map_err(invalid)?;
    match version {
        WireVersion::V5_0 => v5_0::Subscribe::builder()
            .packet_id(pid)
            .entries(vec![entry])
            .build()
            .map(Into::into)
            .map_err(invalid),
        _ => v3_1_1::Subscribe::builder()
            .packet_id(pid)
            .entries(vec![entry])
            .build()
            .map(Into::into)
            .map_err(invalid),
    }
}
