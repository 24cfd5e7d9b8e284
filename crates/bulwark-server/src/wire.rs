//! Domain events and stored alerts in their wire shape: the SSE stream's
//! event data and the webhook body ([`encode`], handed to the event bus),
//! and the API views of alerts ([`detection_view`], [`alert_view`]), their
//! stored states named in the API's words (`api::words`).

use bulwark_services::events::DomainEvent;

use crate::api::dto::{AlertView, DetectionAlertView, StreamEvent};
use crate::api::words;

/// The wire shape of an event.
pub(crate) fn event(e: &DomainEvent) -> StreamEvent {
    match e {
        DomainEvent::Detection(a) => StreamEvent::Detection(detection_view(a)),
        DomainEvent::Vulnerability(a) => StreamEvent::Vulnerability(alert_view(a.clone())),
    }
}

/// The wire body of an event, as JSON text (the webhook body).
pub(crate) fn encode(e: &DomainEvent) -> String {
    serde_json::to_string(&event(e)).unwrap_or_default()
}

/// The API view of a stored detection alert.
pub(crate) fn detection_view(a: &bulwark_store::DetectionAlert) -> DetectionAlertView {
    DetectionAlertView {
        id: a.id.clone(),
        device: a.device_id,
        group: a.group.clone(),
        behaviour: a.behaviour.clone(),
        kind: words::detection_kind(a.kind),
        severity: words::severity(a.severity),
        profile_version: a.profile_version.clone(),
        action: a.action.map(words::alert_action),
        message: a.message.clone(),
        // Always a list, as documented (an unreadable stored one is empty).
        evidence: serde_json::from_str::<Vec<serde_json::Value>>(&a.evidence)
            .map(serde_json::Value::Array)
            .unwrap_or_else(|_| serde_json::Value::Array(Vec::new())),
        observed_at: a.observed_at,
        created_at: a.created_at,
    }
}

/// The API view of a stored vulnerability alert.
pub(crate) fn alert_view(a: bulwark_store::Alert) -> AlertView {
    AlertView {
        id: a.id,
        kind: words::alert_kind(a.kind),
        advisory: a.advisory,
        subject: a.subject,
        message: a.message,
        created_at: a.created_at,
    }
}
