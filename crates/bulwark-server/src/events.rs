//! Domain events: what happened, typed, and published in one place.
//!
//! Alerts are raised by two services (detection in the monitor's pipeline,
//! vulnerabilities when advisories are imported). Each hands its stored
//! alerts to [`publish`], the one fan-out:
//!
//! - the live stream ([`crate::monitor::Monitor::subscribe`], read by the
//!   SSE route): a broadcast of [`DomainEvent`]s; a slow reader is told how
//!   many it missed, never slows the publisher;
//! - the webhook outbox ([`crate::webhooks::notify`]): a stored delivery
//!   per registered webhook, retried until delivered.
//!
//! Services speak domain types; the wire shape ([`StreamEvent`], also the
//! webhook body) is made at the edge by [`DomainEvent::wire`].

use bulwark_store::{Alert, DetectionAlert};

use crate::api::dto::StreamEvent;
use crate::state::AppState;

/// Something that happened that others may want to know.
#[derive(Debug, Clone)]
pub enum DomainEvent {
    /// A detection alert, stored.
    Detection(DetectionAlert),
    /// A vulnerability alert (a new advisory hit), stored.
    Vulnerability(Alert),
}

impl DomainEvent {
    /// The event's kind as the stream and webhooks name it.
    pub fn kind(&self) -> &'static str {
        match self {
            DomainEvent::Detection(_) => "detection",
            DomainEvent::Vulnerability(_) => "vulnerability",
        }
    }

    /// The alert's id.
    pub fn alert_id(&self) -> &str {
        match self {
            DomainEvent::Detection(a) => &a.id,
            DomainEvent::Vulnerability(a) => &a.id,
        }
    }

    /// The wire shape: the SSE event's data and the webhook body.
    pub fn wire(&self) -> StreamEvent {
        match self {
            DomainEvent::Detection(a) => StreamEvent::Detection(crate::monitor::detection_view(a)),
            DomainEvent::Vulnerability(a) => {
                StreamEvent::Vulnerability(crate::api::gate::alert_view(a.clone()))
            }
        }
    }
}

/// Publishes `events` to every subscriber: the live stream, then the
/// webhook outbox.
pub(crate) async fn publish(state: &AppState, events: &[DomainEvent]) {
    if events.is_empty() {
        return;
    }
    let monitor = state.monitor();
    for e in events {
        monitor.publish(e.clone());
    }
    crate::webhooks::notify(state, events).await;
}
