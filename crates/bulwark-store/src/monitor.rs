//! Monitoring: detection profiles per device group, detection alerts, and
//! device quarantine.
//!
//! Profile changes and quarantine/release are state changes: each journals
//! one entry in its own transaction. Detection alerts are observations
//! (like check-ins) and are not journaled one by one; the action an alert
//! triggers (a quarantine) is, naming the alert.

use async_trait::async_trait;
use bulwark_proto::{DeviceId, JournalAction, state_digest};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::backend::{
    DEVICE_COLUMNS, DEVICE_FROM, PostgresStore, SqliteStore, device_digest, device_id, from_ms,
};
use crate::model::ms;
use crate::{Audit, Device, Error, Result};

/// One stored version of a group's detection profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRow {
    /// Store-wide revision, increasing with every apply.
    pub revision: u64,
    /// The device group it applies to.
    pub group: String,
    /// The profile's own version string.
    pub version: String,
    /// The TOML source.
    pub body: String,
    /// Who applied it.
    pub created_by: String,
    /// When.
    pub created_at: OffsetDateTime,
}

/// A detection alert with the datapoints that fired it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectionAlert {
    /// Id.
    pub id: String,
    /// The device.
    pub device_id: DeviceId,
    /// Its group (whose profile fired).
    pub group: String,
    /// The behaviour's name.
    pub behaviour: String,
    /// `rule`, `zscore`, `novelty`, `fanout` or `peer-outlier`.
    pub kind: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// The profile version that fired.
    pub profile_version: String,
    /// `quarantine` when the behaviour carries that action.
    pub action: Option<String>,
    /// One line for humans.
    pub message: String,
    /// The evidence (JSON array of datapoints).
    pub evidence: String,
    /// The time of the datapoint that fired it.
    pub observed_at: OffsetDateTime,
    /// When the server raised it.
    pub created_at: OffsetDateTime,
}

/// The monitoring half of the store.
#[async_trait]
pub trait MonitorStore: Send + Sync {
    /// Stores a profile version for a group; journals `profile.apply`.
    /// [`Error::Conflict`] when the group already has this version with a
    /// different body; the same body again is a no-op returning the stored
    /// row (and writes no entry).
    async fn put_profile(
        &self,
        group: &str,
        version: &str,
        body: &str,
        audit: &Audit,
    ) -> Result<ProfileRow>;
    /// Every stored profile version, oldest first.
    async fn profiles(&self) -> Result<Vec<ProfileRow>>;

    /// Stores raised alerts (not journaled: observations).
    async fn insert_detection_alerts(&self, alerts: &[DetectionAlert]) -> Result<()>;
    /// Detection alerts, newest first, optionally of one device.
    async fn detection_alerts(
        &self,
        device: Option<DeviceId>,
        limit: u32,
    ) -> Result<Vec<DetectionAlert>>;

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
}

fn u64_of(what: &'static str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt {
        what,
        detail: format!("negative value {v}"),
    })
}

const PROFILE_COLUMNS: &str = "revision, device_group, version, body, created_by, created_at";
const ALERT_COLUMNS: &str = "id, device_id, device_group, behaviour, kind, severity, \
     profile_version, action, message, evidence, observed_at, created_at";

macro_rules! impl_monitor_store {
    ($store:ty, $db:ty, $row:ty) => {
        impl $store {
            fn profile_rec(row: &$row) -> Result<ProfileRow> {
                Ok(ProfileRow {
                    revision: u64_of("profile revision", row.try_get("revision")?)?,
                    group: row.try_get("device_group")?,
                    version: row.try_get("version")?,
                    body: row.try_get("body")?,
                    created_by: row.try_get("created_by")?,
                    created_at: from_ms("profile created_at", row.try_get("created_at")?)?,
                })
            }

            fn detection_alert_rec(row: &$row) -> Result<DetectionAlert> {
                let device: String = row.try_get("device_id")?;
                Ok(DetectionAlert {
                    id: row.try_get("id")?,
                    device_id: device_id("alert device", &device)?,
                    group: row.try_get("device_group")?,
                    behaviour: row.try_get("behaviour")?,
                    kind: row.try_get("kind")?,
                    severity: row.try_get("severity")?,
                    profile_version: row.try_get("profile_version")?,
                    action: row.try_get("action")?,
                    message: row.try_get("message")?,
                    evidence: row.try_get("evidence")?,
                    observed_at: from_ms("alert observed_at", row.try_get("observed_at")?)?,
                    created_at: from_ms("alert created_at", row.try_get("created_at")?)?,
                })
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
        impl MonitorStore for $store {
            async fn put_profile(&self, group: &str, version: &str, body: &str, audit: &Audit) -> Result<ProfileRow> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let existing = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {PROFILE_COLUMNS} FROM detection_profiles WHERE device_group = $1 AND version = $2"
                )))
                .bind(group)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = existing {
                    let row = Self::profile_rec(&row)?;
                    if row.body == body {
                        return Ok(row);
                    }
                    return Err(Error::Conflict { what: format!("profile {group} version {version} (with a different body)") });
                }
                let before: Option<String> = sqlx::query::<$db>(
                    "SELECT body FROM detection_profiles WHERE device_group = $1 ORDER BY revision DESC LIMIT 1",
                )
                .bind(group)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<String, _>("body"))
                .transpose()?;
                let revision: i64 = sqlx::query::<$db>("SELECT COALESCE(MAX(revision), 0) + 1 AS next FROM detection_profiles")
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("next")?;
                let row = ProfileRow {
                    revision: u64_of("profile revision", revision)?,
                    group: group.to_owned(),
                    version: version.to_owned(),
                    body: body.to_owned(),
                    created_by: audit.actor.name.clone().unwrap_or_else(|| audit.actor.id.clone()),
                    created_at: audit.time,
                };
                sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO detection_profiles ({PROFILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
                )))
                .bind(revision)
                .bind(group)
                .bind(version)
                .bind(body)
                .bind(&row.created_by)
                .bind(ms(row.created_at))
                .execute(&mut *tx)
                .await?;
                let entry = audit.entry(JournalAction::ProfileApply, format!("group:{group}"),
                    before.map(|b| state_digest(&b)), Some(state_digest(&body)),
                    &[("version", version.to_owned()), ("revision", revision.to_string())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn profiles(&self) -> Result<Vec<ProfileRow>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {PROFILE_COLUMNS} FROM detection_profiles ORDER BY revision"
                )))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::profile_rec).collect()
            }

            async fn insert_detection_alerts(&self, alerts: &[DetectionAlert]) -> Result<()> {
                for chunk in alerts.chunks(500) {
                    let mut tx = self.pool.begin().await?;
                    for a in chunk {
                        sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                            "INSERT INTO detection_alerts ({ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                        )))
                        .bind(&a.id)
                        .bind(a.device_id.to_string())
                        .bind(&a.group)
                        .bind(&a.behaviour)
                        .bind(&a.kind)
                        .bind(&a.severity)
                        .bind(&a.profile_version)
                        .bind(&a.action)
                        .bind(&a.message)
                        .bind(&a.evidence)
                        .bind(ms(a.observed_at))
                        .bind(ms(a.created_at))
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                }
                Ok(())
            }

            async fn detection_alerts(&self, device: Option<DeviceId>, limit: u32) -> Result<Vec<DetectionAlert>> {
                let rows = match device {
                    Some(d) => sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                        "SELECT {ALERT_COLUMNS} FROM detection_alerts WHERE device_id = $1 ORDER BY created_at DESC, id LIMIT $2"
                    )))
                    .bind(d.to_string())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?,
                    None => sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                        "SELECT {ALERT_COLUMNS} FROM detection_alerts ORDER BY created_at DESC, id LIMIT $1"
                    )))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?,
                };
                rows.iter().map(Self::detection_alert_rec).collect()
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
        }
    };
}

impl_monitor_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_monitor_store!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
