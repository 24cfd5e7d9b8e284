//! Severity: CVSS scores (via RustSec's `cvss` crate) and database labels.

use std::fmt;
use std::str::FromStr;

use crate::model::{Advisory, SeverityScore, SeverityType};

/// A qualitative severity, ordered from `Unknown` (lowest) to `Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum SeverityLevel {
    /// No CVSS vector and no database label.
    #[default]
    Unknown,
    /// CVSS 0.0.
    None,
    /// CVSS 0.1–3.9, GitHub `LOW`.
    Low,
    /// CVSS 4.0–6.9, GitHub `MODERATE`.
    Medium,
    /// CVSS 7.0–8.9, GitHub `HIGH`.
    High,
    /// CVSS 9.0–10.0, GitHub `CRITICAL`.
    Critical,
}

impl SeverityLevel {
    /// Lower-case name: `unknown`, `none`, `low`, `medium`, `high`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::None => "none",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    fn from_label(label: &str) -> Option<Self> {
        Some(match label.to_ascii_uppercase().as_str() {
            "CRITICAL" => Self::Critical,
            "HIGH" | "IMPORTANT" => Self::High,
            "MODERATE" | "MEDIUM" => Self::Medium,
            "LOW" | "NEGLIGIBLE" => Self::Low,
            _ => return None,
        })
    }

    fn from_cvss(s: cvss::Severity) -> Self {
        match s {
            cvss::Severity::None => Self::None,
            cvss::Severity::Low => Self::Low,
            cvss::Severity::Medium => Self::Medium,
            cvss::Severity::High => Self::High,
            cvss::Severity::Critical => Self::Critical,
        }
    }
}

impl fmt::Display for SeverityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An advisory's severity: the level, and the CVSS score and vector it came
/// from when it came from one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Severity {
    /// The level.
    pub level: SeverityLevel,
    /// The CVSS base score (0.0–10.0), when a vector was given.
    pub score: Option<f64>,
    /// The vector the score was computed from.
    pub vector: Option<String>,
}

impl Severity {
    /// The higher of two severities: by level, then by score.
    pub(crate) fn max(self, other: Severity) -> Severity {
        let key = |s: &Severity| (s.level, s.score.unwrap_or(-1.0));
        let (a, b) = (key(&self), key(&other));
        if b.0 > a.0 || (b.0 == a.0 && b.1 > a.1) {
            other
        } else {
            self
        }
    }
}

/// The severity of an advisory: the highest-scoring CVSS vector among
/// `severity[]` and `affected[].severity[]` (v2, v3.0, v3.1 and v4.0 are
/// scored); failing that, GitHub's `database_specific.severity` label;
/// failing that, [`SeverityLevel::Unknown`]. Vectors the `cvss` crate
/// rejects are ignored.
pub fn advisory_severity(advisory: &Advisory) -> Severity {
    let scores = advisory
        .severity
        .iter()
        .chain(advisory.affected.iter().flat_map(|a| a.severity.iter()));
    let mut best: Option<Severity> = None;
    for s in scores {
        if let Some(scored) = score(s) {
            best = Some(match best {
                None => scored,
                Some(b) => b.max(scored),
            });
        }
    }
    if let Some(best) = best {
        return best;
    }
    let label = advisory
        .database_specific
        .as_ref()
        .and_then(|d| d.get("severity"))
        .and_then(|s| s.as_str())
        .and_then(SeverityLevel::from_label);
    Severity {
        level: label.unwrap_or_default(),
        score: None,
        vector: None,
    }
}

fn score(s: &SeverityScore) -> Option<Severity> {
    match s.kind {
        SeverityType::CvssV2 | SeverityType::CvssV3 | SeverityType::CvssV4 => {
            let vector = cvss::Cvss::from_str(s.score.trim()).ok()?;
            let value = vector.score();
            if !(0.0..=10.0).contains(&value) {
                return None;
            }
            Some(Severity {
                level: SeverityLevel::from_cvss(vector.severity()),
                score: Some(value),
                vector: Some(s.score.clone()),
            })
        }
        SeverityType::Ubuntu => SeverityLevel::from_label(&s.score).map(|level| Severity {
            level,
            score: None,
            vector: None,
        }),
        SeverityType::Other(_) => None,
    }
}
