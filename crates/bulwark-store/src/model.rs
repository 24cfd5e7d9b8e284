//! The records the store keeps.

use std::collections::BTreeMap;
use std::fmt;

use bulwark_proto::{DeviceId, JournalAction, JournalActor, JournalEntry};
use time::OffsetDateTime;

/// What an account may do. Fine-grained policy builds on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything, including accounts and tokens.
    Admin,
    /// Fleet operations: devices, enrollment, rollouts.
    Operator,
    /// Publishes, signs and promotes releases.
    ReleaseManager,
    /// Detection, alerts, quarantine, audit.
    Security,
    /// Read-only.
    Viewer,
}

impl Role {
    /// Every role, in order of decreasing privilege.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Operator,
        Role::ReleaseManager,
        Role::Security,
        Role::Viewer,
    ];

    /// The stored and displayed name (`release-manager`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::ReleaseManager => "release-manager",
            Role::Security => "security",
            Role::Viewer => "viewer",
        }
    }

    /// Parses [`Role::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A person or automation that holds API tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Random id.
    pub id: String,
    /// Unique login name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// Input to [`crate::Store::create_account`].
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Unique login name.
    pub name: String,
    /// Role.
    pub role: Role,
}

/// A stored API token: never the token itself, only its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    /// Public token id (the `bwk_<id>_…` part).
    pub id: String,
    /// Owning account id.
    pub account_id: String,
    /// Human label.
    pub label: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// Issued at.
    pub created_at: OffsetDateTime,
    /// Optional expiry.
    pub expires_at: Option<OffsetDateTime>,
    /// Set once revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

impl fmt::Debug for ApiTokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiTokenRecord")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("label", &self.label)
            .field("secret_hash", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

/// Input to [`crate::Store::insert_api_token`].
#[derive(Clone)]
pub struct NewApiToken {
    /// Public token id.
    pub id: String,
    /// Owning account id.
    pub account_id: String,
    /// Human label.
    pub label: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// Optional expiry.
    pub expires_at: Option<OffsetDateTime>,
}

impl fmt::Debug for NewApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiToken")
            .field("id", &self.id)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// A stored enrollment token: it enrolls up to `max_uses` devices.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollTokenRecord {
    /// Public token id.
    pub id: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// Group the enrolled device joins.
    pub group: String,
    /// Environment the enrolled device joins.
    pub environment: String,
    /// Account id that created it.
    pub created_by: String,
    /// Issued at.
    pub created_at: OffsetDateTime,
    /// Unusable from then on.
    pub expires_at: OffsetDateTime,
    /// Set at each use: the last use.
    pub used_at: Option<OffsetDateTime>,
    /// The device it enrolled last.
    pub device_id: Option<DeviceId>,
    /// How many devices it may enroll (1 for a one-time token).
    pub max_uses: u32,
    /// How many devices it has enrolled.
    pub uses: u32,
}

impl fmt::Debug for EnrollTokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollTokenRecord")
            .field("id", &self.id)
            .field("group", &self.group)
            .field("environment", &self.environment)
            .field("expires_at", &self.expires_at)
            .field("used_at", &self.used_at)
            .field("device_id", &self.device_id)
            .field("max_uses", &self.max_uses)
            .field("uses", &self.uses)
            .finish_non_exhaustive()
    }
}

/// Input to [`crate::Store::insert_enroll_token`].
#[derive(Clone)]
pub struct NewEnrollToken {
    /// Public token id.
    pub id: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// Group.
    pub group: String,
    /// Environment.
    pub environment: String,
    /// Creating account id.
    pub created_by: String,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// How many devices it may enroll (1 for a one-time token).
    pub max_uses: u32,
}

impl fmt::Debug for NewEnrollToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewEnrollToken")
            .field("id", &self.id)
            .field("max_uses", &self.max_uses)
            .finish_non_exhaustive()
    }
}

/// Whether a device may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Enrolled and allowed.
    Active,
    /// Certificate revoked; refused at TLS.
    Revoked,
}

impl DeviceStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Active => "active",
            DeviceStatus::Revoked => "revoked",
        }
    }
}

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Identity (also the certificate SAN).
    pub id: DeviceId,
    /// Reported at enrollment.
    pub hostname: Option<String>,
    /// Group, from the enrollment token.
    pub group: String,
    /// Environment, from the enrollment token.
    pub environment: String,
    /// Operator-set labels.
    pub tags: BTreeMap<String, String>,
    /// Serial of its certificate, lowercase hex.
    pub cert_serial: String,
    /// Certificate expiry.
    pub cert_not_after: OffsetDateTime,
    /// Enrolled at.
    pub enrolled_at: OffsetDateTime,
    /// Last check-in (as flushed to the store).
    pub last_seen: Option<OffsetDateTime>,
    /// Agent version of the last check-in.
    pub agent_version: Option<String>,
    /// Boot id of the last check-in.
    pub boot_id: Option<String>,
    /// Digest of the stored inventory.
    pub inventory_digest: Option<String>,
    /// Active or revoked.
    pub status: DeviceStatus,
    /// When revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// Why revoked.
    pub revoked_reason: Option<String>,
    /// When quarantined (refused on the device gateway, updates withheld,
    /// told to isolate itself), if it is.
    pub quarantined_at: Option<OffsetDateTime>,
    /// Why quarantined.
    pub quarantine_reason: Option<String>,
}

/// A device to create.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Identity.
    pub id: DeviceId,
    /// Hostname, informational.
    pub hostname: Option<String>,
    /// Certificate serial, lowercase hex.
    pub cert_serial: String,
    /// Certificate expiry.
    pub cert_not_after: OffsetDateTime,
}

/// Which devices to list.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    /// Only this group.
    pub group: Option<String>,
    /// Only this environment.
    pub environment: Option<String>,
    /// Only ids greater than this (keyset pagination).
    pub after: Option<DeviceId>,
    /// At most this many (capped by the caller).
    pub limit: u32,
}

/// One device's check-in, as applied by [`crate::Store::record_checkins`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckinUpdate {
    /// Which device.
    pub id: DeviceId,
    /// When it checked in.
    pub at: OffsetDateTime,
    /// Its agent version.
    pub agent_version: String,
    /// Its boot id.
    pub boot_id: Option<String>,
}

/// A device's stored inventory (JSON of `bulwark_proto::Inventory`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInventory {
    /// Digest.
    pub digest: String,
    /// JSON text.
    pub json: String,
    /// When stored.
    pub updated_at: OffsetDateTime,
}

/// Unix milliseconds: how every timestamp is stored and journaled.
pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Who is making a change, and in which request. Every mutating store
/// method takes one and writes the journal entry for its change in the same
/// transaction as the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// When (also the time recorded on the changed rows).
    pub time: OffsetDateTime,
    /// Who.
    pub actor: JournalActor,
    /// The API request id.
    pub request_id: Option<String>,
    /// The client's address.
    pub source: Option<String>,
}

impl Audit {
    /// A change made by the server itself (bootstrap).
    pub fn system(time: OffsetDateTime) -> Self {
        Self {
            time,
            actor: JournalActor {
                kind: "system".into(),
                id: "bulwark-server".into(),
                name: None,
                token_id: None,
            },
            request_id: None,
            source: None,
        }
    }

    /// A change made by a device.
    pub fn device(
        time: OffsetDateTime,
        id: DeviceId,
        source: Option<String>,
        request_id: Option<String>,
    ) -> Self {
        Self {
            time,
            actor: JournalActor {
                kind: "device".into(),
                id: id.to_string(),
                name: None,
                token_id: None,
            },
            request_id,
            source,
        }
    }

    pub(crate) fn entry(
        &self,
        action: JournalAction,
        target: String,
        before: Option<String>,
        after: Option<String>,
        detail: &[(&str, String)],
    ) -> JournalEntry {
        JournalEntry {
            time_ms: ms(self.time),
            actor: self.actor.clone(),
            action: action.as_str().to_owned(),
            target,
            request_id: self.request_id.clone(),
            source: self.source.clone(),
            before,
            after,
            detail: detail
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }
}

/// One stored journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    /// Position in the log (the leaf index).
    pub seq: u64,
    /// Canonical entry bytes (the leaf data).
    pub entry: Vec<u8>,
    /// The leaf hash recorded when it was appended.
    pub leaf_hash: [u8; 32],
}
