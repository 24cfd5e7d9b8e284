//! The check-in load generator: one keep-alive HTTP/1.1 connection over
//! mutual TLS per (device, connection slot), each a closed loop.
//!
//! Requests are serialized once per device before the run, so the loop
//! itself does no JSON work: it sends prebuilt bytes, waits for the whole
//! response, checks the status and that the server did not ask for the
//! inventory, and records the latency.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bulwark_agent::StateFile;
use bulwark_proto::{
    CheckinRequest, CheckinResponse, DeviceId, InstalledPackage, Inventory, OsInfo,
};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The check-in route.
const CHECKIN_PATH: &str = "/api/v1/device/checkin";
/// Longest one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections set up at once before the run.
const SETUP_PARALLEL: usize = 32;
/// Packages in each synthetic inventory.
const PACKAGES: usize = 40;

/// One client device, ready to check in.
#[derive(Debug)]
pub(crate) struct Device {
    id: DeviceId,
    tls: Arc<rustls::ClientConfig>,
    /// Steady-state check-in: digest only.
    steady: Bytes,
    /// The same with the full inventory (the handshake's second request).
    with_inventory: Bytes,
}

impl Device {
    /// Bytes of the steady-state request body.
    pub(crate) fn steady_len(&self) -> usize {
        self.steady.len()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A plausible small device inventory; the hostname makes each unique.
fn inventory(hostname: &str) -> Inventory {
    let mut packages: Vec<InstalledPackage> = (0..PACKAGES)
        .map(|i| InstalledPackage {
            name: format!("pkg-{i:03}"),
            version: format!("1.{i}.0-1"),
            arch: Some("amd64".into()),
            source: "dpkg".into(),
        })
        .collect();
    packages.sort();
    Inventory {
        os: OsInfo {
            id: Some("debian".into()),
            version_id: Some("12".into()),
            pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
        },
        kernel: Some("6.1.0-18-amd64".into()),
        arch: "x86_64".into(),
        hostname: Some(hostname.to_owned()),
        packages,
    }
}

/// Builds each device's TLS configuration (aws-lc-rs only, its own client
/// certificate, ALPN http/1.1) and its prebuilt request bodies.
pub(crate) fn prepare(states: &[StateFile]) -> anyhow::Result<Vec<Arc<Device>>> {
    states
        .iter()
        .map(|s| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(s.ca_pem.as_bytes()) {
                roots.add(cert.context("CA PEM")?)?;
            }
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(s.cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .context("device certificate PEM")?;
            let key = PrivateKeyDer::from_pem_slice(s.key_pem.expose().as_bytes())
                .context("device key PEM")?;
            let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)?;
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            let inv = inventory(&format!("bench-{}", s.device_id));
            #[expect(
                clippy::disallowed_methods,
                reason = "benchmark harness: a boot id per simulated device"
            )]
            let mut req = CheckinRequest {
                agent_version: bulwark_agent::AGENT_VERSION.to_owned(),
                boot_id: Some(uuid::Uuid::new_v4().to_string()),
                inventory_digest: inv.digest(),
                inventory: None,
            };
            let steady = Bytes::from(serde_json::to_vec(&req)?);
            req.inventory = Some(inv);
            let with_inventory = Bytes::from(serde_json::to_vec(&req)?);
            Ok(Arc::new(Device {
                id: s.device_id,
                tls: Arc::new(cfg),
                steady,
                with_inventory,
            }))
        })
        .collect()
}

/// One keep-alive connection.
#[derive(Debug)]
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

async fn connect(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> anyhow::Result<Conn> {
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    tcp.set_nodelay(true)?;
    let name = ServerName::IpAddress(addr.ip().into());
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .context("TLS handshake")?;
    let alpn = stream.get_ref().1.alpn_protocol();
    if alpn != Some(b"http/1.1".as_slice()) {
        bail!("ALPN negotiated {alpn:?}, expected http/1.1");
    }
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // Ends by itself once `sender` is dropped.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Conn {
        sender,
        host: HeaderValue::from_str(&addr.to_string())?,
    })
}

impl Conn {
    async fn post(&mut self, body: Bytes) -> anyhow::Result<(StatusCode, Bytes)> {
        self.sender.ready().await?;
        let req = Request::post(CHECKIN_PATH)
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// A request whose answer must be 200 with a check-in response.
    async fn checkin(&mut self, body: Bytes) -> anyhow::Result<CheckinResponse> {
        let (status, bytes) = self.post(body).await?;
        if status != StatusCode::OK {
            bail!("{status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// Opens a connection for `dev` and, if `handshake`, brings the server to
/// the steady state for it: digest-only check-in, inventory upload when
/// asked, then one more digest-only check-in that must not ask again.
async fn open(addr: SocketAddr, dev: &Device, handshake: bool) -> anyhow::Result<Conn> {
    let mut conn = connect(addr, dev.tls.clone()).await?;
    if handshake {
        let first = conn.checkin(dev.steady.clone()).await?;
        if first.send_inventory {
            let second = conn.checkin(dev.with_inventory.clone()).await?;
            anyhow::ensure!(
                !second.send_inventory,
                "server still asks for the inventory after receiving it"
            );
        }
        let third = conn.checkin(dev.steady.clone()).await?;
        anyhow::ensure!(
            !third.send_inventory,
            "server asks for the inventory again after storing it"
        );
    }
    Ok(conn)
}

/// What one connection loop measured.
#[derive(Debug, Default)]
pub(crate) struct LoopStats {
    /// Latency of every successful check-in in the window, microseconds.
    pub(crate) latencies_us: Vec<u32>,
    /// Failed check-ins in the window (non-200, wrong answer, transport).
    pub(crate) errors: u64,
    /// Failures outside the window (warm-up), not counted.
    pub(crate) errors_outside: u64,
    /// The first failure's description.
    pub(crate) first_error: Option<String>,
    /// Connections re-opened after a failure.
    pub(crate) reconnects: u64,
}

/// The run's time line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Measurement starts (warm-up before it).
    pub(crate) measure_from: Instant,
    /// Measurement and load end.
    pub(crate) measure_until: Instant,
}

fn answered_steady(bytes: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"\"send_inventory\":false";
    bytes.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// One closed loop on one connection: send, wait for the whole answer,
/// repeat, until the window closes. A check-in counts when it both started
/// and finished inside the measurement window.
async fn run_loop(addr: SocketAddr, dev: Arc<Device>, mut conn: Conn, w: Window) -> LoopStats {
    let mut st = LoopStats {
        latencies_us: Vec::with_capacity(1 << 14),
        ..LoopStats::default()
    };
    loop {
        let t0 = Instant::now();
        if t0 >= w.measure_until {
            break;
        }
        let result = tokio::time::timeout(REQUEST_TIMEOUT, conn.post(dev.steady.clone())).await;
        let t1 = Instant::now();
        // (description, whether the connection must be replaced)
        let failure = match result {
            Ok(Ok((StatusCode::OK, body))) if answered_steady(&body) => None,
            Ok(Ok((status, body))) => Some((
                format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
                false,
            )),
            Ok(Err(e)) => Some((format!("{e:#}"), true)),
            Err(_) => Some((format!("no answer within {REQUEST_TIMEOUT:?}"), true)),
        };
        let inside = t0 >= w.measure_from && t1 <= w.measure_until;
        let Some((what, broken)) = failure else {
            if inside {
                let us = u32::try_from(t1.duration_since(t0).as_micros()).unwrap_or(u32::MAX);
                st.latencies_us.push(us);
            }
            continue;
        };
        if inside {
            st.errors += 1;
        } else {
            st.errors_outside += 1;
        }
        if st.first_error.is_none() {
            st.first_error = Some(format!("device {}: {what}", dev.id));
        }
        if broken || conn.sender.is_closed() {
            loop {
                if Instant::now() >= w.measure_until {
                    return st;
                }
                match open(addr, &dev, false).await {
                    Ok(c) => {
                        conn = c;
                        st.reconnects += 1;
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
    }
    st
}

/// Connections opened and handshaken, ready to run.
#[derive(Debug)]
pub(crate) struct Prepared {
    addr: SocketAddr,
    conns: Vec<(Arc<Device>, Conn)>,
}

impl Prepared {
    /// Number of connection loops.
    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }
}

/// Opens `per_device` connections for every device (the first one does the
/// inventory handshake), [`SETUP_PARALLEL`] at a time.
pub(crate) async fn connect_all(
    device_addr: SocketAddr,
    devices: &[Arc<Device>],
    per_device: u32,
) -> anyhow::Result<Prepared> {
    let addr = SocketAddr::new(
        match device_addr.ip() {
            IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        },
        device_addr.port(),
    );
    let permits = Arc::new(Semaphore::new(SETUP_PARALLEL));
    let mut set = JoinSet::new();
    for (i, dev) in devices.iter().enumerate() {
        let (dev, permits) = (dev.clone(), permits.clone());
        set.spawn(async move {
            let _p = permits.acquire_owned().await?;
            let mut out = Vec::new();
            for slot in 0..per_device {
                let conn = open(addr, &dev, slot == 0)
                    .await
                    .with_context(|| format!("setting up client {i} ({})", dev.id))?;
                out.push((i, dev.clone(), conn));
            }
            anyhow::Ok(out)
        });
    }
    let mut conns = Vec::new();
    while let Some(r) = set.join_next().await {
        conns.extend(r.context("setup task panicked")??);
    }
    // Loops start in device order.
    conns.sort_by_key(|(i, _, _)| *i);
    Ok(Prepared {
        addr,
        conns: conns.into_iter().map(|(_, d, c)| (d, c)).collect(),
    })
}

/// Starts every loop; they stop by themselves at `w.measure_until`.
pub(crate) fn start(prepared: Prepared, w: Window) -> JoinSet<LoopStats> {
    let mut set = JoinSet::new();
    for (dev, conn) in prepared.conns {
        set.spawn(run_loop(prepared.addr, dev, conn, w));
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_answer_is_recognised() {
        assert!(answered_steady(
            br#"{"poll_interval_secs":60,"send_inventory":false,"server_time":"x"}"#
        ));
        assert!(!answered_steady(
            br#"{"poll_interval_secs":60,"send_inventory":true,"server_time":"x"}"#
        ));
    }

    #[test]
    fn synthetic_inventory_is_valid_and_unique() {
        let a = inventory("a");
        assert!(a.validate().is_ok());
        assert_ne!(a.digest(), inventory("b").digest());
    }
}
