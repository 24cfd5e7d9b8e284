//! Devices and what comes with them: enrollment tokens (enrolling is one
//! transaction with the token's use), check-ins, inventories, tags,
//! quarantine and revocation.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use async_trait::async_trait;
use bulwark_proto::{DeviceId, JournalAction, state_digest};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::backend::{
    PostgresStore, SqliteStore, conflict, device_id, from_ms, opt_from_ms, rfc3339,
};
use crate::model::{ms, stored_enum};
use crate::{Audit, Error, Result};

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

/// Input to [`DeviceRepo::insert_enroll_token`].
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

stored_enum! {
    /// Whether a device may connect.
    DeviceStatus, "device status" {
        /// Enrolled and allowed.
        Active = "active",
        /// Certificate revoked; refused at TLS.
        Revoked = "revoked",
    }
}

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Identity (also the certificate SAN).
    pub id: DeviceId,
    /// Unique name (1–64 of `a-z 0-9 . _ -`): the hostname at enrollment
    /// unless renamed, see [`name_base`].
    pub name: String,
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
    /// The phase of its latest update report, if it ever reported one.
    pub update_phase: Option<crate::UpdatePhase>,
    /// The release it last reported installed (`name@version`).
    pub installed_release: Option<String>,
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
    /// Only the device of this name.
    pub name: Option<String>,
    /// Only ids greater than this (keyset pagination).
    pub after: Option<DeviceId>,
    /// At most this many (capped by the caller).
    pub limit: u32,
}

/// One device's check-in, as applied by [`DeviceRepo::record_checkins`].
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

/// Enrollment tokens, devices, their check-ins, inventories, tags,
/// quarantine and revocation.
#[async_trait]
pub trait DeviceRepo: Send + Sync + std::fmt::Debug {
    /// Stores a new enrollment token (its hash only).
    async fn insert_enroll_token(
        &self,
        new: NewEnrollToken,
        audit: &Audit,
    ) -> Result<EnrollTokenRecord>;
    /// An enrollment token by id.
    async fn enroll_token(&self, id: &str) -> Result<Option<EnrollTokenRecord>>;
    /// All enrollment tokens, newest first.
    async fn list_enroll_tokens(&self) -> Result<Vec<EnrollTokenRecord>>;
    /// In one transaction: consumes one use of the token (only while
    /// `uses < max_uses` and unexpired at `audit.time`; one `UPDATE`, so
    /// concurrent enrollments never exceed `max_uses`) and creates the device
    /// with the token's group and environment. `None` (and no journal entry)
    /// when the token was not usable.
    async fn enroll_device(
        &self,
        token_id: &str,
        device: NewDevice,
        audit: &Audit,
    ) -> Result<Option<Device>>;

    /// Inserts devices directly (bulk provisioning and benchmarks); one
    /// journal entry for the batch.
    async fn insert_devices(
        &self,
        devices: &[NewDevice],
        group: &str,
        environment: &str,
        audit: &Audit,
    ) -> Result<()>;
    /// One device.
    async fn device(&self, id: DeviceId) -> Result<Option<Device>>;
    /// Devices matching `filter`, ordered by id.
    async fn list_devices(&self, filter: &DeviceFilter) -> Result<Vec<Device>>;
    /// Number of devices.
    async fn count_devices(&self) -> Result<u64>;
    /// Renames a device; journals `device.rename`. `None` when it does not
    /// exist; [`Error::Conflict`] when another device has the name. The same
    /// name: unchanged, no entry. The caller checks the name's rule.
    async fn rename_device(
        &self,
        id: DeviceId,
        name: &str,
        audit: &Audit,
    ) -> Result<Option<Device>>;
    /// Merges `tags` into the device's tags (an empty value removes the key).
    async fn tag_device(
        &self,
        id: DeviceId,
        tags: &[(String, String)],
        audit: &Audit,
    ) -> Result<Option<Device>>;
    /// Revokes a device; `None` when it does not exist. Revoking twice keeps
    /// the first time and reason (and journals nothing).
    async fn revoke_device(
        &self,
        id: DeviceId,
        reason: &str,
        audit: &Audit,
    ) -> Result<Option<Device>>;
    /// Certificate serials of every revoked device.
    async fn revoked_serials(&self) -> Result<Vec<String>>;
    /// Quarantines a device; journals `device.quarantine` with the reason
    /// and the alert that caused it, if any. Returns the device (`None`
    /// when unknown). Already quarantined: unchanged, no entry.
    async fn quarantine_device(
        &self,
        id: DeviceId,
        reason: &str,
        alert: Option<&str>,
        audit: &Audit,
    ) -> Result<Option<Device>>;
    /// Lifts a quarantine; journals `device.release` with the reason.
    /// Returns the device (`None` when unknown). Not quarantined:
    /// unchanged, no entry.
    async fn release_device(
        &self,
        id: DeviceId,
        reason: &str,
        audit: &Audit,
    ) -> Result<Option<Device>>;
    /// Every quarantined device.
    async fn quarantined_devices(&self) -> Result<Vec<DeviceId>>;

    /// Applies a batch of check-ins (last seen, agent version, boot id).
    /// Observations, not state changes: not journaled.
    async fn record_checkins(&self, batch: &[CheckinUpdate]) -> Result<()>;
    /// Replaces a device's stored inventory.
    async fn put_inventory(
        &self,
        id: DeviceId,
        digest: &str,
        inventory_json: &str,
        audit: &Audit,
    ) -> Result<()>;
    /// A device's stored inventory.
    async fn inventory(&self, id: DeviceId) -> Result<Option<StoredInventory>>;
    /// Every device's stored inventory JSON, by device id.
    async fn inventories(&self) -> Result<Vec<(String, String)>>;
}

/// A stored non-negative count that must fit a `u32`.
fn count_u32(what: &'static str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Corrupt {
        what,
        detail: format!("{v} is not a count"),
    })
}

/// Digests of the state snapshots recorded as `before`/`after` in the
/// journal. Secrets and hashes of secrets are never part of a snapshot.
fn enroll_token_digest(t: &EnrollTokenRecord) -> String {
    state_digest(&serde_json::json!({
        "id": t.id, "group": t.group, "environment": t.environment, "expires_at": rfc3339(t.expires_at),
        "used_at": t.used_at.map(rfc3339), "device_id": t.device_id.map(|d| d.to_string()),
        "max_uses": t.max_uses, "uses": t.uses,
    }))
}

/// The name a device is given when it joins: its hostname in lower case
/// when that is a name of at most 55 characters (room for a suffix), else
/// `device-` and the first 8 characters of its id. [`free_name`] then
/// deduplicates it. The migration that added names used the same rule.
pub fn name_base(hostname: Option<&str>, id: DeviceId) -> String {
    let fits = |h: &str| {
        let b = h.as_bytes();
        (1..=55).contains(&b.len())
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    };
    match hostname {
        Some(h) if fits(h) && DeviceId::parse(&h.to_ascii_lowercase()).is_err() => {
            h.to_ascii_lowercase()
        }
        _ => format!("device-{}", &id.to_string()[..8]),
    }
}

/// `base`, or the first of `base-2`, `base-3`, … not in `taken`.
pub fn free_name(base: &str, taken: &HashSet<String>) -> String {
    if !taken.contains(base) {
        return base.to_owned();
    }
    (2u64..)
        .map(|n| format!("{base}-{n}"))
        .find(|n| !taken.contains(n))
        .unwrap_or_else(|| base.to_owned())
}

/// `LIKE` pattern of `base-` followed by anything (`_` and `%` escaped
/// with `\`).
fn suffixed_like(base: &str) -> String {
    let mut p = String::with_capacity(base.len() + 2);
    for c in base.chars() {
        if matches!(c, '_' | '%' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push_str("-%");
    p
}

fn device_digest(d: &Device) -> String {
    state_digest(&serde_json::json!({
        "id": d.id.to_string(), "name": d.name, "group": d.group, "environment": d.environment, "tags": d.tags,
        "status": d.status.as_str(), "revoked_reason": d.revoked_reason, "cert_serial": d.cert_serial,
        "quarantine_reason": d.quarantine_reason,
    }))
}

const DEVICE_COLUMNS: &str = "d.id, d.name, d.hostname, d.device_group, d.environment, d.tags, \
     d.cert_serial, d.cert_not_after, d.enrolled_at, d.last_seen, d.agent_version, d.boot_id, \
     d.status, d.revoked_at, d.revoked_reason, d.quarantined_at, d.quarantine_reason, \
     i.digest AS inventory_digest, u.phase AS update_phase, \
     (SELECT e.release FROM update_events e WHERE e.device_id = d.id AND e.phase = 'installed' \
      ORDER BY e.seq DESC LIMIT 1) AS installed_release";
const DEVICE_FROM: &str = "devices d LEFT JOIN device_inventory i ON i.device_id = d.id \
     LEFT JOIN device_updates u ON u.device_id = d.id";
const ENROLL_TOKEN_COLUMNS: &str = "id, secret_hash, device_group, environment, created_by, \
     created_at, expires_at, used_at, device_id, max_uses, uses";

macro_rules! impl_device_repo {
    ($store:ty, $db:ty, $row:ty) => {
        impl $store {
            fn enroll_token_rec(row: &$row) -> Result<EnrollTokenRecord> {
                let device: Option<String> = row.try_get("device_id")?;
                Ok(EnrollTokenRecord {
                    id: row.try_get("id")?,
                    secret_hash: row.try_get("secret_hash")?,
                    group: row.try_get("device_group")?,
                    environment: row.try_get("environment")?,
                    created_by: row.try_get("created_by")?,
                    created_at: from_ms("enroll token created_at", row.try_get("created_at")?)?,
                    expires_at: from_ms("enroll token expires_at", row.try_get("expires_at")?)?,
                    used_at: opt_from_ms("enroll token used_at", row.try_get("used_at")?)?,
                    device_id: device.as_deref().map(|d| device_id("enroll token device_id", d)).transpose()?,
                    max_uses: count_u32("enroll token max_uses", row.try_get("max_uses")?)?,
                    uses: count_u32("enroll token uses", row.try_get("uses")?)?,
                })
            }

            fn device_rec(row: &$row) -> Result<Device> {
                let id: String = row.try_get("id")?;
                let tags: String = row.try_get("tags")?;
                let status: String = row.try_get("status")?;
                let phase: Option<String> = row.try_get("update_phase")?;
                Ok(Device {
                    id: device_id("device id", &id)?,
                    name: row.try_get("name")?,
                    hostname: row.try_get("hostname")?,
                    group: row.try_get("device_group")?,
                    environment: row.try_get("environment")?,
                    tags: serde_json::from_str::<BTreeMap<String, String>>(&tags)
                        .map_err(|e| Error::Corrupt { what: "device tags", detail: e.to_string() })?,
                    cert_serial: row.try_get("cert_serial")?,
                    cert_not_after: from_ms("device cert_not_after", row.try_get("cert_not_after")?)?,
                    enrolled_at: from_ms("device enrolled_at", row.try_get("enrolled_at")?)?,
                    last_seen: opt_from_ms("device last_seen", row.try_get("last_seen")?)?,
                    agent_version: row.try_get("agent_version")?,
                    boot_id: row.try_get("boot_id")?,
                    inventory_digest: row.try_get("inventory_digest")?,
                    status: DeviceStatus::read(status)?,
                    revoked_at: opt_from_ms("device revoked_at", row.try_get("revoked_at")?)?,
                    revoked_reason: row.try_get("revoked_reason")?,
                    quarantined_at: opt_from_ms("device quarantined_at", row.try_get("quarantined_at")?)?,
                    quarantine_reason: row.try_get("quarantine_reason")?,
                    update_phase: phase.map(crate::UpdatePhase::read).transpose()?,
                    installed_release: row.try_get("installed_release")?,
                })
            }

            /// Locks the journal head (the first write of every mutating
            /// transaction, so writers queue here instead of deadlocking on a
            /// read-to-write upgrade) and returns the tree's right edge.

            /// Names taken among `base` and `base-…` (or every name, when
            /// `all`: bulk inserts ask once).
            async fn taken_names<'c, E>(exec: E, base: &str, all: bool) -> Result<HashSet<String>>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                let rows = if all {
                    sqlx::query::<$db>("SELECT name FROM devices").fetch_all(exec).await?
                } else {
                    sqlx::query::<$db>("SELECT name FROM devices WHERE name = $1 OR name LIKE $2 ESCAPE '\\'")
                        .bind(base)
                        .bind(suffixed_like(base))
                        .fetch_all(exec)
                        .await?
                };
                rows.iter().map(|r| Ok(r.try_get::<String, _>("name")?)).collect()
            }

            async fn insert_device_in<'c, E>(exec: E, d: &NewDevice, name: &str, group: &str, env: &str, now: OffsetDateTime) -> Result<()>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                sqlx::query::<$db>(
                    "INSERT INTO devices (id, name, hostname, device_group, environment, tags, cert_serial, \
                     cert_not_after, enrolled_at, status) VALUES ($1, $8, $2, $3, $4, '{}', $5, $6, $7, 'active')",
                )
                .bind(d.id.to_string())
                .bind(d.hostname.clone())
                .bind(group)
                .bind(env)
                .bind(&d.cert_serial)
                .bind(ms(d.cert_not_after))
                .bind(ms(now))
                .bind(name)
                .execute(exec)
                .await
                .map_err(conflict("device"))?;
                Ok(())
            }

            /// Sets or clears the quarantine columns, journaling `action`.
            async fn set_quarantine(
                &self,
                id: DeviceId,
                quarantine: bool,
                reason: &str,
                alert: Option<&str>,
                audit: &Audit,
            ) -> Result<Option<Device>> {
                let action = if quarantine { JournalAction::DeviceQuarantine } else { JournalAction::DeviceRelease };
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let select = sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1"));
                let row = sqlx::query::<$db>(select).bind(id.to_string()).fetch_optional(&mut *tx).await?;
                let Some(row) = row else { return Ok(None) };
                let before = Self::device_rec(&row)?;
                if before.quarantined_at.is_some() == quarantine {
                    return Ok(Some(before));
                }
                let (at, why) = if quarantine { (Some(ms(audit.time)), Some(reason)) } else { (None, None) };
                sqlx::query::<$db>("UPDATE devices SET quarantined_at = $1, quarantine_reason = $2 WHERE id = $3")
                    .bind(at)
                    .bind(why)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                let select = sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1"));
                let row = sqlx::query::<$db>(select).bind(id.to_string()).fetch_one(&mut *tx).await?;
                let device = Self::device_rec(&row)?;
                let mut detail = vec![("reason", reason.to_owned())];
                if let Some(a) = alert {
                    detail.push(("alert", a.to_owned()));
                }
                let entry = audit.entry(action, format!("device:{id}"), Some(device_digest(&before)), Some(device_digest(&device)), &detail);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(Some(device))
            }
        }

        #[async_trait]
        impl DeviceRepo for $store {
            async fn insert_enroll_token(&self, new: NewEnrollToken, audit: &Audit) -> Result<EnrollTokenRecord> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO enroll_tokens (id, secret_hash, device_group, environment, created_by, created_at, expires_at, max_uses) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {ENROLL_TOKEN_COLUMNS}"
                )))
                .bind(&new.id)
                .bind(&new.secret_hash)
                .bind(&new.group)
                .bind(&new.environment)
                .bind(&new.created_by)
                .bind(ms(audit.time))
                .bind(ms(new.expires_at))
                .bind(i64::from(new.max_uses))
                .fetch_one(&mut *tx)
                .await
                .map_err(conflict("enrollment token id"))?;
                let rec = Self::enroll_token_rec(&row)?;
                let entry = audit.entry(JournalAction::EnrollTokenCreate, format!("enroll_token:{}", rec.id), None, Some(enroll_token_digest(&rec)),
                    &[("group", rec.group.clone()), ("environment", rec.environment.clone()), ("max_uses", rec.max_uses.to_string())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(rec)
            }

            async fn enroll_token(&self, id: &str) -> Result<Option<EnrollTokenRecord>> {
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {ENROLL_TOKEN_COLUMNS} FROM enroll_tokens WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::enroll_token_rec).transpose()
            }

            async fn list_enroll_tokens(&self) -> Result<Vec<EnrollTokenRecord>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {ENROLL_TOKEN_COLUMNS} FROM enroll_tokens ORDER BY created_at DESC, id"
                )))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::enroll_token_rec).collect()
            }

            async fn enroll_device(&self, token_id: &str, device: NewDevice, audit: &Audit) -> Result<Option<Device>> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                // One statement decides and counts the use, so concurrent
                // enrollments can never exceed max_uses.
                let consumed = sqlx::query::<$db>(
                    "UPDATE enroll_tokens SET uses = uses + 1, used_at = $1, device_id = $2 \
                     WHERE id = $3 AND uses < max_uses AND expires_at > $1 \
                     RETURNING device_group, environment, uses, max_uses",
                )
                .bind(ms(audit.time))
                .bind(device.id.to_string())
                .bind(token_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = consumed else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let group: String = row.try_get("device_group")?;
                let env: String = row.try_get("environment")?;
                let uses = count_u32("enroll token uses", row.try_get("uses")?)?;
                let max_uses = count_u32("enroll token max_uses", row.try_get("max_uses")?)?;
                let base = name_base(device.hostname.as_deref(), device.id);
                let name = free_name(&base, &Self::taken_names(&mut *tx, &base, false).await?);
                Self::insert_device_in(&mut *tx, &device, &name, &group, &env, audit.time).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1")))
                    .bind(device.id.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
                let created = Self::device_rec(&row)?;
                let entry = audit.entry(JournalAction::DeviceEnroll, format!("device:{}", created.id), None, Some(device_digest(&created)), &[
                    ("enroll_token", token_id.to_owned()),
                    ("enroll_token_use", format!("{uses}/{max_uses}")),
                    ("group", group),
                    ("environment", env),
                    ("cert_serial", created.cert_serial.clone()),
                ]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(Some(created))
            }

            async fn insert_devices(&self, devices: &[NewDevice], group: &str, environment: &str, audit: &Audit) -> Result<()> {
                for chunk in devices.chunks(5_000) {
                    let mut tx = self.pool.begin().await?;
                    let mut edge = Self::lock_journal(&mut tx).await?;
                    let mut taken = Self::taken_names(&mut *tx, "", true).await?;
                    for d in chunk {
                        let name = free_name(&name_base(d.hostname.as_deref(), d.id), &taken);
                        Self::insert_device_in(&mut *tx, d, &name, group, environment, audit.time).await?;
                        taken.insert(name);
                    }
                    let entry = audit.entry(JournalAction::DeviceBulkInsert, format!("group:{environment}/{group}"), None, None, &[
                        ("count", chunk.len().to_string()),
                        ("first", chunk[0].id.to_string()),
                        ("last", chunk[chunk.len() - 1].id.to_string()),
                    ]);
                    Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                    tx.commit().await?;
                }
                Ok(())
            }

            async fn device(&self, id: DeviceId) -> Result<Option<Device>> {
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1")))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::device_rec).transpose()
            }

            async fn list_devices(&self, filter: &DeviceFilter) -> Result<Vec<Device>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} \
                     WHERE ($1 IS NULL OR d.device_group = $1) AND ($2 IS NULL OR d.environment = $2) \
                     AND ($3 IS NULL OR d.id > $3) AND ($5 IS NULL OR d.name = $5) ORDER BY d.id LIMIT $4"
                )))
                .bind(filter.group.clone())
                .bind(filter.environment.clone())
                .bind(filter.after.map(|a| a.to_string()))
                .bind(i64::from(filter.limit))
                .bind(filter.name.clone())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::device_rec).collect()
            }

            async fn count_devices(&self) -> Result<u64> {
                let n: i64 = sqlx::query::<$db>("SELECT COUNT(*) AS n FROM devices")
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("n")?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn rename_device(&self, id: DeviceId, name: &str, audit: &Audit) -> Result<Option<Device>> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let select = sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1"));
                let row = sqlx::query::<$db>(select).bind(id.to_string()).fetch_optional(&mut *tx).await?;
                let Some(row) = row else { return Ok(None) };
                let before = Self::device_rec(&row)?;
                if before.name == name {
                    return Ok(Some(before));
                }
                sqlx::query::<$db>("UPDATE devices SET name = $1 WHERE id = $2")
                    .bind(name)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(conflict("device name"))?;
                let select = sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1"));
                let row = sqlx::query::<$db>(select).bind(id.to_string()).fetch_one(&mut *tx).await?;
                let device = Self::device_rec(&row)?;
                let entry = audit.entry(JournalAction::DeviceRename, format!("device:{id}"), Some(device_digest(&before)), Some(device_digest(&device)),
                    &[("from", before.name.clone()), ("to", device.name.clone())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(Some(device))
            }

            async fn tag_device(&self, id: DeviceId, tags: &[(String, String)], audit: &Audit) -> Result<Option<Device>> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1")))
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let before = Self::device_rec(&row)?;
                let mut map = before.tags.clone();
                for (k, v) in tags {
                    if v.is_empty() {
                        map.remove(k);
                    } else {
                        map.insert(k.clone(), v.clone());
                    }
                }
                let json = serde_json::to_string(&map)
                    .map_err(|e| Error::Corrupt { what: "device tags", detail: e.to_string() })?;
                sqlx::query::<$db>("UPDATE devices SET tags = $1 WHERE id = $2")
                    .bind(json)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1")))
                    .bind(id.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
                let device = Self::device_rec(&row)?;
                let changed: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let entry = audit.entry(JournalAction::DeviceTag, format!("device:{id}"), Some(device_digest(&before)), Some(device_digest(&device)),
                    &[("tags", changed.join(" "))]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(Some(device))
            }

            async fn revoke_device(&self, id: DeviceId, reason: &str, audit: &Audit) -> Result<Option<Device>> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let select = sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1"));
                let row = sqlx::query::<$db>(select).bind(id.to_string()).fetch_optional(&mut *tx).await?;
                let Some(row) = row else { return Ok(None) };
                let before = Self::device_rec(&row)?;
                if before.status == DeviceStatus::Revoked {
                    return Ok(Some(before));
                }
                sqlx::query::<$db>("UPDATE devices SET status = 'revoked', revoked_at = $1, revoked_reason = $2 WHERE id = $3")
                    .bind(ms(audit.time))
                    .bind(reason)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                let select = sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1"));
                let row = sqlx::query::<$db>(select).bind(id.to_string()).fetch_one(&mut *tx).await?;
                let device = Self::device_rec(&row)?;
                let entry = audit.entry(JournalAction::DeviceRevoke, format!("device:{id}"), Some(device_digest(&before)), Some(device_digest(&device)), &[
                    ("reason", reason.to_owned()),
                    ("cert_serial", device.cert_serial.clone()),
                ]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(Some(device))
            }

            async fn revoked_serials(&self) -> Result<Vec<String>> {
                let rows = sqlx::query::<$db>("SELECT cert_serial FROM devices WHERE status = 'revoked' ORDER BY cert_serial")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| Ok(r.try_get("cert_serial")?)).collect()
            }

            async fn record_checkins(&self, batch: &[CheckinUpdate]) -> Result<()> {
                for chunk in batch.chunks(2_000) {
                    let mut tx = self.pool.begin().await?;
                    for c in chunk {
                        sqlx::query::<$db>(
                            "UPDATE devices SET last_seen = $1, agent_version = $2, boot_id = $3 \
                             WHERE id = $4 AND (last_seen IS NULL OR last_seen <= $1)",
                        )
                        .bind(ms(c.at))
                        .bind(&c.agent_version)
                        .bind(c.boot_id.clone())
                        .bind(c.id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                }
                Ok(())
            }

            async fn put_inventory(&self, id: DeviceId, digest: &str, inventory_json: &str, audit: &Audit) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let before: Option<String> = sqlx::query::<$db>("SELECT digest FROM device_inventory WHERE device_id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get("digest"))
                    .transpose()?;
                sqlx::query::<$db>(
                    "INSERT INTO device_inventory (device_id, digest, inventory, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (device_id) DO UPDATE SET digest = excluded.digest, \
                     inventory = excluded.inventory, updated_at = excluded.updated_at",
                )
                .bind(id.to_string())
                .bind(digest)
                .bind(inventory_json)
                .bind(ms(audit.time))
                .execute(&mut *tx)
                .await?;
                let entry = audit.entry(JournalAction::DeviceInventory, format!("device:{id}"), before, Some(digest.to_owned()), &[]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn inventory(&self, id: DeviceId) -> Result<Option<StoredInventory>> {
                let row = sqlx::query::<$db>("SELECT digest, inventory, updated_at FROM device_inventory WHERE device_id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some(StoredInventory {
                    digest: row.try_get("digest")?,
                    json: row.try_get("inventory")?,
                    updated_at: from_ms("inventory updated_at", row.try_get("updated_at")?)?,
                }))
            }

            async fn quarantine_device(&self, id: DeviceId, reason: &str, alert: Option<&str>, audit: &Audit) -> Result<Option<Device>> {
                self.set_quarantine(id, true, reason, alert, audit).await
            }

            async fn release_device(&self, id: DeviceId, reason: &str, audit: &Audit) -> Result<Option<Device>> {
                self.set_quarantine(id, false, reason, None, audit).await
            }

            async fn quarantined_devices(&self) -> Result<Vec<DeviceId>> {
                let rows = sqlx::query::<$db>("SELECT id FROM devices WHERE quarantined_at IS NOT NULL ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| device_id("quarantined device", &r.try_get::<String, _>("id")?))
                    .collect()
            }

            async fn inventories(&self) -> Result<Vec<(String, String)>> {
                let rows = sqlx::query::<$db>("SELECT device_id, inventory FROM device_inventory ORDER BY device_id")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("device_id")?, r.try_get("inventory")?)))
                    .collect()
            }
        }
    };
}

impl_device_repo!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_device_repo!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
