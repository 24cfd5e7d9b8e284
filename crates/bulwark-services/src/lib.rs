//! Bulwark's application services, between the adapters (store, MQTT,
//! scanners) and the edges (HTTP API, device listener, gateway): one
//! service per concern, each built with only what it needs and each with
//! its own error type. None speaks HTTP: the server maps every error to a
//! status in one place (`bulwark_server::ApiError`).
//!
//! - [`devices::Devices`] — quarantine and release, enforced at once;
//!   [`presence::Presence`] — the check-in cache.
//! - [`journal::Journal`] — checkpoints and proofs of the audit journal.
//! - [`updates::Updates`] — blobs, releases, the TUF image repository and
//!   the director; [`gate::Gate`] — scanning and release gates.
//! - [`monitor::Monitor`] — detection on telemetry, gateway sessions,
//!   telemetry history; its alert pipeline.
//! - [`webhooks::Webhooks`] — signed alert deliveries from an outbox.
//! - [`events::EventBus`] — the one fan-out of [`events::DomainEvent`]s
//!   (live stream, webhook outbox).
//! - [`clock::Clock`] — the only source of "now".

pub mod clock;
pub mod devices;
pub mod events;
pub mod gate;
pub mod journal;
pub mod monitor;
pub mod presence;
pub mod updates;
pub mod webhooks;

pub use clock::{Clock, ManualClock, SystemClock};
