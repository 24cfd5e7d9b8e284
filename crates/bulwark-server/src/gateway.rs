//! The device gateway: MQTT 3.1.1 and 5 over mTLS, inside the server.
//!
//! - TLS with the device CA, the same revocation-aware verifier as the
//!   device HTTPS listener. The device id comes from the verified
//!   certificate, never from the MQTT client id.
//! - At CONNECT the device must be known, active, on its current
//!   certificate, and not quarantined; otherwise CONNACK "not authorized".
//! - Topic ACL, packet limits and the per-device rate limit are enforced
//!   by [`bulwark_mqtt::serve_session`]; every rejection is counted per
//!   device ([`crate::monitor::Monitor::rejections`]).
//! - Telemetry (`bulwark/v1/devices/{id}/telemetry`) is decoded by
//!   [`bulwark_proto::telemetry::decode`] and fed to the detection engine;
//!   isolation reports (`…/isolation`) are kept for `devices show`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bulwark_mqtt::{GatewayHandler, Refused, Rejection, SessionConfig};
use bulwark_pki::PeerIdentity;
use bulwark_proto::DeviceId;
use bulwark_proto::telemetry::{IsolationReport, decode};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::error::ApiError;
use crate::monitor::Monitor;
use crate::state::AppState;

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Per-session limits.
    pub session: SessionConfig,
    /// Most concurrent connections.
    pub max_connections: usize,
    /// The device side's share of file descriptors, shared with the HTTPS
    /// device listener (see [`crate::listen`]).
    pub fds: Arc<Semaphore>,
}

/// Who may connect: the device behind a verified certificate, authenticated
/// as on the HTTPS device listener, and not quarantined.
async fn admission(
    state: &AppState,
    identity: Option<PeerIdentity>,
) -> Result<(DeviceId, String), Refused> {
    let (id, cached) = crate::device::authenticate_identity(state, identity)
        .await
        .map_err(|e| match e {
            ApiError::Internal(e) => Refused::ServerUnavailable(format!("{e:#}")),
            ApiError::ClientCertRequired => {
                Refused::NotAuthorized("a device client certificate is required".into())
            }
            ApiError::Forbidden(why) => Refused::NotAuthorized(why),
            other => Refused::NotAuthorized(format!("{other:?}")),
        })?;
    if cached.quarantine.is_some() {
        return Err(Refused::NotAuthorized("device quarantined".into()));
    }
    Ok((id, cached.group))
}

struct DeviceHandler {
    state: AppState,
    monitor: Arc<Monitor>,
    admitted: Result<(DeviceId, String), Refused>,
    /// The device id as text, shared by every datapoint of the session.
    name: Arc<str>,
    /// Traffic counters of this session's previous sample and the
    /// datapoints of the current read (uncontended: one session, one task).
    ingest: std::sync::Mutex<Ingest>,
}

/// Most datapoints held before a hand-over, even within one read.
const MAX_BATCH: usize = 256;
/// Room reserved for a read's datapoints at its first sample, at least (a
/// 16 KiB read carries about 50 JSON samples, or 120 CBOR ones).
const BATCH_START: usize = 64;

#[derive(Default)]
struct Ingest {
    previous: crate::monitor::convert::PreviousSample,
    pending: Vec<bulwark_detect::Datapoint>,
    /// Datapoints of the previous read: the next read's first guess.
    last_batch: usize,
    /// The server's clock at the current read's first sample.
    read_at: Option<time::OffsetDateTime>,
    /// The device's open telemetry minute and latest sample.
    history: crate::monitor::history::DeviceHistory,
}

impl Drop for DeviceHandler {
    /// The session is over: its open minute goes to the history writer.
    fn drop(&mut self) {
        let ingest = self
            .ingest
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ingest.history.close(&self.monitor.history);
    }
}

impl DeviceHandler {
    fn device(&self) -> Option<DeviceId> {
        self.admitted.as_ref().ok().map(|(d, _)| *d)
    }
}

impl GatewayHandler for DeviceHandler {
    fn admit(&self, _device: &str) -> Result<(), Refused> {
        match &self.admitted {
            Ok((id, _)) => {
                // A quarantine may have landed since the store was read.
                if self
                    .state
                    .0
                    .presence
                    .cached(id)
                    .is_some_and(|c| c.quarantine.is_some())
                {
                    return Err(Refused::NotAuthorized("device quarantined".into()));
                }
                Ok(())
            }
            Err(r) => Err(r.clone()),
        }
    }

    fn publish(&self, _device: &str, suffix: &str, payload: &[u8]) {
        let Ok((id, group)) = &self.admitted else {
            return;
        };
        match suffix {
            "telemetry" => match decode(payload) {
                Ok(t) => {
                    let mut ingest = self
                        .ingest
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    // One receipt time per read: its samples arrived together.
                    let clock = &self.state.0.clock;
                    let now = *ingest.read_at.get_or_insert_with(|| clock.now());
                    // `self.name` is this session's id as text (from the
                    // certificate; see `serve`), as `device` is.
                    let dp = self
                        .monitor
                        .datapoint(&self.name, &t, &mut ingest.previous, now);
                    // The sample itself is kept as the latest (a move: it
                    // was to be dropped here anyway).
                    ingest
                        .history
                        .record(*id, now, t, &dp, &self.monitor.history);
                    if ingest.pending.capacity() == 0 {
                        // A busy read carries tens of samples: no regrowth
                        // (and copy) at 4, 8, 16 … datapoints. The room
                        // leaves with the batch: nothing is held between
                        // reads.
                        // Half again the previous read's count: a read
                        // slightly fuller than the last one regrew the
                        // batch (a copy of every datapoint; 0.7 % of CBOR
                        // ingest).
                        let last = ingest.last_batch;
                        let guess = (last + last / 2).clamp(BATCH_START, MAX_BATCH);
                        ingest.pending.reserve(guess);
                    }
                    ingest.pending.push(dp);
                    if ingest.pending.len() >= MAX_BATCH {
                        let batch = std::mem::take(&mut ingest.pending);
                        self.monitor.submit_batch(*id, group, batch, now);
                    }
                }
                Err(e) => {
                    tracing::debug!(device = %id, error = %e, "telemetry rejected");
                    self.monitor.reject(*id, "invalid_telemetry");
                }
            },
            "isolation" => match serde_json::from_slice::<IsolationReport>(payload) {
                Ok(r) => {
                    tracing::info!(device = %id, isolated = r.isolated, detail = %r.detail, "isolation report");
                    self.monitor.record_isolation(*id, r);
                }
                Err(_) => self.monitor.reject(*id, "invalid_isolation_report"),
            },
            _ => self.monitor.reject(*id, "unknown_topic"),
        }
    }

    fn flush(&self, _device: &str) {
        let Ok((id, group)) = &self.admitted else {
            return;
        };
        let (batch, read_at) = {
            let mut ingest = self
                .ingest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !ingest.pending.is_empty() {
                ingest.last_batch = ingest.pending.len();
            }
            (std::mem::take(&mut ingest.pending), ingest.read_at.take())
        };
        if !batch.is_empty() {
            let now = read_at.unwrap_or_else(|| self.state.0.clock.now());
            self.monitor.submit_batch(*id, group, batch, now);
        }
    }

    fn reject(&self, _device: &str, why: Rejection) {
        if let Some(id) = self.device() {
            self.monitor.reject(id, why.as_str());
        }
    }
}

/// Accepts gateway connections until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: AppState,
    monitor: Arc<Monitor>,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let config = Arc::new(config);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let fd = tokio::select! {
            p = config.fds.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "gateway accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        let monitor = Arc::clone(&monitor);
        let config = Arc::clone(&config);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = (permit, fd);
            let Some((tls, identity)) =
                crate::device::tls::handshake(&acceptor, tcp, peer, &state).await
            else {
                return;
            };
            let admitted = admission(&state, identity).await;
            let name = admitted
                .as_ref()
                .map(|(id, _)| id.to_string())
                .unwrap_or_default();
            let registration = admitted
                .as_ref()
                .ok()
                .map(|(id, _)| monitor.sessions.register(*id));
            let (registration, commands) = match registration {
                Some((r, rx)) => (Some(r), rx),
                None => {
                    let (_tx, rx) = tokio::sync::mpsc::channel(1);
                    (None, rx)
                }
            };
            let handler = DeviceHandler {
                state: state.clone(),
                monitor: Arc::clone(&monitor),
                admitted,
                name: Arc::from(name.as_str()),
                ingest: std::sync::Mutex::new(Ingest::default()),
            };
            let session =
                bulwark_mqtt::serve_session(tls, &name, &config.session, &handler, commands);
            let end = tokio::select! {
                end = session => Some(end),
                _ = stop.wait_for(|s| *s) => None,
            };
            tracing::debug!(%peer, device = %name, ?end, "gateway session ended");
            if let Some(r) = registration {
                monitor.sessions.unregister(&r);
            }
        });
    }
    let _ = stop_tx.send(true);
}
