//! The release gate: verdicts, policy, waivers, advisories and vulnerability alerts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::DetectionAlertView;
use crate::words::api_enum;

api_enum! {
    /// Where a release's gate stands.
    GateState, "gate state" {
        /// The artifact is being scanned: no verdict yet.
        Scanning = "scanning",
        /// The verdict lets it be signed, promoted and deployed.
        Pass = "pass",
        /// The verdict blocks it.
        Block = "block",
    }
}

api_enum! {
    /// Where a release's SBOM comes from.
    SbomSource, "SBOM source" {
        /// Extracted from the artifact.
        Extracted = "extracted",
        /// Uploaded with the release (nothing extracted from the artifact).
        Uploaded = "uploaded",
        /// Both, merged.
        UploadedExtracted = "uploaded+extracted",
    }
}

api_enum! {
    /// The document format of an SBOM export.
    SbomFormat, "SBOM format" {
        /// CycloneDX 1.6 JSON.
        Cyclonedx = "cyclonedx",
        /// SPDX 2.3 JSON.
        Spdx = "spdx",
    }
}

api_enum! {
    /// What raised a (non-detection) alert.
    AlertKind, "alert kind" {
        /// A new advisory hits a release or a device.
        Vulnerability = "vulnerability",
    }
}

/// A release's gate: the stored scan and the verdict now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GateView {
    /// `name@version`.
    pub release: String,
    /// Scanning, or the verdict's status.
    pub state: GateState,
    /// When the artifact was scanned.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub scanned_at: Option<OffsetDateTime>,
    /// How the artifact was recognised (`tar+gzip`, `oci-archive`, …).
    #[serde(default)]
    pub format: Option<String>,
    /// Files scanned.
    #[serde(default)]
    pub files_scanned: u64,
    /// Components in the SBOM.
    #[serde(default)]
    pub components: u64,
    /// Where the SBOM comes from (absent while scanning, and when nothing
    /// could be taken from an unreadable artifact).
    #[serde(default)]
    pub sbom_source: Option<SbomSource>,
    /// The verdict now (policy, waivers and advisories as of this request):
    /// `bulwark_gate::Verdict`, with the advisory database's size and age
    /// (`advisories`) and non-blocking `warnings` (an empty or stale
    /// database).
    #[schema(value_type = Object)]
    #[serde(default)]
    pub verdict: Option<serde_json::Value>,
    /// Evidence: vulnerabilities, malware and secrets
    /// (`bulwark_gate::Findings`).
    #[schema(value_type = Object)]
    #[serde(default)]
    pub findings: Option<serde_json::Value>,
    /// Informational advisories (unmaintained, unsound).
    #[serde(default)]
    pub notices: Vec<String>,
    /// Extraction warnings, skipped files and scan errors.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A gate policy version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    /// Version (0: the built-in default, never stored).
    pub version: u64,
    /// The policy (`bulwark_gate::Policy`).
    #[schema(value_type = Object)]
    pub policy: serde_json::Value,
}

/// A waiver to add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWaiver {
    /// Advisory id or alias (`CVE-…`, `GHSA-…`), `malware:<namespace>.<rule>`
    /// or `secret:<fingerprint>`: one line, at most 1024 bytes.
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub finding: String,
    /// `name@version` or `name@*`: one line, at most 1024 bytes.
    #[schema(
        min_length = 3,
        max_length = 1024,
        pattern = "^[^@\\x00-\\x1f\\x7f-\\x9f]+@[^@\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub release: String,
    /// Why (required): one line, at most 1024 bytes.
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub reason: String,
    /// When it stops applying (in the future).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A waiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WaiverView {
    /// Id.
    pub id: String,
    /// What it waives.
    pub finding: String,
    /// Which releases.
    pub release: String,
    /// Why.
    pub reason: String,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// Expired already.
    pub expired: bool,
    /// Who added it.
    pub created_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// Waivers in force or expired (revoked ones are gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WaiverList {
    /// Newest first.
    pub waivers: Vec<WaiverView>,
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AlertView {
    /// Id.
    pub id: String,
    /// What raised it.
    pub kind: AlertKind,
    /// Advisory id.
    pub advisory: String,
    /// `release:name@version` or `device:<uuid>`.
    pub subject: String,
    /// What happened.
    pub message: String,
    /// When raised.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// Query of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// Only detection alerts of this severity (vulnerability alerts have
    /// none, so they are left out).
    pub severity: Option<crate::Severity>,
    /// Only alerts about this device (detections, and advisory hits whose
    /// subject is `device:<id>`): a device id.
    #[param(pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub device: Option<String>,
    /// Only alerts raised within this long, 1s – 7d, e.g. `90s`, `15m`,
    /// `1h`, `7d`.
    #[param(pattern = "^([1-9][0-9]{0,4}s|[1-9][0-9]{0,3}m|[1-9][0-9]?h|[1-7]d)$")]
    pub since: Option<String>,
    /// Most alerts of each kind, 1–500 (default 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Alerts, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertList {
    /// Vulnerability alerts (new advisory hits).
    pub alerts: Vec<AlertView>,
    /// Detection alerts (device behaviour).
    #[serde(default)]
    pub detections: Vec<DetectionAlertView>,
}

/// What an advisory import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportView {
    /// One-line summary (new, updated, unchanged, withdrawn, skipped).
    pub summary: String,
    /// Advisories added or changed.
    pub changed: u64,
    /// Releases whose verdict changed.
    pub verdicts_changed: u64,
    /// Alerts raised by this import.
    pub alerts: Vec<AlertView>,
    /// Files that could not be imported (the rest was).
    pub errors: Vec<String>,
}

/// The advisory database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdvisoriesView {
    /// Advisories stored.
    pub count: u64,
    /// When OSV advisories were last imported (absent when never, or
    /// before the server recorded it); verdicts warn when it is older than
    /// the policy's `stale_advisories_days`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<OffsetDateTime>,
    /// Version of the imported known-exploited catalog, if any.
    pub kev_catalog: Option<String>,
}

/// What an advisory hits now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AffectedView {
    /// The advisory id asked about.
    pub advisory: String,
    /// Releases hit, with the affected component purls.
    pub releases: BTreeMap<String, Vec<String>>,
    /// Devices hit, with the affected package purls.
    pub devices: BTreeMap<String, Vec<String>>,
}
