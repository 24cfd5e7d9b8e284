//! Continuous per-device security detection for IoT fleets, useful from a
//! device's first hour.
//!
//! # Brief overview
//!
//! - A [`Datapoint`] is what one device reported at one time: numbers
//!   (`cpu_percent`, `bytes_out`, …) and sets of strings
//!   (`listening_ports`, `remote_destinations`, …), all from the closed
//!   list [`KNOWN_METRICS`].
//! - A [`Profile`] (TOML, one per device group, versioned) lists
//!   [`Behaviour`]s: fixed rules (`>`, `<`, `in-set`, `not-in-set`,
//!   `changed`, held for N datapoints or a window) and statistical kinds
//!   (`zscore`, `novelty`, `fanout`, `peer-outlier`).
//! - An [`Engine`] keeps bounded state per device and turns each datapoint
//!   into [`Alert`]s carrying their evidence, severity, optional
//!   [`Action::Quarantine`] and the profile version. [`ShardedEngine`]
//!   spreads devices over worker threads, keeping per-device order;
//!   [`FleetEngine`] does the same for a whole fleet, one profile per
//!   device group, replaceable while it runs (the server's engine).
//! - [`replay`] feeds a Zeek `conn.log` (TSV or JSON) through the same
//!   engine and writes a per-record CSV score: the engine of
//!   `bulwark detect replay`.
//!
//! # Example
//!
//! ```
//! use bulwark_detect::{Datapoint, Engine, Metrics, Profile, Set, Value};
//! use time::macros::datetime;
//!
//! let profile = Profile::from_toml(r#"
//!     group = "cameras"
//!     version = "7"
//!     [[behaviour]]
//!     name = "telnet-open"
//!     severity = "critical"
//!     action = "quarantine"
//!     metric = "listening_ports"
//!     operator = "in-set"
//!     threshold = ["tcp/23"]
//! "#).unwrap();
//! let mut engine = Engine::new(profile);
//! let dp = Datapoint {
//!     device: "cam-1".into(),
//!     time: datetime!(2026-01-01 0:00 UTC),
//!     metrics: Metrics::from([(
//!         "listening_ports",
//!         Value::Set(Set::from(["tcp/22", "tcp/23"])),
//!     )]),
//! };
//! let alerts = engine.observe(&dp).unwrap();
//! assert_eq!(alerts[0].behaviour, "telnet-open");
//! assert_eq!(alerts[0].profile_version, "7");
//! ```
//!
//! # Design
//!
//! Pure: no I/O besides the reader and writer handed to [`replay`], no
//! clock (time comes with each datapoint; see [`Engine`] for late and
//! future timestamps), no randomness. Every buffer is bounded: set sizes
//! ([`MAX_SET_LEN`]), evidence ([`MAX_EVIDENCE`]), learned novelty
//! elements ([`MAX_KNOWN_ELEMENTS`]), fan-out tracking (four times the
//! threshold), devices ([`MAX_DEVICES`]), profile size and behaviours
//! ([`MAX_BEHAVIOURS`]), windows ([`MAX_WINDOW`]) and replay lines
//! ([`MAX_LINE`]). Bad input is an error value, never a panic.
//!
//! Rules, fan-out and peer-outlier fire once per episode (when the
//! condition starts holding long enough) and re-arm when it stops;
//! z-score fires on every anomalous sample; novelty fires once per new
//! element.
//!
//! [`Engine::observe`] returns `Result`: a datapoint with an unknown
//! metric, a wrong kind, a non-finite number, an oversized set or a stale
//! time is a [`DatapointError`] for the caller to count, and changes no
//! state.
//!
//! # The ingest path
//!
//! The gateway hands over every telemetry sample, so per-datapoint costs
//! were measured (BENCHMARKS.md has the numbers) and cut:
//! - a [`Datapoint`] holds its values in [`Metrics`], one slot per known
//!   [`Metric`] (behaviours resolve their metric to a slot when the
//!   profile is validated): no map nodes, no name comparisons;
//! - a set is a [`Set`] of inline small strings: one allocation per set,
//!   where a `BTreeSet<String>` cost a node plus one per element;
//! - maps keyed by device id hash with foldhash, and a datapoint's device
//!   id is an `Arc<str>` shared by a session's datapoints;
//! - [`FleetEngine::submit_batch`] queues a socket read's datapoints in one
//!   slot per shard, a shard resolves a batch's group engine once and reads
//!   the datapoints by reference;
//! - the `changed` rule keeps capped evidence plus a SHA-256 digest of a
//!   larger set, so a large set is compared whole without being kept.
//!
//! The server runs one shard per two CPUs: decoding on its async workers
//! is most of a sample's cost, and a shard per CPU oversubscribed them.
//!
//! # Rejected designs
//!
//! - *One peer table per shard*: peer-outlier would compare a device with
//!   a hash-chosen subset of its group. The shards share one table instead
//!   (see [`ShardedEngine`]).
//! - *An alert on every datapoint of an episode*: a scan of 50 hosts would
//!   raise 30 alerts and 30 quarantine requests. The per-record score in
//!   [`replay`] output still shows the whole episode.
//! - *Reading the clock for far-future checks*: the caller passes its
//!   clock to [`Engine::observe_at`] instead.
//!
//! # Current limitations
//!
//! - Peer-outlier keeps every device's latest value forever (until
//!   [`Engine::forget`]); stale devices still count as peers. In groups
//!   over [`PEER_EXACT_UP_TO`] devices the median and spread are reused
//!   until a sixty-fourth of the group has reported since (sorting the
//!   whole group per datapoint would not scale), so a device is judged
//!   against figures at most that stale.
//! - An anomalous sample still updates the z-score baseline.
//! - Per-device state is not persisted: a restart starts a new warm-up.

mod builtin;
mod engine;
mod eval;
mod fleet;
mod flow;
mod metric;
mod profile;
mod rarity;
mod semantics;
mod shard;
mod zeek;

pub use builtin::{BUILTIN_PROFILE, BUILTIN_VERSION, builtin_profile};
pub use engine::{
    Alert, Contribution, Engine, Evidence, MAX_CLOCK_SKEW, MAX_DEVICES, MAX_EVIDENCE,
    MAX_EVIDENCE_ELEMENTS, MAX_KNOWN_ELEMENTS, MAX_PEERS, MAX_REASONS, MAX_SCORE, Observation,
    PEER_EXACT_UP_TO, REORDER_TOLERANCE,
};
pub use eval::{Counts, EvalError, Evaluation, MAX_EVAL_LINE, MAX_EVAL_RECORDS, evaluate};
pub use fleet::{DEFAULT_GROUP, FleetEngine, FleetOutput, SubmitError};
pub use flow::{Direction, Flow, MAX_FLOWS, Proto, Scope};
pub use metric::{
    Datapoint, DatapointError, KNOWN_METRICS, MAX_DEVICE_ID_LEN, MAX_ELEMENT_LEN, MAX_SET_LEN,
    Metric, MetricKind, Metrics, Set, Value, metric_kind,
};
pub use profile::{
    Action, Behaviour, DEFAULT_RARITY_SHARE, DEFAULT_SEMANTIC_THRESHOLD, Kind, MAX_BEHAVIOURS,
    MAX_COUNT, MAX_PROFILE_BYTES, MAX_THRESHOLD_SET, MAX_WINDOW, Operator, Persistence, Profile,
    ProfileError, Semantic, Severity, parse_duration,
};
pub use rarity::{MAX_GROUP_ELEMENTS, MAX_HELD, MAX_RARITY_BYTES};
pub use semantics::MAX_STATE_BYTES;
pub use shard::{MAX_SHARDS, Output, SHARD_QUEUE, ShardedEngine, shard_of};
pub use smol_str::SmolStr;
pub use zeek::{
    MAX_LINE, MAX_PROBLEMS, MAX_REORDER, REPLAY_DEVICE, ReplayError, ReplayOptions, ReplaySummary,
    replay, replay_pcap, replay_with,
};
