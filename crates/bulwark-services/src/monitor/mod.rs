//! Continuous monitoring: telemetry from the device gateway goes through
//! the detection engine; alerts are stored, streamed (SSE) and acted on
//! (quarantine).
//!
//! ```text
//! gateway session ──telemetry──▶ Monitor::observe ──▶ FleetEngine (N threads)
//!                                                          │ alerts
//!            store ◀── alert task ◀── bridge thread ◀──────┘
//!              │          ├─▶ event bus (SSE stream, webhook outbox)
//!              │          └─▶ quarantine (the devices service): store
//!              │              (journaled), presence, isolate command +
//!              │              session closed
//! ```
//!
//! Detection state is in memory: a restart starts every device's warm-up
//! again (the profiles themselves are stored and reloaded).

pub mod convert;
pub mod history;
pub mod sessions;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;

use bulwark_detect::{FleetEngine, FleetOutput, Profile, SubmitError};
use bulwark_proto::DeviceId;
use bulwark_proto::telemetry::IsolationReport;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use time::OffsetDateTime;

pub use sessions::Sessions;

/// Most devices with per-device rejection counts kept (oldest forgotten
/// first would need an LRU; past this, new devices are counted only in
/// the totals).
const MAX_COUNTED_DEVICES: usize = 1_000_000;

/// Why a device's message was not used, counted per device.
pub type RejectionCounts = BTreeMap<&'static str, u64>;

/// Labels of the gateway's rejection counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why.
    pub reason: &'static str,
}

/// The external broker connection, shared with quarantine (to publish
/// commands), in external broker mode.
#[derive(Debug, Default)]
pub struct BrokerLink(Mutex<Option<bulwark_mqtt::Client>>);

impl BrokerLink {
    /// The connected client, if any.
    pub fn client(&self) -> Option<bulwark_mqtt::Client> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sets or clears the connected client.
    pub fn set(&self, c: Option<bulwark_mqtt::Client>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = c;
    }
}

/// The monitoring service, shared by the gateway, the API and the alert
/// task.
#[derive(Debug)]
pub struct Monitor {
    engine: FleetEngine,
    rejections: Mutex<HashMap<DeviceId, RejectionCounts>>,
    /// Open gateway sessions, by device.
    pub sessions: Sessions,
    /// Samples handed to detection (exported as
    /// `bulwark_gateway_telemetry_accepted_total`).
    accepted: Counter,
    /// Rejected messages of every device by reason, fleet-wide (exported
    /// as `bulwark_gateway_rejections_total`; counted even when the
    /// per-device table is full).
    rejected: Family<ReasonLabels, Counter>,
    isolation: Mutex<HashMap<DeviceId, IsolationReport>>,
    isolation_reported: tokio::sync::Notify,
    /// The external broker connection, in external broker mode.
    pub broker: BrokerLink,
    /// The profile version installed for each group.
    profile_versions: Mutex<HashMap<String, String>>,
    /// Finished telemetry minutes and latest samples, waiting for the
    /// background writer.
    pub history: history::HistoryBuffer,
}

/// How long a quarantined device's session stays open after the isolate
/// command, for the agent's isolation report (closed at once when it
/// arrives).
pub const ISOLATION_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

impl Monitor {
    /// Starts the engine with the stored profiles (the latest version of
    /// each group). Returns the monitor and the engine's output, for
    /// [`spawn_alert_pipeline`].
    pub fn new(
        profiles: Vec<Profile>,
        shards: usize,
    ) -> (Arc<Monitor>, std::sync::mpsc::Receiver<FleetOutput>) {
        let profile_versions = profiles
            .iter()
            .map(|p| (p.group.clone(), p.version.clone()))
            .collect();
        let (engine, rx) = FleetEngine::new(profiles, shards);
        (
            Arc::new(Monitor {
                engine,
                rejections: Mutex::new(HashMap::new()),
                sessions: Sessions::default(),
                accepted: Counter::default(),
                rejected: Family::default(),
                isolation: Mutex::new(HashMap::new()),
                isolation_reported: tokio::sync::Notify::new(),
                broker: BrokerLink::default(),
                history: history::HistoryBuffer::default(),
                profile_versions: Mutex::new(profile_versions),
            }),
            rx,
        )
    }

    /// Installs a group's new profile version.
    pub fn set_profile(&self, profile: Profile) {
        self.profile_versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(profile.group.clone(), profile.version.clone());
        if !self.engine.set_profile(profile) {
            tracing::error!("detection engine stopped; profile not applied");
        }
    }

    /// Feeds one decoded telemetry sample of `device` (of `group`),
    /// received at `now`. `previous` holds the traffic counters of the
    /// connection's previous sample (traffic deltas need them; the caller
    /// keeps them per connection, so this hot path takes no shared lock)
    /// and is updated; `history` is the device's open minute, likewise.
    pub fn observe(
        &self,
        device: DeviceId,
        group: &str,
        t: bulwark_proto::telemetry::Telemetry,
        previous: &mut convert::PreviousSample,
        history: &mut history::DeviceHistory,
        now: OffsetDateTime,
    ) {
        let dp = self.datapoint(&Arc::from(device.to_string()), &t, previous, now);
        history.record(device, now, t, &dp, &self.history);
        match self.engine.submit(group, dp, now) {
            Ok(()) => {
                self.accepted.inc();
            }
            Err(SubmitError::Full) => self.reject(device, "engine_overloaded"),
            Err(SubmitError::Stopped) => self.reject(device, "engine_stopped"),
        }
    }

    /// The datapoint of one sample, to be handed over later with
    /// [`Monitor::submit_batch`] (the gateway batches one read's samples).
    /// `device` is the device id as text (the gateway keeps it per
    /// session, so the hot path formats no id per sample).
    pub fn datapoint(
        &self,
        device: &Arc<str>,
        t: &bulwark_proto::telemetry::Telemetry,
        previous: &mut convert::PreviousSample,
        now: OffsetDateTime,
    ) -> bulwark_detect::Datapoint {
        convert::datapoint(device, t, previous, now)
    }

    /// Hands a device's datapoints to the engine in one go; the ones that
    /// do not fit are counted as rejections.
    pub fn submit_batch(
        &self,
        device: DeviceId,
        group: &str,
        dps: Vec<bulwark_detect::Datapoint>,
        now: OffsetDateTime,
    ) {
        let n = dps.len() as u64;
        match self.engine.submit_batch(group, dps, now) {
            Ok(()) => {
                self.accepted.inc_by(n);
            }
            Err((why, dropped)) => {
                let dropped = dropped as u64;
                self.accepted.inc_by(n.saturating_sub(dropped));
                let why = match why {
                    SubmitError::Full => "engine_overloaded",
                    SubmitError::Stopped => "engine_stopped",
                };
                self.reject_many(device, why, dropped);
            }
        }
    }

    /// Whether the external broker connection is up (and subscribed).
    pub fn broker_connected(&self) -> bool {
        self.broker.client().is_some()
    }

    /// Counts a rejected message of `device`.
    pub fn reject(&self, device: DeviceId, why: &'static str) {
        self.reject_many(device, why, 1);
    }

    /// Counts `n` rejected messages of `device`.
    pub fn reject_many(&self, device: DeviceId, why: &'static str, n: u64) {
        self.rejected
            .get_or_create(&ReasonLabels { reason: why })
            .inc_by(n);
        let mut r = self
            .rejections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if r.len() >= MAX_COUNTED_DEVICES && !r.contains_key(&device) {
            return;
        }
        *r.entry(device).or_default().entry(why).or_default() += n;
    }

    /// A device's rejection counts.
    pub fn rejections(&self, device: &DeviceId) -> RejectionCounts {
        self.rejections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(device)
            .cloned()
            .unwrap_or_default()
    }

    /// Telemetry samples handed to the engine so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.get()
    }

    /// Registers the fleet-wide gateway counters for `/metrics`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "gateway_telemetry_accepted",
            "Telemetry samples handed to detection",
            self.accepted.clone(),
        );
        registry.register(
            "gateway_rejections",
            "Rejected device messages by reason (per device: the device's detail)",
            self.rejected.clone(),
        );
    }

    /// Keeps a device's latest isolation report.
    pub fn record_isolation(&self, device: DeviceId, report: IsolationReport) {
        self.isolation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(device, report);
        self.isolation_reported.notify_waiters();
    }

    /// Sends the isolate command on the device's gateway session, waits up
    /// to [`ISOLATION_GRACE`] for its report, then closes the session
    /// (in the background). No session: nothing to do — the gateway
    /// refuses it at connect and check-ins carry the quarantine.
    pub fn isolate_and_close(self: &Arc<Self>, device: DeviceId, reason: &str) {
        let Some(tx) = self.sessions.take(&device) else {
            // External broker mode: the command goes through the broker.
            if let Some(client) = self.broker.client() {
                let payload = bulwark_proto::telemetry::DeviceCommand::Isolate {
                    reason: reason.to_owned(),
                }
                .encode();
                tokio::spawn(async move {
                    let topic = bulwark_mqtt::command_topic(&device.to_string());
                    if let Err(e) = client
                        .publish(&topic, payload, bulwark_mqtt::Qos::AtLeastOnce)
                        .await
                    {
                        tracing::warn!(%device, error = %e, "isolate command through the broker failed");
                    }
                });
            }
            return;
        };
        let me = Arc::clone(self);
        let reason = reason.to_owned();
        tokio::spawn(async move {
            let isolate = bulwark_proto::telemetry::DeviceCommand::Isolate {
                reason: reason.clone(),
            };
            let sent = tx
                .send(bulwark_mqtt::SessionCommand::Publish {
                    payload: isolate.encode(),
                })
                .await
                .is_ok();
            if sent {
                let deadline = tokio::time::Instant::now() + ISOLATION_GRACE;
                loop {
                    let notified = me.isolation_reported.notified();
                    if me.isolation(&device).is_some() {
                        break;
                    }
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        break;
                    }
                }
            }
            let _ = tx
                .send(bulwark_mqtt::SessionCommand::Close {
                    code: bulwark_mqtt::CloseCode::NotAuthorized,
                    reason: format!("quarantined: {reason}"),
                })
                .await;
        });
    }

    /// The profile version installed for `group` here, if any.
    pub fn profile_version(&self, group: &str) -> Option<String> {
        self.profile_versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(group)
            .cloned()
    }

    /// Closes a device's gateway session at this process, if it has one
    /// (no isolate command: for a revoked certificate).
    pub fn close(&self, device: DeviceId, reason: &str) {
        if let Some(tx) = self.sessions.take(&device) {
            let _ = tx.try_send(bulwark_mqtt::SessionCommand::Close {
                code: bulwark_mqtt::CloseCode::NotAuthorized,
                reason: reason.to_owned(),
            });
        }
    }

    /// Forgets a device's isolation report (released from quarantine).
    pub fn clear_isolation(&self, device: &DeviceId) {
        self.isolation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(device);
    }

    /// A device's latest isolation report, if it sent one since start.
    pub fn isolation(&self, device: &DeviceId) -> Option<IsolationReport> {
        self.isolation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(device)
            .cloned()
    }

    /// Drops a device's learned state (released from quarantine).
    pub fn forget(&self, device: &DeviceId) {
        self.engine.forget(&device.to_string());
    }
}
