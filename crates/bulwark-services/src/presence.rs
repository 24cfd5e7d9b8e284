//! Device presence: who checked in when, held in memory and flushed to the
//! store in batches.
//!
//! A check-in is the hottest path in the server (a million devices polling
//! each minute is ~17k/s). Writing one row per check-in would make the
//! store the bottleneck, so [`Presence`] records check-ins in sharded
//! in-memory maps and the flusher writes the dirty ones in one transaction
//! every `checkin_flush` (default 1 s). A crash loses at most that much
//! last-seen history; nothing else is buffered (inventories, enrollments
//! and revocations are written through).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bulwark_proto::DeviceId;
use bulwark_store::{CheckinUpdate, Device, DeviceStatus, UpdatePhase};
use time::OffsetDateTime;

const SHARDS: usize = 32;

/// A device is online when it checked in within two poll intervals plus
/// ten seconds of slack (one missed poll is tolerated, two are not).
pub fn is_online(last_seen: Option<OffsetDateTime>, now: OffsetDateTime, poll: Duration) -> bool {
    let grace = time::Duration::try_from(poll * 2).unwrap_or(time::Duration::MAX)
        + time::Duration::seconds(10);
    last_seen.is_some_and(|t| now - t <= grace)
}

/// What a device is doing, as every listing and view shows it: one word,
/// computed once by [`device_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceState {
    /// Its certificate is revoked.
    Revoked,
    /// Quarantined (refused on the gateway, updates withheld).
    Quarantined,
    /// An update is in progress (its latest report is not a final phase).
    Updating,
    /// Its last update rolled back to the previous release.
    RolledBack,
    /// Checked in recently ([`is_online`]).
    Online,
    /// Not checked in recently, or never.
    Offline,
}

/// A device's state, first match wins: revoked, quarantined, updating (its
/// latest update report is not final), rolled back (its latest report is
/// the final `rolled_back`), then online or offline by `last_seen` (pass
/// the check-in not yet flushed, if newer than the stored one).
pub fn device_state(
    d: &Device,
    last_seen: Option<OffsetDateTime>,
    now: OffsetDateTime,
    poll: Duration,
) -> DeviceState {
    use UpdatePhase as P;
    if d.status == DeviceStatus::Revoked {
        return DeviceState::Revoked;
    }
    if d.quarantined_at.is_some() {
        return DeviceState::Quarantined;
    }
    match d.update_phase {
        Some(
            P::Downloading
            | P::Verifying
            | P::Staging
            | P::Switching
            | P::SmokeTesting
            | P::Committing
            | P::RollingBack,
        ) => DeviceState::Updating,
        Some(P::RolledBack) => DeviceState::RolledBack,
        Some(P::Installed | P::Failed | P::Refused) | None => {
            if is_online(last_seen, now, poll) {
                DeviceState::Online
            } else {
                DeviceState::Offline
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    revoked: bool,
    quarantine: Option<String>,
    group: String,
    inventory_digest: Option<String>,
    last_seen: Option<OffsetDateTime>,
    agent_version: Option<String>,
    boot_id: Option<String>,
    dirty: bool,
}

/// What the check-in path needs to know about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub revoked: bool,
    /// The quarantine reason, while quarantined.
    pub quarantine: Option<String>,
    /// Its group (whose detection profile applies).
    pub group: String,
    pub inventory_digest: Option<String>,
}

/// The freshest check-in data for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub last_seen: Option<OffsetDateTime>,
    pub agent_version: Option<String>,
    pub boot_id: Option<String>,
}

/// Sharded in-memory presence table.
#[derive(Debug)]
pub struct Presence {
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<DeviceId, Entry>>>,
}

impl Default for Presence {
    fn default() -> Self {
        Self::new()
    }
}

impl Presence {
    pub fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, id: &DeviceId) -> std::sync::MutexGuard<'_, HashMap<DeviceId, Entry>> {
        let i = (self.hasher.hash_one(id) as usize) % SHARDS;
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn cached(&self, id: &DeviceId) -> Option<Cached> {
        self.shard(id).get(id).map(|e| Cached {
            revoked: e.revoked,
            quarantine: e.quarantine.clone(),
            group: e.group.clone(),
            inventory_digest: e.inventory_digest.clone(),
        })
    }

    /// Caches a device just read from the store (keeps fresher check-in data).
    pub fn load(&self, d: &Device) {
        let mut shard = self.shard(&d.id);
        let e = shard.entry(d.id).or_insert_with(|| Entry {
            revoked: false,
            quarantine: None,
            group: String::new(),
            inventory_digest: None,
            last_seen: d.last_seen,
            agent_version: d.agent_version.clone(),
            boot_id: d.boot_id.clone(),
            dirty: false,
        });
        e.revoked = d.status == DeviceStatus::Revoked;
        e.group.clone_from(&d.group);
        e.quarantine = d
            .quarantined_at
            .map(|_| d.quarantine_reason.clone().unwrap_or_default());
        e.inventory_digest.clone_from(&d.inventory_digest);
    }

    pub fn record(
        &self,
        id: DeviceId,
        at: OffsetDateTime,
        agent_version: &str,
        boot_id: Option<&str>,
    ) {
        let mut shard = self.shard(&id);
        if let Some(e) = shard.get_mut(&id) {
            e.last_seen = Some(at);
            if e.agent_version.as_deref() != Some(agent_version) {
                e.agent_version = Some(agent_version.to_owned());
            }
            if e.boot_id.as_deref() != boot_id {
                e.boot_id = boot_id.map(str::to_owned);
            }
            e.dirty = true;
        }
    }

    pub fn set_inventory_digest(&self, id: &DeviceId, digest: &str) {
        if let Some(e) = self.shard(id).get_mut(id) {
            e.inventory_digest = Some(digest.to_owned());
        }
    }

    /// Records a quarantine (`Some(reason)`) or its release (`None`).
    pub fn set_quarantine(&self, id: &DeviceId, reason: Option<String>) {
        if let Some(e) = self.shard(id).get_mut(id) {
            e.quarantine = reason;
        }
    }

    /// Whether the device is cached here.
    pub fn contains(&self, id: &DeviceId) -> bool {
        self.shard(id).contains_key(id)
    }

    pub fn mark_revoked(&self, id: &DeviceId) {
        if let Some(e) = self.shard(id).get_mut(id) {
            e.revoked = true;
        }
    }

    pub fn seen(&self, id: &DeviceId) -> Option<Seen> {
        self.shard(id).get(id).map(|e| Seen {
            last_seen: e.last_seen,
            agent_version: e.agent_version.clone(),
            boot_id: e.boot_id.clone(),
        })
    }

    /// Takes every check-in not yet written to the store.
    pub fn drain_dirty(&self) -> Vec<CheckinUpdate> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            for (id, e) in shard.iter_mut().filter(|(_, e)| e.dirty) {
                e.dirty = false;
                if let (Some(at), Some(v)) = (e.last_seen, &e.agent_version) {
                    out.push(CheckinUpdate {
                        id: *id,
                        at,
                        agent_version: v.clone(),
                        boot_id: e.boot_id.clone(),
                    });
                }
            }
        }
        out
    }

    /// Puts back updates whose flush failed, unless newer data arrived.
    pub fn requeue(&self, failed: Vec<CheckinUpdate>) {
        for u in failed {
            if let Some(e) = self.shard(&u.id).get_mut(&u.id)
                && e.last_seen == Some(u.at)
            {
                e.dirty = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn device(n: u128) -> Device {
        Device {
            id: DeviceId::from_uuid(uuid::Uuid::from_u128(n)),
            name: format!("d{n}"),
            hostname: None,
            group: "g".into(),
            environment: "e".into(),
            tags: Default::default(),
            cert_serial: "s".into(),
            cert_not_after: datetime!(2030-01-01 0:00 UTC),
            enrolled_at: datetime!(2026-01-01 0:00 UTC),
            last_seen: None,
            agent_version: None,
            boot_id: None,
            inventory_digest: None,
            status: DeviceStatus::Active,
            revoked_at: None,
            revoked_reason: None,
            quarantined_at: None,
            quarantine_reason: None,
            update_phase: None,
            installed_release: None,
        }
    }

    #[test]
    fn state_is_revoked_then_quarantined_then_update_then_presence() {
        let now = datetime!(2026-11-23 12:00 UTC);
        let poll = Duration::from_secs(60);
        let recent = Some(now - time::Duration::seconds(30));
        let mut d = device(1);
        assert_eq!(device_state(&d, None, now, poll), DeviceState::Offline);
        assert_eq!(device_state(&d, recent, now, poll), DeviceState::Online);
        d.update_phase = Some(UpdatePhase::RolledBack);
        assert_eq!(device_state(&d, recent, now, poll), DeviceState::RolledBack);
        d.update_phase = Some(UpdatePhase::Staging);
        assert_eq!(device_state(&d, recent, now, poll), DeviceState::Updating);
        d.update_phase = Some(UpdatePhase::Installed);
        assert_eq!(device_state(&d, recent, now, poll), DeviceState::Online);
        d.quarantined_at = Some(now);
        assert_eq!(
            device_state(&d, recent, now, poll),
            DeviceState::Quarantined
        );
        d.status = DeviceStatus::Revoked;
        assert_eq!(device_state(&d, recent, now, poll), DeviceState::Revoked);
    }

    #[test]
    fn online_window_is_two_polls_plus_slack() {
        let now = datetime!(2026-11-23 12:00 UTC);
        let poll = Duration::from_secs(60);
        assert!(!is_online(None, now, poll));
        assert!(is_online(
            Some(now - time::Duration::seconds(130)),
            now,
            poll
        ));
        assert!(!is_online(
            Some(now - time::Duration::seconds(131)),
            now,
            poll
        ));
    }

    #[test]
    fn dirty_checkins_drain_once_and_requeue_only_if_unchanged() {
        let p = Presence::new();
        let d = device(1);
        p.load(&d);
        let t1 = datetime!(2026-11-23 12:00 UTC);
        p.record(d.id, t1, "0.1.0", Some("boot"));
        let drained = p.drain_dirty();
        assert_eq!(drained.len(), 1);
        assert!(p.drain_dirty().is_empty());
        p.requeue(drained.clone());
        assert_eq!(p.drain_dirty(), drained);
        p.record(
            d.id,
            t1 + time::Duration::seconds(60),
            "0.1.0",
            Some("boot"),
        );
        let newer = p.drain_dirty();
        p.requeue(drained);
        assert!(
            p.drain_dirty().is_empty(),
            "stale retry must not overwrite newer data"
        );
        assert_eq!(newer[0].at, t1 + time::Duration::seconds(60));
    }

    #[test]
    fn unknown_devices_are_not_recorded() {
        let p = Presence::new();
        p.record(device(9).id, datetime!(2026-11-23 12:00 UTC), "x", None);
        assert!(p.drain_dirty().is_empty());
    }
}
