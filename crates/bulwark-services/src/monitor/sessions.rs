//! The gateway's open sessions, by device: how a quarantine reaches a live
//! connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use bulwark_mqtt::{CloseCode, SessionCommand};

use bulwark_proto::DeviceId;
use tokio::sync::mpsc;

/// Commands queued per session before senders wait.
const COMMAND_QUEUE: usize = 8;

/// One device, one session: a new connection of the same device takes
/// over (the old one is closed), as MQTT does for a client id.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<DeviceId, (u64, mpsc::Sender<SessionCommand>)>>,
    next: AtomicU64,
}

/// A registered session; give it back to [`Sessions::unregister`].
#[derive(Debug)]
pub struct Registration {
    /// The device.
    pub device: DeviceId,
    token: u64,
}

impl Sessions {
    fn map(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<DeviceId, (u64, mpsc::Sender<SessionCommand>)>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new session of `device`, closing the one it replaces.
    pub fn register(&self, device: DeviceId) -> (Registration, mpsc::Receiver<SessionCommand>) {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let old = self.map().insert(device, (token, tx));
        if let Some((_, old)) = old {
            let _ = old.try_send(SessionCommand::Close {
                code: CloseCode::AdministrativeAction,
                reason: "a newer session of this device took over".into(),
            });
        }
        (Registration { device, token }, rx)
    }

    /// Forgets a session that ended (unless a newer one replaced it).
    pub fn unregister(&self, r: &Registration) {
        let mut map = self.map();
        if map.get(&r.device).is_some_and(|(t, _)| *t == r.token) {
            map.remove(&r.device);
        }
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `device` has an open session.
    pub fn is_connected(&self, device: &DeviceId) -> bool {
        self.map().contains_key(device)
    }

    /// Takes a device's session out of the registry (to close it); `None`
    /// when it has none.
    pub fn take(&self, device: &DeviceId) -> Option<mpsc::Sender<SessionCommand>> {
        self.map().remove(device).map(|(_, tx)| tx)
    }
}
