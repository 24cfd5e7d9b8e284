//! Telemetry history: each device's samples folded into per-minute
//! aggregates and its latest sample, handed to the store in batches.
//!
//! The fold happens where the sample is decoded (a gateway session keeps
//! its device's open minute, so the hot path takes no shared lock); a
//! finished minute (or the open one when the session ends) goes to the
//! shared [`HistoryBuffer`], which the server's background task writes
//! every [`FLUSH_EVERY`]. A minute written in parts merges in the store.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};

use bulwark_detect::{Datapoint, Direction, Metric, Value};
use bulwark_proto::DeviceId;
use bulwark_proto::telemetry::Telemetry;
use bulwark_store::{LatestTelemetry, TelemetryMinute};
use time::OffsetDateTime;

/// How often buffered history is written.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Most minutes (and as many latest samples) buffered between writes;
/// past this, new ones are dropped and counted (the store is not keeping
/// up, and memory must stay bounded).
pub const MAX_BUFFERED: usize = 1_000_000;

/// The start of `t`'s minute.
pub fn minute_of(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(t)
}

fn number(dp: &Datapoint, m: Metric) -> u64 {
    match dp.metrics.metric(m) {
        Some(Value::Number(n)) if *n >= 0.0 => *n as u64,
        _ => 0,
    }
}

fn set_len(dp: &Datapoint, m: Metric) -> u64 {
    match dp.metrics.metric(m) {
        Some(Value::Set(s)) => s.len() as u64,
        _ => 0,
    }
}

fn fold(row: &mut TelemetryMinute, t: &Telemetry, dp: &Datapoint) {
    row.samples += 1;
    let cpu = f64::from(t.cpu_percent);
    let memory = f64::from(t.memory_percent);
    row.cpu_sum += cpu;
    row.cpu_max = row.cpu_max.max(cpu);
    row.memory_sum += memory;
    row.memory_max = row.memory_max.max(memory);
    row.processes_max = row.processes_max.max(t.process_count);
    // Traffic is the counters' increase, as detection sees it.
    row.bytes_in = row.bytes_in.saturating_add(number(dp, Metric::BytesIn));
    row.bytes_out = row.bytes_out.saturating_add(number(dp, Metric::BytesOut));
    row.packets_in = row.packets_in.saturating_add(number(dp, Metric::PacketsIn));
    row.packets_out = row
        .packets_out
        .saturating_add(number(dp, Metric::PacketsOut));
    row.connection_attempts = row
        .connection_attempts
        .saturating_add(t.connection_attempts);
    row.failed_logins = row
        .failed_logins
        .saturating_add(t.failed_logins.unwrap_or(0));
    row.failed_attempts = row
        .failed_attempts
        .saturating_add(t.failed_attempts.unwrap_or(0));
    row.listening_max = row.listening_max.max(t.listening.len() as u64);
    row.connections_max = row.connections_max.max(t.connections.len() as u64);
    row.destinations_max = row
        .destinations_max
        .max(set_len(dp, Metric::RemoteDestinations));
    let unanswered = match dp.metrics.metric(Metric::Flows) {
        Some(Value::Flows(f)) => f
            .iter()
            .filter(|f| f.direction == Direction::Outbound && f.unanswered() > 0)
            .count() as u64,
        _ => 0,
    };
    row.unanswered_max = row.unanswered_max.max(unanswered);
}

fn empty_row(device: DeviceId, minute: OffsetDateTime) -> TelemetryMinute {
    TelemetryMinute {
        device_id: device,
        minute,
        samples: 0,
        cpu_sum: 0.0,
        cpu_max: 0.0,
        memory_sum: 0.0,
        memory_max: 0.0,
        processes_max: 0,
        bytes_in: 0,
        bytes_out: 0,
        packets_in: 0,
        packets_out: 0,
        connection_attempts: 0,
        failed_logins: 0,
        failed_attempts: 0,
        listening_max: 0,
        connections_max: 0,
        destinations_max: 0,
        unanswered_max: 0,
    }
}

/// One device's open minute and latest sample (kept by whoever decodes
/// its samples: a gateway session, the external-broker consumer).
#[derive(Debug, Default)]
pub struct DeviceHistory {
    open: Option<TelemetryMinute>,
    latest: Option<(OffsetDateTime, Telemetry)>,
}

impl DeviceHistory {
    /// Folds one sample received at `now` (taking it: it is kept as the
    /// latest); a sample of a later minute first hands the open one over.
    pub fn record(
        &mut self,
        device: DeviceId,
        now: OffsetDateTime,
        t: Telemetry,
        dp: &Datapoint,
        out: &HistoryBuffer,
    ) {
        let minute = minute_of(now);
        if self.open.as_ref().is_some_and(|o| o.minute != minute) {
            self.close(out);
        }
        fold(
            self.open.get_or_insert_with(|| empty_row(device, minute)),
            &t,
            dp,
        );
        self.latest = Some((now, t));
    }

    /// Hands the open minute and the latest sample over (the minute
    /// ended, or the session did).
    pub fn close(&mut self, out: &HistoryBuffer) {
        let Some(row) = self.open.take() else {
            return;
        };
        let latest = self.latest.take().and_then(|(at, t)| {
            serde_json::to_string(&t).ok().map(|body| LatestTelemetry {
                device_id: row.device_id,
                received_at: at,
                body,
            })
        });
        out.push(row, latest);
    }
}

/// Open minutes of many devices (the external-broker consumer's), handed
/// over when dropped.
#[derive(Debug)]
pub struct HistoryMap<'a> {
    map: std::collections::HashMap<DeviceId, DeviceHistory>,
    monitor: &'a super::Monitor,
}

impl<'a> HistoryMap<'a> {
    pub fn new(monitor: &'a super::Monitor) -> Self {
        HistoryMap {
            map: std::collections::HashMap::new(),
            monitor,
        }
    }

    pub fn device(&mut self, id: DeviceId) -> &mut DeviceHistory {
        self.map.entry(id).or_default()
    }
}

impl Drop for HistoryMap<'_> {
    fn drop(&mut self) {
        for h in self.map.values_mut() {
            h.close(&self.monitor.history);
        }
    }
}

/// Finished minutes and latest samples waiting to be written.
#[derive(Debug, Default)]
pub struct HistoryBuffer {
    pending: Mutex<(Vec<TelemetryMinute>, Vec<LatestTelemetry>)>,
    dropped: AtomicU64,
}

impl HistoryBuffer {
    fn push(&self, row: TelemetryMinute, latest: Option<LatestTelemetry>) {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.0.len() >= MAX_BUFFERED {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        p.0.push(row);
        if let Some(l) = latest {
            p.1.push(l);
        }
    }

    /// Everything buffered, leaving it empty.
    pub fn take(&self) -> (Vec<TelemetryMinute>, Vec<LatestTelemetry>) {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Minutes dropped because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use bulwark_proto::telemetry::NetCounters;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn minutes_fold_and_hand_over_at_the_boundary() {
        let id = DeviceId::from_uuid(uuid::Uuid::from_u128(7));
        let buf = HistoryBuffer::default();
        let mut h = DeviceHistory::default();
        let mut prev = super::super::convert::PreviousSample::default();
        let name: std::sync::Arc<str> = id.to_string().into();
        for (i, at) in [
            datetime!(2026-12-07 10:00:05 UTC),
            datetime!(2026-12-07 10:00:45 UTC),
            datetime!(2026-12-07 10:01:02 UTC),
        ]
        .into_iter()
        .enumerate()
        {
            let t = Telemetry {
                seq: i as u64,
                cpu_percent: 10.0 * (i as f32 + 1.0),
                net: NetCounters {
                    bytes_out: 1000 * (i as u64 + 1),
                    ..NetCounters::default()
                },
                ..Telemetry::default()
            };
            let dp = super::super::convert::datapoint(&name, &t, &mut prev, at);
            h.record(id, at, t, &dp, &buf);
        }
        let (rows, latest) = buf.take();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].minute, datetime!(2026-12-07 10:00 UTC));
        assert_eq!(
            (rows[0].samples, rows[0].cpu_sum, rows[0].cpu_max),
            (2, 30.0, 20.0)
        );
        assert_eq!(rows[0].bytes_out, 1000);
        assert!(latest[0].body.contains("\"seq\":1"), "{}", latest[0].body);
        h.close(&buf);
        let (rows, latest) = buf.take();
        assert_eq!(rows[0].minute, datetime!(2026-12-07 10:01 UTC));
        assert_eq!(latest[0].received_at, datetime!(2026-12-07 10:01:02 UTC));
        h.close(&buf);
        assert_eq!(buf.take().0.len(), 0);
    }
}
