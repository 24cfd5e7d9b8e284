//! Engine behaviour that fixtures cannot express well: clocks, limits,
//! the full alert shape and the sharded engine under load.

use std::collections::BTreeMap;

use bulwark_detect::{
    Datapoint, DatapointError, Engine, MAX_EVIDENCE_ELEMENTS, MAX_SET_LEN, Metrics, Output,
    Profile, ShardedEngine, Value,
};
use time::{Duration, OffsetDateTime, macros::datetime};

const BASE: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

fn profile(behaviours: &str) -> Profile {
    Profile::from_toml(&format!("group = \"g\"\nversion = \"v1\"\n{behaviours}")).unwrap()
}

fn dp(device: &str, secs: i64, metric: &str, value: Value) -> Datapoint {
    Datapoint {
        device: device.into(),
        time: BASE + Duration::seconds(secs),
        metrics: Metrics::from([(metric, value)]),
    }
}

fn set(items: impl IntoIterator<Item = String>) -> Value {
    Value::Set(items.into_iter().collect())
}

const CPU_HOT: &str = r#"
[[behaviour]]
name = "cpu-hot"
severity = "critical"
action = "quarantine"
metric = "cpu_percent"
operator = ">"
threshold = 90
"#;

#[test]
fn alert_shape() {
    let mut engine = Engine::new(profile(CPU_HOT));
    let alerts = engine
        .observe(&dp("cam-1", 5, "cpu_percent", Value::Number(97.5)))
        .unwrap();
    expect_test::expect![[r#"
        [
            Alert {
                device: "cam-1",
                behaviour: "cpu-hot",
                kind: "rule",
                severity: Critical,
                time: 2026-01-01 0:00:05.0 +00:00:00,
                action: Some(
                    Quarantine,
                ),
                evidence: [
                    Evidence {
                        time: 2026-01-01 0:00:05.0 +00:00:00,
                        metric: "cpu_percent",
                        value: Number(
                            97.5,
                        ),
                    },
                ],
                reason: "cpu_percent 97.5 > 90 for 1 consecutive datapoints",
                profile_version: "v1",
                score: 1.0,
            },
        ]
    "#]]
    .assert_debug_eq(&alerts);
}

#[test]
fn future_timestamps_are_rejected_against_the_callers_clock() {
    let mut engine = Engine::new(profile(CPU_HOT));
    let now = BASE;
    let far = dp("d", 86_400 * 365, "cpu_percent", Value::Number(99.0));
    assert!(matches!(
        engine.observe_at(&far, now),
        Err(DatapointError::FromFuture { .. })
    ));
    // Nothing was recorded, so the honest datapoint is still accepted.
    let honest = dp("d", 0, "cpu_percent", Value::Number(99.0));
    assert_eq!(engine.observe_at(&honest, now).unwrap().len(), 1);
}

#[test]
fn without_a_clock_a_far_future_datapoint_makes_later_ones_stale() {
    // Documented behaviour of `Engine::observe`: the device clock jumps.
    let mut engine = Engine::new(profile(CPU_HOT));
    engine
        .observe(&dp("d", 86_400, "cpu_percent", Value::Number(1.0)))
        .unwrap();
    let err = engine
        .observe(&dp("d", 0, "cpu_percent", Value::Number(99.0)))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "datapoint at 2026-01-01 0:00:00.0 +00:00:00 is 86400s behind the device's latest datapoint"
    );
    // Forgetting the device recovers it.
    engine.forget("d");
    assert_eq!(
        engine
            .observe(&dp("d", 0, "cpu_percent", Value::Number(99.0)))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn oversized_input_is_rejected() {
    let mut engine = Engine::new(profile(CPU_HOT));
    let huge = set((0..=MAX_SET_LEN).map(|i| format!("tcp/{i}")));
    assert!(matches!(
        engine.observe(&dp("d", 0, "listening_ports", huge)),
        Err(DatapointError::TooLarge { .. })
    ));
    let long = set(["x".repeat(10_000)]);
    assert!(matches!(
        engine.observe(&dp("d", 0, "listening_ports", long)),
        Err(DatapointError::TooLarge { .. })
    ));
    let id = "d".repeat(10_000);
    assert!(matches!(
        engine.observe(&dp(&id, 0, "cpu_percent", Value::Number(1.0))),
        Err(DatapointError::DeviceId { len: 10_000 })
    ));
    let err = engine
        .observe(&dp("d", 0, &"m".repeat(1000), Value::Number(1.0)))
        .unwrap_err();
    assert_eq!(err.to_string().len(), "unknown metric ``".len() + 64);
    assert_eq!(engine.device_count(), 0);
}

#[test]
fn evidence_and_fanout_state_stay_bounded() {
    let mut engine = Engine::new(profile(
        r#"
[[behaviour]]
name = "scan"
kind = "fanout"
severity = "high"
metric = "remote_destinations"
threshold = 10
window = "1m"
[[behaviour]]
name = "bad-dest"
severity = "high"
metric = "remote_destinations"
operator = "not-in-set"
threshold = []
"#,
    ));
    let mut alerts = Vec::new();
    for round in 0..20 {
        let dests = set((0..MAX_SET_LEN).map(|i| format!("10.{round}.{}.{}:80", i / 256, i % 256)));
        alerts.extend(
            engine
                .observe(&dp("d", round, "remote_destinations", dests))
                .unwrap(),
        );
    }
    assert_eq!(alerts.len(), 2, "each fires once per episode");
    assert!(
        alerts[0].reason.starts_with("at least 64 distinct"),
        "{}",
        alerts[0].reason
    );
    for a in &alerts {
        for e in &a.evidence {
            let Value::Set(s) = &e.value else { panic!() };
            assert!(s.len() <= MAX_EVIDENCE_ELEMENTS);
        }
    }
}

#[test]
fn novelty_is_silent_during_warmup_even_for_many_elements() {
    let mut engine = Engine::new(profile(
        r#"
[[behaviour]]
name = "new-dest"
kind = "novelty"
severity = "medium"
metric = "remote_destinations"
warmup = "1h"
"#,
    ));
    for minute in 0..60 {
        let dests = set((0..100).map(|i| format!("10.0.{minute}.{i}:443")));
        assert!(
            engine
                .observe(&dp("d", minute * 60, "remote_destinations", dests))
                .unwrap()
                .is_empty()
        );
    }
    let fresh = set(["10.9.9.9:443".to_owned()]);
    let alerts = engine
        .observe(&dp("d", 3600, "remote_destinations", fresh))
        .unwrap();
    assert_eq!(alerts.len(), 1);
}

#[test]
fn sharded_engine_keeps_per_device_order_under_load() {
    let profile = profile(
        r#"
[[behaviour]]
name = "procs-changed"
severity = "low"
metric = "process_count"
operator = "changed"
"#,
    );
    let (sharded, rx) = ShardedEngine::new(profile.clone(), 4);
    assert_eq!(sharded.shards(), 4);
    let mut single = Engine::new(profile);
    let mut expected = 0;
    for step in 0..100 {
        for device in 0..50 {
            let p = dp(
                &format!("dev-{device}"),
                step,
                "process_count",
                Value::Number((step / 2) as f64),
            );
            expected += single.observe(&p).unwrap().len();
            sharded.submit(p).unwrap();
        }
    }
    assert_eq!(sharded.finish(), 0);
    let mut last: BTreeMap<String, OffsetDateTime> = BTreeMap::new();
    let mut count = 0;
    for out in rx {
        let Output::Alert(a) = out else {
            panic!("{out:?}")
        };
        if let Some(prev) = last.insert(a.device.clone(), a.time) {
            assert!(prev < a.time, "{} out of order", a.device);
        }
        count += 1;
    }
    assert_eq!(count, expected);
    assert_eq!(count, 50 * 49, "a change after a quiet step fires");
    assert_eq!(last.len(), 50);
}

#[test]
fn sharded_engine_stops_when_nobody_listens() {
    let (sharded, rx) = ShardedEngine::new(profile(CPU_HOT), 2);
    drop(rx);
    let mut refused = 0;
    for i in 0..10_000 {
        if sharded
            .submit(dp("d", i, "cpu_percent", Value::Number(99.0)))
            .is_err()
        {
            refused += 1;
        }
    }
    assert!(refused > 0);
    assert_eq!(sharded.finish(), 0);
}

#[test]
fn extreme_times_do_not_panic() {
    let mut engine = Engine::new(profile(
        r#"
[[behaviour]]
name = "scan"
kind = "fanout"
severity = "high"
metric = "remote_ports"
threshold = 1
window = "7d"
[[behaviour]]
name = "slow"
severity = "low"
metric = "cpu_percent"
operator = ">"
threshold = 1
window = "7d"
"#,
    ));
    let min = time::PrimitiveDateTime::MIN.assume_utc();
    let max = time::PrimitiveDateTime::MAX.assume_utc();
    for (device, t) in [("a", min), ("b", max)] {
        let mut p = dp(
            device,
            0,
            "remote_ports",
            set(["tcp/1".into(), "tcp/2".into()]),
        );
        p.time = t;
        p.metrics.insert("cpu_percent", Value::Number(f64::MAX));
        assert_eq!(engine.observe(&p).unwrap().len(), 1, "{device}");
        assert!(engine.observe_at(&p, max).is_ok());
    }
}

#[test]
fn fleet_rarity_compares_a_device_with_its_own_group() {
    use bulwark_detect::{FleetEngine, FleetOutput};
    let rare = Profile::from_toml(
        r#"
group = "*"
version = "v1"

[[behaviour]]
name = "rare-listener"
kind = "rarity"
severity = "high"
metric = "listening_ports"
threshold = 0.05
min_peers = 100
"#,
    )
    .unwrap();
    // One shard: the shards run in parallel, and the odd device must come
    // after its group is in.
    let (fleet, rx) = FleetEngine::new([rare], 1);
    let ports = |p: &[&str]| set(p.iter().map(|s| (*s).to_owned()));
    let now = BASE + Duration::hours(1);
    for i in 0..150 {
        let cam = dp(
            &format!("cam-{i}"),
            0,
            "listening_ports",
            ports(&["tcp/554", "udp/123"]),
        );
        fleet.submit("cameras", cam, now).unwrap();
        let sensor = dp(
            &format!("sensor-{i}"),
            0,
            "listening_ports",
            ports(&["udp/123"]),
        );
        fleet.submit("sensors", sensor, now).unwrap();
    }
    // A camera port is common among cameras and rare among sensors.
    let odd = dp(
        "sensor-7",
        10,
        "listening_ports",
        ports(&["tcp/554", "udp/123"]),
    );
    fleet.submit("sensors", odd, now).unwrap();
    let usual = dp(
        "cam-7",
        10,
        "listening_ports",
        ports(&["tcp/554", "udp/123"]),
    );
    fleet.submit("cameras", usual, now).unwrap();
    // Reported again: the same element does not alert twice.
    let again = dp(
        "sensor-7",
        20,
        "listening_ports",
        ports(&["tcp/554", "udp/123"]),
    );
    fleet.submit("sensors", again, now).unwrap();
    assert_eq!(fleet.finish(), 0);
    let alerts: Vec<_> = rx
        .into_iter()
        .map(|out| match out {
            FleetOutput::Engine {
                group,
                output: Output::Alert(a),
            } => (group, a),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let (group, a) = &alerts[0];
    assert_eq!((group.as_str(), a.device.as_str()), ("sensors", "sensor-7"));
    assert_eq!(a.kind, "rarity");
    assert!(
        a.reason
            .contains("1 of the group's 150 devices hold tcp/554 (1)"),
        "{}",
        a.reason
    );
    // 5 % of 150 over the 95 % bound of one holder (4.74).
    assert!((a.score - 0.05 * 150.0 / 4.74).abs() < 1e-9, "{}", a.score);
    assert_eq!(a.evidence[0].value, ports(&["tcp/554"]));
}
