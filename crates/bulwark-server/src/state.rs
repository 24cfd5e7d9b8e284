//! [`AppState`]: what every handler can reach.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bulwark_pki::{DeviceCa, RandomSource};
use bulwark_store::Store;

use bulwark_services::accounts::Accounts;
use bulwark_services::devices::Devices;
use bulwark_services::enrollment::Enrollment;
use bulwark_services::events::EventBus;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::presence::Presence;

/// Serials of revoked device certificates. Read by the TLS verifier on every
/// handshake (sync, hence a lock and not a store query) and by every device
/// request, so a revocation takes effect at once on new and live connections.
#[derive(Debug, Default)]
pub struct RevokedSerials(RwLock<HashSet<String>>);

impl RevokedSerials {
    /// True when `serial_hex` was revoked.
    pub fn contains(&self, serial_hex: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(serial_hex)
    }

    /// Adds a revoked serial.
    pub fn insert(&self, serial_hex: String) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(serial_hex);
    }

    /// Replaces the whole set (periodic reload from the store).
    pub fn replace(&self, serials: impl IntoIterator<Item = String>) {
        let set: HashSet<String> = serials.into_iter().collect();
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = set;
    }
}

/// Settings handlers need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Agent poll interval.
    pub poll_interval: Duration,
    /// Device certificate validity.
    pub device_cert_validity: time::Duration,
}

/// The application services, built before the state and handed to it
/// whole: a handler can rely on each one (no run-time wiring, no "not
/// configured" answers).
pub struct Services {
    /// The journal's checkpoint signer.
    pub journal_signer: bulwark_tlog::NoteSigner,
    /// Blobs, releases, TUF repositories, the gate.
    pub updates: crate::updates::Updates,
    /// Detection, gateway sessions, telemetry history.
    pub monitor: Arc<crate::monitor::Monitor>,
    /// Alert webhooks (built over the same store and clock).
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// The wire shape of domain events (SSE data, webhook bodies):
    /// [`crate::wire_encoder`].
    pub wire: bulwark_services::events::WireEncoder,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

/// Shared state, cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(pub(crate) Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn RandomSource>,
    pub(crate) revoked: Arc<RevokedSerials>,
    pub(crate) presence: Arc<Presence>,
    pub(crate) metrics: Metrics,
    pub(crate) settings: Settings,
    pub(crate) journal: crate::journal::Journal,
    pub(crate) updates: Arc<crate::updates::Updates>,
    pub(crate) monitor: Arc<crate::monitor::Monitor>,
    pub(crate) webhooks: Arc<crate::webhooks::Webhooks>,
    pub(crate) devices: Arc<Devices>,
    pub(crate) enrollment: Enrollment,
    pub(crate) accounts: Accounts,
    pub(crate) events: Arc<EventBus>,
}

impl AppState {
    /// Assembles the state from its parts and the services.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
        ca: Arc<DeviceCa>,
        revoked: Arc<RevokedSerials>,
        settings: Settings,
        services: Services,
    ) -> Self {
        let Services {
            journal_signer,
            updates,
            monitor,
            webhooks,
            wire,
        } = services;
        let origin = journal_signer.name().to_owned();
        let mut metrics = Metrics::new();
        metrics.register_monitor(&monitor);
        let presence = Arc::new(Presence::new());
        let devices = Arc::new(Devices::new(
            store.clone(),
            Arc::clone(&presence),
            Arc::clone(&monitor),
        ));
        let events = Arc::new(EventBus::new(Arc::clone(&webhooks), wire));
        let accounts = Accounts::new(store.clone(), Arc::clone(&clock), Arc::clone(&rng));
        let enrollment = Enrollment::new(
            store.clone(),
            Arc::clone(&clock),
            Arc::clone(&rng),
            ca,
            Arc::clone(&presence),
            settings.device_cert_validity,
            settings.poll_interval,
            updates.environments.clone(),
        );
        Self(Arc::new(Inner {
            store,
            clock,
            rng,
            revoked,
            presence,
            metrics,
            settings,
            journal: crate::journal::Journal::new(journal_signer, origin),
            updates: Arc::new(updates),
            monitor,
            webhooks,
            devices,
            enrollment,
            accounts,
            events,
        }))
    }

    /// The webhook service.
    pub fn webhooks(&self) -> &Arc<crate::webhooks::Webhooks> {
        &self.0.webhooks
    }

    /// The monitoring service.
    pub fn monitor(&self) -> &Arc<crate::monitor::Monitor> {
        &self.0.monitor
    }

    /// The devices service (quarantine, release, the device cache).
    pub fn devices(&self) -> &Arc<Devices> {
        &self.0.devices
    }

    /// The accounts service (accounts, tokens, authentication).
    pub fn accounts(&self) -> &Accounts {
        &self.0.accounts
    }

    /// The enrollment service (enrollment and check-in).
    pub fn enrollment(&self) -> &Enrollment {
        &self.0.enrollment
    }

    /// The event bus (live stream, webhook outbox).
    pub fn events(&self) -> &Arc<EventBus> {
        &self.0.events
    }

    /// What the monitor's alert task hands alerts to.
    pub fn alert_pipeline(&self) -> bulwark_services::alerts::AlertPipeline {
        bulwark_services::alerts::AlertPipeline {
            store: self.0.store.clone(),
            clock: Arc::clone(&self.0.clock),
            events: Arc::clone(&self.0.events),
            devices: Arc::clone(&self.0.devices),
        }
    }

    /// The update service.
    pub fn updates(&self) -> &Arc<crate::updates::Updates> {
        &self.0.updates
    }

    /// A device's presence entry, read through from the store on first
    /// sight; `None` for an unknown device.
    pub(crate) async fn cached_device(
        &self,
        id: &bulwark_proto::DeviceId,
    ) -> Result<Option<crate::presence::Cached>, bulwark_store::Error> {
        self.0.devices.cached(id).await.map_err(|e| match e {
            bulwark_services::devices::DeviceError::Store(e) => e,
        })
    }

    /// Signs a checkpoint if the journal grew; returns the size signed.
    pub async fn checkpoint_journal(&self) -> anyhow::Result<Option<u64>> {
        self.0
            .journal
            .checkpoint(&*self.0.store, self.0.clock.now())
            .await
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    /// Writes buffered check-ins to the store; returns how many.
    pub async fn flush_checkins(&self) -> Result<usize, bulwark_store::Error> {
        let batch = self.0.presence.drain_dirty();
        if batch.is_empty() {
            return Ok(0);
        }
        match self.0.store.record_checkins(&batch).await {
            Ok(()) => {
                self.0
                    .metrics
                    .checkin_rows_flushed
                    .inc_by(batch.len() as u64);
                Ok(batch.len())
            }
            Err(e) => {
                self.0.metrics.checkin_flush_failures.inc();
                self.0.presence.requeue(batch);
                Err(e)
            }
        }
    }

    /// Reloads the revoked serials from the store (other replicas may have
    /// revoked devices).
    pub async fn reload_revocations(&self) -> Result<(), bulwark_store::Error> {
        let serials = self.0.store.revoked_serials().await?;
        self.0.revoked.replace(serials);
        Ok(())
    }
}
