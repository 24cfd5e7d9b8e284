//! Range evaluation against the OSV schema's pseudocode, literally
//! (sort the events, walk them), and against plain interval membership,
//! over generated ranges and version sets.

use std::cmp::Ordering;

use bulwark_osv::{Affected, Event, Match, Package, Range, RangeType};
use bulwark_versions::{Ecosystem, compare};

/// xorshift32: deterministic, no dependency.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        self.next() as usize % n
    }
}

/// Version universes, each sorted ascending by construction (checked).
fn universe(eco: Ecosystem) -> Vec<&'static str> {
    let v: Vec<&str> = match eco {
        Ecosystem::Semver => vec![
            "0.0.0-0",
            "0.1.0",
            "0.9.9",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-beta",
            "1.0.0",
            "1.0.1",
            "1.2.0",
            "1.10.0",
            "2.0.0-rc.1",
            "2.0.0",
            "10.0.0",
        ],
        Ecosystem::Pep440 => vec![
            "0.dev0",
            "0.1",
            "1.0.dev1",
            "1.0a1",
            "1.0b2",
            "1.0rc1",
            "1.0",
            "1.0.post1",
            "1.1",
            "1.10",
            "2!0.5",
        ],
        Ecosystem::Debian => vec![
            "0.9",
            "1.0~rc1",
            "1.0",
            "1.0-1",
            "1.0-1+deb12u1",
            "1.0a",
            "1.1",
            "1:0.1",
            "1:1.0~beta",
            "2:0",
        ],
        Ecosystem::Alpine => vec![
            "1.0_alpha1",
            "1.0_rc1",
            "1.0",
            "1.0-r1",
            "1.0_p1",
            "1.0.1",
            "1.2",
            "2.0",
        ],
    };
    for w in v.windows(2) {
        assert_eq!(
            compare(eco, w[0], w[1]),
            Ok(Ordering::Less),
            "{eco}: {} < {}",
            w[0],
            w[1]
        );
    }
    v
}

fn osv_ecosystem(eco: Ecosystem) -> &'static str {
    match eco {
        Ecosystem::Semver => "npm",
        Ecosystem::Pep440 => "PyPI",
        Ecosystem::Debian => "Debian:12",
        Ecosystem::Alpine => "Alpine:v3.20",
    }
}

fn event(kind: usize, v: &str) -> Event {
    let mut e = Event::default();
    let v = Some(v.to_owned());
    match kind {
        0 => e.introduced = v,
        1 => e.fixed = v,
        2 => e.last_affected = v,
        _ => e.limit = v,
    }
    e
}

/// The schema's pseudocode, literally: BeforeLimits, stable sort, walk.
fn reference(eco: Ecosystem, events: &[Event], v: &str) -> bool {
    fn key(e: &Event) -> (i8, &str) {
        let (kind, s) = e.kind().unwrap();
        match (kind, s) {
            (bulwark_osv::EventKind::Introduced, "0") => (-1, s),
            (bulwark_osv::EventKind::Limit, "*") => (1, s),
            _ => (0, s),
        }
    }
    let cmp = |a: &Event, b: &Event| {
        let (ka, sa) = key(a);
        let (kb, sb) = key(b);
        if ka != 0 || kb != 0 {
            return ka.cmp(&kb);
        }
        compare(eco, sa, sb).unwrap()
    };
    let limits: Vec<&Event> = events.iter().filter(|e| e.limit.is_some()).collect();
    if !limits.is_empty()
        && !limits.iter().any(|l| {
            let s = l.limit.as_deref().unwrap();
            s == "*" || compare(eco, v, s).unwrap() == Ordering::Less
        })
    {
        return false;
    }
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by(|a, b| cmp(a, b));
    let mut vulnerable = false;
    for e in sorted {
        if let Some(i) = &e.introduced {
            if i == "0" || compare(eco, v, i).unwrap() != Ordering::Less {
                vulnerable = true;
            }
        } else if let Some(f) = &e.fixed {
            if compare(eco, v, f).unwrap() != Ordering::Less {
                vulnerable = false;
            }
        } else if let Some(l) = &e.last_affected
            && compare(eco, v, l).unwrap() == Ordering::Greater
        {
            vulnerable = false;
        }
    }
    vulnerable
}

fn affected(eco: Ecosystem, kind: RangeType, events: Vec<Event>) -> Affected {
    Affected {
        package: Some(Package {
            ecosystem: osv_ecosystem(eco).to_owned(),
            name: "p".to_owned(),
            purl: None,
        }),
        severity: vec![],
        ranges: vec![Range {
            kind,
            repo: None,
            events,
            database_specific: None,
        }],
        versions: vec![],
        ecosystem_specific: None,
        database_specific: None,
    }
}

#[test]
fn matches_the_schema_pseudocode_on_arbitrary_event_lists() {
    let mut rng = Rng(0x9e37_79b9);
    let mut checked = 0;
    for eco in Ecosystem::ALL {
        let versions = universe(eco);
        for _ in 0..400 {
            // Arbitrary events, duplicates and any order included; fixed and
            // last_affected never mixed (the schema forbids it).
            let upper = if rng.below(2) == 0 { 1 } else { 2 };
            let n = 1 + rng.below(6);
            let mut events = vec![event(
                0,
                if rng.below(3) == 0 {
                    "0"
                } else {
                    versions[rng.below(versions.len())]
                },
            )];
            for _ in 0..n {
                let kind = match rng.below(5) {
                    0 | 1 => 0,
                    2 | 3 => upper,
                    _ => 3,
                };
                let v = if kind == 3 && rng.below(4) == 0 {
                    "*"
                } else {
                    versions[rng.below(versions.len())]
                };
                events.insert(rng.below(events.len() + 1), event(kind, v));
            }
            let range_kind = if eco == Ecosystem::Semver && rng.below(2) == 0 {
                RangeType::Semver
            } else {
                RangeType::Ecosystem
            };
            let a = affected(eco, range_kind, events.clone());
            for v in &versions {
                let expected = if reference(eco, &events, v) {
                    Match::Affected
                } else {
                    Match::NotAffected
                };
                assert_eq!(a.matches_version(v), expected, "{eco} {v} {events:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000);
}

#[test]
fn matches_interval_membership_for_well_formed_ranges() {
    // Sorted distinct bounds b0 < b1 < … as alternating introduced/fixed:
    // affected iff b(2k) <= v < b(2k+1) for some k — written in shuffled
    // order in the file.
    let mut rng = Rng(12345);
    for eco in Ecosystem::ALL {
        let versions = universe(eco);
        for _ in 0..300 {
            let mut idx: Vec<usize> = (0..versions.len()).filter(|_| rng.below(3) == 0).collect();
            if idx.is_empty() {
                idx.push(rng.below(versions.len()));
            }
            let bounds: Vec<&str> = idx.iter().map(|&i| versions[i]).collect();
            let mut events: Vec<Event> = bounds
                .iter()
                .enumerate()
                .map(|(k, b)| event(if k % 2 == 0 { 0 } else { 1 }, b))
                .collect();
            for i in (1..events.len()).rev() {
                events.swap(i, rng.below(i + 1));
            }
            let a = affected(eco, RangeType::Ecosystem, events);
            for (vi, v) in versions.iter().enumerate() {
                let inside = idx.chunks(2).any(|pair| match pair {
                    [lo, hi] => *lo <= vi && vi < *hi,
                    [lo] => *lo <= vi,
                    _ => unreachable!(),
                });
                let expected = if inside {
                    Match::Affected
                } else {
                    Match::NotAffected
                };
                assert_eq!(
                    a.matches_version(v),
                    expected,
                    "{eco} {v} bounds {bounds:?}"
                );
            }
        }
    }
}

#[test]
fn unparsable_versions_are_unknown_not_unaffected() {
    let a = affected(
        Ecosystem::Semver,
        RangeType::Semver,
        vec![event(0, "0"), event(1, "1.0.0")],
    );
    assert!(matches!(
        a.matches_version("not-a-version"),
        Match::Unknown(_)
    ));
    let a = affected(
        Ecosystem::Semver,
        RangeType::Semver,
        vec![event(0, "0"), event(1, "x.y")],
    );
    assert!(matches!(a.matches_version("2.0.0"), Match::Unknown(_)));
    let a = affected(Ecosystem::Semver, RangeType::Git, vec![event(0, "0")]);
    assert_eq!(a.matches_version("2.0.0"), Match::NotAffected);
}
