//! Domain events and stored alerts in their wire shape: the SSE stream's
//! event data and the webhook body ([`encode`], handed to the event bus),
//! and the API views of alerts ([`detection_view`], [`alert_view`]), their
//! stored words read back as the API's (`api::words::stored`).

use bulwark_services::events::DomainEvent;

use crate::api::dto::{AlertView, DetectionAlertView, StreamEvent};
use crate::api::words::stored;
use crate::error::ApiError;

/// The wire shape of an event (an error when a stored word is not one the
/// API lists: `api::words::stored`).
pub(crate) fn event(e: &DomainEvent) -> Result<StreamEvent, ApiError> {
    Ok(match e {
        DomainEvent::Detection(a) => StreamEvent::Detection(detection_view(a)?),
        DomainEvent::Vulnerability(a) => StreamEvent::Vulnerability(alert_view(a.clone())?),
    })
}

/// The wire body of an event, as JSON text (the webhook body).
pub(crate) fn encode(e: &DomainEvent) -> String {
    match event(e) {
        Ok(v) => serde_json::to_string(&v).unwrap_or_default(),
        Err(error) => {
            tracing::error!(%error, "alert event has no wire shape");
            String::new()
        }
    }
}

/// The API view of a stored detection alert (its kind, severity and
/// action read back as the API's words).
pub(crate) fn detection_view(
    a: &bulwark_store::DetectionAlert,
) -> Result<DetectionAlertView, ApiError> {
    Ok(DetectionAlertView {
        id: a.id.clone(),
        device: a.device_id,
        group: a.group.clone(),
        behaviour: a.behaviour.clone(),
        kind: stored(&a.kind)?,
        severity: stored(&a.severity)?,
        profile_version: a.profile_version.clone(),
        action: a.action.as_deref().map(stored).transpose()?,
        message: a.message.clone(),
        // Always a list, as documented (an unreadable stored one is empty).
        evidence: serde_json::from_str::<Vec<serde_json::Value>>(&a.evidence)
            .map(serde_json::Value::Array)
            .unwrap_or_else(|_| serde_json::Value::Array(Vec::new())),
        observed_at: a.observed_at,
        created_at: a.created_at,
    })
}

/// The API view of a stored vulnerability alert.
pub(crate) fn alert_view(a: bulwark_store::Alert) -> Result<AlertView, ApiError> {
    Ok(AlertView {
        id: a.id,
        kind: stored(&a.kind)?,
        advisory: a.advisory,
        subject: a.subject,
        message: a.message,
        created_at: a.created_at,
    })
}
