//! OSV range evaluation, exactly as the schema's "Evaluation" pseudocode.
//!
//! ```text
//! affected  = v in versions  or  any range r: BeforeLimits(v, r) and state(v, r)
//! state     = walk sorted(r.events):  introduced <= v → true,
//!             fixed <= v → false,  last_affected < v → false
//! ```
//!
//! The walk's result is the effect of the *last* event that fires, in the
//! sort order (version, then position in the file, since the sort is
//! stable). [`range_state`] finds that event in one pass without sorting or
//! allocating; `tests/it/range_model.rs` checks it against the literal
//! sort-and-walk pseudocode over generated ranges.
//!
//! Which ordering: `SEMVER` ranges use SemVer whatever the package's
//! ecosystem; `ECOSYSTEM` ranges use the package ecosystem's ordering from
//! `bulwark-versions`; `GIT` ranges cannot be evaluated without the
//! repository's commit graph, so for them only the `versions` list applies
//! (the schema requires that list whenever `GIT` ranges are used). Unknown
//! range types, ecosystems without a known ordering, and versions that do not
//! parse give [`Match::Unknown`] with the reason, never a silent "not
//! affected".

use std::cell::OnceCell;
use std::cmp::Ordering;

use bulwark_versions::{ApkVersion, DebianVersion, Ecosystem, Pep440Version, SemVersion};

use crate::model::{Affected, EventKind, Range, RangeType};

/// Whether one version is affected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// In a range or in the `versions` list.
    Affected,
    /// Outside every evaluable range and not listed.
    NotAffected,
    /// Could not be decided; the reason says why (a version that does not
    /// parse, a range type or ecosystem without a known ordering).
    Unknown(String),
}

impl Match {
    /// Combines the verdicts of several ranges or entries: `Affected` wins,
    /// then `Unknown`, then `NotAffected`.
    pub(crate) fn or(self, other: Match) -> Match {
        match (self, other) {
            (Match::Affected, _) | (_, Match::Affected) => Match::Affected,
            (u @ Match::Unknown(_), _) | (_, u @ Match::Unknown(_)) => u,
            (Match::NotAffected, Match::NotAffected) => Match::NotAffected,
        }
    }
}

/// A version parsed under one ordering.
#[derive(Debug, Clone)]
pub(crate) enum Parsed {
    Debian(DebianVersion),
    Pep440(Pep440Version),
    Semver(SemVersion),
    Alpine(ApkVersion),
}

impl Parsed {
    pub(crate) fn parse(ecosystem: Ecosystem, s: &str) -> Result<Parsed, String> {
        let r = match ecosystem {
            Ecosystem::Debian => s.parse().map(Parsed::Debian),
            Ecosystem::Pep440 => s.parse().map(Parsed::Pep440),
            Ecosystem::Semver => s.parse().map(Parsed::Semver),
            Ecosystem::Alpine => s.parse().map(Parsed::Alpine),
        };
        r.map_err(|e| e.to_string())
    }

    /// Orders two versions of the same ecosystem (values of different
    /// ecosystems never meet: both sides come from one `Ecosystem`).
    pub(crate) fn cmp(&self, other: &Parsed) -> Ordering {
        match (self, other) {
            (Parsed::Debian(a), Parsed::Debian(b)) => a.cmp(b),
            (Parsed::Pep440(a), Parsed::Pep440(b)) => a.cmp(b),
            (Parsed::Semver(a), Parsed::Semver(b)) => a.cmp(b),
            (Parsed::Alpine(a), Parsed::Alpine(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}

/// A component version, parsed lazily once per ordering.
#[derive(Debug)]
pub(crate) struct CandidateVersion<'a> {
    pub(crate) raw: &'a str,
    parsed: [OnceCell<Result<Parsed, String>>; 4],
}

impl<'a> CandidateVersion<'a> {
    pub(crate) fn new(raw: &'a str) -> Self {
        CandidateVersion {
            raw,
            parsed: Default::default(),
        }
    }

    pub(crate) fn get(&self, ecosystem: Ecosystem) -> Result<&Parsed, &str> {
        let slot = match ecosystem {
            Ecosystem::Debian => 0,
            Ecosystem::Pep440 => 1,
            Ecosystem::Semver => 2,
            Ecosystem::Alpine => 3,
        };
        self.parsed[slot]
            .get_or_init(|| Parsed::parse(ecosystem, self.raw))
            .as_ref()
            .map_err(String::as_str)
    }
}

impl Affected {
    /// Whether `version` of this entry's package is affected, by the OSV
    /// evaluation rules (see the module documentation of the crate).
    pub fn matches_version(&self, version: &str) -> Match {
        evaluate(self, &compile(self), &CandidateVersion::new(version))
    }
}

/// The ordering of an OSV ecosystem string, e.g. `Debian:12`.
pub(crate) fn ordering(ecosystem: &str) -> Option<Ecosystem> {
    Ecosystem::from_osv(ecosystem)
}

/// An `affected[]` entry's ranges with their event versions parsed once
/// (when the database index is built), so a scan only compares.
#[derive(Debug)]
pub(crate) struct Compiled {
    package_ordering: Option<Ecosystem>,
    ranges: Vec<CompiledRange>,
}

#[derive(Debug)]
enum CompiledRange {
    /// `GIT`: only the `versions` list applies.
    Git,
    /// Cannot be evaluated (unknown type or ecosystem), with the reason.
    Unknown(String),
    /// Events in file order, or why one of them does not parse.
    Events {
        ordering: Ecosystem,
        events: Result<Vec<(EventKind, Bound)>, String>,
    },
}

/// Parses the event versions of `affected`'s ranges.
pub(crate) fn compile(affected: &Affected) -> Compiled {
    let package_ordering = affected
        .package
        .as_ref()
        .and_then(|p| ordering(&p.ecosystem));
    let ranges = affected
        .ranges
        .iter()
        .map(|range| {
            let eco = match &range.kind {
                RangeType::Git => return CompiledRange::Git,
                RangeType::Other(t) => {
                    return CompiledRange::Unknown(format!("range type {t:?} cannot be evaluated"));
                }
                RangeType::Semver => Ecosystem::Semver,
                RangeType::Ecosystem => match package_ordering {
                    Some(eco) => eco,
                    None => {
                        let name = affected
                            .package
                            .as_ref()
                            .map_or("", |p| p.ecosystem.as_str());
                        return CompiledRange::Unknown(format!(
                            "ecosystem {name:?} has no known version ordering"
                        ));
                    }
                },
            };
            CompiledRange::Events {
                ordering: eco,
                events: compile_events(range, eco),
            }
        })
        .collect();
    Compiled {
        package_ordering,
        ranges,
    }
}

fn compile_events(range: &Range, eco: Ecosystem) -> Result<Vec<(EventKind, Bound)>, String> {
    range
        .events
        .iter()
        .map(|event| {
            let Some((kind, raw)) = event.kind() else {
                return Err("an event sets more or less than one field".to_owned());
            };
            let bound = match (kind, raw) {
                (EventKind::Introduced, "0") => Bound::Zero,
                (EventKind::Limit, "*") => Bound::Infinity,
                _ => Bound::Version(
                    Parsed::parse(eco, raw).map_err(|e| format!("advisory event {raw:?}: {e}"))?,
                ),
            };
            Ok((kind, bound))
        })
        .collect()
}

/// Evaluates one `affected[]` entry (compiled by [`compile`]).
pub(crate) fn evaluate(
    affected: &Affected,
    compiled: &Compiled,
    version: &CandidateVersion<'_>,
) -> Match {
    if affected.versions.iter().any(|v| v == version.raw) {
        return Match::Affected;
    }
    let mut verdict = Match::NotAffected;
    let mut evaluable = false;
    for range in &compiled.ranges {
        let r = match range {
            CompiledRange::Git => Match::NotAffected,
            CompiledRange::Unknown(reason) => Match::Unknown(reason.clone()),
            CompiledRange::Events { ordering, events } => {
                evaluable = true;
                match (version.get(*ordering), events) {
                    (Err(e), _) => Match::Unknown(format!("cannot compare: {e}")),
                    (Ok(_), Err(e)) => Match::Unknown(e.clone()),
                    (Ok(v), Ok(events)) => {
                        if range_state(events, v) {
                            Match::Affected
                        } else {
                            Match::NotAffected
                        }
                    }
                }
            }
        };
        verdict = verdict.or(r);
        if verdict == Match::Affected {
            return verdict;
        }
    }
    // Without an evaluable range the `versions` list is the only evidence:
    // compare it under the ecosystem's equality too (`1.0` == `1.0.0` in
    // PEP 440). With evaluable ranges the list is their expansion, and the
    // exact comparison above suffices (and keeps scans fast).
    if !evaluable && let Some(eco) = compiled.package_ordering {
        match version.get(eco) {
            Ok(v) => {
                let listed = affected.versions.iter().any(|listed| {
                    Parsed::parse(eco, listed).is_ok_and(|l| l.cmp(v) == Ordering::Equal)
                });
                if listed {
                    return Match::Affected;
                }
            }
            Err(e) if !affected.versions.is_empty() => {
                verdict = verdict.or(Match::Unknown(format!(
                    "cannot compare with the affected versions list: {e}"
                )));
            }
            Err(_) => {}
        }
    }
    verdict
}

/// A bound: `introduced: "0"` sorts before every version, `limit: "*"`
/// after every version.
#[derive(Debug)]
enum Bound {
    Zero,
    Version(Parsed),
    Infinity,
}

impl Bound {
    fn cmp_version(&self, v: &Parsed) -> Ordering {
        match self {
            Bound::Zero => Ordering::Less,
            Bound::Infinity => Ordering::Greater,
            Bound::Version(b) => b.cmp(v),
        }
    }

    fn cmp(&self, other: &Bound) -> Ordering {
        match (self, other) {
            (Bound::Zero, Bound::Zero) | (Bound::Infinity, Bound::Infinity) => Ordering::Equal,
            (Bound::Zero, _) | (_, Bound::Infinity) => Ordering::Less,
            (_, Bound::Zero) | (Bound::Infinity, _) => Ordering::Greater,
            (Bound::Version(a), Bound::Version(b)) => a.cmp(b),
        }
    }
}

/// `BeforeLimits(v) && walk(sorted events)` for one evaluable range.
fn range_state(events: &[(EventKind, Bound)], v: &Parsed) -> bool {
    let mut has_limit = false;
    let mut before_limit = false;
    // The last firing event so far: its bound, and whether it sets
    // "vulnerable". Later file positions win ties, like a stable sort.
    let mut last: Option<(&Bound, bool)> = None;
    for (kind, bound) in events {
        let fires = match kind {
            EventKind::Introduced | EventKind::Fixed => bound.cmp_version(v) != Ordering::Greater,
            EventKind::LastAffected => bound.cmp_version(v) == Ordering::Less,
            EventKind::Limit => {
                has_limit = true;
                before_limit |= bound.cmp_version(v) == Ordering::Greater;
                false
            }
        };
        if fires && last.is_none_or(|(b, _)| bound.cmp(b) != Ordering::Less) {
            last = Some((bound, *kind == EventKind::Introduced));
        }
    }
    if has_limit && !before_limit {
        return false;
    }
    last.is_some_and(|(_, vulnerable)| vulnerable)
}
