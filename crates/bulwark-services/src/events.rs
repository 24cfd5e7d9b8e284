//! Domain events: what happened, typed, and published in one place.
//!
//! Alerts are raised by two services (detection in the monitor's pipeline,
//! vulnerabilities when advisories are imported). Each hands its stored
//! alerts to [`EventBus::publish`], the one fan-out:
//!
//! - the live stream ([`EventBus::subscribe`], read by the SSE route): a
//!   broadcast of [`DomainEvent`]s; a slow reader is told how many it
//!   missed, never slows the publisher;
//! - the webhook outbox ([`crate::webhooks::Webhooks::notify`]): a stored
//!   delivery per registered webhook, retried until delivered.
//!
//! Services speak domain types; the wire shape (the SSE event's data, also
//! the webhook body) is made by the edge, which hands the bus its encoder
//! ([`WireEncoder`]) when it builds it.

use std::sync::Arc;

use bulwark_store::{Alert, DetectionAlert};
use tokio::sync::{broadcast, watch};

use crate::webhooks::{Notice, Webhooks};

/// Events kept for slow subscribers before they are told they lagged.
const STREAM_BUFFER: usize = 4096;

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
}

impl Notice for DomainEvent {
    fn kind(&self) -> bulwark_store::DeliveryEvent {
        match self {
            DomainEvent::Detection(_) => bulwark_store::DeliveryEvent::Detection,
            DomainEvent::Vulnerability(_) => bulwark_store::DeliveryEvent::Vulnerability,
        }
    }

    fn alert_id(&self) -> &str {
        DomainEvent::alert_id(self)
    }
}

/// Turns an event into its wire body (JSON text), as the edge defines it.
pub type WireEncoder = Arc<dyn Fn(&DomainEvent) -> String + Send + Sync>;

/// The one fan-out of domain events.
pub struct EventBus {
    stream: broadcast::Sender<DomainEvent>,
    closing: watch::Sender<bool>,
    webhooks: Arc<Webhooks>,
    encode: WireEncoder,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("subscribers", &self.stream.receiver_count())
            .finish_non_exhaustive()
    }
}

impl EventBus {
    /// A bus feeding live subscribers and `webhooks`' outbox, whose bodies
    /// `encode` makes.
    pub fn new(webhooks: Arc<Webhooks>, encode: WireEncoder) -> Self {
        Self {
            stream: broadcast::channel(STREAM_BUFFER).0,
            closing: watch::channel(false).0,
            webhooks,
            encode,
        }
    }

    /// Publishes `events` to every subscriber: the live stream, then the
    /// webhook outbox.
    pub async fn publish(&self, events: &[DomainEvent]) {
        if events.is_empty() {
            return;
        }
        for e in events {
            // None listening is fine.
            let _ = self.stream.send(e.clone());
        }
        self.webhooks.notify(events, &*self.encode).await;
    }

    /// The wire body of an event (what webhooks receive).
    pub fn encode(&self, event: &DomainEvent) -> String {
        (self.encode)(event)
    }

    /// A live feed of new events.
    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.stream.subscribe()
    }

    /// Ends every live stream (server shutdown: an SSE response never
    /// finishes by itself).
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves when [`EventBus::close_streams`] is called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }
}
