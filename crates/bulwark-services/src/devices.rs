//! The devices service: quarantine and release, enforced at once on this
//! process (presence cache, gateway session) and journaled in the store.

use std::sync::Arc;

use bulwark_proto::DeviceId;
use bulwark_store::{Audit, Device, DeviceRepo};

use crate::monitor::Monitor;
use crate::presence::{Cached, Presence};

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] bulwark_store::Error),
}

/// Quarantine, release and the device cache.
#[derive(Debug)]
pub struct Devices {
    store: Arc<dyn DeviceRepo>,
    presence: Arc<Presence>,
    monitor: Arc<Monitor>,
}

impl Devices {
    /// The service over `store`, keeping `presence` and `monitor` (the
    /// gateway sessions) in step.
    pub fn new(store: Arc<dyn DeviceRepo>, presence: Arc<Presence>, monitor: Arc<Monitor>) -> Self {
        Self {
            store,
            presence,
            monitor,
        }
    }

    /// A device's presence entry, read through from the store on first
    /// sight; `None` for an unknown device.
    pub async fn cached(&self, id: &DeviceId) -> Result<Option<Cached>, DeviceError> {
        if let Some(c) = self.presence.cached(id) {
            return Ok(Some(c));
        }
        let Some(d) = self.store.device(*id).await? else {
            return Ok(None);
        };
        self.presence.load(&d);
        Ok(self.presence.cached(id))
    }

    /// Quarantines a device: stored and journaled, then enforced at once —
    /// the presence cache (check-ins answer with the quarantine, updates are
    /// withheld), the isolate command on its gateway session, and the
    /// session closed. Returns the device (`None` when unknown).
    pub async fn quarantine(
        &self,
        id: DeviceId,
        reason: &str,
        alert: Option<&str>,
        audit: &Audit,
    ) -> Result<Option<Device>, DeviceError> {
        let Some(device) = self
            .store
            .quarantine_device(id, reason, alert, audit)
            .await?
        else {
            return Ok(None);
        };
        self.presence.load(&device);
        self.presence.set_quarantine(
            &id,
            device.quarantine_reason.clone().or(Some(reason.to_owned())),
        );
        self.monitor.isolate_and_close(id, reason);
        tracing::warn!(device = %id, %reason, "device quarantined");
        Ok(Some(device))
    }

    /// Lifts a device's quarantine (journaled) and forgets its learned
    /// state.
    pub async fn release(
        &self,
        id: DeviceId,
        reason: &str,
        audit: &Audit,
    ) -> Result<Option<Device>, DeviceError> {
        let Some(device) = self.store.release_device(id, reason, audit).await? else {
            return Ok(None);
        };
        self.presence.load(&device);
        self.presence.set_quarantine(&id, None);
        self.monitor.forget(&id);
        self.monitor.clear_isolation(&id);
        tracing::info!(device = %id, %reason, "device released from quarantine");
        Ok(Some(device))
    }
}
