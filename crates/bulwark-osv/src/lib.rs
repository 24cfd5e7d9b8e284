//! OSV advisories: import, a local advisory database, and matching
//! components with each ecosystem's version ordering.
//!
//! Bulwark's release security gates ask "which components of this image
//! have known vulnerabilities?". This crate answers from local copies of
//! public OSV databases (PyPA, the Go vulnerability database, RustSec's OSV
//! export, …), with no network access at scan time.
//!
//! # Brief overview
//!
//! - [`parse_advisory`] reads one OSV (schema 1.x) advisory from JSON or
//!   YAML bytes into an [`Advisory`] and validates it. It is pure and
//!   bounded, and is the fuzzing entry point.
//! - [`AdvisoryDb`] holds advisories in memory, indexed by (OSV ecosystem,
//!   normalised package name). [`AdvisoryDb::import_archive`] and
//!   [`AdvisoryDb::import_path`] load `.zip` (OSV's `all.zip`),
//!   `.tar.gz`/`.tar` archives, single files and directory trees and return an [`ImportReport`] (new,
//!   updated, unchanged, withdrawn, skipped, per-file errors);
//!   [`AdvisoryDb::import_kev`] loads CISA's known-exploited catalog.
//!   [`AdvisoryDb::save`] / [`AdvisoryDb::load`] persist it to one
//!   JSON-lines file in a directory, with the last import's time
//!   ([`AdvisoryDb::set_updated_at`], passed in by the importer), which the
//!   gate states in every verdict.
//! - [`AdvisoryDb::scan`] (and [`AdvisoryDb::matches`] for one component)
//!   turns `bulwark_sbom::Component`s into [`Finding`]s: one per
//!   vulnerability and component, with advisories linked by `aliases`
//!   merged, the highest [`Severity`], the versions that fix it, and
//!   whether it is known to be exploited.
//!
//! # Example
//!
//! ```
//! use bulwark_osv::{AdvisoryDb, FindingStatus, SeverityLevel};
//! use bulwark_sbom::{Component, ComponentEcosystem};
//!
//! let advisory = br#"{
//!   "id": "PYSEC-0000-1", "modified": "2024-01-01T00:00:00Z",
//!   "aliases": ["CVE-2024-0001"],
//!   "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
//!   "affected": [{"package": {"ecosystem": "PyPI", "name": "Example_Pkg"},
//!                 "ranges": [{"type": "ECOSYSTEM",
//!                             "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]}]
//! }"#;
//! let mut db = AdvisoryDb::new();
//! let report = db.import_archive(&advisory[..], "example.json").unwrap();
//! assert_eq!(report.imported, 1);
//!
//! let old = Component::new(ComponentEcosystem::Pypi, "example.pkg", "1.9", &[]);
//! let new = Component::new(ComponentEcosystem::Pypi, "example-pkg", "2.0", &[]);
//! let findings = db.scan(&[old, new]);
//! assert_eq!(findings.len(), 1);
//! assert_eq!(findings[0].primary_id, "PYSEC-0000-1");
//! assert_eq!(findings[0].status, FindingStatus::Affected);
//! assert_eq!(findings[0].severity.level, SeverityLevel::Critical);
//! assert_eq!(findings[0].fixed_versions, ["2.0"]);
//! ```
//!
//! # Design
//!
//! - Range evaluation follows the OSV schema's pseudocode exactly (see
//!   [`Match`] and `range.rs`): `SEMVER` ranges use SemVer, `ECOSYSTEM`
//!   ranges the package ecosystem's ordering from `bulwark-versions`
//!   (Debian, PEP 440, SemVer for npm/Go/crates.io, apk). `GIT` ranges need
//!   the repository's commit graph, so only the `versions` list counts for
//!   them.
//! - Nothing is silently "not affected": a version that does not parse, an
//!   unknown range type or an ecosystem without an ordering yields a finding
//!   with [`FindingStatus::Unknown`] and the reason.
//! - Withdrawn advisories are kept (so a later import cannot resurrect an
//!   older copy) but never match and link no aliases.
//! - A newer `modified` replaces an older copy of the same id; an equal or
//!   older one is "unchanged".
//! - OSV JSON is the persisted format, so the model has one codec.
//!
//! # Current limitations
//!
//! - Debian and Alpine advisories are matched on the ecosystem without its
//!   release suffix (`Debian:12` and `Debian:11` advisories both apply), and
//!   on the name as the component records it (OSV names Debian *source*
//!   packages).
//! - OpenWrt and generic components are not matched (no OSV ecosystem).
//! - For ranges that were evaluated, the `versions` list is compared as
//!   exact strings (it is their expansion); only without evaluable ranges is
//!   it compared with the ecosystem's equality (`1.0` == `1.0.0`).
//!
//! # Trust
//!
//! Advisory archives are input from the network: every size is bounded
//! (see the `MAX_*` constants), a zip entry is inflated no further than
//! its declared size and hostile layouts are refused whole, YAML is parsed by the pure-Rust
//! `serde-saphyr` with its resource budget, archives are never unpacked to
//! disk, and no input panics.

mod db;
mod error;
mod import;
mod kev;
mod model;
mod parse;
mod range;
mod scan;
mod severity;

pub use db::{AdvisoryDb, DB_FILE_NAME};
pub use error::{
    AdvisoryError, Error, MAX_ADVISORY_BYTES, MAX_ARCHIVE_BYTES, MAX_ARCHIVE_ENTRIES,
    MAX_DB_FILE_BYTES, MAX_KEV_BYTES,
};
pub use import::{FileError, ImportReport};
pub use kev::{KevReport, is_kev_catalog};
pub use model::{
    Advisory, Affected, Event, EventKind, Package, Range, RangeType, Reference, SeverityScore,
    SeverityType,
};
pub use parse::{Format, parse_advisory};
pub use range::Match;
pub use scan::{Finding, FindingStatus};
pub use severity::{Severity, SeverityLevel, advisory_severity};
