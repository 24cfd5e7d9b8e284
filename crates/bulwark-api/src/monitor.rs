//! Detection: profiles, alerts, quarantine, the alert stream and webhooks.

use bulwark_proto::DeviceId;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AlertView;
use crate::words::api_enum;

api_enum! {
    /// What kind of behaviour fired a detection alert (a profile's `kind`).
    DetectionKind, "detection kind" {
        /// A fixed condition that persisted.
        Rule = "rule",
        /// A metric far from the device's own running mean.
        Zscore = "zscore",
        /// A value the device had not shown before.
        Novelty = "novelty",
        /// Too many distinct destinations.
        Fanout = "fanout",
        /// A metric far from the device's peers in its group.
        PeerOutlier = "peer-outlier",
        /// A value rare across the fleet.
        Rarity = "rarity",
        /// Scanning: many hosts or ports, mostly unanswered.
        Scan = "scan",
        /// Flooding one host.
        Flood = "flood",
        /// Command-and-control patterns: retry storms, beaconing, odd ports.
        C2 = "c2",
        /// Many short connections to login services.
        Bruteforce = "bruteforce",
    }
}

api_enum! {
    /// How urgent a detection alert is.
    Severity, "severity" {
        /// Informational.
        Low = "low",
        /// Worth a look.
        Medium = "medium",
        /// Act soon.
        High = "high",
        /// Act now.
        Critical = "critical",
    }
}

api_enum! {
    /// What a detection alert makes the server do.
    AlertAction, "alert action" {
        /// Quarantine the device.
        Quarantine = "quarantine",
    }
}

api_enum! {
    /// The kind of an alert event: the SSE event name of
    /// `GET /api/v1/alerts/stream` and a webhook delivery's event.
    EventKind, "event" {
        /// A detection alert (device behaviour).
        Detection = "detection",
        /// A vulnerability alert (a new advisory hit).
        Vulnerability = "vulnerability",
    }
}

api_enum! {
    /// Where a webhook delivery stands.
    DeliveryState, "delivery state" {
        /// Not delivered yet; another attempt is due.
        Pending = "pending",
        /// Answered with a 2xx.
        Delivered = "delivered",
        /// Attempts exhausted.
        Failed = "failed",
    }
}

/// `POST /api/v1/devices/{id}/quarantine` and `/release`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarantineDevice {
    /// Why (recorded; 1–1024 bytes once trimmed, no control characters
    /// but line feeds).
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*$"
    )]
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
    /// The behaviour's kind.
    pub kind: DetectionKind,
    /// How urgent.
    pub severity: Severity,
    /// The profile version that fired.
    pub profile_version: String,
    /// Set when the behaviour quarantines.
    pub action: Option<AlertAction>,
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

impl StreamEvent {
    /// Its kind: the SSE event name, a webhook delivery's event.
    pub fn kind(&self) -> EventKind {
        match self {
            StreamEvent::Detection(_) => EventKind::Detection,
            StreamEvent::Vulnerability(_) => EventKind::Vulnerability,
        }
    }
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
    #[param(pattern = "^(\\*|[a-z0-9][a-z0-9._-]{0,63})$")]
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
    /// Where alerts are POSTed: `https://` and a public host name (or
    /// `http://` to a loopback address the server's `webhook_allow` lists),
    /// at most 2048 bytes, no credentials.
    #[schema(
        max_length = 2048,
        pattern = "^https://[a-z0-9-]{1,63}(\\.[a-z0-9-]{1,63})*\\.[a-z]{2,3}(/[!-~]*)?$"
    )]
    pub url: String,
    /// The HMAC-SHA256 key deliveries are signed with (16–1024 bytes once
    /// trimmed).
    #[schema(min_length = 16, max_length = 1024, pattern = "^\\S(.*\\S)?$")]
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
    /// The kind of alert delivered.
    pub event: EventKind,
    /// The alert delivered.
    pub alert_id: String,
    /// Where it stands.
    pub state: DeliveryState,
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
