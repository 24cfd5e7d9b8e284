//! The admin API's request and response bodies: the contract between the
//! server (`bulwark-server`, which serves them and generates
//! `docs/openapi.json` from their schemas) and its clients (the CLI, the
//! simulator, the bench, the tests).
//!
//! One module per domain; every type is also re-exported at the root. This
//! crate knows nothing of HTTP frameworks or the server: it depends only
//! on the device protocol's vocabulary (`bulwark-proto`), serde and the
//! schema derive. A change to a type here is a change to the API.
//!
//! A field whose value is one of a fixed set of words is an enum (see
//! [`words`]); its schema lists the words, and a body with another word is
//! refused when it is read. Free text (names, reasons, ids, versions) stays
//! a `String`, with the server's field rules (patterns, lengths, ranges) in
//! its schema.

pub mod words;

mod accounts;
mod audit;
mod devices;
mod gate;
mod monitor;
mod releases;

pub use accounts::*;
pub use audit::*;
pub use devices::*;
pub use gate::*;
pub use monitor::*;
pub use releases::*;
pub use words::UnknownValue;

#[cfg(test)]
mod tests;
