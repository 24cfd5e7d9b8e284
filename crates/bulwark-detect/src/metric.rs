//! Datapoints and the closed list of metric names.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use time::OffsetDateTime;

/// Longest device id accepted, in bytes.
pub const MAX_DEVICE_ID_LEN: usize = 256;
/// Most elements in one set-valued metric of one datapoint.
pub const MAX_SET_LEN: usize = 4096;
/// Longest element of a set-valued metric, in bytes.
pub const MAX_ELEMENT_LEN: usize = 256;

/// The metrics a datapoint may carry. Anything else is rejected with
/// [`DatapointError::UnknownMetric`] so that a typo in an agent does not
/// silently disable a behaviour.
///
/// | name | kind | meaning |
/// |---|---|---|
/// | `cpu_percent` | number | CPU use, 0–100 |
/// | `memory_percent` | number | memory use, 0–100 |
/// | `process_count` | number | running processes |
/// | `bytes_in` / `bytes_out` | number | bytes received / sent since the last datapoint |
/// | `packets_in` / `packets_out` | number | packets received / sent since the last datapoint |
/// | `connection_attempts` | number | outbound connection attempts since the last datapoint |
/// | `failed_logins` | number | failed logins since the last datapoint |
/// | `listening_ports` | set | listening sockets, `proto/port` (`tcp/22`) |
/// | `remote_destinations` | set | remote peers contacted, `host:port` (`10.0.0.5:443`, `[::1]:53`) |
/// | `remote_ports` | set | remote ports contacted, `proto/port` |
pub const KNOWN_METRICS: &[(&str, MetricKind)] = &[
    ("cpu_percent", MetricKind::Number),
    ("memory_percent", MetricKind::Number),
    ("process_count", MetricKind::Number),
    ("bytes_in", MetricKind::Number),
    ("bytes_out", MetricKind::Number),
    ("packets_in", MetricKind::Number),
    ("packets_out", MetricKind::Number),
    ("connection_attempts", MetricKind::Number),
    ("failed_logins", MetricKind::Number),
    ("listening_ports", MetricKind::Set),
    ("remote_destinations", MetricKind::Set),
    ("remote_ports", MetricKind::Set),
];

/// Whether a metric is a number or a set of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A finite number.
    Number,
    /// A set of short strings.
    Set,
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetricKind::Number => "number",
            MetricKind::Set => "set",
        })
    }
}

/// The kind of a known metric, `None` for an unknown name.
pub fn metric_kind(name: &str) -> Option<MetricKind> {
    KNOWN_METRICS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
}

/// One metric value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number (must be finite).
    Number(f64),
    /// A set of strings.
    Set(BTreeSet<String>),
}

impl Value {
    /// The kind of this value.
    pub fn kind(&self) -> MetricKind {
        match self {
            Value::Number(_) => MetricKind::Number,
            Value::Set(_) => MetricKind::Set,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Set(s) => {
                f.write_str("{")?;
                for (i, e) in s.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(e)?;
                }
                f.write_str("}")
            }
        }
    }
}

/// What one device reported at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Datapoint {
    /// The reporting device.
    pub device: String,
    /// When the values were measured (device time as stamped by ingest).
    pub time: OffsetDateTime,
    /// Metric name to value; names must be in [`KNOWN_METRICS`]. Names are
    /// usually the static ones of that list (no allocation per datapoint
    /// on the ingest path); parsed input may carry owned ones.
    pub metrics: BTreeMap<Cow<'static, str>, Value>,
}

/// Why a datapoint was not observed. The caller counts these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DatapointError {
    /// The device id is empty or too long.
    #[error("invalid device id ({len} bytes; 1..={MAX_DEVICE_ID_LEN} allowed)")]
    DeviceId {
        /// Its length in bytes.
        len: usize,
    },
    /// A metric name not in [`KNOWN_METRICS`].
    #[error("unknown metric `{name}`")]
    UnknownMetric {
        /// The name as sent (truncated to 64 bytes).
        name: String,
    },
    /// A number where a set belongs, or the reverse.
    #[error("metric `{name}` must be a {expected}")]
    WrongKind {
        /// The metric.
        name: String,
        /// Its kind.
        expected: MetricKind,
    },
    /// NaN or infinity.
    #[error("metric `{name}` is not a finite number")]
    NotFinite {
        /// The metric.
        name: String,
    },
    /// A set too large, or with an element too long.
    #[error(
        "metric `{name}` is too large (at most {MAX_SET_LEN} elements of {MAX_ELEMENT_LEN} bytes)"
    )]
    TooLarge {
        /// The metric.
        name: String,
    },
    /// More than the allowed reordering behind the device's latest time.
    #[error("datapoint at {time} is {behind_secs}s behind the device's latest datapoint")]
    Stale {
        /// The datapoint's time.
        time: OffsetDateTime,
        /// How far behind, in seconds.
        behind_secs: i64,
    },
    /// Later than the caller's clock plus the allowed skew.
    #[error("datapoint at {time} is in the future")]
    FromFuture {
        /// The datapoint's time.
        time: OffsetDateTime,
    },
    /// The engine already tracks its maximum number of devices.
    #[error("too many devices (at most {max})")]
    TooManyDevices {
        /// The limit.
        max: usize,
    },
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl Datapoint {
    /// Checks the device id, the metric names, kinds and sizes.
    pub fn validate(&self) -> Result<(), DatapointError> {
        if self.device.is_empty() || self.device.len() > MAX_DEVICE_ID_LEN {
            return Err(DatapointError::DeviceId {
                len: self.device.len(),
            });
        }
        for (name, value) in &self.metrics {
            let Some(kind) = metric_kind(name) else {
                return Err(DatapointError::UnknownMetric {
                    name: truncate(name, 64),
                });
            };
            if kind != value.kind() {
                return Err(DatapointError::WrongKind {
                    name: name.to_string(),
                    expected: kind,
                });
            }
            match value {
                Value::Number(n) if !n.is_finite() => {
                    return Err(DatapointError::NotFinite {
                        name: name.to_string(),
                    });
                }
                Value::Set(s)
                    if s.len() > MAX_SET_LEN || s.iter().any(|e| e.len() > MAX_ELEMENT_LEN) =>
                {
                    return Err(DatapointError::TooLarge {
                        name: name.to_string(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}
