//! Software bills of materials.
//!
//! [`Component`] is the one model every part of the release gate shares:
//! the extractor produces it, the OSV matcher reads it, the server stores
//! it, and the CycloneDX / SPDX readers and writers convert it. Every
//! component carries a [package URL](https://github.com/package-url/purl-spec)
//! built by [`Purl`].
//!
//! # Brief overview
//!
//! - [`Sbom`] is a subject (the artifact) and its [`Component`]s; each
//!   component has a [`ComponentEcosystem`] and a canonical purl.
//! - [`Purl::parse`] reads any purl and normalises it the way the
//!   purl-spec asks; [`Purl::ecosystem`] maps its type back to an
//!   ecosystem.
//! - [`Sbom::from_json`] reads CycloneDX 1.5 / 1.6 and SPDX 2.3 JSON,
//!   detecting which, within [`Limits`]; every failure is an
//!   [`SbomError`] that names the JSON path at fault.
//! - [`Sbom::to_cyclonedx_1_6`] and [`Sbom::to_spdx_2_3`] write documents
//!   that validate against the official schemas (tested with the
//!   reference tools `cyclonedx-python-lib` and `spdx-tools`).
//!
//! # Example
//!
//! ```
//! use bulwark_sbom::{Component, ComponentEcosystem, Limits, Sbom};
//! use time::macros::datetime;
//! use uuid::Uuid;
//!
//! let sbom = Sbom {
//!     subject: "gateway-firmware".into(),
//!     subject_version: Some("4.2.0".into()),
//!     components: vec![Component::new(ComponentEcosystem::Debian, "libc6", "2.36-9", &[])],
//! };
//! let doc = sbom.to_cyclonedx_1_6(Uuid::nil(), datetime!(2024-05-01 12:00 UTC))?;
//! let bytes = serde_json::to_vec(&doc).expect("a JSON value serialises");
//! let back = Sbom::from_json(&bytes, &Limits::default())?;
//! assert_eq!(back, sbom);
//! assert_eq!(back.components[0].purl, "pkg:deb/debian/libc6@2.36-9");
//! # Ok::<(), bulwark_sbom::SbomError>(())
//! ```
//!
//! # Design
//!
//! Everything here is pure: bytes or values in, values out, no I/O, no
//! clock, no randomness (the writers take the serial number, namespace and
//! timestamp). [`Sbom::from_json`] is the entry point a fuzz target calls.
//! The readers walk a parsed [`serde_json::Value`] rather than deriving
//! `Deserialize`, so that errors carry paths such as `components[3].purl`
//! and unknown members (both formats are extensible) cost nothing to
//! accept.
//!
//! # Current limitations
//!
//! - Only JSON; no XML, tag-value, RDF or protobuf.
//! - CycloneDX licences given only by `name` (not an SPDX id) are dropped;
//!   the SPDX writer writes `NOASSERTION` for a licence that is not a
//!   plain SPDX expression, and does not check identifiers against the
//!   SPDX licence list.
//! - Only the first purl and first SHA-256 of a component are kept; SPDX
//!   files and snippets, and CycloneDX services and dependencies, are not
//!   read.
//! - The whole document is parsed into memory (several times the
//!   [`Limits::max_bytes`] input size).

mod cyclonedx;
mod error;
mod json;
mod model;
mod purl;
mod read;
mod spdx;
mod write;

pub use error::SbomError;
pub use model::{Component, ComponentEcosystem, Sbom};
pub use purl::{MAX_PURL_LEN, Purl, PurlError};
pub use read::Limits;
