//! Datapoints and the closed list of metric names.

use std::fmt;
use std::sync::Arc;

use smol_str::SmolStr;
use time::OffsetDateTime;

use crate::flow::{Flow, MAX_FLOWS};

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
/// | `failed_attempts` | number | connection attempts refused, reset or timed out since the last datapoint |
/// | `failed_logins` | number | failed logins since the last datapoint |
/// | `listening_ports` | set | listening sockets, `proto/port` (`tcp/22`) |
/// | `remote_destinations` | set | remote peers contacted, `host:port` (`10.0.0.5:443`, `[::1]:53`) |
/// | `remote_ports` | set | remote ports contacted, `proto/port` |
/// | `flows` | flows | connections per remote endpoint and how they ended ([`Flow`]) |
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
    ("failed_attempts", MetricKind::Number),
    ("listening_ports", MetricKind::Set),
    ("remote_destinations", MetricKind::Set),
    ("remote_ports", MetricKind::Set),
    ("flows", MetricKind::Flows),
];

/// A known metric, in the order of [`KNOWN_METRICS`]: the index of its slot
/// in [`Metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Metric {
    /// `cpu_percent`
    CpuPercent,
    /// `memory_percent`
    MemoryPercent,
    /// `process_count`
    ProcessCount,
    /// `bytes_in`
    BytesIn,
    /// `bytes_out`
    BytesOut,
    /// `packets_in`
    PacketsIn,
    /// `packets_out`
    PacketsOut,
    /// `connection_attempts`
    ConnectionAttempts,
    /// `failed_logins`
    FailedLogins,
    /// `failed_attempts`
    FailedAttempts,
    /// `listening_ports`
    ListeningPorts,
    /// `remote_destinations`
    RemoteDestinations,
    /// `remote_ports`
    RemotePorts,
    /// `flows`
    Flows,
}

/// Number of known metrics.
const METRIC_COUNT: usize = KNOWN_METRICS.len();

impl Metric {
    /// Every metric, in the order of [`KNOWN_METRICS`].
    pub const ALL: [Metric; METRIC_COUNT] = [
        Metric::CpuPercent,
        Metric::MemoryPercent,
        Metric::ProcessCount,
        Metric::BytesIn,
        Metric::BytesOut,
        Metric::PacketsIn,
        Metric::PacketsOut,
        Metric::ConnectionAttempts,
        Metric::FailedLogins,
        Metric::FailedAttempts,
        Metric::ListeningPorts,
        Metric::RemoteDestinations,
        Metric::RemotePorts,
        Metric::Flows,
    ];

    /// Its name, as in profiles and evidence.
    pub fn name(self) -> &'static str {
        KNOWN_METRICS[self as usize].0
    }

    /// Whether it is a number or a set.
    pub fn kind(self) -> MetricKind {
        KNOWN_METRICS[self as usize].1
    }

    /// The metric of a name, `None` for an unknown one.
    pub fn from_name(name: &str) -> Option<Metric> {
        KNOWN_METRICS
            .iter()
            .position(|(n, _)| *n == name)
            .and_then(|i| Metric::ALL.get(i).copied())
    }
}

/// Slots in name order, so that iteration (and so the first error
/// [`Datapoint::validate`] reports) follows the names as a sorted map would.
const BY_NAME: [Metric; METRIC_COUNT] = [
    Metric::BytesIn,
    Metric::BytesOut,
    Metric::ConnectionAttempts,
    Metric::CpuPercent,
    Metric::FailedAttempts,
    Metric::FailedLogins,
    Metric::Flows,
    Metric::ListeningPorts,
    Metric::MemoryPercent,
    Metric::PacketsIn,
    Metric::PacketsOut,
    Metric::ProcessCount,
    Metric::RemoteDestinations,
    Metric::RemotePorts,
];

/// The values of one datapoint: one slot per known metric, so building and
/// reading a datapoint costs no map nodes and no name comparisons on the
/// ingest path.
///
/// A name outside [`KNOWN_METRICS`] given to [`Metrics::insert`] is kept
/// (the first one, truncated) and reported by [`Datapoint::validate`] as
/// [`DatapointError::UnknownMetric`], so that a typo in a datapoint source
/// is an error, never a silently empty metric.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    slots: [Option<Value>; METRIC_COUNT],
    unknown: Option<String>,
}

impl Metrics {
    /// No values.
    #[inline]
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Sets a known metric; returns the value it replaces.
    #[inline]
    pub fn set(&mut self, metric: Metric, value: Value) -> Option<Value> {
        self.slots[metric as usize].replace(value)
    }

    /// Sets a metric by name; returns the value it replaces. An unknown
    /// name makes the datapoint invalid (see the type's docs).
    pub fn insert(&mut self, name: &str, value: Value) -> Option<Value> {
        match Metric::from_name(name) {
            Some(m) => self.set(m, value),
            None => {
                if self.unknown.is_none() {
                    self.unknown = Some(truncate(name, 64));
                }
                None
            }
        }
    }

    /// A known metric's value.
    #[inline]
    pub fn metric(&self, metric: Metric) -> Option<&Value> {
        self.slots[metric as usize].as_ref()
    }

    /// A metric's value by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        Metric::from_name(name).and_then(|m| self.metric(m))
    }

    /// Whether the metric of this name has a value.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Names and values, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        BY_NAME
            .iter()
            .filter_map(|m| self.metric(*m).map(|v| (m.name(), v)))
    }

    /// Names with a value, in name order.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> {
        self.iter().map(|(n, _)| n)
    }

    /// Number of metrics with a value.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether no metric has a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: AsRef<str>> FromIterator<(K, Value)> for Metrics {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        let mut m = Metrics::new();
        for (k, v) in iter {
            m.insert(k.as_ref(), v);
        }
        m
    }
}

impl<K: AsRef<str>, const N: usize> From<[(K, Value); N]> for Metrics {
    fn from(values: [(K, Value); N]) -> Self {
        values.into_iter().collect()
    }
}

/// Whether a metric is a number or a set of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A finite number.
    Number,
    /// A set of short strings.
    Set,
    /// A list of [`Flow`]s.
    Flows,
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetricKind::Number => "number",
            MetricKind::Set => "set",
            MetricKind::Flows => "flows",
        })
    }
}

/// The kind of a known metric, `None` for an unknown name.
pub fn metric_kind(name: &str) -> Option<MetricKind> {
    Metric::from_name(name).map(Metric::kind)
}

/// One metric value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number (must be finite).
    Number(f64),
    /// A set of strings.
    Set(Set),
    /// Connections, one per remote endpoint and direction.
    Flows(Vec<Flow>),
}

/// The value of a set-valued metric: distinct strings, in ascending
/// (byte-wise) order.
///
/// A sample's sets are small (a listening port or two, a few peers), and
/// the gateway builds three of them per sample on one thread and frees them
/// on a detection shard. So a set is one sorted vector of
/// [`SmolStr`]s, which keep up to 23 bytes inline (`tcp/22`,
/// `10.0.0.5:443`): building a set costs one allocation, where a
/// `BTreeSet<String>` cost a tree node plus one per element. Lookups are
/// binary searches; building from an iterator sorts once.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Set(Vec<SmolStr>);

impl Set {
    /// The empty set (allocates nothing).
    pub const fn new() -> Set {
        Set(Vec::new())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The elements, in ascending order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator + Clone {
        self.0.iter().map(SmolStr::as_str)
    }

    fn position(&self, element: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|e| e.as_str().cmp(element))
    }

    /// Whether `element` is in the set.
    pub fn contains(&self, element: &str) -> bool {
        self.position(element).is_ok()
    }

    /// Adds an element; false if it was already there.
    pub fn insert(&mut self, element: impl Into<SmolStr>) -> bool {
        let element = element.into();
        match self.position(&element) {
            Ok(_) => false,
            Err(i) => {
                self.0.insert(i, element);
                true
            }
        }
    }

    /// The elements also in `other`, in ascending order.
    pub fn intersection<'a>(&'a self, other: &'a Set) -> impl Iterator<Item = &'a str> + 'a {
        self.iter().filter(|e| other.contains(e))
    }

    /// The elements not in `other`, in ascending order.
    pub fn difference<'a>(&'a self, other: &'a Set) -> impl Iterator<Item = &'a str> + 'a {
        self.iter().filter(|e| !other.contains(e))
    }
}

impl<S: Into<SmolStr>> FromIterator<S> for Set {
    /// Collects, then sorts and removes duplicates unless the elements
    /// came strictly ascending (the usual case: one element, or an agent's
    /// sorted list).
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut elements: Vec<SmolStr> = iter.into_iter().map(Into::into).collect();
        if !elements.is_sorted_by(|a, b| a < b) {
            elements.sort_unstable();
            elements.dedup();
        }
        Set(elements)
    }
}

impl<S: Into<SmolStr>, const N: usize> From<[S; N]> for Set {
    fn from(elements: [S; N]) -> Self {
        elements.into_iter().collect()
    }
}

impl fmt::Debug for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Set {
    type Item = &'a str;
    type IntoIter = std::iter::Map<std::slice::Iter<'a, SmolStr>, fn(&'a SmolStr) -> &'a str>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(SmolStr::as_str)
    }
}

impl serde::Serialize for Set {
    /// A JSON array of strings, as the `BTreeSet<String>` it replaces.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl Value {
    /// The kind of this value.
    pub fn kind(&self) -> MetricKind {
        match self {
            Value::Number(_) => MetricKind::Number,
            Value::Set(_) => MetricKind::Set,
            Value::Flows(_) => MetricKind::Flows,
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
            Value::Flows(flows) => write!(f, "[{} flows]", flows.len()),
        }
    }
}

/// What one device reported at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Datapoint {
    /// The reporting device. Shared: a gateway session stamps every
    /// datapoint it makes with the same id, so each one costs a reference
    /// count, not an allocation (freed on another thread).
    pub device: Arc<str>,
    /// When the values were measured (device time as stamped by ingest).
    pub time: OffsetDateTime,
    /// The values, at most one per known metric.
    pub metrics: Metrics,
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
    /// A flow whose counts do not add up.
    #[error("metric `flows`: {why}")]
    BadFlow {
        /// What is wrong with it.
        why: &'static str,
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
        if let Some(name) = &self.metrics.unknown {
            return Err(DatapointError::UnknownMetric { name: name.clone() });
        }
        for m in BY_NAME {
            let Some(value) = self.metrics.metric(m) else {
                continue;
            };
            let (name, kind) = (m.name(), m.kind());
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
                Value::Flows(flows) if flows.len() > MAX_FLOWS => {
                    return Err(DatapointError::TooLarge {
                        name: name.to_string(),
                    });
                }
                Value::Flows(flows) => {
                    if let Some(why) = flows.iter().find_map(|f| f.check().err()) {
                        return Err(DatapointError::BadFlow { why });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn every_known_metric_has_its_slot_and_kind() {
        assert_eq!(Metric::ALL.len(), KNOWN_METRICS.len());
        for (i, m) in Metric::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i);
            assert_eq!(Metric::from_name(m.name()), Some(*m));
            assert_eq!(metric_kind(m.name()), Some(m.kind()));
        }
        let mut names: Vec<&str> = BY_NAME.iter().map(|m| m.name()).collect();
        assert!(names.is_sorted(), "{names:?}");
        names.dedup();
        assert_eq!(names.len(), KNOWN_METRICS.len());
        assert_eq!(Metric::from_name("cpu"), None);
    }

    #[test]
    fn sets_match_the_btree_set_they_replace() {
        use std::collections::BTreeSet;
        // Deterministic pseudo-random elements: duplicates, any order,
        // short (inline) and long (heap) strings, non-ASCII.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [0usize, 1, 2, 3, 16, 17, 100, 1000] {
            let items: Vec<String> = (0..n)
                .map(|_| {
                    let r = next();
                    let e = format!("e{}", r % (n as u64 / 2 + 1));
                    match r % 3 {
                        0 => e,
                        1 => format!("{e}-{}", "é".repeat(12)),
                        _ => format!("[2001:db8::{:x}]:{}", r % 7, r % 5),
                    }
                })
                .collect();
            let set: Set = items.iter().collect();
            let tree: BTreeSet<&str> = items.iter().map(String::as_str).collect();
            assert_eq!(
                set.iter().collect::<Vec<_>>(),
                tree.iter().copied().collect::<Vec<_>>()
            );
            assert_eq!(set.len(), tree.len());
            let mut built = Set::new();
            for e in items.iter().rev() {
                let was_there = built.contains(e);
                assert_eq!(built.insert(e.as_str()), !was_there);
            }
            assert_eq!(built, set, "{n} items");
            let other: Set = items.iter().step_by(3).collect();
            let other_tree: BTreeSet<&str> = other.iter().collect();
            assert!(
                set.intersection(&other)
                    .eq(tree.intersection(&other_tree).copied())
            );
            assert!(
                set.difference(&other)
                    .eq(tree.difference(&other_tree).copied())
            );
            for e in &items {
                assert!(set.contains(e));
            }
            assert!(!set.contains("absent"));
        }
        let s = Set::from(["tcp/8080", "tcp/22", "tcp/22"]);
        assert_eq!(format!("{s:?}"), r#"{"tcp/22", "tcp/8080"}"#);
        assert_eq!(Value::Set(s.clone()).to_string(), "{tcp/22,tcp/8080}");
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"["tcp/22","tcp/8080"]"#
        );
        assert!(Set::new().is_empty());
    }

    #[test]
    fn metrics_behave_like_the_map_they_replace() {
        let mut m = Metrics::from([
            ("remote_ports", Value::Set(Set::from(["tcp/1"]))),
            ("cpu_percent", Value::Number(1.0)),
        ]);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m.insert("cpu_percent", Value::Number(2.0)),
            Some(Value::Number(1.0))
        );
        assert_eq!(m.get("cpu_percent"), Some(&Value::Number(2.0)));
        assert!(!m.contains_key("bytes_in"));
        // Name order, as a sorted map iterates.
        assert_eq!(
            m.keys().collect::<Vec<_>>(),
            ["cpu_percent", "remote_ports"]
        );
        let dp = |metrics| Datapoint {
            device: "d".into(),
            time: datetime!(2026-01-01 0:00 UTC),
            metrics,
        };
        assert_eq!(dp(m.clone()).validate(), Ok(()));
        // An unknown name is kept for validation, never dropped silently.
        m.insert("cpu_pecrent", Value::Number(3.0));
        assert_eq!(m.len(), 2);
        assert_eq!(
            dp(m).validate(),
            Err(DatapointError::UnknownMetric {
                name: "cpu_pecrent".into()
            })
        );
        // A value of the wrong kind in a slot is caught too.
        let wrong = Metrics::from([("listening_ports", Value::Number(1.0))]);
        assert!(matches!(
            dp(wrong).validate(),
            Err(DatapointError::WrongKind { .. })
        ));
    }
}
