//! The detection engine: per-device state, one step per datapoint.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

/// The maps keyed by device id, looked up for every datapoint: foldhash
/// (seeded per process) instead of SipHash, which showed up at ~2 % of
/// gateway ingest. On the gateway the ids are UUIDs the server issued,
/// not keys a device can choose, and an engine holds at most
/// `MAX_DEVICES` of them.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use time::{Duration, OffsetDateTime};

use crate::flow::Flow;
use crate::metric::{Datapoint, DatapointError, Set, Value};
use crate::profile::{Action, Behaviour, Kind, Operator, Persistence, Profile, Semantic, Severity};
use crate::rarity::{self, RarityGroup};
use crate::semantics::{Assessment, BruteState, C2State, FloodState, ScanState};

/// How far behind a device's latest datapoint a datapoint may be and still
/// be observed; it is then processed as if it arrived at the latest time.
pub const REORDER_TOLERANCE: Duration = Duration::seconds(60);
/// How far ahead of the caller's clock [`Engine::observe_at`] accepts.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);
/// Most evidence entries on one alert (the most recent are kept).
pub const MAX_EVIDENCE: usize = 32;
/// Most set elements kept in one evidence entry.
pub const MAX_EVIDENCE_ELEMENTS: usize = 16;
/// Most elements a novelty behaviour remembers per device.
pub const MAX_KNOWN_ELEMENTS: usize = 1024;
/// Most devices one engine (or one shard) tracks.
pub const MAX_DEVICES: usize = 1_000_000;
/// Most devices in a peer-outlier comparison group.
pub const MAX_PEERS: usize = 100_000;
/// Largest score reported (keeps |z| finite against a zero variance).
pub const MAX_SCORE: f64 = 1e12;
const MIN_STDDEV: f64 = 1e-9;

/// One datapoint value that made a behaviour fire.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// The datapoint's own time (not the reordering-adjusted one).
    pub time: OffsetDateTime,
    /// The metric.
    pub metric: String,
    /// The value, or for sets the elements that mattered (at most
    /// [`MAX_EVIDENCE_ELEMENTS`]).
    pub value: Value,
}

/// A behaviour fired for a device.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The device.
    pub device: String,
    /// The behaviour's name.
    pub behaviour: String,
    /// The behaviour's kind ([`crate::Kind::name`]).
    pub kind: &'static str,
    /// The behaviour's severity.
    pub severity: Severity,
    /// Time of the datapoint that fired it.
    pub time: OffsetDateTime,
    /// The behaviour's action, if any.
    pub action: Option<Action>,
    /// The datapoints that fired it, oldest first.
    pub evidence: Vec<Evidence>,
    /// Human-readable explanation.
    pub reason: String,
    /// The profile version that produced it.
    pub profile_version: String,
    /// The behaviour's score at that datapoint (|z|, fan-out ratio, ...).
    pub score: f64,
}

/// The result of one step: alerts, the combined score and the reasons
/// that contributed to it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// Alerts fired by this datapoint (once per episode: a scan of 500
    /// hosts raises one alert, not 500).
    pub alerts: Vec<Alert>,
    /// The combined score: the highest of the behaviours' scores, each
    /// divided by its own alert threshold, so that 1 means "at its
    /// threshold" whatever the kind (|z| / threshold for z-score and
    /// peer-outlier, distinct / threshold for fan-out, new elements for
    /// novelty, 1 for a rule whose condition held long enough, score /
    /// threshold for the semantic kinds). 0 when none applied.
    pub score: f64,
    /// Whether some behaviour's alert condition holds at this datapoint,
    /// alert raised now or earlier in the same episode: what a per-record
    /// verdict (the `alert` column of `detect replay`) reports.
    pub flagged: bool,
    /// The behaviours that scored at least half their threshold, highest
    /// first (at most [`MAX_REASONS`]).
    pub reasons: Vec<Contribution>,
}

/// Most contributions kept on one [`Observation`].
pub const MAX_REASONS: usize = 8;

/// One behaviour's part in an [`Observation`].
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// The behaviour's name.
    pub behaviour: String,
    /// Its kind.
    pub kind: &'static str,
    /// Its score divided by its alert threshold.
    pub score: f64,
    /// Whether its alert condition holds.
    pub holds: bool,
    /// What it saw, with the rate or spacing and the baseline.
    pub detail: String,
}

/// Latest value of each device for each peer-outlier behaviour; shared
/// between the shards of a [`crate::ShardedEngine`].
#[derive(Debug, Default)]
pub(crate) struct PeerTable {
    by_behaviour: HashMap<usize, PeerGroup>,
    /// Rarity behaviours: per behaviour, per device group (the groups
    /// that share the `*` profile are each their own peers).
    rarity: HashMap<usize, HashMap<String, RarityGroup>>,
}

/// Groups up to this size get their median and spread recomputed at every
/// datapoint (exact). Larger ones reuse them until a sixty-fourth of the
/// group has reported since: the computation sorts the whole group, and
/// doing that per datapoint would cost O(n log n) each in a large fleet.
pub const PEER_EXACT_UP_TO: usize = 1024;

/// One behaviour's peer values and its cached statistics.
#[derive(Debug, Default)]
struct PeerGroup {
    values: HashMap<String, f64>,
    /// (median, robust scale, devices) at the last computation.
    stats: Option<(f64, f64, usize)>,
    /// Updates since `stats` was computed.
    stale: usize,
}

impl PeerGroup {
    fn update(&mut self, device: &str, x: f64) {
        if let Some(v) = self.values.get_mut(device) {
            *v = x;
        } else if self.values.len() < MAX_PEERS {
            self.values.insert(device.to_owned(), x);
        }
        self.stale += 1;
    }

    fn remove(&mut self, device: &str) {
        if self.values.remove(device).is_some() {
            self.stale += 1;
        }
    }

    /// Median and robust scale of the group, recomputed when stale.
    fn stats(&mut self) -> (f64, f64, usize) {
        let n = self.values.len();
        let fresh = n > PEER_EXACT_UP_TO && self.stale <= n / 64;
        if let (Some(stats), true) = (self.stats, fresh) {
            return stats;
        }
        let mut values: Vec<f64> = self.values.values().copied().collect();
        let med = median(&mut values);
        let mut dev: Vec<f64> = values.iter().map(|v| (v - med).abs()).collect();
        let mut scale = 1.4826 * median(&mut dev);
        if scale == 0.0 {
            // More than half the group agrees exactly: fall back to the
            // mean absolute deviation so a lone outlier still scores.
            scale = 1.2533 * dev.iter().sum::<f64>() / dev.len() as f64;
        }
        let stats = (med, scale, n);
        self.stats = Some(stats);
        self.stale = 0;
        stats
    }
}

pub(crate) type SharedPeers = Arc<Mutex<PeerTable>>;

#[derive(Debug)]
enum State {
    Rule {
        streak: VecDeque<Evidence>,
        streak_len: u64,
        streak_start: Option<OffsetDateTime>,
        fired: bool,
        /// For `changed`: the previous value as shown in evidence (a set
        /// capped at [`MAX_EVIDENCE_ELEMENTS`]) and, for a set larger than
        /// that, the digest of all of it.
        previous: Option<(Value, Option<SetDigest>)>,
    },
    ZScore {
        n: u64,
        mean: f64,
        var: f64,
    },
    Novelty {
        known: BTreeSet<String>,
    },
    Fanout {
        seen: BTreeMap<String, (OffsetDateTime, OffsetDateTime)>,
        fired: bool,
    },
    PeerOutlier {
        fired: bool,
    },
    /// Kept in the shared [`PeerTable`]: it is about the group.
    Rarity,
    Semantic {
        state: Box<SemanticState>,
        fired: bool,
        /// Unix seconds until which the episode counts as going on.
        active_until: f64,
    },
}

#[derive(Debug)]
enum SemanticState {
    Scan(ScanState),
    Flood(FloodState),
    C2(C2State),
    BruteForce(BruteState),
}

impl SemanticState {
    fn new(s: Semantic) -> SemanticState {
        match s {
            Semantic::Scan => SemanticState::Scan(ScanState::new()),
            Semantic::Flood => SemanticState::Flood(FloodState::new()),
            Semantic::C2 => SemanticState::C2(C2State::new()),
            Semantic::BruteForce => SemanticState::BruteForce(BruteState::new()),
        }
    }

    fn assess(&mut self, f: &Flow, now: f64, window: f64, explain: f64) -> Assessment {
        match self {
            SemanticState::Scan(s) => s.assess(f, now, window, explain),
            SemanticState::Flood(s) => s.assess(f, now, window, explain),
            SemanticState::C2(s) => s.assess(f, now, window, explain),
            SemanticState::BruteForce(s) => s.assess(f, now, window, explain),
        }
    }
}

/// Seconds since the Unix epoch, as the semantic tables keep time.
fn unix_secs(t: OffsetDateTime) -> f64 {
    t.unix_timestamp_nanos() as f64 / 1e9
}

#[derive(Debug)]
struct DeviceState {
    first_seen: OffsetDateTime,
    clock: OffsetDateTime,
    states: Vec<State>,
}

/// Runs a [`Profile`]'s behaviours over datapoints, keeping bounded
/// per-device state. Single-threaded; see [`crate::ShardedEngine`].
///
/// # Time
///
/// The engine never reads a clock: each datapoint carries its time.
/// - A datapoint up to [`REORDER_TOLERANCE`] behind the device's latest
///   one is processed as if it had the latest time (windows stay
///   monotonic); evidence keeps its real time.
/// - Further behind: rejected with [`DatapointError::Stale`].
/// - Ahead: accepted, and the device's clock jumps forward (windows
///   expire naturally). A device that sends one far-future time would
///   then have its honest datapoints rejected as stale, so callers that
///   have a clock should use [`Engine::observe_at`], which rejects times
///   more than [`MAX_CLOCK_SKEW`] ahead of it.
#[derive(Debug)]
pub struct Engine {
    profile: Arc<Profile>,
    devices: HashMap<String, DeviceState>,
    peers: SharedPeers,
}

fn cap_set<'a>(it: impl Iterator<Item = &'a str>) -> Value {
    Value::Set(it.take(MAX_EVIDENCE_ELEMENTS).collect())
}

/// SHA-256 of a set's elements, each preceded by its length: tells a
/// large set from another without keeping it, and a device cannot choose
/// a different set with the same digest.
type SetDigest = [u8; 32];

fn set_digest(s: &Set) -> SetDigest {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for e in s {
        h.update((e.len() as u64).to_le_bytes());
        h.update(e.as_bytes());
    }
    h.finalize().into()
}

fn capped_score(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.min(MAX_SCORE) }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Engine {
    /// An engine with no devices yet.
    pub fn new(profile: Profile) -> Engine {
        Engine::with_peers(Arc::new(profile), SharedPeers::default())
    }

    pub(crate) fn with_peers(profile: Arc<Profile>, peers: SharedPeers) -> Engine {
        Engine {
            profile,
            devices: HashMap::default(),
            peers,
        }
    }

    /// The profile it runs.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Devices with state.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// Drops a device's state (decommissioned, re-imaged); its next
    /// datapoint starts a new warm-up.
    pub fn forget(&mut self, device: &str) {
        self.devices.remove(device);
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        for group in peers.by_behaviour.values_mut() {
            group.remove(device);
        }
        for groups in peers.rarity.values_mut() {
            for group in groups.values_mut() {
                group.forget(device);
            }
        }
    }

    /// Observes one datapoint and returns the alerts it fires.
    pub fn observe(&mut self, dp: &Datapoint) -> Result<Vec<Alert>, DatapointError> {
        self.observe_scored(dp).map(|o| o.alerts)
    }

    /// Like [`Engine::observe`], but first rejects a datapoint more than
    /// [`MAX_CLOCK_SKEW`] ahead of `now` (the caller's clock).
    pub fn observe_at(
        &mut self,
        dp: &Datapoint,
        now: OffsetDateTime,
    ) -> Result<Vec<Alert>, DatapointError> {
        not_from_future(dp, now)?;
        self.observe(dp)
    }

    /// Like [`Engine::observe_at`], for a device of `group`: the peers of
    /// rarity behaviours are the devices of the same group (an engine
    /// running the `*` profile serves many groups). [`Engine::observe`]
    /// puts every device in one group.
    pub fn observe_in_group(
        &mut self,
        dp: &Datapoint,
        group: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Alert>, DatapointError> {
        not_from_future(dp, now)?;
        self.observe_grouped(dp, group).map(|o| o.alerts)
    }

    /// Observes one datapoint; returns its alerts and highest score.
    pub fn observe_scored(&mut self, dp: &Datapoint) -> Result<Observation, DatapointError> {
        self.observe_grouped(dp, "")
    }

    fn observe_grouped(
        &mut self,
        dp: &Datapoint,
        group: &str,
    ) -> Result<Observation, DatapointError> {
        dp.validate()?;
        let profile = Arc::clone(&self.profile);
        // One lookup for a known device; the id is copied only for a new
        // one, not once per datapoint.
        let device = match self.devices.get_mut(&*dp.device) {
            Some(device) => device,
            None => {
                if self.devices.len() >= MAX_DEVICES {
                    return Err(DatapointError::TooManyDevices { max: MAX_DEVICES });
                }
                self.devices
                    .entry(dp.device.to_string())
                    .or_insert_with(|| DeviceState {
                        first_seen: dp.time,
                        clock: dp.time,
                        states: profile.behaviours.iter().map(initial_state).collect(),
                    })
            }
        };
        let t = if dp.time < device.clock {
            let behind = device.clock - dp.time;
            if behind > REORDER_TOLERANCE {
                return Err(DatapointError::Stale {
                    time: dp.time,
                    behind_secs: behind.whole_seconds(),
                });
            }
            device.clock
        } else {
            device.clock = dp.time;
            dp.time
        };
        let mut obs = Observation::default();
        for (i, (b, state)) in profile
            .behaviours
            .iter()
            .zip(device.states.iter_mut())
            .enumerate()
        {
            let Some(value) = dp.metrics.metric(b.metric_id) else {
                continue;
            };
            let step = Step {
                dp,
                t,
                first_seen: device.first_seen,
                value,
            };
            let (score, holds, detail, fired) = match state {
                State::PeerOutlier { fired } => {
                    let (z, f) = step.peer_outlier(b, i, fired, &self.peers);
                    (z, f.is_some() || *fired, None, f)
                }
                State::Rarity => step.rarity(b, i, group, &self.peers),
                State::Semantic {
                    state,
                    fired,
                    active_until,
                } => step.semantic(b, state, fired, active_until),
                _ => {
                    let (score, f) = step.run(b, state);
                    let holds = f.is_some()
                        || match &b.kind {
                            Kind::Rule { .. } => score >= 1.0,
                            Kind::ZScore { threshold, .. } => score > *threshold,
                            Kind::Fanout { .. } => score > 1.0,
                            _ => false,
                        };
                    (score, holds, None, f)
                }
            };
            let normalized = capped_score(score / b.kind.scale());
            obs.score = obs.score.max(normalized);
            obs.flagged |= holds;
            if normalized >= 0.5 && obs.reasons.len() < MAX_REASONS {
                let detail = detail
                    .or_else(|| fired.as_ref().map(|(r, _)| r.clone()))
                    .unwrap_or_else(|| format!("{} on {}", b.kind.name(), b.metric));
                obs.reasons.push(Contribution {
                    behaviour: b.name.clone(),
                    kind: b.kind.name(),
                    score: normalized,
                    holds,
                    detail,
                });
            }
            if let Some((reason, evidence)) = fired {
                obs.alerts.push(Alert {
                    device: dp.device.to_string(),
                    behaviour: b.name.clone(),
                    kind: b.kind.name(),
                    severity: b.severity,
                    time: dp.time,
                    action: b.action,
                    evidence,
                    reason,
                    profile_version: profile.version.clone(),
                    score: capped_score(score),
                });
            }
        }
        obs.reasons.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.behaviour.cmp(&b.behaviour))
        });
        Ok(obs)
    }
}

/// Rejects a datapoint more than [`MAX_CLOCK_SKEW`] ahead of `now`.
fn not_from_future(dp: &Datapoint, now: OffsetDateTime) -> Result<(), DatapointError> {
    if now
        .checked_add(MAX_CLOCK_SKEW)
        .is_some_and(|limit| dp.time > limit)
    {
        return Err(DatapointError::FromFuture { time: dp.time });
    }
    Ok(())
}

fn initial_state(b: &Behaviour) -> State {
    match b.kind {
        Kind::Rule { .. } => State::Rule {
            streak: VecDeque::new(),
            streak_len: 0,
            streak_start: None,
            fired: false,
            previous: None,
        },
        Kind::ZScore { .. } => State::ZScore {
            n: 0,
            mean: 0.0,
            var: 0.0,
        },
        Kind::Novelty { .. } => State::Novelty {
            known: BTreeSet::new(),
        },
        Kind::Fanout { .. } => State::Fanout {
            seen: BTreeMap::new(),
            fired: false,
        },
        Kind::PeerOutlier { .. } => State::PeerOutlier { fired: false },
        Kind::Rarity { .. } => State::Rarity,
        Kind::Semantic { semantic, .. } => State::Semantic {
            state: Box::new(SemanticState::new(semantic)),
            fired: false,
            active_until: f64::NEG_INFINITY,
        },
    }
}

type Fired = Option<(String, Vec<Evidence>)>;

struct Step<'a> {
    dp: &'a Datapoint,
    t: OffsetDateTime,
    first_seen: OffsetDateTime,
    value: &'a Value,
}

impl Step<'_> {
    fn evidence(&self, b: &Behaviour, value: Value) -> Evidence {
        Evidence {
            time: self.dp.time,
            metric: b.metric.clone(),
            value,
        }
    }

    fn run(&self, b: &Behaviour, state: &mut State) -> (f64, Fired) {
        match (&b.kind, state) {
            (
                Kind::Rule {
                    operator,
                    persistence,
                },
                State::Rule {
                    streak,
                    streak_len,
                    streak_start,
                    fired,
                    previous,
                },
            ) => {
                let shown = match (operator, self.value) {
                    (Operator::Greater(x), Value::Number(n)) => {
                        (n > x).then(|| (Value::Number(*n), format!("{n} > {x}")))
                    }
                    (Operator::Less(x), Value::Number(n)) => {
                        (n < x).then(|| (Value::Number(*n), format!("{n} < {x}")))
                    }
                    (Operator::InSet(x), Value::Set(s)) => {
                        // The usual datapoint holds none: nothing is built.
                        s.intersection(x).next().is_some().then(|| {
                            let hit = cap_set(s.intersection(x));
                            (hit.clone(), format!("contains {hit}"))
                        })
                    }
                    (Operator::NotInSet(x), Value::Set(s)) => {
                        s.difference(x).next().is_some().then(|| {
                            let extra = cap_set(s.difference(x));
                            (extra.clone(), format!("{extra} outside the allowed set"))
                        })
                    }
                    (Operator::Changed, v) => {
                        // Only the capped set is kept, so a larger one is
                        // compared by digest: comparing the capped previous
                        // set with the whole current one would call every
                        // set over the cap changed.
                        let (shown, digest) = match v {
                            Value::Set(s) if s.len() > MAX_EVIDENCE_ELEMENTS => {
                                (cap_set(s.iter()), Some(set_digest(s)))
                            }
                            v => (v.clone(), None),
                        };
                        let changed = previous
                            .as_ref()
                            .is_some_and(|(p, d)| (p, d) != (&shown, &digest));
                        let msg = format!(
                            "changed from {} to {shown}",
                            previous
                                .as_ref()
                                .map(|(p, _)| p.to_string())
                                .unwrap_or_default()
                        );
                        *previous = Some((shown.clone(), digest));
                        changed.then_some((shown, msg))
                    }
                    _ => None, // kinds are checked by validation
                };
                let Some((shown, msg)) = shown else {
                    streak.clear();
                    *streak_len = 0;
                    *streak_start = None;
                    *fired = false;
                    return (0.0, None);
                };
                if streak.len() == MAX_EVIDENCE {
                    streak.pop_front();
                }
                streak.push_back(self.evidence(b, shown));
                *streak_len += 1;
                let start = *streak_start.get_or_insert(self.t);
                let (held, how) = match persistence {
                    Persistence::Consecutive(n) => (
                        *streak_len >= u64::from(*n),
                        format!("for {streak_len} consecutive datapoints"),
                    ),
                    Persistence::Window(w) => (
                        self.t - start >= *w,
                        format!("for {}s", (self.t - start).whole_seconds()),
                    ),
                };
                if !held {
                    return (0.0, None);
                }
                if *fired {
                    return (1.0, None);
                }
                *fired = true;
                let reason = format!("{} {msg} {how}", b.metric);
                (1.0, Some((reason, streak.iter().cloned().collect())))
            }
            (
                Kind::ZScore {
                    alpha,
                    threshold,
                    min_samples,
                },
                State::ZScore { n, mean, var },
            ) => {
                let Value::Number(x) = *self.value else {
                    return (0.0, None);
                };
                let mut out = (0.0, None);
                if *n == 0 {
                    *mean = x;
                    *var = 0.0;
                } else {
                    if *n >= u64::from(*min_samples) {
                        let z = (x - *mean) / var.sqrt().max(MIN_STDDEV);
                        let score = capped_score(z.abs());
                        out.0 = score;
                        if score > *threshold {
                            let reason = format!(
                                "{} = {x} is {score:.2} standard deviations from its mean {:.3} (threshold {threshold})",
                                b.metric, *mean
                            );
                            out.1 = Some((reason, vec![self.evidence(b, Value::Number(x))]));
                        }
                    }
                    // West's exponentially weighted mean and variance.
                    let diff = x - *mean;
                    let incr = alpha * diff;
                    *mean += incr;
                    *var = (1.0 - alpha) * (*var + diff * incr);
                    if !mean.is_finite() || !var.is_finite() {
                        *mean = x;
                        *var = 0.0;
                    }
                }
                *n = n.saturating_add(1);
                out
            }
            (Kind::Novelty { warmup }, State::Novelty { known }) => {
                let Value::Set(s) = self.value else {
                    return (0.0, None);
                };
                let learning = self.t - self.first_seen < *warmup;
                let new: Vec<&str> = s.iter().filter(|e| !known.contains(*e)).collect();
                for e in &new {
                    if known.len() < MAX_KNOWN_ELEMENTS {
                        known.insert((*e).to_owned());
                    }
                }
                if learning || new.is_empty() {
                    return (0.0, None);
                }
                let shown = cap_set(new.iter().copied());
                let reason = format!("new {} {shown} after warm-up", b.metric);
                (
                    new.len() as f64,
                    Some((reason, vec![self.evidence(b, shown)])),
                )
            }
            (Kind::Fanout { threshold, window }, State::Fanout { seen, fired }) => {
                let Value::Set(s) = self.value else {
                    return (0.0, None);
                };
                if let Some(horizon) = self.t.checked_sub(*window) {
                    seen.retain(|_, (last, _)| *last > horizon);
                }
                let cap = (*threshold as usize).saturating_mul(4).max(64);
                for e in s {
                    if let Some(entry) = seen.get_mut(e) {
                        *entry = (self.t, self.dp.time);
                    } else if seen.len() < cap {
                        seen.insert(e.to_owned(), (self.t, self.dp.time));
                    }
                }
                let distinct = seen.len();
                let score = distinct as f64 / f64::from(*threshold);
                if distinct <= *threshold as usize {
                    *fired = false;
                    return (score, None);
                }
                if *fired {
                    return (score, None);
                }
                *fired = true;
                let mut recent: Vec<_> = seen.iter().collect();
                recent.sort_by_key(|(e, (t, _))| (*t, *e));
                let evidence = recent
                    .iter()
                    .rev()
                    .take(MAX_EVIDENCE)
                    .rev()
                    .map(|(e, (_, real))| Evidence {
                        time: *real,
                        metric: b.metric.clone(),
                        value: Value::Set(Set::from([e.as_str()])),
                    })
                    .collect();
                let more = if distinct >= cap { "at least " } else { "" };
                let reason = format!(
                    "{more}{distinct} distinct {} within {}s (threshold {threshold})",
                    b.metric,
                    window.whole_seconds()
                );
                (score, Some((reason, evidence)))
            }
            _ => (0.0, None),
        }
    }

    /// A semantic behaviour over the datapoint's flows: the best flow's
    /// score; fires once per episode, which lasts while some flow holds
    /// and one window after.
    fn semantic(
        &self,
        b: &Behaviour,
        state: &mut SemanticState,
        fired: &mut bool,
        active_until: &mut f64,
    ) -> (f64, bool, Option<String>, Fired) {
        let (
            Kind::Semantic {
                threshold, window, ..
            },
            Value::Flows(flows),
        ) = (&b.kind, self.value)
        else {
            return (0.0, false, None, None);
        };
        let now = unix_secs(self.t);
        let window = window.as_seconds_f64();
        let explain = threshold * 0.5;
        let mut best: Option<Assessment> = None;
        for f in flows {
            let a = state.assess(f, now, window, explain);
            if best.as_ref().is_none_or(|x| a.score > x.score) {
                best = Some(a);
            }
        }
        let Some(best) = best else {
            return (0.0, false, None, None);
        };
        let holds = best.score >= *threshold;
        if holds {
            *active_until = now + window;
        } else if now > *active_until {
            *fired = false;
        }
        let detail = (!best.detail.is_empty()).then(|| best.detail.clone());
        if !holds || *fired {
            return (best.score, holds, detail, None);
        }
        *fired = true;
        let reason = format!(
            "{} (score {:.2}, threshold {threshold})",
            best.detail, best.score
        );
        let evidence = vec![self.evidence(b, cap_set(best.endpoints.iter().map(String::as_str)))];
        (best.score, holds, detail, Some((reason, evidence)))
    }

    /// A rarity behaviour: the rarest element's score; alerts once per
    /// rare element the device newly holds.
    fn rarity(
        &self,
        b: &Behaviour,
        index: usize,
        group: &str,
        peers: &SharedPeers,
    ) -> (f64, bool, Option<String>, Fired) {
        let (
            Kind::Rarity {
                threshold,
                min_peers,
                window,
            },
            Value::Set(set),
        ) = (&b.kind, self.value)
        else {
            return (0.0, false, None, None);
        };
        let rule = rarity::Rule {
            metric: b.metric_id,
            threshold: *threshold,
            min_peers: *min_peers,
            window: window.as_seconds_f64(),
        };
        let judged = {
            let mut peers = peers.lock().unwrap_or_else(PoisonError::into_inner);
            let groups = peers.rarity.entry(index).or_default();
            let table = match groups.get_mut(group) {
                Some(table) => table,
                None => groups.entry(group.to_owned()).or_default(),
            };
            table.observe(&self.dp.device, set.iter(), rule, unix_secs(self.t))
        };
        let holds = judged.score >= 1.0;
        let detail = (!judged.detail.is_empty()).then(|| judged.detail.clone());
        if judged.fresh.is_empty() {
            return (judged.score, holds, detail, None);
        }
        let shown: Vec<String> = judged
            .fresh
            .iter()
            .take(MAX_EVIDENCE_ELEMENTS)
            .map(|(e, holders)| format!("{e} ({holders})"))
            .collect();
        let reason = format!(
            "{} held by almost no peer: {} of the group's {} devices hold {} (rare: at most {}%, score {:.2})",
            b.metric,
            judged.fresh[0].1,
            judged.peers,
            shown.join(", "),
            threshold * 100.0,
            judged.score
        );
        let evidence =
            vec![self.evidence(b, cap_set(judged.fresh.iter().map(|(e, _)| e.as_str())))];
        (judged.score, holds, detail, Some((reason, evidence)))
    }

    fn peer_outlier(
        &self,
        b: &Behaviour,
        index: usize,
        fired: &mut bool,
        peers: &SharedPeers,
    ) -> (f64, Fired) {
        let (
            Kind::PeerOutlier {
                threshold,
                min_peers,
            },
            Value::Number(x),
        ) = (&b.kind, self.value)
        else {
            return (0.0, None);
        };
        let x = *x;
        let (med, scale, peer_count) = {
            let mut peers = peers.lock().unwrap_or_else(PoisonError::into_inner);
            let group = peers.by_behaviour.entry(index).or_default();
            group.update(&self.dp.device, x);
            if group.values.len() < *min_peers as usize {
                return (0.0, None);
            }
            group.stats()
        };
        let z = capped_score(((x - med) / scale.max(MIN_STDDEV)).abs());
        if z <= *threshold {
            *fired = false;
            return (z, None);
        }
        if *fired {
            return (z, None);
        }
        *fired = true;
        let reason = format!(
            "{} = {x} is {z:.2} robust deviations from the group median {med} over {} devices (threshold {threshold})",
            b.metric, peer_count
        );
        (z, Some((reason, vec![self.evidence(b, Value::Number(x))])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_peer_groups_are_exact_and_large_ones_reuse_their_statistics() {
        let mut small = PeerGroup::default();
        for i in 0..10 {
            small.update(&format!("d{i}"), 10.0);
        }
        assert_eq!(small.stats().0, 10.0);
        small.update("d0", 1000.0);
        small.update("d1", 1000.0);
        // Exact: every update counts at once (median of 8×10, 2×1000).
        assert_eq!(small.stats().0, 10.0);
        for i in 0..6 {
            small.update(&format!("d{i}"), 1000.0);
        }
        assert_eq!(small.stats().0, 1000.0);

        let n = 2048;
        let mut large = PeerGroup::default();
        for i in 0..n {
            large.update(&format!("d{i}"), f64::from(i % 7));
        }
        let first = large.stats();
        assert_eq!(first.2, n as usize);
        // Fewer than n/64 reports since: the cached figures stand.
        for i in 0..(n / 64) {
            large.update(&format!("d{i}"), 500.0);
        }
        assert_eq!(large.stats(), first);
        // One more: recomputed, and the reports are in.
        large.update("d-new", 500.0);
        let second = large.stats();
        assert_eq!(second.2, n as usize + 1);
        assert_eq!(large.stale, 0);
        large.remove("d-new");
        assert_eq!(large.stale, 1);
    }
}
