//! Monitoring: detection profiles per device group, the detection alerts
//! they raise, and telemetry history (per device and minute, the
//! aggregates of every metric, and each device's latest sample).
//!
//! Profile changes are state changes: each journals one entry in its own
//! transaction. Detection alerts and telemetry are observations (like
//! check-ins) and are not journaled; the action an alert triggers (a
//! quarantine, [`crate::DeviceRepo::quarantine_device`]) is, naming the
//! alert. Telemetry writes come in batches from the server's telemetry
//! writer; a minute written twice (two partial flushes, or a late sample)
//! merges: counts and sums add, maxima keep the larger.

use async_trait::async_trait;
use bulwark_proto::{DeviceId, JournalAction, state_digest};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::backend::{PostgresStore, SqliteStore, device_id, from_ms, u64_of};
use crate::model::{ms, stored_enum};
use crate::{Audit, Error, Result};

stored_enum! {
    /// What kind of behaviour fired a detection alert (a profile
    /// behaviour's `kind`, `bulwark_detect::Kind::name`).
    DetectionKind, "detection kind" {
        /// A fixed condition that persisted.
        Rule = "rule",
        /// A metric far from the device's own running mean.
        Zscore = "zscore",
        /// A value the device had not shown before.
        Novelty = "novelty",
        /// Too many distinct destinations.
        Fanout = "fanout",
        /// A metric far from the device's peers in its group.
        PeerOutlier = "peer-outlier",
        /// A value rare across the fleet.
        Rarity = "rarity",
        /// Scanning: many hosts or ports, mostly unanswered.
        Scan = "scan",
        /// Flooding one host.
        Flood = "flood",
        /// Command-and-control patterns.
        C2 = "c2",
        /// Many short connections to login services.
        Bruteforce = "bruteforce",
    }
}

stored_enum! {
    /// How urgent a detection alert is.
    Severity, "alert severity" {
        /// Informational.
        Low = "low",
        /// Worth a look.
        Medium = "medium",
        /// Act soon.
        High = "high",
        /// Act now.
        Critical = "critical",
    }
}

stored_enum! {
    /// What a detection alert's behaviour does besides alerting.
    AlertAction, "alert action" {
        /// Quarantine the device.
        Quarantine = "quarantine",
    }
}

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
    /// The behaviour's kind.
    pub kind: DetectionKind,
    /// How urgent.
    pub severity: Severity,
    /// The profile version that fired.
    pub profile_version: String,
    /// The behaviour's action, if it carries one.
    pub action: Option<AlertAction>,
    /// One line for humans.
    pub message: String,
    /// The evidence (JSON array of datapoints).
    pub evidence: String,
    /// The time of the datapoint that fired it.
    pub observed_at: OffsetDateTime,
    /// When the server raised it.
    pub created_at: OffsetDateTime,
}

/// One device's telemetry over one minute (or the part of it one flush
/// carries).
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryMinute {
    /// The device.
    pub device_id: DeviceId,
    /// Start of the minute (UTC, whole minute).
    pub minute: OffsetDateTime,
    /// Samples received.
    pub samples: u64,
    /// Sum of `cpu_percent` (the average is sum / samples).
    pub cpu_sum: f64,
    /// Highest `cpu_percent`.
    pub cpu_max: f64,
    /// Sum of `memory_percent`.
    pub memory_sum: f64,
    /// Highest `memory_percent`.
    pub memory_max: f64,
    /// Most processes.
    pub processes_max: u64,
    /// Bytes received (interface counter increases).
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Packets received.
    pub packets_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// Outgoing TCP connection attempts.
    pub connection_attempts: u64,
    /// Failed logins.
    pub failed_logins: u64,
    /// Failed outgoing connection attempts (refused, reset, timed out).
    pub failed_attempts: u64,
    /// Most listening sockets in one sample.
    pub listening_max: u64,
    /// Most connections in one sample.
    pub connections_max: u64,
    /// Most distinct outbound destinations in one sample.
    pub destinations_max: u64,
    /// Most unanswered outbound attempts in one sample.
    pub unanswered_max: u64,
}

/// A device's latest telemetry sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestTelemetry {
    /// The device.
    pub device_id: DeviceId,
    /// When the server received it.
    pub received_at: OffsetDateTime,
    /// The sample as JSON (the agent's telemetry schema).
    pub body: String,
}

/// Detection profiles, detection alerts and telemetry history.
#[async_trait]
pub trait MonitorRepo: Send + Sync + std::fmt::Debug {
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

    /// Adds minutes (merged into any row of the same device and minute)
    /// and replaces latest samples (unless the stored one is newer).
    async fn put_telemetry(
        &self,
        minutes: &[TelemetryMinute],
        latest: &[LatestTelemetry],
    ) -> Result<()>;
    /// A device's minutes from `since` on, oldest first, at most `limit`.
    async fn telemetry_minutes(
        &self,
        device: DeviceId,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<TelemetryMinute>>;
    /// A device's latest sample.
    async fn latest_telemetry(&self, device: DeviceId) -> Result<Option<LatestTelemetry>>;
    /// Deletes minutes before `before`; returns how many.
    async fn prune_telemetry(&self, before: OffsetDateTime) -> Result<u64>;
}

const PROFILE_COLUMNS: &str = "revision, device_group, version, body, created_by, created_at";
const ALERT_COLUMNS: &str = "id, device_id, device_group, behaviour, kind, severity, \
     profile_version, action, message, evidence, observed_at, created_at";

const MINUTE_COLUMNS: &str = "device_id, minute, samples, cpu_sum, cpu_max, memory_sum, memory_max, \
     processes_max, bytes_in, bytes_out, packets_in, packets_out, connection_attempts, \
     failed_logins, listening_max, connections_max, destinations_max, unanswered_max, failed_attempts";

/// Largest value stored in a BIGINT column.
fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

macro_rules! impl_monitor_repo {
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
                    kind: DetectionKind::read(row.try_get("kind")?)?,
                    severity: Severity::read(row.try_get("severity")?)?,
                    profile_version: row.try_get("profile_version")?,
                    action: row.try_get::<Option<String>, _>("action")?.map(AlertAction::read).transpose()?,
                    message: row.try_get("message")?,
                    evidence: row.try_get("evidence")?,
                    observed_at: from_ms("alert observed_at", row.try_get("observed_at")?)?,
                    created_at: from_ms("alert created_at", row.try_get("created_at")?)?,
                })
            }

            fn minute_rec(row: &$row) -> Result<TelemetryMinute> {
                let device: String = row.try_get("device_id")?;
                Ok(TelemetryMinute {
                    device_id: device_id("telemetry device", &device)?,
                    minute: from_ms("telemetry minute", row.try_get("minute")?)?,
                    samples: count(row.try_get("samples")?),
                    cpu_sum: row.try_get("cpu_sum")?,
                    cpu_max: row.try_get("cpu_max")?,
                    memory_sum: row.try_get("memory_sum")?,
                    memory_max: row.try_get("memory_max")?,
                    processes_max: count(row.try_get("processes_max")?),
                    bytes_in: count(row.try_get("bytes_in")?),
                    bytes_out: count(row.try_get("bytes_out")?),
                    packets_in: count(row.try_get("packets_in")?),
                    packets_out: count(row.try_get("packets_out")?),
                    connection_attempts: count(row.try_get("connection_attempts")?),
                    failed_logins: count(row.try_get("failed_logins")?),
                    listening_max: count(row.try_get("listening_max")?),
                    connections_max: count(row.try_get("connections_max")?),
                    destinations_max: count(row.try_get("destinations_max")?),
                    unanswered_max: count(row.try_get("unanswered_max")?),
                    failed_attempts: count(row.try_get("failed_attempts")?),
                })
            }
        }

        #[async_trait]
        impl MonitorRepo for $store {
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
                        .bind(a.kind.as_str())
                        .bind(a.severity.as_str())
                        .bind(&a.profile_version)
                        .bind(a.action.map(AlertAction::as_str))
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

            async fn put_telemetry(&self, minutes: &[TelemetryMinute], latest: &[LatestTelemetry]) -> Result<()> {
                const SUMS: &[&str] = &["samples", "cpu_sum", "memory_sum", "bytes_in", "bytes_out", "packets_in",
                    "packets_out", "connection_attempts", "failed_logins", "failed_attempts"];
                const MAXES: &[&str] = &["cpu_max", "memory_max", "processes_max", "listening_max",
                    "connections_max", "destinations_max", "unanswered_max"];
                let set: Vec<String> = SUMS
                    .iter()
                    .map(|c| format!("{c} = telemetry_minutes.{c} + excluded.{c}"))
                    .chain(MAXES.iter().map(|c| {
                        format!("{c} = CASE WHEN excluded.{c} > telemetry_minutes.{c} THEN excluded.{c} ELSE telemetry_minutes.{c} END")
                    }))
                    .collect();
                let upsert = format!(
                    "INSERT INTO telemetry_minutes ({MINUTE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                     $11, $12, $13, $14, $15, $16, $17, $18, $19) ON CONFLICT (device_id, minute) DO UPDATE SET {}",
                    set.join(", ")
                );
                for chunk in minutes.chunks(500) {
                    let mut tx = self.pool.begin().await?;
                    for m in chunk {
                        sqlx::query::<$db>(sqlx::AssertSqlSafe(upsert.clone()))
                            .bind(m.device_id.to_string())
                            .bind(ms(m.minute))
                            .bind(big(m.samples))
                            .bind(m.cpu_sum)
                            .bind(m.cpu_max)
                            .bind(m.memory_sum)
                            .bind(m.memory_max)
                            .bind(big(m.processes_max))
                            .bind(big(m.bytes_in))
                            .bind(big(m.bytes_out))
                            .bind(big(m.packets_in))
                            .bind(big(m.packets_out))
                            .bind(big(m.connection_attempts))
                            .bind(big(m.failed_logins))
                            .bind(big(m.listening_max))
                            .bind(big(m.connections_max))
                            .bind(big(m.destinations_max))
                            .bind(big(m.unanswered_max))
                            .bind(big(m.failed_attempts))
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                }
                for chunk in latest.chunks(500) {
                    let mut tx = self.pool.begin().await?;
                    for l in chunk {
                        sqlx::query::<$db>(
                            "INSERT INTO telemetry_latest (device_id, received_at, body) VALUES ($1, $2, $3) \
                             ON CONFLICT (device_id) DO UPDATE SET received_at = excluded.received_at, body = excluded.body \
                             WHERE excluded.received_at >= telemetry_latest.received_at",
                        )
                        .bind(l.device_id.to_string())
                        .bind(ms(l.received_at))
                        .bind(&l.body)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                }
                Ok(())
            }

            async fn telemetry_minutes(&self, device: DeviceId, since: OffsetDateTime, limit: u32) -> Result<Vec<TelemetryMinute>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {MINUTE_COLUMNS} FROM telemetry_minutes WHERE device_id = $1 AND minute >= $2 ORDER BY minute LIMIT $3"
                )))
                .bind(device.to_string())
                .bind(ms(since))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::minute_rec).collect()
            }

            async fn latest_telemetry(&self, device: DeviceId) -> Result<Option<LatestTelemetry>> {
                let row = sqlx::query::<$db>("SELECT received_at, body FROM telemetry_latest WHERE device_id = $1")
                    .bind(device.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| {
                    Ok(LatestTelemetry {
                        device_id: device,
                        received_at: from_ms("telemetry received_at", r.try_get("received_at")?)?,
                        body: r.try_get("body")?,
                    })
                })
                .transpose()
            }

            async fn prune_telemetry(&self, before: OffsetDateTime) -> Result<u64> {
                let r = sqlx::query::<$db>("DELETE FROM telemetry_minutes WHERE minute < $1")
                    .bind(ms(before))
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected())
            }
        }
    };
}

impl_monitor_repo!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_monitor_repo!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
