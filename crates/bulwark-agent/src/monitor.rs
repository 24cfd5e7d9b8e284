//! Security telemetry over MQTT, and isolation on command.
//!
//! [`Agent::publish_telemetry`] connects to the server's device gateway
//! (MQTT 5 over TLS with the device certificate), publishes a
//! [`Telemetry`](bulwark_proto::telemetry::Telemetry) sample every
//! interval on `bulwark/v1/devices/{id}/telemetry`, and listens on its
//! command topic. An isolate command (or a check-in answered with a
//! quarantine) makes the agent install an nftables table that lets only the
//! control plane through, when it has the privilege; either way it reports
//! what it could do on `bulwark/v1/devices/{id}/isolation`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bulwark_mqtt::{ClientOptions, Qos, Version};
use bulwark_proto::telemetry::{DeviceCommand, Encoding, IsolationReport};
use rustls::pki_types::ServerName;

use crate::{Agent, Error, Result};

/// The nftables table the agent owns while isolated.
pub const NFT_TABLE: &str = "bulwark_isolate";

/// Telemetry settings.
#[derive(Debug, Clone)]
pub struct TelemetryOptions {
    /// The gateway, `host:port` (the host must match the server
    /// certificate, as for the device listener).
    pub gateway: String,
    /// Time between samples.
    pub interval: Duration,
    /// How samples are encoded: JSON, or CBOR where bytes cost (the
    /// gateway reads both).
    pub encoding: Encoding,
}

/// The nftables ruleset that allows only `allowed` (the control plane's
/// addresses and ports) and loopback, in and out. Established
/// connections to anything else are cut too: a compromised process must
/// not keep its channel.
pub fn nft_ruleset(allowed: &[SocketAddr]) -> String {
    let mut out = String::new();
    let mut inp = String::new();
    for a in allowed {
        let family = match a.ip() {
            IpAddr::V4(_) => "ip",
            IpAddr::V6(_) => "ip6",
        };
        out.push_str(&format!(
            "    {family} daddr {} tcp dport {} accept\n",
            a.ip(),
            a.port()
        ));
        inp.push_str(&format!(
            "    {family} saddr {} tcp sport {} accept\n",
            a.ip(),
            a.port()
        ));
    }
    format!(
        "table inet {NFT_TABLE} {{\n  chain output {{\n    type filter hook output priority 0; policy drop;\n    oif \"lo\" accept\n{out}  }}\n  chain input {{\n    type filter hook input priority 0; policy drop;\n    iif \"lo\" accept\n{inp}  }}\n}}\n"
    )
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// How isolation is applied: for real, or (tests, `--no-isolate`) only
/// reported as impossible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationMode {
    /// Run `nft` when privileged.
    Enforce,
    /// Never touch the firewall; report that isolation was not applied.
    ReportOnly,
    /// A virtual device (the fleet simulator): its host cuts its simulated
    /// traffic once [`Isolation::attempted`] is true, and the report says
    /// so. Never touches a real firewall.
    Simulated,
}

/// Where telemetry samples come from: the [`Collector`](crate::telemetry::Collector)
/// reading `/proc` on a real device, or a model of one (the simulator).
pub trait TelemetrySource: Send {
    /// The sample at `now_ms` (unix milliseconds), or `None` to skip this
    /// tick (nothing to send, e.g. a simulated link outage).
    fn sample(&mut self, now_ms: u64) -> Option<bulwark_proto::telemetry::Telemetry>;
}

impl TelemetrySource for crate::telemetry::Collector {
    fn sample(&mut self, now_ms: u64) -> Option<bulwark_proto::telemetry::Telemetry> {
        Some(self.collect(now_ms))
    }
}

/// The agent's isolation state, shared by the check-in loop and the
/// telemetry loop.
#[derive(Debug)]
pub struct Isolation {
    mode: IsolationMode,
    applied: Mutex<Option<IsolationReport>>,
}

impl Isolation {
    /// Not isolated yet.
    pub fn new(mode: IsolationMode) -> Arc<Self> {
        Arc::new(Self {
            mode,
            applied: Mutex::new(None),
        })
    }

    /// Isolates (once; later calls return the first report) leaving
    /// `allowed` reachable.
    pub async fn isolate(&self, allowed: &[SocketAddr], reason: &str) -> IsolationReport {
        if let Some(r) = self
            .applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return r;
        }
        tracing::warn!(%reason, "quarantined by the server: isolating");
        let report = match self.mode {
            IsolationMode::ReportOnly => IsolationReport {
                isolated: false,
                detail: "isolation disabled on this agent (--no-isolate)".into(),
            },
            IsolationMode::Enforce => apply_nft(allowed).await,
            IsolationMode::Simulated => IsolationReport {
                isolated: true,
                detail: "simulated device: its virtual network is cut off".into(),
            },
        };
        *self.applied.lock().unwrap_or_else(PoisonError::into_inner) = Some(report.clone());
        report
    }

    /// Whether an isolation was attempted (and not lifted).
    pub fn attempted(&self) -> bool {
        self.applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Lifts the isolation (the server released the device).
    pub async fn lift(&self) {
        let was = self
            .applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if was.is_some_and(|r| r.isolated) {
            let out = tokio::process::Command::new("nft")
                .args(["delete", "table", "inet", NFT_TABLE])
                .output()
                .await;
            match out {
                Ok(o) if o.status.success() => tracing::info!("released: isolation lifted"),
                Ok(o) => {
                    tracing::error!(stderr = %String::from_utf8_lossy(&o.stderr), "lifting isolation failed")
                }
                Err(e) => tracing::error!(error = %e, "lifting isolation failed"),
            }
        }
    }
}

async fn apply_nft(allowed: &[SocketAddr]) -> IsolationReport {
    if effective_uid() != Some(0) {
        return IsolationReport {
            isolated: false,
            detail: "not isolated: the agent is not running as root".into(),
        };
    }
    let rules = nft_ruleset(allowed);
    let child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return IsolationReport {
                isolated: false,
                detail: format!("not isolated: cannot run nft: {e}"),
            };
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt as _;
        let _ = stdin.write_all(rules.as_bytes()).await;
    }
    match child.wait_with_output().await {
        Ok(o) if o.status.success() => IsolationReport {
            isolated: true,
            detail: format!(
                "nftables table inet {NFT_TABLE}: only {} reachable",
                allowed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        Ok(o) => IsolationReport {
            isolated: false,
            detail: format!(
                "not isolated: nft failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        },
        Err(e) => IsolationReport {
            isolated: false,
            detail: format!("not isolated: nft: {e}"),
        },
    }
}

/// `host:port` of a URL like `https://host:port/…`.
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}

impl Agent {
    /// The control plane's addresses: what isolation leaves reachable.
    pub async fn control_plane(&self, gateway: Option<&str>) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        let mut names: Vec<(String, u16)> = host_port(&self.state.server).into_iter().collect();
        if let Some(g) = gateway.and_then(|g| host_port(&format!("mqtts://{g}"))) {
            names.push(g);
        }
        for (host, port) in names {
            if let Ok(addrs) = tokio::net::lookup_host((host.as_str(), port)).await {
                out.extend(addrs);
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Publishes telemetry every `opts.interval` and obeys commands until
    /// `shutdown` resolves; reconnects with backoff. A refusal (revoked,
    /// quarantined) is retried slowly: the check-in loop decides when the
    /// agent must stop.
    pub async fn publish_telemetry(
        &self,
        opts: TelemetryOptions,
        root: std::path::PathBuf,
        isolation: Arc<Isolation>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        let mut collector = crate::telemetry::Collector::new(root);
        self.publish_telemetry_from(opts, &mut collector, isolation, shutdown)
            .await
    }

    /// [`Agent::publish_telemetry`] with samples from `source`.
    pub async fn publish_telemetry_from(
        &self,
        opts: TelemetryOptions,
        source: &mut dyn TelemetrySource,
        isolation: Arc<Isolation>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_secs(1);
        loop {
            let session = self.telemetry_session(&opts, source, &isolation);
            let result = tokio::select! {
                r = session => r,
                () = &mut shutdown => return Ok(()),
            };
            match result {
                Ok(()) => backoff = Duration::from_secs(1),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_secs = backoff.as_secs(), "telemetry session ended");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = &mut shutdown => return Ok(()),
            }
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }

    async fn telemetry_session(
        &self,
        opts: &TelemetryOptions,
        source: &mut dyn TelemetrySource,
        isolation: &Isolation,
    ) -> Result<()> {
        let (host, port) = host_port(&format!("mqtts://{}", opts.gateway)).ok_or_else(|| {
            Error::Protocol(format!("gateway {:?} is not host:port", opts.gateway))
        })?;
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| {
                Error::Protocol(format!("connecting to the gateway {host}:{port}: {e}"))
            })?;
        let _ = tcp.set_nodelay(true);
        let tls = crate::tls_client_config(
            &self.state.ca_pem,
            Some((&self.state.cert_pem, &self.state.key_pem)),
        )?;
        let name = ServerName::try_from(host.clone())
            .map_err(|e| Error::Tls(format!("gateway name {host:?}: {e}")))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| Error::Tls(format!("gateway TLS: {e}")))?;
        let id = self.state.device_id.to_string();
        let (client, mut incoming) = bulwark_mqtt::connect(
            stream,
            ClientOptions {
                client_id: id.clone(),
                version: Version::V5,
                keep_alive: 60,
                clean_start: true,
                max_packet_bytes: bulwark_proto::telemetry::MAX_TELEMETRY_BYTES + 1024,
                connect_timeout: Duration::from_secs(10),
            },
        )
        .await
        .map_err(|e| Error::Protocol(format!("gateway refused: {e}")))?;
        let commands = bulwark_mqtt::command_topic(&id);
        let telemetry = bulwark_mqtt::telemetry_topic(&id);
        let isolation_topic = format!("{}{id}/isolation", bulwark_mqtt::TOPIC_PREFIX);
        client
            .subscribe(&commands, Qos::AtLeastOnce)
            .await
            .map_err(|e| Error::Protocol(format!("subscribing to {commands}: {e}")))?;
        tracing::info!(gateway = %opts.gateway, "telemetry connected");
        let mut tick = tokio::time::interval(opts.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    #[expect(clippy::disallowed_methods, reason = "the agent is an edge: a telemetry sample carries the device's wall-clock time")]
                    let now_ms = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
                    let Some(sample) = source.sample(now_ms) else { continue };
                    let bytes = sample
                        .encode_as(opts.encoding)
                        .map_err(|e| Error::Protocol(format!("telemetry: {e}")))?;
                    client
                        .publish(&telemetry, bytes, Qos::AtMostOnce)
                        .await
                        .map_err(|e| Error::Protocol(format!("publishing telemetry: {e}")))?;
                }
                msg = incoming.recv() => {
                    let msg = match msg {
                        None => return Err(Error::Protocol("the gateway closed the session".into())),
                        Some(Err(e)) => return Err(Error::Protocol(format!("gateway: {e}"))),
                        Some(Ok(m)) => m,
                    };
                    match DeviceCommand::decode(&msg.payload) {
                        Ok(DeviceCommand::Isolate { reason }) => {
                            let allowed = self.control_plane(Some(&opts.gateway)).await;
                            let report = isolation.isolate(&allowed, &reason).await;
                            let body = serde_json::to_vec(&report).unwrap_or_default();
                            // Best effort: the server closes the session right after.
                            let _ = client.publish(&isolation_topic, body, Qos::AtLeastOnce).await;
                        }
                        Err(e) => tracing::warn!(error = %e, "ignoring a malformed command"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ruleset_allows_only_the_control_plane() {
        let rules = nft_ruleset(&[
            "192.0.2.1:8443".parse().unwrap(),
            "[2001:db8::1]:8883".parse().unwrap(),
        ]);
        expect_test::expect![[r#"
            table inet bulwark_isolate {
              chain output {
                type filter hook output priority 0; policy drop;
                oif "lo" accept
                ip daddr 192.0.2.1 tcp dport 8443 accept
                ip6 daddr 2001:db8::1 tcp dport 8883 accept
              }
              chain input {
                type filter hook input priority 0; policy drop;
                iif "lo" accept
                ip saddr 192.0.2.1 tcp sport 8443 accept
                ip6 saddr 2001:db8::1 tcp sport 8883 accept
              }
            }
        "#]]
        .assert_eq(&rules);
    }

    #[test]
    fn gateway_addresses_parse() {
        assert_eq!(
            host_port("https://gw.example:8443/x"),
            Some(("gw.example".into(), 8443))
        );
        assert_eq!(host_port("mqtts://[::1]:8883"), Some(("::1".into(), 8883)));
        assert_eq!(host_port("mqtts://nohost"), None);
    }

    #[tokio::test]
    async fn report_only_mode_never_touches_the_firewall() {
        let iso = Isolation::new(IsolationMode::ReportOnly);
        let r = iso.isolate(&[], "test").await;
        assert!(!r.isolated);
        assert!(iso.attempted());
        // Once isolated, the same report comes back.
        assert_eq!(iso.isolate(&[], "again").await, r);
        iso.lift().await;
        assert!(!iso.attempted());
    }
}
