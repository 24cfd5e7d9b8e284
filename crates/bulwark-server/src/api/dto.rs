//! HTTP request and response bodies of the admin API. The CLI uses these
//! same types, so the two cannot disagree.

use std::collections::BTreeMap;

use bulwark_proto::{DeviceId, Inventory};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// Id.
    pub id: String,
    /// Login name.
    pub name: String,
    /// `admin`, `operator`, `release-manager`, `security` or `viewer`.
    pub role: String,
    /// Created at.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// `POST /api/v1/accounts`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Login name: 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit.
    pub name: String,
    /// Role name.
    pub role: String,
}

/// The caller's identity.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// The account.
    pub account: AccountView,
    /// The token used.
    pub token_id: String,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Label, e.g. `ci`.
    pub label: String,
    /// Account name to issue for (admins only; default: the caller).
    #[serde(default)]
    pub account: Option<String>,
    /// Lifetime in seconds (default: no expiry).
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
}

/// A token just created. `token` is shown this once and never again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// Public id.
    pub id: String,
    /// The secret token.
    pub token: String,
    /// Account name.
    pub account: String,
    /// Expiry.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
}

/// A stored API token (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// Public id.
    pub id: String,
    /// Owning account id.
    pub account_id: String,
    /// Label.
    pub label: String,
    /// Created at.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Expiry.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// When revoked.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
}

/// `POST /api/v1/enroll-tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollToken {
    /// Group the device joins.
    pub group: String,
    /// Environment the device joins.
    pub environment: String,
    /// Lifetime in seconds (60 – 30 days; default 1 hour).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// How many devices the token may enroll (1 – 100000; default 1, a one-time token).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    pub uses: Option<u32>,
}

/// An enrollment token just created; `token` is shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedEnrollToken {
    /// Public id.
    pub id: String,
    /// The secret token.
    pub token: String,
    /// Group.
    pub group: String,
    /// Environment.
    pub environment: String,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// How many devices it may enroll.
    pub max_uses: u32,
}

/// A stored enrollment token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollTokenView {
    /// Public id.
    pub id: String,
    /// Group.
    pub group: String,
    /// Environment.
    pub environment: String,
    /// Created at.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// When last used.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub used_at: Option<OffsetDateTime>,
    /// The device it enrolled last.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// How many devices it may enroll.
    pub max_uses: u32,
    /// How many devices it has enrolled.
    pub uses: u32,
}

/// A device as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    /// Id.
    pub id: DeviceId,
    /// Hostname given at enrollment.
    pub hostname: Option<String>,
    /// Group.
    pub group: String,
    /// Environment.
    pub environment: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// `active` or `revoked`.
    pub status: String,
    /// Checked in within two poll intervals.
    pub online: bool,
    /// Last check-in.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<OffsetDateTime>,
    /// Enrolled at.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub enrolled_at: OffsetDateTime,
    /// Agent version.
    pub agent_version: Option<String>,
    /// Boot id.
    pub boot_id: Option<String>,
    /// Certificate serial (hex).
    pub cert_serial: String,
    /// Certificate expiry.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub cert_not_after: OffsetDateTime,
    /// Digest of the stored inventory.
    pub inventory_digest: Option<String>,
    /// When revoked.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
    /// Why revoked.
    pub revoked_reason: Option<String>,
    /// When quarantined, while it is.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub quarantined_at: Option<OffsetDateTime>,
    /// Why quarantined.
    #[serde(default)]
    pub quarantine_reason: Option<String>,
}

/// `GET /api/v1/devices`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceList {
    /// This page.
    pub devices: Vec<DeviceView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default)]
    pub next_after: Option<DeviceId>,
}

/// `GET /api/v1/devices/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceDetail {
    /// The device.
    pub device: DeviceView,
    /// Its last reported inventory.
    pub inventory: Option<Inventory>,
    /// Its latest update status.
    #[serde(default)]
    pub update: Option<UpdateStatusView>,
    /// Its recent update reports, newest first.
    #[serde(default)]
    pub update_history: Vec<UpdateStatusView>,
    /// Its latest isolation report (since the server started).
    #[serde(default)]
    pub isolation: Option<IsolationView>,
    /// Gateway and telemetry messages rejected, by reason (since the
    /// server started).
    #[serde(default)]
    pub rejections: std::collections::BTreeMap<String, u64>,
    /// Its most recent detection alerts, newest first.
    #[serde(default)]
    pub alerts: Vec<DetectionAlertView>,
    /// Its latest telemetry sample, as written to the history (the
    /// sample that closed the device's last full minute, or its session).
    #[serde(default)]
    pub latest_telemetry: Option<LatestTelemetryView>,
}

/// A device's latest telemetry sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatestTelemetryView {
    /// When the server received it.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: OffsetDateTime,
    /// The sample: listening ports, connections, traffic counters,
    /// processes, CPU and memory.
    pub telemetry: bulwark_proto::telemetry::Telemetry,
}

/// Query of `GET /api/v1/devices/{id}/telemetry`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TelemetryQuery {
    /// How far back, e.g. `90s`, `15m`, `1h`, `7d` (default `1h`).
    pub since: Option<String>,
    /// Most minutes returned, 1–10080 (default 1440).
    pub limit: Option<u32>,
}

/// One minute of a device's telemetry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TelemetryMinuteView {
    /// Start of the minute.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub minute: OffsetDateTime,
    /// Samples received.
    pub samples: u64,
    /// Average and highest CPU use, percent.
    pub cpu_avg: f64,
    /// Highest CPU use.
    pub cpu_max: f64,
    /// Average memory use, percent.
    pub memory_avg: f64,
    /// Highest memory use.
    pub memory_max: f64,
    /// Most processes.
    pub processes_max: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Packets received.
    pub packets_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// Outgoing TCP connection attempts.
    pub connection_attempts: u64,
    /// Failed logins.
    pub failed_logins: u64,
    /// Failed outgoing connection attempts (refused, reset, timed out).
    #[serde(default)]
    pub failed_attempts: u64,
    /// Most listening sockets in one sample.
    pub listening_max: u64,
    /// Most connections in one sample.
    pub connections_max: u64,
    /// Most outbound destinations in one sample.
    pub destinations_max: u64,
    /// Most unanswered outbound attempts in one sample.
    pub unanswered_max: u64,
}

/// `GET /api/v1/devices/{id}/telemetry`: per-minute history, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TelemetryHistory {
    /// The device.
    pub device_id: String,
    /// The minutes with samples (minutes without are absent).
    pub minutes: Vec<TelemetryMinuteView>,
}

/// What the agent reported after an isolate command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IsolationView {
    /// Whether its firewall now allows only the control plane.
    pub isolated: bool,
    /// What it did, or why it could not.
    pub detail: String,
}

/// `POST /api/v1/devices/{id}/quarantine` and `/release`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarantineDevice {
    /// Why (recorded; 1–1024 characters).
    pub reason: String,
}

/// A detection alert with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DetectionAlertView {
    /// Id.
    pub id: String,
    /// The device.
    #[schema(value_type = String)]
    pub device: DeviceId,
    /// Its group.
    pub group: String,
    /// The behaviour that fired.
    pub behaviour: String,
    /// `rule`, `zscore`, `novelty`, `fanout` or `peer-outlier`.
    pub kind: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// The profile version that fired.
    pub profile_version: String,
    /// `quarantine` when the behaviour quarantines.
    pub action: Option<String>,
    /// What happened.
    pub message: String,
    /// The datapoints that fired it: `[{time, metric, value}]`.
    #[schema(value_type = Vec<Object>)]
    pub evidence: serde_json::Value,
    /// Time of the datapoint that fired it (server clock at receipt).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub observed_at: OffsetDateTime,
    /// When raised.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// One event of `GET /api/v1/alerts/stream` (the SSE event name is the
/// variant: `detection` or `vulnerability`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "alert", rename_all = "snake_case")]
pub enum StreamEvent {
    /// A detection alert.
    Detection(DetectionAlertView),
    /// A new advisory hit.
    Vulnerability(AlertView),
}

/// `POST /api/v1/profiles`: a profile document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyProfile {
    /// The TOML document (`group`, `version`, `[[behaviour]]`…).
    pub toml: String,
}

/// One stored profile version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProfileView {
    /// Store-wide revision.
    pub revision: u64,
    /// Device group (`*`: groups without their own).
    pub group: String,
    /// The profile's version.
    pub version: String,
    /// Behaviours it defines.
    pub behaviours: Vec<String>,
    /// Who applied it.
    pub created_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// The TOML document.
    pub toml: String,
}

/// Stored profiles, oldest first; the last of each group is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProfileList {
    /// Profiles.
    pub profiles: Vec<ProfileView>,
}

/// Query of `GET /api/v1/profiles/effective`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EffectiveProfileQuery {
    /// The device group (default `*`, the profile of every group without
    /// its own).
    pub group: Option<String>,
}

/// `GET /api/v1/profiles/effective`: the profile a group's devices are
/// judged by, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EffectiveProfile {
    /// The group asked about.
    pub group: String,
    /// True when the group has no profile of its own and runs the one for
    /// every group (`*`).
    pub inherited: bool,
    /// True when the profile in force is Bulwark's built-in one, as
    /// installed at first start.
    pub builtin: bool,
    /// The profile in force (its latest version).
    pub profile: ProfileView,
}

/// Query of `GET /api/v1/devices`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeviceQuery {
    /// Only this group.
    pub group: Option<String>,
    /// Only this environment.
    pub environment: Option<String>,
    /// Ids after this one (pagination).
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
}

/// `POST /api/v1/devices/{id}/tags`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagDevice {
    /// Tags to set; an empty value removes the tag.
    pub tags: BTreeMap<String, String>,
}

/// `POST /api/v1/devices/{id}/revoke`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeDevice {
    /// Why (recorded; 1–1024 characters).
    pub reason: String,
}

/// One journal entry as served.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// Position in the log (leaf index).
    pub seq: u64,
    /// The leaf hash the server recorded (hex); verifiers recompute it.
    pub leaf_hash: String,
    /// The entry bytes as stored, base64 (what the leaf hash covers).
    pub raw: String,
    /// The decoded entry; absent when the stored bytes are not a
    /// canonical entry (a damaged or tampered row), which `problem` says.
    /// The bytes are served either way, so a verifier can name the entry.
    #[serde(default)]
    pub entry: Option<bulwark_proto::JournalEntry>,
    /// Why `entry` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `GET /api/v1/audit/entries`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Entries of this page, in order.
    pub entries: Vec<AuditEntryView>,
    /// The journal's size when read.
    pub size: u64,
    /// `start` of the next page; absent at the end.
    #[serde(default)]
    pub next: Option<u64>,
}

/// Query of `GET /api/v1/audit/entries`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// First sequence number (default 0).
    pub start: Option<u64>,
    /// Page size, 1–1000 (default 1000).
    pub limit: Option<u32>,
}

/// An entry with its inclusion proof against a signed checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InclusionView {
    /// The entry.
    pub entry: AuditEntryView,
    /// Tree size the proof is for (the checkpoint's).
    pub size: u64,
    /// RFC 9162 inclusion proof, hex hashes.
    pub proof: Vec<String>,
    /// The signed checkpoint (C2SP signed note) for `size`.
    pub checkpoint: String,
}

/// Query of inclusion and consistency proofs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// Older tree size (consistency).
    pub from: Option<u64>,
    /// Newer tree size (consistency) or the size to prove inclusion in
    /// (default: the newest checkpoint).
    pub size: Option<u64>,
}

/// An RFC 9162 consistency proof.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyView {
    /// Older size.
    pub from: u64,
    /// Newer size.
    pub size: u64,
    /// Hex hashes.
    pub proof: Vec<String>,
}

/// A stored signed checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckpointView {
    /// Tree size.
    pub size: u64,
    /// The C2SP signed note.
    pub note: String,
}

/// The journal's identity.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JournalKeyView {
    /// Origin line of every checkpoint.
    pub origin: String,
    /// C2SP verifier key (`name+keyid+key`).
    pub vkey: String,
}

/// `POST /api/v1/blobs`: the stored blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlobView {
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Length in bytes.
    pub length: u64,
}

/// `POST /api/v1/blobs/gc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GcView {
    /// Digests of the blobs deleted.
    pub deleted: Vec<String>,
    /// Bytes freed on disk.
    pub freed_bytes: u64,
}

/// `POST /api/v1/releases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelease {
    /// Product name (a name: `a-z 0-9 - _ .`).
    pub name: String,
    /// Version (`0-9 A-Z a-z . + - _ ~`).
    pub version: String,
    /// Digest of an uploaded blob.
    pub sha256: String,
    /// `file`, `ab` or `script`.
    pub installer: String,
    /// Where the `file` installer puts the artifact (absolute path).
    #[serde(default)]
    pub install_path: Option<String>,
    /// Command the device runs after switching; failure rolls back.
    #[serde(default)]
    pub smoke_test: Option<String>,
    /// Smoke test timeout in seconds (default 60, at most 3600).
    #[serde(default)]
    pub smoke_timeout_secs: Option<u64>,
    /// Digest of an uploaded SBOM (CycloneDX 1.5/1.6 or SPDX 2.3 JSON) to
    /// judge together with what the gate extracts from the artifact.
    #[serde(default)]
    pub sbom_sha256: Option<String>,
}

/// A release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReleaseView {
    /// `name@version`.
    pub reference: String,
    /// Product name.
    pub name: String,
    /// Version.
    pub version: String,
    /// TUF target path.
    pub target: String,
    /// Artifact digest.
    pub sha256: String,
    /// Artifact length.
    pub length: u64,
    /// Installer.
    pub installer: String,
    /// `file` installer destination.
    pub install_path: Option<String>,
    /// Smoke test.
    pub smoke_test: Option<String>,
    /// Smoke test timeout.
    pub smoke_timeout_secs: u64,
    /// `unsigned` or `published`.
    pub status: String,
    /// Environments, in promotion order.
    pub environments: Vec<String>,
    /// Created at.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Published at.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<OffsetDateTime>,
}

/// `GET /api/v1/releases`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseList {
    /// Newest first.
    pub releases: Vec<ReleaseView>,
}

/// What a release's signers sign, and how far signing got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SigningView {
    /// `name@version`.
    pub release: String,
    /// Published targets version the proposal adds to.
    pub base_version: u64,
    /// The exact bytes to sign: canonical JSON of the proposed targets
    /// `signed` part.
    pub signed_canonical: String,
    /// Targets keys of the image root.
    pub keyids: Vec<String>,
    /// Signatures needed.
    pub threshold: u64,
    /// Valid signatures so far.
    pub valid_signatures: usize,
    /// True once the threshold was met.
    pub published: bool,
}

/// `POST /api/v1/releases/{reference}/signatures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSignature {
    /// TUF key id of the signing key.
    pub keyid: String,
    /// Hex signature over `signed_canonical`.
    pub sig: String,
}

/// `POST /api/v1/releases/{reference}/promote`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteRelease {
    /// Target environment; the release must be in the previous one.
    pub environment: String,
}

/// `POST /api/v1/deployments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// `name@version`.
    pub release: String,
    /// Device group.
    pub group: String,
    /// Environment (the release must be promoted to it).
    pub environment: String,
    /// A remediation: quarantined devices of the group receive it too
    /// (every other update is withheld from them).
    #[serde(default)]
    pub remediation: bool,
}

/// A deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentView {
    /// Id.
    pub id: String,
    /// Order: the newest deployment for a group and environment wins.
    pub seq: u64,
    /// `name@version`.
    pub release: String,
    /// Group.
    pub group: String,
    /// Environment.
    pub environment: String,
    /// Created at.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// A remediation (reaches quarantined devices too).
    #[serde(default)]
    pub remediation: bool,
}

/// `GET /api/v1/deployments`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeploymentList {
    /// Newest first.
    pub deployments: Vec<DeploymentView>,
}

/// `GET /api/v1/repo/online-key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OnlineKeyView {
    /// Key id.
    pub keyid: String,
    /// The TUF public key object to list under snapshot and timestamp.
    #[schema(value_type = Object)]
    pub key: serde_json::Value,
    /// The promotion ladder.
    pub environments: Vec<String>,
}

/// `POST /api/v1/repo/root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RootAccepted {
    /// The root version now trusted.
    pub version: u64,
}

/// A device's update status as it reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateStatusView {
    /// `name@version`.
    pub release: String,
    /// Phase.
    pub phase: String,
    /// Outcome code when final.
    pub outcome: Option<String>,
    /// Why.
    pub detail: Option<String>,
    /// When reported.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

/// A release's gate: the stored scan and the verdict now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GateView {
    /// `name@version`.
    pub release: String,
    /// `scanning`, `pass` or `block`.
    pub state: String,
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
    /// `extracted`, `uploaded` or `uploaded+extracted`.
    #[serde(default)]
    pub sbom_source: Option<String>,
    /// The verdict now (policy, waivers and advisories as of this request):
    /// `bulwark_gate::Verdict`.
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
    /// or `secret:<fingerprint>`.
    pub finding: String,
    /// `name@version` or `name@*`.
    pub release: String,
    /// Why (required).
    pub reason: String,
    /// When it stops applying.
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
    /// `vulnerability`.
    pub kind: String,
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

/// `POST /api/v1/webhooks`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where alerts are POSTed: `https://…` (or `http://` to a loopback
    /// address).
    pub url: String,
    /// The HMAC-SHA256 key deliveries are signed with (16–1024 bytes).
    pub secret: String,
}

impl std::fmt::Debug for CreateWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateWebhook")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A webhook (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    /// Id.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// Who added it.
    pub created_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// Registered webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    /// Webhooks, oldest first.
    pub webhooks: Vec<WebhookView>,
}

/// One delivery and its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// Id (sent as `x-bulwark-delivery`).
    pub id: String,
    /// `detection` or `vulnerability`.
    pub event: String,
    /// The alert delivered.
    pub alert_id: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// HTTP status of the last attempt.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// When enqueued.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When delivered.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<OffsetDateTime>,
}

/// A webhook's delivery log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    /// Deliveries.
    pub deliveries: Vec<DeliveryView>,
}
