//! The gate policy and waivers.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Severity;

/// What blocks a release. The server stores every version of it and
/// journals each change; [`Policy::default`] is version 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Block on a vulnerability at or above this severity; `None` disables.
    pub block_severity: Option<Severity>,
    /// Block on any known-exploited vulnerability, whatever its severity.
    pub block_known_exploited: bool,
    /// Block on any malware rule hit.
    pub block_malware: bool,
    /// Block on any private key.
    pub block_private_keys: bool,
    /// Block on other secrets at or above this severity; `None` disables.
    pub block_secret_severity: Option<Severity>,
    /// Block when the release has no components at all: no SBOM was
    /// uploaded and none could be extracted.
    pub require_sbom: bool,
    /// Signatures a release needs before it is promoted beyond its first
    /// environment or deployed to a later one (0 disables).
    pub require_signatures: u32,
    /// The severity given to a vulnerability whose advisories carry neither
    /// a CVSS vector nor a severity label, before `block_severity` is
    /// applied. The default, `none`, means such a vulnerability never
    /// blocks on severity alone.
    pub unscored_severity: Severity,
    /// Warn when the advisory database was last imported more than this
    /// many days before the verdict, or records no import time at all;
    /// `None` disables the check.
    pub stale_advisories_days: Option<u32>,
    /// Block, instead of warning, when the advisory database is stale (by
    /// `stale_advisories_days`).
    pub block_stale_advisories: bool,
    /// Block, instead of warning, when the advisory database is empty:
    /// no vulnerability can have been found.
    pub block_without_advisories: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            block_severity: Some(Severity::Critical),
            block_known_exploited: true,
            block_malware: true,
            block_private_keys: true,
            block_secret_severity: Some(Severity::High),
            require_sbom: true,
            require_signatures: 1,
            unscored_severity: Severity::None,
            stale_advisories_days: Some(DEFAULT_STALE_ADVISORIES_DAYS),
            block_stale_advisories: false,
            block_without_advisories: false,
        }
    }
}

/// [`Policy::stale_advisories_days`] by default: OSV databases change
/// daily, so a week-old copy misses a week of advisories.
pub const DEFAULT_STALE_ADVISORIES_DAYS: u32 = 7;

/// The largest accepted [`Policy::stale_advisories_days`] (ten years).
const MAX_STALE_ADVISORIES_DAYS: u32 = 3650;

/// A policy document that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not a valid policy document.
    #[error("invalid gate policy: {0}")]
    Invalid(String),
}

impl Policy {
    /// Parses a policy from JSON (unknown fields are errors, missing ones
    /// take their defaults).
    pub fn from_json(bytes: &[u8]) -> Result<Policy, PolicyError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        if !value.is_object() {
            return Err(PolicyError::Invalid("a policy is a JSON object".into()));
        }
        let p: Policy =
            serde_json::from_value(value).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        if p.require_signatures > 100 {
            return Err(PolicyError::Invalid(format!(
                "require_signatures {} is more than 100",
                p.require_signatures
            )));
        }
        match p.stale_advisories_days {
            Some(0) => {
                return Err(PolicyError::Invalid(
                    "stale_advisories_days 0 would call every database stale (null disables the check)"
                        .into(),
                ));
            }
            Some(d) if d > MAX_STALE_ADVISORIES_DAYS => {
                return Err(PolicyError::Invalid(format!(
                    "stale_advisories_days {d} is more than {MAX_STALE_ADVISORIES_DAYS}"
                )));
            }
            None if p.block_stale_advisories => {
                return Err(PolicyError::Invalid(
                    "block_stale_advisories needs stale_advisories_days".into(),
                ));
            }
            _ => {}
        }
        Ok(p)
    }
}

/// An exception to the policy for one finding, on one release (`name@version`)
/// or every version of a product (`name@*`), until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiver {
    /// Server-assigned id.
    pub id: String,
    /// What it waives: an advisory id or alias (`CVE-…`, `GHSA-…`), a
    /// `malware:<namespace>.<rule>` or a `secret:<fingerprint>`.
    pub finding: String,
    /// `name@version` or `name@*`.
    pub release: String,
    /// Why (required).
    pub reason: String,
    /// When it stops applying.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Who added it.
    #[serde(default)]
    pub created_by: String,
}

/// A waiver that cannot be added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WaiverError {
    /// A field is wrong.
    #[error("invalid waiver: {0}")]
    Invalid(String),
}

/// Longest accepted waiver field.
const MAX_FIELD: usize = 1024;

impl Waiver {
    /// Checks a waiver before it is stored: every field present and short,
    /// the release pattern well formed, the expiry in the future.
    pub fn validate(&self, now: OffsetDateTime) -> Result<(), WaiverError> {
        let bad = |m: String| Err(WaiverError::Invalid(m));
        for (name, v) in [
            ("finding", &self.finding),
            ("release", &self.release),
            ("reason", &self.reason),
        ] {
            if v.trim().is_empty() {
                return bad(format!("{name} is empty"));
            }
            if v.len() > MAX_FIELD {
                return bad(format!("{name} is longer than {MAX_FIELD} bytes"));
            }
            if v.chars().any(char::is_control) {
                return bad(format!("{name} contains control characters"));
            }
        }
        match self.release.split_once('@') {
            Some((n, v)) if !n.is_empty() && !v.is_empty() && !v.contains('@') => {}
            _ => {
                return bad(format!(
                    "release {:?} is not name@version or name@*",
                    self.release
                ));
            }
        }
        if self.expires_at <= now {
            return bad("expires_at is not in the future".into());
        }
        Ok(())
    }

    /// Whether this waiver covers `release` (`name@version`) at `now`.
    pub fn applies(&self, release: &str, now: OffsetDateTime) -> bool {
        if now >= self.expires_at {
            return false;
        }
        if self.release == release {
            return true;
        }
        match (self.release.split_once('@'), release.split_once('@')) {
            (Some((wn, "*")), Some((rn, _))) => wn == rn,
            _ => false,
        }
    }
}
