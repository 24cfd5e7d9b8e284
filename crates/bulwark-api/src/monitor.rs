//! Detection: profiles, alerts, quarantine, the alert stream and webhooks.

use bulwark_proto::DeviceId;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AlertView;

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
