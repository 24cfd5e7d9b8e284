//! The agent ↔ server wire contract, defined once.
//!
//! Everything a device and the control plane exchange over the device
//! listener is declared here, and only here: the agent and the server both
//! depend on this crate, so the two sides cannot drift apart (see rumqtt's
//! two diverged codecs for the failure this prevents).
//!
//! # Brief overview
//!
//! - [`DeviceId`] — a device's identity; the only way to build one is the
//!   fallible [`DeviceId::parse`] (or [`DeviceId::from_uuid`]). It is also the
//!   URI placed in the device certificate's SAN ([`DeviceId::to_san_uri`]).
//! - [`EnrollRequest`] / [`EnrollResponse`] — one-time-token enrollment with a
//!   CSR; the private key never leaves the device.
//! - [`CheckinRequest`] / [`CheckinResponse`] — periodic check-in over mTLS;
//!   the inventory is sent only when its [`Inventory::digest`] is new to the
//!   server.
//! - [`ErrorBody`] — the JSON error shape of every 4xx/5xx response.
//! - [`JournalEntry`] — an audit journal entry and its canonical bytes (the
//!   Merkle leaf), with [`state_digest`] for before/after snapshots.
//!
//! # Example
//!
//! ```
//! use bulwark_proto::{DeviceId, Inventory, OsInfo};
//!
//! let id = DeviceId::parse("5f0c6a4e-8d5e-4b8e-9c57-2f4f7d1b2a10").unwrap();
//! assert_eq!(id.to_san_uri(), "urn:bulwark:device:5f0c6a4e-8d5e-4b8e-9c57-2f4f7d1b2a10");
//! assert!(DeviceId::parse("../etc/passwd").is_err());
//!
//! let inv = Inventory { arch: "x86_64".into(), ..Inventory::default() };
//! assert_eq!(inv.digest().len(), 64);
//! assert!(inv.validate().is_ok());
//! ```
//!
//! # Design
//!
//! Messages are JSON with `deny_unknown_fields`: an agent talking a newer
//! dialect is told so instead of having fields silently dropped. Every
//! message has a `validate` that enforces the size limits named as constants
//! here, so both sides agree on them.

mod device;
mod error;
mod id;
mod journal;
pub mod telemetry;

pub use device::{
    CheckinRequest, CheckinResponse, EnrollRequest, EnrollResponse, InstalledPackage, Inventory,
    LimitError, MAX_CSR_LEN, MAX_DETAIL_LEN, MAX_PACKAGES, MAX_STRING_LEN, OsInfo, UPDATE_PHASES,
    UpdateReport,
};
pub use error::{ErrorBody, ErrorDetail};
pub use id::{DeviceId, InvalidDeviceId};
pub use journal::{
    JournalAction, JournalActor, JournalEntry, MAX_JOURNAL_ENTRY, NotCanonical, state_digest,
};

/// Path prefix of every HTTP API route, on both listeners.
pub const API_PREFIX: &str = "/api/v1";
