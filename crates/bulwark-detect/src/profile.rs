//! Behaviour profiles: the TOML document, its validation and the
//! validated [`Profile`].

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;
use time::Duration;

use crate::metric::{Metric, MetricKind, Set, metric_kind};

/// Most behaviours in one profile.
pub const MAX_BEHAVIOURS: usize = 256;
/// Longest window, warm-up or other duration in a profile.
pub const MAX_WINDOW: Duration = Duration::days(7);
/// Largest `consecutive`, `min_samples` or fan-out threshold.
pub const MAX_COUNT: u64 = 4096;
/// Most strings in a set threshold.
pub const MAX_THRESHOLD_SET: usize = 1024;
/// Largest profile document, in bytes.
pub const MAX_PROFILE_BYTES: usize = 1 << 20;

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Low,
    /// Worth a look.
    Medium,
    /// Act soon.
    High,
    /// Act now.
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// What the control plane should do when a behaviour fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Move the device to the quarantine group.
    Quarantine,
}

/// A rule's comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    /// Number metric above the threshold.
    Greater(f64),
    /// Number metric below the threshold.
    Less(f64),
    /// Set metric holds at least one of these strings (a deny-list).
    InSet(Set),
    /// Set metric holds a string outside these (an allow-list).
    NotInSet(Set),
    /// Metric differs from its value in the device's previous datapoint
    /// carrying it (the first datapoint only sets the baseline). Like every
    /// rule it fires once per run: a metric changing at every datapoint
    /// fires once, then again after a datapoint without a change.
    Changed,
}

/// How long a rule's condition must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// For this many consecutive datapoints carrying the metric.
    Consecutive(u32),
    /// Continuously for at least this long (first to latest datapoint of
    /// the streak).
    Window(Duration),
}

/// What a behaviour detects.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A fixed condition that must persist.
    Rule {
        /// The comparison.
        operator: Operator,
        /// How long it must hold.
        persistence: Persistence,
    },
    /// Per-device EWMA mean and variance; fires when `|z| > threshold`.
    ZScore {
        /// EWMA weight of the newest sample, in (0, 1].
        alpha: f64,
        /// The |z| above which it fires.
        threshold: f64,
        /// Samples before it may fire.
        min_samples: u32,
    },
    /// A set element never seen during the device's warm-up.
    Novelty {
        /// Learning period from the device's first datapoint.
        warmup: Duration,
    },
    /// More than `threshold` distinct set elements within `window`.
    Fanout {
        /// Distinct elements allowed.
        threshold: u32,
        /// The sliding window.
        window: Duration,
    },
    /// Device value far from the group's median, in MAD units.
    PeerOutlier {
        /// The robust |z| above which it fires.
        threshold: f64,
        /// Devices (including this one) needed before it may fire.
        min_peers: u32,
    },
    /// An element of a set metric (a listening port, a destination) that
    /// at most a `threshold` share of the device's group holds, at 95 %
    /// confidence: what (almost) no peer does. Needs at least `min_peers`
    /// devices in the group; an element counts as a device's for `window`
    /// after it last reported it. Per-device state is bounded by [`crate::MAX_RARITY_BYTES`].
    Rarity {
        /// The largest share of the group, in `(0, 0.5]`, that still
        /// counts as rare.
        threshold: f64,
        /// Devices in the group (including this one) needed before it may
        /// fire.
        min_peers: u32,
        /// How long an element stays a device's after it last reported it.
        window: Duration,
    },
    /// What the device's flows mean (see [`Semantic`]): a graded score in
    /// `[0, 1]` per flow, from the first flow on.
    Semantic {
        /// Which behaviour.
        semantic: Semantic,
        /// The score at or above which it fires, in `(0, 1]`.
        threshold: f64,
        /// How far back it counts.
        window: Duration,
    },
}

/// The behaviour semantics over the `flows` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Semantic {
    /// Many hosts on one port, or many ports on one host, mostly unanswered.
    Scan,
    /// Connection or one-way packet rate towards one host far above what
    /// devices do.
    Flood,
    /// Retry storms to one endpoint, regular beaconing, unusual service
    /// ports.
    C2,
    /// Many short connections to login services.
    BruteForce,
}

impl Semantic {
    /// Every semantic behaviour.
    pub const ALL: [Semantic; 4] = [
        Semantic::Scan,
        Semantic::Flood,
        Semantic::C2,
        Semantic::BruteForce,
    ];

    /// The kind's name in profile documents.
    pub fn name(self) -> &'static str {
        match self {
            Semantic::Scan => "scan",
            Semantic::Flood => "flood",
            Semantic::C2 => "c2",
            Semantic::BruteForce => "bruteforce",
        }
    }

    /// The window used when a profile gives none.
    pub fn default_window(self) -> Duration {
        match self {
            Semantic::Scan => Duration::minutes(5),
            Semantic::Flood => Duration::seconds(10),
            Semantic::C2 => Duration::minutes(10),
            Semantic::BruteForce => Duration::minutes(5),
        }
    }

    fn from_name(name: &str) -> Option<Semantic> {
        Semantic::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The largest share of a group that counts as rare when a `rarity`
/// behaviour gives no threshold.
pub const DEFAULT_RARITY_SHARE: f64 = 0.01;

/// The alert threshold of a semantic behaviour when a profile gives none.
pub const DEFAULT_SEMANTIC_THRESHOLD: f64 = 0.5;

impl Kind {
    /// What its raw score is divided by to give the combined score's
    /// scale, where 1 is the alert threshold.
    pub(crate) fn scale(&self) -> f64 {
        match self {
            Kind::Rule { .. } | Kind::Novelty { .. } | Kind::Rarity { .. } => 1.0,
            Kind::ZScore { threshold, .. } | Kind::PeerOutlier { threshold, .. } => {
                threshold.max(f64::MIN_POSITIVE)
            }
            Kind::Fanout { threshold, .. } => f64::from(*threshold).max(1.0),
            Kind::Semantic { threshold, .. } => threshold.max(f64::MIN_POSITIVE),
        }
    }

    /// The kind's name in profile documents: `rule`, `zscore`, `novelty`,
    /// `fanout`, `peer-outlier`, or a [`Semantic`] name.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Rule { .. } => "rule",
            Kind::ZScore { .. } => "zscore",
            Kind::Novelty { .. } => "novelty",
            Kind::Fanout { .. } => "fanout",
            Kind::PeerOutlier { .. } => "peer-outlier",
            Kind::Rarity { .. } => "rarity",
            Kind::Semantic { semantic, .. } => semantic.name(),
        }
    }
}

/// One validated behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// Unique within the profile.
    pub name: String,
    /// The metric it watches.
    pub metric: String,
    /// The same metric, resolved once when the profile is validated.
    pub(crate) metric_id: Metric,
    /// Severity of its alerts.
    pub severity: Severity,
    /// Optional action carried by its alerts.
    pub action: Option<Action>,
    /// What it detects.
    pub kind: Kind,
}

/// A validated profile for one device group.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The device group it applies to.
    pub group: String,
    /// The profile version, copied onto every alert (`version = 3` in the
    /// document becomes `"3"`).
    pub version: String,
    /// The behaviours, in document order.
    pub behaviours: Vec<Behaviour>,
}

/// Every problem found in a profile document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid profile: {}", .problems.join("; "))]
pub struct ProfileError {
    /// One line per problem, in document order.
    pub problems: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    group: String,
    version: RawVersion,
    #[serde(default, rename = "behaviour")]
    behaviours: Vec<RawBehaviour>,
}

/// `version = "2026-11-01"` or `version = 3`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawVersion {
    Text(String),
    Number(i64),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawThreshold {
    Number(f64),
    Strings(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBehaviour {
    name: String,
    metric: String,
    severity: Severity,
    #[serde(default)]
    action: Option<Action>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    operator: Option<String>,
    #[serde(default)]
    threshold: Option<RawThreshold>,
    #[serde(default)]
    consecutive: Option<i64>,
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    alpha: Option<f64>,
    #[serde(default)]
    min_samples: Option<i64>,
    #[serde(default)]
    warmup: Option<String>,
    #[serde(default)]
    min_peers: Option<i64>,
}

/// Parses `"90s"`, `"15m"`, `"2h"`, `"7d"` (a whole number and one unit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("duration `{s}` must be a whole number and a unit (s, m, h, d)"))?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n.min(i64::MAX / 60)),
        "h" => Duration::hours(n.min(i64::MAX / 3600)),
        "d" => Duration::days(n.min(i64::MAX / 86400)),
        _ => return Err(format!("duration `{s}` has no unit (s, m, h, d)")),
    };
    if d <= Duration::ZERO || d > MAX_WINDOW {
        return Err(format!("duration `{s}` must be between 1s and 7d"));
    }
    Ok(d)
}

impl Profile {
    /// Parses and validates a TOML profile, reporting every problem.
    pub fn from_toml(text: &str) -> Result<Profile, ProfileError> {
        let fail = |p: String| ProfileError { problems: vec![p] };
        if text.len() > MAX_PROFILE_BYTES {
            return Err(fail(format!(
                "document is {} bytes (at most {MAX_PROFILE_BYTES})",
                text.len()
            )));
        }
        let raw: RawProfile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => fail(format!("line {line}: {}", e.message())),
                None => fail(e.message().to_owned()),
            }
        })?;
        validate(raw)
    }
}

fn validate(raw: RawProfile) -> Result<Profile, ProfileError> {
    let mut problems = Vec::new();
    let version = match raw.version {
        RawVersion::Text(s) => s,
        RawVersion::Number(n) => n.to_string(),
    };
    if raw.group.is_empty() || raw.group.len() > 128 {
        problems.push("group must be 1..=128 bytes".to_owned());
    }
    if version.is_empty() || version.len() > 64 {
        problems.push("version must be 1..=64 bytes".to_owned());
    }
    if raw.behaviours.len() > MAX_BEHAVIOURS {
        problems.push(format!(
            "{} behaviours (at most {MAX_BEHAVIOURS})",
            raw.behaviours.len()
        ));
        return Err(ProfileError { problems });
    }
    let mut names = BTreeSet::new();
    let mut behaviours = Vec::new();
    for (i, b) in raw.behaviours.into_iter().enumerate() {
        let label = if b.name.is_empty() || b.name.len() > 128 {
            problems.push(format!("behaviour #{}: name must be 1..=128 bytes", i + 1));
            format!("behaviour #{}", i + 1)
        } else {
            format!("behaviour `{}`", b.name)
        };
        if !names.insert(b.name.clone()) {
            problems.push(format!("{label}: duplicate name"));
        }
        let before = problems.len();
        let kind = behaviour_kind(&b, &label, &mut problems);
        if let (Some(kind), Some(metric_id), true) =
            (kind, Metric::from_name(&b.metric), problems.len() == before)
        {
            behaviours.push(Behaviour {
                name: b.name,
                metric: b.metric,
                metric_id,
                severity: b.severity,
                action: b.action,
                kind,
            });
        }
    }
    if problems.is_empty() {
        Ok(Profile {
            group: raw.group,
            version,
            behaviours,
        })
    } else {
        Err(ProfileError { problems })
    }
}

fn count(v: Option<i64>, field: &str, default: u64, label: &str, p: &mut Vec<String>) -> u32 {
    let v = v.unwrap_or(default as i64);
    if v < 1 || v as u64 > MAX_COUNT {
        p.push(format!("{label}: {field} must be 1..={MAX_COUNT}"));
        return 1;
    }
    v as u32
}

fn number(t: &Option<RawThreshold>, label: &str, p: &mut Vec<String>) -> f64 {
    match t {
        Some(RawThreshold::Number(n)) if n.is_finite() => *n,
        _ => {
            p.push(format!("{label}: threshold must be a finite number"));
            0.0
        }
    }
}

fn duration(v: &Option<String>, field: &str, label: &str, p: &mut Vec<String>) -> Duration {
    match v.as_deref().map(parse_duration) {
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            p.push(format!("{label}: {field}: {e}"));
            Duration::SECOND
        }
        None => {
            p.push(format!("{label}: {field} is required"));
            Duration::SECOND
        }
    }
}

fn behaviour_kind(b: &RawBehaviour, label: &str, p: &mut Vec<String>) -> Option<Kind> {
    let Some(metric) = metric_kind(&b.metric) else {
        p.push(format!("{label}: unknown metric `{}`", b.metric));
        return None;
    };
    let kind = b.kind.as_deref().unwrap_or("rule");
    let mut forbid = |present: bool, field: &str| {
        if present {
            p.push(format!(
                "{label}: `{field}` does not apply to kind `{kind}`"
            ));
        }
    };
    // Fields that belong to other kinds are errors, not silently ignored.
    if kind != "rule" {
        forbid(b.operator.is_some(), "operator");
        forbid(b.consecutive.is_some(), "consecutive");
    }
    if kind != "zscore" {
        forbid(b.alpha.is_some(), "alpha");
        forbid(b.min_samples.is_some(), "min_samples");
    }
    if kind != "novelty" {
        forbid(b.warmup.is_some(), "warmup");
    }
    if !matches!(kind, "peer-outlier" | "rarity") {
        forbid(b.min_peers.is_some(), "min_peers");
    }
    let semantic = Semantic::from_name(kind);
    if !matches!(kind, "rule" | "fanout" | "rarity") && semantic.is_none() {
        forbid(b.window.is_some(), "window");
    }
    if kind == "novelty" {
        forbid(b.threshold.is_some(), "threshold");
    }
    let need = |want: MetricKind, p: &mut Vec<String>| {
        if metric != want {
            p.push(format!(
                "{label}: kind `{kind}` needs a {want} metric, `{}` is a {metric}",
                b.metric
            ));
        }
    };
    Some(match kind {
        _ if semantic.is_some() => {
            need(MetricKind::Flows, p);
            let threshold = match &b.threshold {
                None => DEFAULT_SEMANTIC_THRESHOLD,
                t => number(t, label, p),
            };
            if !(threshold > 0.0 && threshold <= 1.0) {
                p.push(format!("{label}: threshold must be a score in (0, 1]"));
            }
            let semantic = semantic.unwrap_or(Semantic::Scan);
            Kind::Semantic {
                semantic,
                threshold,
                window: match b.window {
                    Some(_) => duration(&b.window, "window", label, p),
                    None => semantic.default_window(),
                },
            }
        }
        "rule" => {
            if metric == MetricKind::Flows {
                p.push(format!(
                    "{label}: kind `rule` needs a number or set metric, `flows` is a list of flows"
                ));
            }
            let op = b.operator.as_deref().unwrap_or("");
            let operator = match op {
                ">" | "<" => {
                    need(MetricKind::Number, p);
                    let t = number(&b.threshold, label, p);
                    if op == ">" {
                        Operator::Greater(t)
                    } else {
                        Operator::Less(t)
                    }
                }
                "in-set" | "not-in-set" => {
                    need(MetricKind::Set, p);
                    let set: Set = match &b.threshold {
                        Some(RawThreshold::Strings(s)) if s.len() <= MAX_THRESHOLD_SET => {
                            s.iter().collect()
                        }
                        _ => {
                            p.push(format!(
                                "{label}: threshold must be a list of at most {MAX_THRESHOLD_SET} strings"
                            ));
                            Set::new()
                        }
                    };
                    if op == "in-set" {
                        Operator::InSet(set)
                    } else {
                        Operator::NotInSet(set)
                    }
                }
                "changed" => {
                    if b.threshold.is_some() {
                        p.push(format!("{label}: operator `changed` takes no threshold"));
                    }
                    Operator::Changed
                }
                "" => {
                    p.push(format!("{label}: operator is required"));
                    return None;
                }
                other => {
                    p.push(format!(
                        "{label}: unknown operator `{other}` (>, <, in-set, not-in-set, changed)"
                    ));
                    return None;
                }
            };
            let persistence = match (&b.consecutive, &b.window) {
                (Some(_), Some(_)) => {
                    p.push(format!("{label}: give consecutive or window, not both"));
                    Persistence::Consecutive(1)
                }
                (_, Some(_)) => Persistence::Window(duration(&b.window, "window", label, p)),
                (c, None) => Persistence::Consecutive(count(*c, "consecutive", 1, label, p)),
            };
            Kind::Rule {
                operator,
                persistence,
            }
        }
        "zscore" => {
            need(MetricKind::Number, p);
            let threshold = number(&b.threshold, label, p);
            if threshold <= 0.0 {
                p.push(format!("{label}: threshold must be positive"));
            }
            let alpha = b.alpha.unwrap_or(0.1);
            if !(alpha > 0.0 && alpha <= 1.0) {
                p.push(format!("{label}: alpha must be in (0, 1]"));
            }
            Kind::ZScore {
                alpha,
                threshold,
                min_samples: count(b.min_samples, "min_samples", 10, label, p),
            }
        }
        "novelty" => {
            need(MetricKind::Set, p);
            Kind::Novelty {
                warmup: duration(&b.warmup, "warmup", label, p),
            }
        }
        "fanout" => {
            need(MetricKind::Set, p);
            let t = number(&b.threshold, label, p);
            if !(t >= 1.0 && t <= MAX_COUNT as f64 && t.fract() == 0.0) {
                p.push(format!(
                    "{label}: threshold must be a whole number 1..={MAX_COUNT}"
                ));
            }
            Kind::Fanout {
                threshold: t.clamp(1.0, MAX_COUNT as f64) as u32,
                window: duration(&b.window, "window", label, p),
            }
        }
        "peer-outlier" => {
            need(MetricKind::Number, p);
            let threshold = number(&b.threshold, label, p);
            if threshold <= 0.0 {
                p.push(format!("{label}: threshold must be positive"));
            }
            let min_peers = count(b.min_peers, "min_peers", 5, label, p);
            if min_peers < 3 {
                p.push(format!("{label}: min_peers must be at least 3"));
            }
            Kind::PeerOutlier {
                threshold,
                min_peers,
            }
        }
        "rarity" => {
            need(MetricKind::Set, p);
            let threshold = match &b.threshold {
                None => DEFAULT_RARITY_SHARE,
                t => number(t, label, p),
            };
            if !(threshold > 0.0 && threshold <= 0.5) {
                p.push(format!(
                    "{label}: threshold must be a share of the group in (0, 0.5]"
                ));
            }
            let min_peers = count(b.min_peers, "min_peers", 100, label, p);
            if min_peers < 3 {
                p.push(format!("{label}: min_peers must be at least 3"));
            }
            Kind::Rarity {
                threshold,
                min_peers,
                window: match b.window {
                    Some(_) => duration(&b.window, "window", label, p),
                    None => Duration::hours(1),
                },
            }
        }
        other => {
            p.push(format!(
                "{label}: unknown kind `{other}` (rule, zscore, novelty, fanout, peer-outlier, rarity, scan, flood, c2, bruteforce)"
            ));
            return None;
        }
    })
}
