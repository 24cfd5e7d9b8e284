//! Shared harness: a gateway on 127.0.0.1:0 with a recording handler, raw
//! MQTT byte helpers and the external-tool lookup.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulwark_mqtt::{
    GatewayHandler, Refused, Rejection, SessionCommand, SessionConfig, SessionEnd, serve_session,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The device identity every test session is authenticated as.
pub(crate) const DEVICE: &str = "dev-1";
/// Someone else.
pub(crate) const OTHER: &str = "dev-2";

#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub(crate) publishes: Mutex<Vec<(String, String, Vec<u8>)>>,
    pub(crate) rejections: Mutex<Vec<Rejection>>,
    pub(crate) refuse: Option<Refused>,
}

impl GatewayHandler for Recorder {
    fn admit(&self, _device: &str) -> Result<(), Refused> {
        match &self.refuse {
            Some(r) => Err(r.clone()),
            None => Ok(()),
        }
    }
    fn publish(&self, device: &str, suffix: &str, payload: &[u8]) {
        lock(&self.publishes).push((device.to_owned(), suffix.to_owned(), payload.to_vec()));
    }
    fn reject(&self, _device: &str, why: Rejection) {
        lock(&self.rejections).push(why);
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct Gateway {
    pub(crate) addr: SocketAddr,
    pub(crate) handler: Arc<Recorder>,
    pub(crate) sessions: Arc<Mutex<Vec<mpsc::Sender<SessionCommand>>>>,
    pub(crate) ends: Arc<Mutex<Vec<SessionEnd>>>,
    task: JoinHandle<()>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Gateway {
    pub(crate) async fn start(cfg: SessionConfig) -> Self {
        Self::start_with(cfg, None).await
    }

    pub(crate) async fn start_with(cfg: SessionConfig, refuse: Option<Refused>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handler = Arc::new(Recorder {
            refuse,
            ..Recorder::default()
        });
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let ends = Arc::new(Mutex::new(Vec::new()));
        let cfg = Arc::new(cfg);
        let task = {
            let (handler, sessions, ends) = (handler.clone(), sessions.clone(), ends.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (tx, rx) = mpsc::channel(8);
                    lock(&sessions).push(tx);
                    let (handler, ends, cfg) = (handler.clone(), ends.clone(), cfg.clone());
                    tokio::spawn(async move {
                        let end = serve_session(stream, DEVICE, &cfg, &*handler, rx).await;
                        lock(&ends).push(end);
                    });
                }
            })
        };
        Self {
            addr,
            handler,
            sessions,
            ends,
            task,
        }
    }

    pub(crate) fn publishes(&self) -> Vec<(String, String, Vec<u8>)> {
        lock(&self.handler.publishes).clone()
    }

    pub(crate) fn rejections(&self) -> Vec<Rejection> {
        lock(&self.handler.rejections).clone()
    }

    pub(crate) fn count(&self, why: Rejection) -> usize {
        self.rejections().iter().filter(|r| **r == why).count()
    }

    pub(crate) fn ends(&self) -> Vec<SessionEnd> {
        lock(&self.ends).clone()
    }

    /// Command sender of the n-th accepted session (0-based), waiting for it.
    pub(crate) async fn session(&self, n: usize) -> mpsc::Sender<SessionCommand> {
        wait_until("session accepted", || lock(&self.sessions).len() > n).await;
        lock(&self.sessions)[n].clone()
    }

    pub(crate) async fn wait_publish(&self, suffix: &str, payload: &[u8]) {
        wait_until(&format!("publish {suffix} {payload:?}"), || {
            self.publishes()
                .iter()
                .any(|(d, s, p)| d == DEVICE && s == suffix && p == payload)
        })
        .await;
    }

    pub(crate) async fn wait_rejection(&self, why: Rejection) {
        wait_until(&format!("rejection {why:?}"), || self.count(why) > 0).await;
    }

    pub(crate) async fn wait_end(&self, n: usize) -> Vec<SessionEnd> {
        wait_until(&format!("{n} session end(s)"), || self.ends().len() >= n).await;
        self.ends()
    }
}

/// Polls `cond` every 10 ms for up to 10 s; panics with `what` otherwise.
pub(crate) async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Locates a Mosquitto program (`mosquitto`, `mosquitto_pub`,
/// `mosquitto_sub`) with `bulwark_testpg::require_tool`: `None`, after a
/// skip line, when it is missing outside CI (the test returns); a failure
/// when `CI` is set.
pub(crate) fn tool(name: &str) -> Option<PathBuf> {
    let install = match name {
        "mosquitto" => "apt-get install -y mosquitto",
        _ => "apt-get install -y mosquitto-clients",
    };
    bulwark_testpg::require_tool(name, install)
}

/// A Python 3 that has paho-mqtt, as [`tool`] finds programs.
pub(crate) fn paho_python() -> Option<PathBuf> {
    bulwark_testpg::require_python(
        "python3",
        &["paho.mqtt.client"],
        "python3 -m pip install paho-mqtt==2.2.0",
    )
}

// ---- raw MQTT bytes ----

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex: {s}");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// CONNECT, empty client id, clean session, keep-alive 60 s.
pub(crate) const CONNECT_V311: &str = "10 0C 00 04 4D 51 54 54 04 02 00 3C 00 00";
pub(crate) const CONNECT_V5: &str = "10 0D 00 04 4D 51 54 54 05 02 00 3C 00 00 00";

pub(crate) fn connect_packet(v5: bool, keep_alive: u16) -> Vec<u8> {
    let mut p = hex(if v5 { CONNECT_V5 } else { CONNECT_V311 });
    p[10..12].copy_from_slice(&keep_alive.to_be_bytes());
    p
}

fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    remaining_length(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// PUBLISH with a raw topic (may be invalid UTF-8); `pid` for QoS > 0.
pub(crate) fn publish(v5: bool, topic: &[u8], payload: &[u8], qos: u8, pid: u16) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic);
    if qos > 0 {
        body.extend_from_slice(&pid.to_be_bytes());
    }
    if v5 {
        body.push(0);
    }
    body.extend_from_slice(payload);
    packet(0x30 | (qos << 1), &body)
}

pub(crate) fn subscribe(v5: bool, pid: u16, filter: &str, qos: u8) -> Vec<u8> {
    let mut body = pid.to_be_bytes().to_vec();
    if v5 {
        body.push(0);
    }
    body.extend_from_slice(&(filter.len() as u16).to_be_bytes());
    body.extend_from_slice(filter.as_bytes());
    body.push(qos);
    packet(0x82, &body)
}

pub(crate) const PINGREQ: &str = "C0 00";
pub(crate) const PINGRESP: &[u8] = &[0xD0, 0x00];

/// A raw TCP connection speaking bytes.
pub(crate) struct Raw {
    pub(crate) stream: TcpStream,
}

impl Raw {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.expect("connect"),
        }
    }

    /// Connects and completes CONNECT/CONNACK.
    pub(crate) async fn handshake(addr: SocketAddr, v5: bool) -> Self {
        let mut raw = Self::connect(addr).await;
        raw.send(&connect_packet(v5, 60)).await;
        let ack = raw.read_packet().await.expect("CONNACK");
        assert_eq!(ack[0], 0x20, "CONNACK expected: {ack:02x?}");
        raw
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        // The peer may already have closed: that is what some tests expect.
        let _ = self.stream.write_all(bytes).await;
    }

    /// One whole packet, or None on EOF/reset/timeout (5 s).
    pub(crate) async fn read_packet(&mut self) -> Option<Vec<u8>> {
        tokio::time::timeout(Duration::from_secs(5), async {
            let mut first = [0u8; 1];
            self.stream.read_exact(&mut first).await.ok()?;
            let mut out = vec![first[0]];
            let mut len = 0usize;
            let mut mult = 1usize;
            loop {
                let mut b = [0u8; 1];
                self.stream.read_exact(&mut b).await.ok()?;
                out.push(b[0]);
                len += usize::from(b[0] & 0x7F) * mult;
                mult *= 128;
                if b[0] & 0x80 == 0 {
                    break;
                }
            }
            let mut body = vec![0u8; len];
            self.stream.read_exact(&mut body).await.ok()?;
            out.extend_from_slice(&body);
            Some(out)
        })
        .await
        .ok()
        .flatten()
    }

    /// Whether the server closed the connection (within 5 s), skipping any
    /// packets it sent first (e.g. a v5 DISCONNECT).
    pub(crate) async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 512];
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        })
        .await
        .unwrap_or(false)
    }

    /// PINGREQ answered by PINGRESP: the session is alive.
    pub(crate) async fn alive(&mut self) -> bool {
        self.send(&hex(PINGREQ)).await;
        loop {
            match self.read_packet().await {
                Some(p) if p == PINGRESP => return true,
                Some(_) => continue,
                None => return false,
            }
        }
    }
}
