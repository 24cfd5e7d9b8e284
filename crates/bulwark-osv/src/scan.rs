//! Matching components against the database, and merging aliases into
//! one finding per vulnerability.

use std::cmp::Ordering;

use bulwark_sbom::Component;

use crate::db::{AdvisoryDb, ecosystem_base, normalise_name};
use crate::model::{Affected, EventKind, RangeType};
use crate::range::{CandidateVersion, Match, Parsed, evaluate, ordering};
use crate::severity::Severity;

/// Longest summary a finding carries, in characters.
const MAX_SUMMARY_CHARS: usize = 200;

/// One vulnerability affecting one component: every advisory about it
/// (linked by `aliases`, transitively) merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Index of the component in the slice given to [`AdvisoryDb::scan`]
    /// (0 for [`AdvisoryDb::matches`]).
    pub component: usize,
    /// The component's purl.
    pub purl: String,
    /// The id to show: among the matching advisories, one from the
    /// component's own ecosystem database (`PYSEC-` for PyPI, `GO-` for Go,
    /// `RUSTSEC-` for crates.io, `DSA-`/`DLA-`/`DEBIAN-` for Debian,
    /// `ALPINE-` for Alpine) if any, else the lexicographically first.
    pub primary_id: String,
    /// Ids of the stored advisories that matched, sorted.
    pub advisories: Vec<String>,
    /// Every id of the vulnerability: the matching advisories' ids and all
    /// their aliases, sorted.
    pub ids: Vec<String>,
    /// The primary advisory's summary (or the first line of its details),
    /// cut to 200 characters.
    pub summary: String,
    /// The highest severity among the matching advisories.
    pub severity: Severity,
    /// `fixed` versions above the component's version, ascending: the
    /// first is the smallest upgrade that fixes the ranges that matched.
    /// Empty when no fix is known.
    pub fixed_versions: Vec<String>,
    /// Whether any of `ids` is in the CISA KEV catalog.
    pub known_exploited: bool,
    /// RustSec's informational kind (`unmaintained`, `unsound`, `notice`)
    /// when every matching advisory is informational: not a vulnerability.
    pub informational: Option<String>,
    /// Affected, or undecidable with the reason.
    pub status: FindingStatus,
}

/// Whether a finding is certain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingStatus {
    /// The version is in an affected range or list.
    Affected,
    /// The version could not be compared (it, or an advisory bound, does not
    /// parse; or a range type cannot be evaluated). Reported rather than
    /// dropped, so a gate can decide.
    Unknown(String),
}

/// One advisory's verdict on one component.
#[derive(Debug)]
struct Hit {
    group: u32,
    entry: u32,
    affected: Vec<u32>,
    verdict: Match,
}

impl AdvisoryDb {
    /// Findings for one component.
    pub fn matches(&self, component: &Component) -> Vec<Finding> {
        let mut out = Vec::new();
        self.match_into(0, component, &mut out);
        out
    }

    /// Findings for every component, ordered by component index, then
    /// primary id. This is the hot path (one hash lookup per component;
    /// components without advisories allocate nothing).
    pub fn scan(&self, components: &[Component]) -> Vec<Finding> {
        let mut out = Vec::new();
        for (i, component) in components.iter().enumerate() {
            self.match_into(i, component, &mut out);
        }
        out
    }

    fn match_into(&self, index: usize, component: &Component, out: &mut Vec<Finding>) {
        let Some(eco) = component.ecosystem.osv_name() else {
            return;
        };
        let Some(packages) = self.index.get(eco) else {
            return;
        };
        let name = normalise_name(eco, &component.name);
        let Some(refs) = packages.get(name.as_ref()) else {
            return;
        };
        let mut raw = component.version.as_str();
        if eco == "Go" && matches!(component.name.as_str(), "stdlib" | "toolchain") {
            // Go's own releases are recorded as `go1.22.1`; the vulndb
            // uses SemVer `1.22.1`.
            raw = raw.strip_prefix("go").unwrap_or(raw);
        }
        let version = CandidateVersion::new(raw);

        let mut hits: Vec<Hit> = Vec::new();
        for r in refs {
            let (entry, affected) = (r.entry, r.affected);
            let e = &self.entries[entry as usize];
            let verdict = evaluate(
                &e.advisory.affected[affected as usize],
                &r.compiled,
                &version,
            );
            if verdict == Match::NotAffected {
                continue;
            }
            match hits.iter_mut().find(|h| h.entry == entry) {
                Some(h) => {
                    h.verdict = std::mem::replace(&mut h.verdict, Match::NotAffected).or(verdict);
                    h.affected.push(affected);
                }
                None => hits.push(Hit {
                    group: self.group[entry as usize],
                    entry,
                    affected: vec![affected],
                    verdict,
                }),
            }
        }
        if hits.is_empty() {
            return;
        }
        hits.sort_by_key(|h| (h.group, h.entry));
        let start = out.len();
        for group in hits.chunk_by(|a, b| a.group == b.group) {
            out.push(self.finding(index, component, eco, &version, group));
        }
        out[start..].sort_by(|a, b| a.primary_id.cmp(&b.primary_id));
    }

    fn finding(
        &self,
        index: usize,
        component: &Component,
        eco: &str,
        version: &CandidateVersion<'_>,
        group: &[Hit],
    ) -> Finding {
        let mut status = Match::NotAffected;
        let mut severity = Severity::default();
        let mut advisories = Vec::with_capacity(group.len());
        let mut ids = Vec::new();
        let mut fixed: Vec<(Option<Parsed>, String)> = Vec::new();
        let mut informational: Option<Option<String>> = None;
        for hit in group {
            let entry = &self.entries[hit.entry as usize];
            status = status.or(hit.verdict.clone());
            severity = severity.max(entry.severity.clone());
            advisories.push(entry.advisory.id.clone());
            ids.push(entry.advisory.id.clone());
            ids.extend(entry.advisory.aliases.iter().cloned());
            for &a in &hit.affected {
                let affected = &entry.advisory.affected[a as usize];
                let kind = informational_kind(affected);
                informational = Some(match informational {
                    None => kind,
                    Some(prev) => prev.and(kind),
                });
                if hit.verdict == Match::Affected {
                    collect_fixed(affected, version, &mut fixed);
                }
            }
        }
        advisories.sort_unstable();
        ids.sort_unstable();
        ids.dedup();
        let primary_id = primary(eco, &advisories).to_owned();
        fixed.sort_by(|a, b| match (&a.0, &b.0) {
            (Some(x), Some(y)) => x.cmp(y).then_with(|| a.1.cmp(&b.1)),
            _ => a.1.cmp(&b.1),
        });
        let mut fixed_versions: Vec<String> = fixed.into_iter().map(|(_, s)| s).collect();
        fixed_versions.dedup();
        Finding {
            component: index,
            purl: component.purl.clone(),
            summary: group
                .iter()
                .map(|h| &self.entries[h.entry as usize].advisory)
                .find(|a| a.id == primary_id)
                .map(summary_of)
                .unwrap_or_default(),
            primary_id,
            known_exploited: ids.iter().any(|id| self.kev.contains(id)),
            advisories,
            ids,
            severity,
            fixed_versions,
            informational: informational.flatten(),
            status: match status {
                Match::Unknown(reason) => FindingStatus::Unknown(reason),
                Match::Affected | Match::NotAffected => FindingStatus::Affected,
            },
        }
    }
}

/// The primary id among sorted advisory ids (see [`Finding::primary_id`]).
fn primary<'a>(eco: &str, advisories: &'a [String]) -> &'a str {
    let own: &[&str] = match eco {
        "PyPI" => &["PYSEC-"],
        "Go" => &["GO-"],
        "crates.io" => &["RUSTSEC-"],
        "Debian" => &["DSA-", "DLA-", "DEBIAN-"],
        "Alpine" => &["ALPINE-"],
        _ => &[],
    };
    advisories
        .iter()
        .find(|id| own.iter().any(|p| id.starts_with(p)))
        .or(advisories.first())
        .map_or("", String::as_str)
}

fn informational_kind(affected: &Affected) -> Option<String> {
    affected
        .database_specific
        .as_ref()?
        .get("informational")?
        .as_str()
        .map(str::to_owned)
}

/// `fixed` events above `version` from the evaluable ranges of `affected`.
fn collect_fixed(
    affected: &Affected,
    version: &CandidateVersion<'_>,
    out: &mut Vec<(Option<Parsed>, String)>,
) {
    let package_ordering = affected
        .package
        .as_ref()
        .and_then(|p| ordering(ecosystem_base(&p.ecosystem)));
    for range in &affected.ranges {
        let eco = match range.kind {
            RangeType::Semver => bulwark_versions::Ecosystem::Semver,
            RangeType::Ecosystem => match package_ordering {
                Some(eco) => eco,
                None => continue,
            },
            RangeType::Git | RangeType::Other(_) => continue,
        };
        for event in &range.events {
            let Some((EventKind::Fixed, raw)) = event.kind() else {
                continue;
            };
            let parsed = Parsed::parse(eco, raw).ok();
            let above = match (&parsed, version.get(eco)) {
                (Some(f), Ok(v)) => f.cmp(v) == Ordering::Greater,
                _ => true,
            };
            if above && !out.iter().any(|(_, s)| s == raw) {
                out.push((parsed, raw.to_owned()));
            }
        }
    }
}

fn summary_of(advisory: &crate::model::Advisory) -> String {
    let text = advisory
        .summary
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            advisory
                .details
                .as_deref()
                .and_then(|d| d.lines().find(|l| !l.trim().is_empty()))
        })
        .unwrap_or("")
        .trim();
    match text.char_indices().nth(MAX_SUMMARY_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
