//! Engine cases: each `tests/fixtures/cases/*.toml` holds a profile, a
//! datapoint sequence (times in seconds after 2026-01-01T00:00:00Z) and
//! the exact alerts and rejections expected. Every case also runs through
//! a [`ShardedEngine`] and must give the same per-device outputs, except
//! cases with `sharded = false` (peer-outlier ones, whose result depends
//! on how shards interleave).

use std::collections::{BTreeMap, BTreeSet};

use bulwark_detect::{Action, Alert, Datapoint, Engine, Output, Profile, ShardedEngine, Value};
use serde::Deserialize;
use time::{Duration, OffsetDateTime, macros::datetime};

const BASE: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    profile: String,
    #[serde(default = "yes")]
    sharded: bool,
    #[serde(rename = "datapoint")]
    datapoints: Vec<RawPoint>,
    #[serde(default, rename = "alert")]
    alerts: Vec<ExpectAlert>,
    #[serde(default)]
    rejected: Vec<usize>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoint {
    #[serde(default = "default_device")]
    device: String,
    t: i64,
    metrics: BTreeMap<String, RawValue>,
}

fn default_device() -> String {
    "d1".into()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawValue {
    Number(f64),
    Set(Vec<String>),
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct ExpectAlert {
    /// Index of the datapoint that fires it.
    at: usize,
    behaviour: String,
    #[serde(default)]
    quarantine: bool,
    /// Number of evidence entries, when checked.
    #[serde(default)]
    evidence: Option<usize>,
    /// A substring of the reason, when checked.
    #[serde(default)]
    reason: Option<String>,
}

fn point(raw: &RawPoint) -> Datapoint {
    Datapoint {
        device: raw.device.as_str().into(),
        time: BASE + Duration::seconds(raw.t),
        metrics: raw
            .metrics
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    RawValue::Number(n) => Value::Number(*n),
                    RawValue::Set(s) => Value::Set(s.iter().cloned().collect()),
                };
                (k.as_str(), v)
            })
            .collect(),
    }
}

/// One device's outputs, in order, as comparable strings.
type PerDevice = BTreeMap<String, Vec<String>>;

fn describe(out: &Output) -> (String, String) {
    match out {
        Output::Alert(a) => (a.device.clone(), format!("{a:?}")),
        Output::Rejected { device, error } => (device.clone(), format!("rejected: {error}")),
    }
}

#[test]
fn cases() {
    let files = super::fixtures("cases", &["toml"]);
    assert!(files.len() >= 12, "cases missing");
    let mut kinds_seen = BTreeSet::new();
    for path in files {
        let name = super::name(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        let case: Case = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let profile = Profile::from_toml(&case.profile).unwrap_or_else(|e| panic!("{name}: {e}"));
        for b in &profile.behaviours {
            kinds_seen.insert(
                format!("{:?}", b.kind)
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap()
                    .to_owned(),
            );
        }
        let points: Vec<Datapoint> = case.datapoints.iter().map(point).collect();

        let mut engine = Engine::new(profile.clone());
        let mut got = Vec::new();
        let mut rejected = Vec::new();
        let mut single = PerDevice::new();
        for (i, dp) in points.iter().enumerate() {
            let out: Vec<Output> = match engine.observe(dp) {
                Ok(alerts) => {
                    for a in &alerts {
                        assert_eq!(a.profile_version, profile.version, "{name}");
                        assert!(!a.evidence.is_empty(), "{name}: alert without evidence");
                        got.push(expectation(i, a));
                    }
                    alerts.into_iter().map(Output::Alert).collect()
                }
                Err(error) => {
                    rejected.push(i);
                    vec![Output::Rejected {
                        device: dp.device.to_string(),
                        error,
                    }]
                }
            };
            for o in &out {
                let (d, s) = describe(o);
                single.entry(d).or_default().push(s);
            }
        }
        let want: Vec<_> = case
            .alerts
            .iter()
            .map(|e| (e.at, e.behaviour.clone(), e.quarantine))
            .collect();
        let have: Vec<_> = got
            .iter()
            .map(|e| (e.at, e.behaviour.clone(), e.quarantine))
            .collect();
        assert_eq!(have, want, "{name}: alerts (index, behaviour, quarantine)");
        for (e, g) in case.alerts.iter().zip(&got) {
            if let Some(n) = e.evidence {
                assert_eq!(g.evidence, Some(n), "{name}: evidence of alert at {}", e.at);
            }
            if let Some(r) = &e.reason {
                let have = g.reason.as_deref().unwrap_or("");
                assert!(
                    have.contains(r.as_str()),
                    "{name}: reason `{have}` lacks `{r}`"
                );
            }
        }
        assert_eq!(rejected, case.rejected, "{name}: rejected datapoints");

        if case.sharded {
            for shards in [1, 3, 8] {
                let (sharded, rx) = ShardedEngine::new(profile.clone(), shards);
                for dp in &points {
                    sharded.submit(dp.clone()).unwrap();
                }
                assert_eq!(sharded.finish(), 0, "{name}: a shard panicked");
                let mut multi = PerDevice::new();
                for o in rx {
                    let (d, s) = describe(&o);
                    multi.entry(d).or_default().push(s);
                }
                assert_eq!(
                    multi, single,
                    "{name}: {shards} shards differ from one engine"
                );
            }
        }
    }
    for kind in ["Rule", "ZScore", "Novelty", "Fanout", "PeerOutlier"] {
        assert!(kinds_seen.contains(kind), "no case covers {kind}");
    }
}

fn expectation(at: usize, a: &Alert) -> ExpectAlert {
    ExpectAlert {
        at,
        behaviour: a.behaviour.clone(),
        quarantine: a.action == Some(Action::Quarantine),
        evidence: Some(a.evidence.len()),
        reason: Some(a.reason.clone()),
    }
}
