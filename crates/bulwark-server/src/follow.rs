//! Following the journal: changes made through other server processes
//! that share the store reach this one's caches within a second.
//!
//! Every state change writes its journal entry in the same transaction, so
//! the journal is a totally ordered change log of the whole system. Each
//! process reads the entries appended since it last looked, every
//! [`FOLLOW_EVERY`], and applies what they mean for what it keeps in
//! memory ([`effect`], pure):
//!
//! - any device change (quarantine, release, revocation, tags, inventory,
//!   update status): a device cached here is read from the store again
//!   (its buffered check-in data is kept), so its next check-in, update
//!   request or gateway connection sees the change;
//! - a quarantine: the device's gateway session at this process, if any, is
//!   told to isolate and closed, as if the quarantine had been made here
//!   (if the device is still quarantined when the entry is read: entries
//!   are acted on as the device is now, so an old quarantine followed by a
//!   release closes nothing);
//! - a revocation: the revoked certificate serials are read again (the TLS
//!   verifiers refuse the certificate) and a gateway session is closed;
//! - a profile applied to a group: this process's detection engine
//!   installs it, unless it already runs that version.
//!
//! A process also reads its own entries: applying them again is harmless
//! (one read of the device; a closed session is not there to close). A
//! read that raced with a newer change is corrected by that change's own
//! entry at the next pass.

use std::time::Duration;

use bulwark_proto::{DeviceId, JournalAction, JournalEntry};

use crate::state::AppState;

/// How often the journal is read for other processes' changes.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// Entries read per store call.
const PAGE: u32 = 1_000;

/// What a journal entry means for this process's caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A device changed; `how` says whether more than a re-read is needed.
    Device {
        /// The device.
        id: DeviceId,
        /// What happened.
        how: DeviceChange,
    },
    /// A group's detection profile was applied.
    Profile {
        /// The group (`*` for every group).
        group: String,
    },
    /// Nothing cached here depends on it.
    Nothing,
}

/// The kinds of device change that need more than a re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChange {
    /// Quarantined, for this reason.
    Quarantined(String),
    /// Revoked.
    Revoked,
    /// Anything else (release, tags, inventory, update status…).
    Other,
}

/// What `e` means for the caches.
pub fn effect(e: &JournalEntry) -> Effect {
    if let Some(id) = e.target.strip_prefix("device:") {
        let Ok(id) = DeviceId::parse(id) else {
            return Effect::Nothing;
        };
        let how = match JournalAction::parse(&e.action) {
            Some(JournalAction::DeviceQuarantine) => DeviceChange::Quarantined(
                e.detail
                    .get("reason")
                    .cloned()
                    .unwrap_or_else(|| "quarantined".into()),
            ),
            Some(JournalAction::DeviceRevoke) => DeviceChange::Revoked,
            _ => DeviceChange::Other,
        };
        return Effect::Device { id, how };
    }
    match (
        JournalAction::parse(&e.action),
        e.target.strip_prefix("group:"),
    ) {
        (Some(JournalAction::ProfileApply), Some(group)) => Effect::Profile {
            group: group.to_owned(),
        },
        _ => Effect::Nothing,
    }
}

/// Reads the journal from its size at start, applying every new entry,
/// until `stop` resolves.
pub(crate) async fn run(state: AppState, stop: impl std::future::Future<Output = ()>) {
    let mut next = match state.store().journal_root().await {
        Ok((size, _)) => size,
        Err(e) => {
            tracing::error!(error = %e, "reading the journal size failed; other processes' changes are not followed");
            return;
        }
    };
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => return,
        }
        match catch_up(&state, next).await {
            Ok(n) => next = n,
            Err(e) => tracing::warn!(error = %e, "following the journal failed; will retry"),
        }
    }
}

/// Applies the entries from `next` on; returns the new position.
async fn catch_up(state: &AppState, mut next: u64) -> Result<u64, bulwark_store::Error> {
    let (size, _) = state.store().journal_root().await?;
    while next < size {
        let rows = state.store().journal_entries(next, PAGE).await?;
        let Some(last) = rows.last() else { break };
        next = last.seq + 1;
        let mut revoked = false;
        for row in &rows {
            // An entry that does not parse was tampered with; `audit
            // verify` reports it. Nothing here depends on it.
            let Ok(entry) = JournalEntry::from_canonical(&row.entry) else {
                continue;
            };
            revoked |= apply(state, effect(&entry)).await;
        }
        if revoked {
            state.reload_revocations().await?;
        }
    }
    Ok(next)
}

/// Applies one effect; true when revocations must be read again.
async fn apply(state: &AppState, effect: Effect) -> bool {
    match effect {
        Effect::Nothing => false,
        Effect::Device { id, how } => {
            let m = state.monitor();
            let connected = m.sessions.is_connected(&id);
            if !connected && !state.0.presence.contains(&id) {
                // Nothing about it held here (revocations are reloaded below).
                return how == DeviceChange::Revoked;
            }
            // Acted on as the device is now, not as the entry left it: a
            // quarantine already lifted by a later entry closes nothing.
            let device = match state.store().device(id).await {
                Ok(Some(d)) => d,
                Ok(None) => return false,
                Err(e) => {
                    tracing::warn!(device = %id, error = %e, "re-reading a device another process changed failed");
                    return how == DeviceChange::Revoked;
                }
            };
            state.0.presence.load(&device);
            if !connected {
                return how == DeviceChange::Revoked;
            }
            match how {
                DeviceChange::Quarantined(reason) => {
                    if device.quarantined_at.is_some() {
                        let why = device.quarantine_reason.clone().unwrap_or(reason);
                        m.isolate_and_close(id, &why);
                    }
                    false
                }
                DeviceChange::Revoked => {
                    if device.status == bulwark_store::DeviceStatus::Revoked {
                        m.close(id, "device certificate revoked");
                    }
                    true
                }
                DeviceChange::Other => false,
            }
        }
        Effect::Profile { group } => {
            let m = state.monitor();
            let rows = match state.store().profiles().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, %group, "reading a profile another process applied failed");
                    return false;
                }
            };
            let Some(row) = rows.iter().rev().find(|r| r.group == group) else {
                return false;
            };
            if m.profile_version(&group).as_deref() == Some(row.version.as_str()) {
                return false;
            }
            match bulwark_detect::Profile::from_toml(&row.body) {
                Ok(p) => {
                    tracing::info!(%group, version = %row.version, "profile applied by another process installed");
                    m.set_profile(p);
                }
                Err(e) => {
                    tracing::error!(%group, problems = ?e.problems, "a stored profile does not parse");
                }
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_proto::JournalActor;
    use std::collections::BTreeMap;

    fn entry(action: &str, target: &str, detail: &[(&str, &str)]) -> JournalEntry {
        JournalEntry {
            time_ms: 0,
            actor: JournalActor {
                kind: "system".into(),
                id: "s".into(),
                name: None,
                token_id: None,
            },
            action: action.into(),
            target: target.into(),
            request_id: None,
            source: None,
            before: None,
            after: None,
            detail: detail
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn entries_map_to_what_they_change() {
        let id = "6f1b0c9e-2f3a-4b5c-8d7e-9f0a1b2c3d4e";
        let dev = DeviceId::parse(id).unwrap();
        let target = format!("device:{id}");
        assert_eq!(
            effect(&entry("device.quarantine", &target, &[("reason", "scan")])),
            Effect::Device {
                id: dev,
                how: DeviceChange::Quarantined("scan".into())
            }
        );
        assert_eq!(
            effect(&entry("device.revoke", &target, &[])),
            Effect::Device {
                id: dev,
                how: DeviceChange::Revoked
            }
        );
        for action in [
            "device.release",
            "device.tag",
            "device.inventory",
            "device.update",
        ] {
            assert_eq!(
                effect(&entry(action, &target, &[])),
                Effect::Device {
                    id: dev,
                    how: DeviceChange::Other
                },
                "{action}"
            );
        }
        assert_eq!(
            effect(&entry("profile.apply", "group:lobby", &[])),
            Effect::Profile {
                group: "lobby".into()
            }
        );
        for (action, target) in [
            ("release.create", "release:fw@1"),
            ("device.quarantine", "device:not-a-uuid"),
            ("profile.apply", "profile:x"),
            ("account.create", "account:ana"),
        ] {
            assert_eq!(effect(&entry(action, target, &[])), Effect::Nothing);
        }
    }
}
