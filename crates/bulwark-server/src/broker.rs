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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bulwark_mqtt::{Client, ClientOptions, Qos, Version};
use bulwark_proto::DeviceId;
use bulwark_proto::telemetry::{NetCounters, decode};

use crate::monitor::Monitor;
use crate::state::AppState;

/// The subscription: every device's telemetry.
pub const TELEMETRY_FILTER: &str = "bulwark/v1/devices/+/telemetry";

/// The broker connection, shared with quarantine (to publish commands).
#[derive(Debug, Default)]
pub struct BrokerLink(Mutex<Option<Client>>);

impl BrokerLink {
    /// The connected client, if any.
    pub fn client(&self) -> Option<Client> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, c: Option<Client>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = c;
    }
}

/// Consumes telemetry from the broker at `addr` (`host:port`, plain TCP on
/// a trusted network) until `stop` resolves; reconnects with backoff.
pub async fn consume(
    addr: String,
    state: AppState,
    monitor: Arc<Monitor>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut backoff = Duration::from_millis(200);
    loop {
        let session = session(&addr, &state, &monitor);
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

async fn session(addr: &str, state: &AppState, monitor: &Arc<Monitor>) -> anyhow::Result<()> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    let mut opts = ClientOptions::new(
        format!("bulwark-server-{}", uuid::Uuid::new_v4().simple()),
        Version::V5,
    );
    opts.keep_alive = 30;
    opts.max_packet_bytes = bulwark_proto::telemetry::MAX_TELEMETRY_BYTES + 1024;
    let (client, mut incoming) = bulwark_mqtt::connect(tcp, opts).await?;
    client.subscribe(TELEMETRY_FILTER, Qos::AtMostOnce).await?;
    monitor.broker.set(Some(client));
    tracing::info!(broker = %addr, "consuming telemetry from the external broker");
    // Each device's previous traffic counters, for deltas (this task only).
    let mut previous: HashMap<DeviceId, NetCounters> = HashMap::new();
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
                let mut prev = previous.remove(&id);
                monitor.observe(id, &cached.group, &t, &mut prev, state.0.clock.now());
                if let Some(p) = prev {
                    previous.insert(id, p);
                }
            }
            Err(_) => monitor.reject(id, "invalid_telemetry"),
        }
    }
    anyhow::bail!("the broker closed the connection")
}
