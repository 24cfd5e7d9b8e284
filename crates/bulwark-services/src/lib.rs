//! Bulwark's application services, between the adapters (store, MQTT,
//! scanners) and the edges (HTTP API, device listener, gateway): one
//! service per concern, each built with only what it needs and each with
//! its own error type. None speaks HTTP: the server maps every error to a
//! status in one place (`bulwark_server::ApiError`).
//!
//! - [`accounts::Accounts`] — operator accounts, API tokens, bearer
//!   authentication.
//! - [`enrollment::Enrollment`] — enrollment and check-in;
//!   [`devices::Devices`] — quarantine and release, enforced at once;
//!   [`presence::Presence`] — the check-in cache.
//! - [`journal::Journal`] — checkpoints and proofs of the audit journal.
//! - [`updates::Updates`] — blobs, releases, the TUF image repository and
//!   the director; [`gate::Gate`] — scanning and release gates.
//! - [`monitor::Monitor`] — detection on telemetry, gateway sessions,
//!   telemetry history; [`alerts`] — its alert pipeline.
//! - [`webhooks::Webhooks`] — signed alert deliveries from an outbox.
//! - [`events::EventBus`] — the one fan-out of [`events::DomainEvent`]s
//!   (live stream, webhook outbox).
//! - [`clock::Clock`] — the only source of "now".

pub mod accounts;
pub mod alerts;
pub mod clock;
pub mod devices;
pub mod enrollment;
pub mod events;
pub mod gate;
pub mod journal;
pub mod monitor;
pub mod presence;
pub mod updates;
pub mod webhooks;

pub use clock::{Clock, ManualClock, SystemClock};

/// Is `name` a valid name for an account, group, environment or tag key:
/// 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit?
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')
        })
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names() {
        for ok in ["ana", "a", "ci-bot_2.prod", "0day", &"a".repeat(64)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-ana",
            ".x",
            "Ana",
            "ana bob",
            "ana/bob",
            &"a".repeat(65),
            "é",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
