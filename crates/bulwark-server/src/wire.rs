//! Domain events and stored alerts in their wire shape: the SSE stream's
//! event data and the webhook body ([`encode`], handed to the event bus),
//! and the API view of a detection alert.

use bulwark_services::events::DomainEvent;
use bulwark_store::DetectionAlert;

use crate::api::dto::{DetectionAlertView, StreamEvent};

/// The wire shape of an event.
pub(crate) fn event(e: &DomainEvent) -> StreamEvent {
    match e {
        DomainEvent::Detection(a) => StreamEvent::Detection(detection_view(a)),
        DomainEvent::Vulnerability(a) => {
            StreamEvent::Vulnerability(crate::api::gate::alert_view(a.clone()))
        }
    }
}

/// The wire body of an event, as JSON text (the webhook body).
pub(crate) fn encode(e: &DomainEvent) -> String {
    serde_json::to_string(&event(e)).unwrap_or_default()
}

/// The API view of a detection alert.
pub(crate) fn detection_view(a: &DetectionAlert) -> DetectionAlertView {
    DetectionAlertView {
        id: a.id.clone(),
        device: a.device_id,
        group: a.group.clone(),
        behaviour: a.behaviour.clone(),
        kind: a.kind.clone(),
        severity: a.severity.clone(),
        profile_version: a.profile_version.clone(),
        action: a.action.clone(),
        message: a.message.clone(),
        // Always a list, as documented (an unreadable stored one is empty).
        evidence: serde_json::from_str::<Vec<serde_json::Value>>(&a.evidence)
            .map(serde_json::Value::Array)
            .unwrap_or_else(|_| serde_json::Value::Array(Vec::new())),
        observed_at: a.observed_at,
        created_at: a.created_at,
    }
}
