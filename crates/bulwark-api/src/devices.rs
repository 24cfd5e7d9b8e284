//! Devices, enrollment tokens, telemetry history and update status.

use std::collections::BTreeMap;

use bulwark_proto::{DeviceId, Inventory};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::DetectionAlertView;
use crate::words::api_enum;

api_enum! {
    /// Whether a device may connect.
    DeviceStatus, "device status" {
        /// Enrolled and allowed.
        Active = "active",
        /// Its certificate is revoked: refused at TLS.
        Revoked = "revoked",
    }
}

api_enum! {
    /// What a device is doing, one word (first match): revoked,
    /// quarantined, updating (its latest update report is not final),
    /// rolled back (its latest report is `rolled_back`), online (checked in
    /// within two poll intervals), offline.
    DeviceState, "device state" {
        /// Its certificate is revoked.
        Revoked = "revoked",
        /// Quarantined: refused on the gateway, updates withheld.
        Quarantined = "quarantined",
        /// An update is in progress.
        Updating = "updating",
        /// Its last update rolled back to the previous release.
        RolledBack = "rolled_back",
        /// Checked in recently.
        Online = "online",
        /// Not checked in recently, or never.
        Offline = "offline",
    }
}

api_enum! {
    /// The phase of an update a device reported (each phase as it starts,
    /// then the final one). The device protocol's `UpdateReport::phase`
    /// takes the same words (`bulwark_proto::UPDATE_PHASES`).
    UpdatePhase, "update phase" {
        /// Fetching the artifact.
        Downloading = "downloading",
        /// Checking it against both repositories.
        Verifying = "verifying",
        /// Putting it in the inactive slot.
        Staging = "staging",
        /// Making it the live one.
        Switching = "switching",
        /// Running the release's smoke test.
        SmokeTesting = "smoke_testing",
        /// Making the switch permanent.
        Committing = "committing",
        /// Going back to the previous release.
        RollingBack = "rolling_back",
        /// Final: installed.
        Installed = "installed",
        /// Final: rolled back to the previous release.
        RolledBack = "rolled_back",
        /// Final: failed.
        Failed = "failed",
        /// Final: refused (an attack or a bad target detected).
        Refused = "refused",
    }
}

/// `POST /api/v1/enroll-tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollToken {
    /// Group the device joins (a name: 1–64 of `a-z 0-9 - _ .`).
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub group: String,
    /// Environment the device joins (a name).
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub environment: String,
    /// Lifetime in seconds (60 – 30 days; default 1 hour).
    #[serde(default)]
    #[schema(minimum = 60, maximum = 2592000)]
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
    /// Unique name: the hostname at enrollment (deduplicated with `-2`,
    /// `-3`, …) unless renamed.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub name: String,
    /// Hostname given at enrollment.
    pub hostname: Option<String>,
    /// Group.
    pub group: String,
    /// Environment.
    pub environment: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Whether it may connect.
    pub status: DeviceStatus,
    /// Checked in within two poll intervals.
    pub online: bool,
    /// What it is doing: see [`DeviceState`].
    pub state: DeviceState,
    /// The release it last reported installed (`name@version`).
    #[serde(default)]
    pub release: Option<String>,
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
    /// How far back, 1s – 7d, e.g. `90s`, `15m`, `1h`, `7d` (default `1h`).
    #[param(pattern = "^([1-9][0-9]{0,4}s|[1-9][0-9]{0,3}m|[1-9][0-9]?h|[1-7]d)$")]
    pub since: Option<String>,
    /// Most minutes returned, 1–10080 (default 1440).
    #[param(minimum = 1, maximum = 10080)]
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

/// Query of `GET /api/v1/devices`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeviceQuery {
    /// Only this group.
    pub group: Option<String>,
    /// Only this environment.
    pub environment: Option<String>,
    /// Only the device of this name.
    #[param(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub name: Option<String>,
    /// Only devices in this state.
    pub state: Option<DeviceState>,
    /// Only devices whose installed release is this (`name@version`, or a
    /// product name for any of its versions).
    #[param(max_length = 129)]
    pub release: Option<String>,
    /// Only devices whose name, hostname or a tag (`key=value`) contains
    /// this text, or whose id starts with it (case-insensitive).
    #[param(min_length = 1, max_length = 256)]
    pub search: Option<String>,
    /// Ids after this one (pagination): a device id.
    #[param(pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// `POST /api/v1/devices/{id}/tags`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagDevice {
    /// Tags to set (1–64 per request); an empty value removes the tag.
    /// Keys are names, values at most 256 bytes without control
    /// characters.
    #[schema(schema_with = tag_map)]
    pub tags: BTreeMap<String, String>,
}

/// The schema of [`TagDevice::tags`]: its rules on count, keys and values.
fn tag_map() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(crate::words::NAME_PATTERN)),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(256))
                .pattern(Some("^[^\\x00-\\x1f\\x7f-\\x9f]*$")),
        ))
        .min_properties(Some(1))
        .max_properties(Some(crate::words::MAX_TAGS_PER_REQUEST))
        .build()
}

/// `POST /api/v1/devices/{id}/rename`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameDevice {
    /// The new name: 1–64 of `a-z 0-9 - _ .`, unique, not a device id.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub name: String,
}

/// `POST /api/v1/devices/{id}/revoke`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeDevice {
    /// Why (recorded; 1–1024 bytes once trimmed, no control characters
    /// but line feeds).
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*$"
    )]
    pub reason: String,
}

/// A device's update status as it reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateStatusView {
    /// `name@version`.
    pub release: String,
    /// Phase.
    pub phase: UpdatePhase,
    /// Outcome code when final.
    pub outcome: Option<String>,
    /// Why.
    pub detail: Option<String>,
    /// When reported.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}
