//! Domain events in their wire shape: the SSE stream's event data and the
//! webhook body ([`encode`], handed to the event bus). The alerts' API
//! views are the API's (`api::monitor::detection_view`,
//! `api::gate::alert_view`).

use bulwark_services::events::DomainEvent;

use crate::api::dto::StreamEvent;
use crate::error::ApiError;

/// The wire shape of an event (an error when a stored word is not one the
/// API lists: `api::words::stored`).
pub(crate) fn event(e: &DomainEvent) -> Result<StreamEvent, ApiError> {
    Ok(match e {
        DomainEvent::Detection(a) => {
            StreamEvent::Detection(crate::api::monitor::detection_view(a)?)
        }
        DomainEvent::Vulnerability(a) => {
            StreamEvent::Vulnerability(crate::api::gate::alert_view(a.clone())?)
        }
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
