//! What a scan found.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Severity, ordered: `None < Low < Medium < High < Critical`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Unknown or none given.
    #[default]
    None,
    /// Low.
    Low,
    /// Medium (GHSA's "moderate").
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// The CVSS qualitative rating of a base score (CVSS v3.1 §5).
    pub fn from_score(score: f64) -> Severity {
        match score {
            s if s >= 9.0 => Self::Critical,
            s if s >= 7.0 => Self::High,
            s if s >= 4.0 => Self::Medium,
            s if s > 0.0 => Self::Low,
            _ => Self::None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "unknown" => Ok(Self::None),
            "low" => Ok(Self::Low),
            "medium" | "moderate" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "critical" => Ok(Self::Critical),
            _ => Err(format!(
                "unknown severity {s:?} (none, low, medium, high, critical)"
            )),
        }
    }
}

/// A component affected by an advisory (aliases merged into one finding).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VulnerabilityFinding {
    /// The primary advisory id.
    pub id: String,
    /// Every other id of the same vulnerability (CVE, GHSA, PYSEC, …).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One-line summary.
    #[serde(default)]
    pub summary: String,
    /// Highest severity among the merged advisories.
    pub severity: Severity,
    /// CVSS base score, when one was computed.
    #[serde(default)]
    pub score: Option<f64>,
    /// On a known-exploited list (CISA KEV).
    #[serde(default)]
    pub known_exploited: bool,
    /// The affected component's purl.
    pub purl: String,
    /// Versions that fix it, for advice.
    #[serde(default)]
    pub fixed: Vec<String>,
}

impl VulnerabilityFinding {
    /// Whether `id` names this vulnerability (its id or any alias).
    pub fn is_named(&self, id: &str) -> bool {
        self.id == id || self.aliases.iter().any(|a| a == id)
    }

    /// Whether its advisories gave no severity at all: no CVSS vector and
    /// no database label (a CVSS score of 0.0 is a score). The policy's
    /// `unscored_severity` says how such a vulnerability is judged.
    pub fn is_unscored(&self) -> bool {
        self.severity == Severity::None && self.score.is_none()
    }
}

/// A YARA rule that matched a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalwareFinding {
    /// Rule namespace (the rules file).
    pub namespace: String,
    /// Rule name.
    pub rule: String,
    /// Path of the file inside the artifact.
    pub path: String,
    /// The file was deleted by a later image layer (still shipped bytes).
    #[serde(default)]
    pub removed: bool,
}

impl MalwareFinding {
    /// The waiver key: `malware:<namespace>.<rule>`.
    pub fn key(&self) -> String {
        format!("malware:{}.{}", self.namespace, self.rule)
    }
}

/// A leaked secret or default credential (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretFinding {
    /// Detector code, e.g. `private_key`, `aws_access_key`, `default_password`.
    pub kind: String,
    /// Path of the file inside the artifact.
    pub path: String,
    /// 1-based line, when the file is text.
    #[serde(default)]
    pub line: Option<u64>,
    /// Severity assigned by the detector.
    pub severity: Severity,
    /// What was found.
    pub description: String,
    /// SHA-256 of the secret (hex): the waiver key is `secret:<fingerprint>`.
    pub fingerprint: String,
    /// The file was deleted by a later image layer.
    #[serde(default)]
    pub removed: bool,
}

impl SecretFinding {
    /// The waiver key: `secret:<fingerprint>`.
    pub fn key(&self) -> String {
        format!("secret:{}", self.fingerprint)
    }

    /// A private key of any format.
    pub fn is_private_key(&self) -> bool {
        self.kind.contains("private_key")
    }
}

/// Everything a release's scan found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    /// Vulnerable components.
    #[serde(default)]
    pub vulnerabilities: Vec<VulnerabilityFinding>,
    /// Malware rule hits.
    #[serde(default)]
    pub malware: Vec<MalwareFinding>,
    /// Secrets and default credentials.
    #[serde(default)]
    pub secrets: Vec<SecretFinding>,
}
