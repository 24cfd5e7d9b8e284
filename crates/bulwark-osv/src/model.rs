//! The OSV schema 1.x data model and its validation.
//!
//! The types mirror the OSV JSON field for field (and derive serde for
//! exactly that shape): OSV JSON *is* the contract here, and it is also the
//! format [`crate::AdvisoryDb`] persists, so there is one codec. Fields
//! this crate does not interpret (`ecosystem_specific`, `database_specific`,
//! `credits`) are kept as JSON values so nothing is lost on a round trip.

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{
    AdvisoryError, MAX_AFFECTED, MAX_ALIASES, MAX_EVENT_LEN, MAX_EVENTS, MAX_ID_LEN, MAX_NAME_LEN,
    MAX_RANGES, MAX_VERSIONS,
};

/// One OSV advisory (schema 1.x).
///
/// Build it with [`crate::parse_advisory`], which validates it; the fields
/// are public for reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// The OSV schema version the producer claims, e.g. `1.3.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    /// The advisory's id, e.g. `PYSEC-2021-335`, `GO-2020-0001`.
    pub id: String,
    /// RFC 3339 time of the last change; a newer one replaces an older one.
    pub modified: String,
    /// RFC 3339 time of publication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// RFC 3339 time of withdrawal; a withdrawn advisory never matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<String>,
    /// Ids of the same vulnerability in other databases (`CVE-…`, `GHSA-…`).
    #[serde(
        default,
        deserialize_with = "vec_or_null",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aliases: Vec<String>,
    /// Ids of related but different vulnerabilities (not merged).
    #[serde(
        default,
        deserialize_with = "vec_or_null",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub related: Vec<String>,
    /// Ids of upstream vulnerabilities (not merged).
    #[serde(
        default,
        deserialize_with = "vec_or_null",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub upstream: Vec<String>,
    /// One-line summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// CommonMark details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Quantitative severities (CVSS vectors).
    #[serde(
        default,
        deserialize_with = "vec_or_null",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub severity: Vec<SeverityScore>,
    /// The affected packages and versions.
    #[serde(
        default,
        deserialize_with = "vec_or_null",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub affected: Vec<Affected>,
    /// Links.
    #[serde(
        default,
        deserialize_with = "vec_or_null",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub references: Vec<Reference>,
    /// Credits, uninterpreted.
    #[serde(
        default,
        deserialize_with = "vec_or_null",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub credits: Vec<serde_json::Value>,
    /// Database-specific data; GitHub's `severity`
    /// (`CRITICAL`/`HIGH`/`MODERATE`/`LOW`) is read from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
}

/// One `severity[]` entry: a scoring method and its vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityScore {
    /// The scoring method.
    #[serde(rename = "type")]
    pub kind: SeverityType,
    /// The vector or value, e.g. `CVSS:3.1/AV:N/AC:L/…`.
    pub score: String,
}

/// `severity[].type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum SeverityType {
    /// `CVSS_V2`.
    CvssV2,
    /// `CVSS_V3` (3.0 or 3.1).
    CvssV3,
    /// `CVSS_V4`.
    CvssV4,
    /// `Ubuntu` priority.
    Ubuntu,
    /// Any other type, kept verbatim.
    Other(String),
}

impl From<String> for SeverityType {
    fn from(s: String) -> Self {
        match s.as_str() {
            "CVSS_V2" => Self::CvssV2,
            "CVSS_V3" => Self::CvssV3,
            "CVSS_V4" => Self::CvssV4,
            "Ubuntu" => Self::Ubuntu,
            _ => Self::Other(s),
        }
    }
}

impl From<SeverityType> for String {
    fn from(t: SeverityType) -> String {
        match t {
            SeverityType::CvssV2 => "CVSS_V2".into(),
            SeverityType::CvssV3 => "CVSS_V3".into(),
            SeverityType::CvssV4 => "CVSS_V4".into(),
            SeverityType::Ubuntu => "Ubuntu".into(),
            SeverityType::Other(s) => s,
        }
    }
}

/// One `affected[]` entry: a package and which of its versions are affected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// The package; entries without one never match a component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Package>,
    /// Per-package severities (schema 1.4+).
    #[serde(
        default,
        deserialize_with = "vec_or_null",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub severity: Vec<SeverityScore>,
    /// Affected ranges.
    #[serde(
        default,
        deserialize_with = "vec_or_null",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ranges: Vec<Range>,
    /// Affected versions, enumerated.
    #[serde(
        default,
        deserialize_with = "vec_or_null",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub versions: Vec<String>,
    /// Ecosystem-specific data, uninterpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem_specific: Option<serde_json::Value>,
    /// Database-specific data; RustSec's `informational` is read from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
}

/// `affected[].package`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// OSV ecosystem, possibly with a release suffix: `PyPI`, `Debian:12`.
    pub ecosystem: String,
    /// Package name as the ecosystem spells it.
    pub name: String,
    /// Package URL without version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
}

/// `affected[].ranges[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// How to order the event versions.
    #[serde(rename = "type")]
    pub kind: RangeType,
    /// The repository of a `GIT` range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The timeline; order in the file does not matter (it is sorted).
    #[serde(default, deserialize_with = "vec_or_null")]
    pub events: Vec<Event>,
    /// Database-specific data, uninterpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
}

/// `affected[].ranges[].type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum RangeType {
    /// SemVer 2.0.0 ordering, whatever the package's ecosystem.
    Semver,
    /// The package ecosystem's own ordering.
    Ecosystem,
    /// Git commits: not evaluable without the repository.
    Git,
    /// An unknown type, kept verbatim; never evaluable.
    Other(String),
}

impl From<String> for RangeType {
    fn from(s: String) -> Self {
        match s.as_str() {
            "SEMVER" => Self::Semver,
            "ECOSYSTEM" => Self::Ecosystem,
            "GIT" => Self::Git,
            _ => Self::Other(s),
        }
    }
}

impl From<RangeType> for String {
    fn from(t: RangeType) -> String {
        match t {
            RangeType::Semver => "SEMVER".into(),
            RangeType::Ecosystem => "ECOSYSTEM".into(),
            RangeType::Git => "GIT".into(),
            RangeType::Other(s) => s,
        }
    }
}

/// One event of a range; a valid event has exactly one field set (see
/// [`Event::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Event {
    /// Vulnerability introduced at this version (`"0"`: before all versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    /// Fixed at this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    /// Last affected version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
    /// Upper limit of the range (`"*"`: infinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// Which field an [`Event`] sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `introduced`.
    Introduced,
    /// `fixed`.
    Fixed,
    /// `last_affected`.
    LastAffected,
    /// `limit`.
    Limit,
}

impl Event {
    /// The event's kind and version, or `None` unless exactly one field is set.
    pub fn kind(&self) -> Option<(EventKind, &str)> {
        let mut set = [
            (EventKind::Introduced, &self.introduced),
            (EventKind::Fixed, &self.fixed),
            (EventKind::LastAffected, &self.last_affected),
            (EventKind::Limit, &self.limit),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)));
        let first = set.next()?;
        set.next().is_none().then_some(first)
    }
}

/// `references[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// `ADVISORY`, `WEB`, `FIX`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The URL.
    pub url: String,
}

/// `null` reads as an empty list (some producers write `"aliases": null`).
fn vec_or_null<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl Advisory {
    /// The parsed `modified` time (validated on parse, so `None` only for
    /// hand-built advisories).
    pub fn modified_time(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(&self.modified, &Rfc3339).ok()
    }

    /// Whether the advisory is withdrawn.
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.is_some()
    }

    /// Checks the OSV schema rules this crate relies on, and the size limits.
    pub fn validate(&self) -> Result<(), AdvisoryError> {
        let id = self.id.as_str();
        let invalid = |field: &str, message: String| AdvisoryError::Invalid {
            id: if valid_id(id) {
                id.to_owned()
            } else {
                "?".to_owned()
            },
            field: field.to_owned(),
            message,
        };
        if !valid_id(id) {
            return Err(invalid(
                "id",
                format!(
                    "{:?} is not a valid id (1 to {MAX_ID_LEN} characters from A-Z a-z 0-9 . _ : -)",
                    shorten(id)
                ),
            ));
        }
        check_time("modified", Some(&self.modified)).map_err(|m| invalid("modified", m))?;
        check_time("published", self.published.as_deref()).map_err(|m| invalid("published", m))?;
        check_time("withdrawn", self.withdrawn.as_deref()).map_err(|m| invalid("withdrawn", m))?;
        for (field, list) in [
            ("aliases", &self.aliases),
            ("related", &self.related),
            ("upstream", &self.upstream),
        ] {
            if list.len() > MAX_ALIASES {
                return Err(invalid(
                    field,
                    format!("{} entries, more than {MAX_ALIASES}", list.len()),
                ));
            }
            for (i, alias) in list.iter().enumerate() {
                if alias.is_empty()
                    || alias.len() > MAX_ID_LEN
                    || alias.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(invalid(
                        &format!("{field}[{i}]"),
                        format!("{:?} is not a valid id", shorten(alias)),
                    ));
                }
            }
        }
        check_severities("severity", &self.severity).map_err(|(f, m)| invalid(&f, m))?;
        if self.affected.len() > MAX_AFFECTED {
            return Err(invalid(
                "affected",
                format!("{} entries, more than {MAX_AFFECTED}", self.affected.len()),
            ));
        }
        for (a, affected) in self.affected.iter().enumerate() {
            check_affected(affected).map_err(|(f, m)| invalid(&format!("affected[{a}]{f}"), m))?;
        }
        Ok(())
    }
}

fn check_affected(affected: &Affected) -> Result<(), (String, String)> {
    if let Some(package) = &affected.package {
        if package.name.is_empty() || package.name.len() > MAX_NAME_LEN {
            return Err((
                ".package.name".into(),
                format!("must be 1 to {MAX_NAME_LEN} bytes"),
            ));
        }
        if package.ecosystem.is_empty() || package.ecosystem.len() > MAX_NAME_LEN {
            return Err((
                ".package.ecosystem".into(),
                format!("must be 1 to {MAX_NAME_LEN} bytes"),
            ));
        }
    }
    check_severities(".severity", &affected.severity)?;
    if affected.ranges.len() > MAX_RANGES {
        return Err((
            ".ranges".into(),
            format!("{} ranges, more than {MAX_RANGES}", affected.ranges.len()),
        ));
    }
    for (r, range) in affected.ranges.iter().enumerate() {
        let field = format!(".ranges[{r}].events");
        if range.events.is_empty() {
            return Err((field, "a range needs at least one event".into()));
        }
        if range.events.len() > MAX_EVENTS {
            return Err((
                field,
                format!("{} events, more than {MAX_EVENTS}", range.events.len()),
            ));
        }
        let (mut introduced, mut fixed, mut last_affected) = (false, false, false);
        for (e, event) in range.events.iter().enumerate() {
            let Some((kind, version)) = event.kind() else {
                return Err((
                    format!("{field}[{e}]"),
                    "an event sets exactly one of introduced, fixed, last_affected, limit".into(),
                ));
            };
            if version.is_empty() || version.len() > MAX_EVENT_LEN {
                return Err((
                    format!("{field}[{e}]"),
                    format!("version must be 1 to {MAX_EVENT_LEN} bytes"),
                ));
            }
            match kind {
                EventKind::Introduced => introduced = true,
                EventKind::Fixed => fixed = true,
                EventKind::LastAffected => last_affected = true,
                EventKind::Limit => {}
            }
        }
        if !introduced {
            return Err((field, "a range needs an introduced event".into()));
        }
        if fixed && last_affected {
            return Err((
                field,
                "a range has fixed or last_affected events, not both".into(),
            ));
        }
    }
    if affected.versions.len() > MAX_VERSIONS {
        return Err((
            ".versions".into(),
            format!(
                "{} versions, more than {MAX_VERSIONS}",
                affected.versions.len()
            ),
        ));
    }
    for (v, version) in affected.versions.iter().enumerate() {
        if version.is_empty() || version.len() > MAX_EVENT_LEN {
            return Err((
                format!(".versions[{v}]"),
                format!("must be 1 to {MAX_EVENT_LEN} bytes"),
            ));
        }
    }
    Ok(())
}

fn check_severities(field: &str, list: &[SeverityScore]) -> Result<(), (String, String)> {
    if list.len() > MAX_ALIASES {
        return Err((field.into(), format!("more than {MAX_ALIASES} entries")));
    }
    for (i, s) in list.iter().enumerate() {
        if s.score.len() > MAX_EVENT_LEN {
            return Err((
                format!("{field}[{i}].score"),
                format!("longer than {MAX_EVENT_LEN} bytes"),
            ));
        }
    }
    Ok(())
}

fn check_time(name: &str, value: Option<&str>) -> Result<(), String> {
    match value {
        None => Ok(()),
        Some(v) => OffsetDateTime::parse(v, &Rfc3339)
            .map(drop)
            .map_err(|e| format!("{name} {:?} is not an RFC 3339 time: {e}", shorten(v))),
    }
}

/// An advisory id: 1 to [`MAX_ID_LEN`] bytes of `A-Z a-z 0-9 . _ : -`.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The first 64 characters of `s`, for error messages.
pub(crate) fn shorten(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}
