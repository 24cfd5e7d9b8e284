//! Telemetry history: per device and minute, the aggregates of every
//! metric, and each device's latest sample.
//!
//! Observations, not state changes (like alerts and check-ins): not
//! journaled. Writes come in batches from the server's telemetry writer;
//! a minute written twice (two partial flushes, or a late sample) merges:
//! counts and sums add, maxima keep the larger.

use async_trait::async_trait;
use bulwark_proto::DeviceId;
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::Result;
use crate::backend::{PostgresStore, SqliteStore, device_id, from_ms};
use crate::model::ms;

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

/// The telemetry history half of the store.
#[async_trait]
pub trait TelemetryStore: Send + Sync {
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

macro_rules! impl_telemetry_store {
    ($store:ty, $db:ty, $row:ty) => {
        impl $store {
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
        impl TelemetryStore for $store {
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

impl_telemetry_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_telemetry_store!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
