//! External broker mode: the server consumes telemetry as an MQTT 5 client
//! of an existing broker (e.g. a Mosquitto or EMQX cluster that terminates
//! the devices' connections), so that scale-out can use the broker's.
//!
//! Trust: the device id is taken from the topic
//! (`bulwark/v1/devices/{id}/telemetry`), so the broker must enforce the
//! same per-device ACL as the built-in gateway (e.g. Mosquitto's
//! `pattern write bulwark/v1/devices/%u/#` with certificate-derived user
//! names). Quarantine publishes the isolate command through the broker;
//! refusing the device's connection is the broker's job.
//!
//! Transport: plain TCP, or TLS when `mqtt_broker_ca` is set ([`Tls`]):
//! the broker's certificate must chain to that CA and name the host of
//! `mqtt_broker`, and with `mqtt_broker_cert`/`mqtt_broker_key` the
//! server presents its own certificate (mutual TLS). The material is read
//! once, when the server starts; a bad file stops the start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bulwark_mqtt::{ClientOptions, Qos, Version};
use bulwark_proto::DeviceId;
use bulwark_proto::telemetry::decode;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::BrokerTls;
use crate::monitor::Monitor;
use crate::state::AppState;

/// Largest PEM file read for the broker's TLS material.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// TLS to the external broker: the client configuration and the name the
/// broker's certificate must carry.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The configuration holds the client key: never printed.
        f.debug_struct("Tls")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn read_pem(what: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)
        .with_context(|| format!("{what}: cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{what}: cannot read {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_PEM_BYTES,
        "{what}: {} is over {MAX_PEM_BYTES} bytes",
        path.display()
    );
    Ok(bytes)
}

fn certificates(
    what: &str,
    path: &std::path::Path,
) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject as _;
    let pem = read_pem(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{what}: {} is not PEM", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{what}: no certificate in {}",
        path.display()
    );
    Ok(certs)
}

impl Tls {
    /// Reads the CA and, for mutual TLS, the client certificate and key
    /// (which must not be readable by group or others), for the broker at
    /// `addr` (`host:port`).
    pub fn load(addr: &str, tls: &BrokerTls) -> anyhow::Result<Tls> {
        use rustls::pki_types::pem::PemObject as _;
        let host = addr
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
            .unwrap_or(addr);
        let name = ServerName::try_from(host.to_owned())
            .with_context(|| format!("mqtt_broker: {host:?} is not a DNS name or IP address"))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates("mqtt_broker_ca", &tls.ca)? {
            roots
                .add(cert)
                .with_context(|| format!("mqtt_broker_ca: {}", tls.ca.display()))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
        let config = match &tls.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certificates("mqtt_broker_cert", cert)?;
                crate::bootstrap::check_secret_mode(key).context("mqtt_broker_key")?;
                let pem = zeroize::Zeroizing::new(read_pem("mqtt_broker_key", key)?);
                let key_der = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
                    anyhow::anyhow!("mqtt_broker_key: no PEM private key in {}", key.display())
                })?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .context("mqtt_broker_cert and mqtt_broker_key do not match")?
            }
        };
        Ok(Tls {
            config: Arc::new(config),
            name,
        })
    }
}

/// The subscription: every device's telemetry.
pub const TELEMETRY_FILTER: &str = "bulwark/v1/devices/+/telemetry";

pub use crate::monitor::BrokerLink;

/// Consumes telemetry from the broker at `addr` (`host:port`; over `tls`
/// if set, else plain TCP) until `stop` resolves; reconnects with backoff.
pub async fn consume(
    addr: String,
    tls: Option<Tls>,
    state: AppState,
    monitor: Arc<Monitor>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut backoff = Duration::from_millis(200);
    loop {
        let session = session(&addr, tls.as_ref(), &state, &monitor);
        tokio::select! {
            r = session => {
                if let Err(e) = r {
                    tracing::warn!(broker = %addr, error = %e, retry_in_ms = backoff.as_millis() as u64, "broker session ended");
                }
            }
            () = &mut stop => break,
        }
        monitor.broker.set(None);
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = &mut stop => break,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    monitor.broker.set(None);
}

async fn session(
    addr: &str,
    tls: Option<&Tls>,
    state: &AppState,
    monitor: &Arc<Monitor>,
) -> anyhow::Result<()> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => consume_from(tcp, addr, state, monitor).await,
        Some(tls) => {
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.config));
            let stream = tokio::time::timeout(
                Duration::from_secs(10),
                connector.connect(tls.name.clone(), tcp),
            )
            .await
            .context("TLS handshake with the broker timed out")?
            .context("TLS handshake with the broker")?;
            consume_from(stream, addr, state, monitor).await
        }
    }
}

async fn consume_from<S>(
    stream: S,
    addr: &str,
    state: &AppState,
    monitor: &Arc<Monitor>,
) -> anyhow::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    #[expect(
        clippy::disallowed_methods,
        reason = "MQTT client id, unique per connection: not a secret"
    )]
    let mut opts = ClientOptions::new(
        format!("bulwark-server-{}", uuid::Uuid::new_v4().simple()),
        Version::V5,
    );
    opts.keep_alive = 30;
    opts.max_packet_bytes = bulwark_proto::telemetry::MAX_TELEMETRY_BYTES + 1024;
    let (client, mut incoming) = bulwark_mqtt::connect(stream, opts).await?;
    client.subscribe(TELEMETRY_FILTER, Qos::AtMostOnce).await?;
    monitor.broker.set(Some(client));
    tracing::info!(broker = %addr, "consuming telemetry from the external broker");
    // Each device's previous sample (traffic counters for deltas, sockets
    // already seen), this task only.
    let mut previous: HashMap<DeviceId, crate::monitor::convert::PreviousSample> = HashMap::new();
    // Each device's open telemetry minute; handed over when this
    // connection ends, however it ends.
    let mut histories = crate::monitor::history::HistoryMap::new(monitor);
    while let Some(msg) = incoming.recv().await {
        let msg = msg?;
        let Some(id) = msg
            .topic
            .strip_prefix(bulwark_mqtt::TOPIC_PREFIX)
            .and_then(|r| r.strip_suffix("/telemetry"))
            .and_then(|id| DeviceId::parse(id).ok())
        else {
            continue;
        };
        // The group, and whether the device may report at all, from the
        // presence cache (read through from the store on first sight).
        let cached = match state.cached_device(&id).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                tracing::debug!(device = %id, "telemetry of an unknown device ignored");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "store unavailable; telemetry dropped");
                continue;
            }
        };
        if cached.revoked || cached.quarantine.is_some() {
            monitor.reject(id, "not_admitted");
            continue;
        }
        match decode(&msg.payload) {
            Ok(t) => {
                let prev = previous.entry(id).or_default();
                let history = histories.device(id);
                monitor.observe(id, &cached.group, t, prev, history, state.0.clock.now());
            }
            Err(_) => monitor.reject(id, "invalid_telemetry"),
        }
    }
    anyhow::bail!("the broker closed the connection")
}
