//! Pure parsers for what a Linux device has installed.
//!
//! `bulwark-pkgdb` turns the raw text of a device's package databases and
//! os-release file into typed values. It performs no I/O at all: the agent
//! reads the files (with its own size limits) and hands the text over; the
//! SBOM extractor and the server consume the results.
//!
//! # Brief overview
//!
//! * [`parse_dpkg_status`] — Debian/Ubuntu `/var/lib/dpkg/status`.
//! * [`parse_opkg_status`] — OpenWrt `/usr/lib/opkg/status`.
//! * [`parse_apk_installed`] — Alpine `/lib/apk/db/installed`.
//! * [`parse_os_release`] — `/etc/os-release` into an [`OsRelease`].
//! * [`Package`] — one installed package (name, version, optional
//!   architecture, [`PackageSource`]).
//! * [`Diagnostic`] — a stanza that was skipped or partly ignored, with the
//!   1-based line where that stanza starts.
//! * [`MAX_PACKAGES`], [`MAX_FIELD_LEN`], [`MAX_DIAGNOSTICS`] — hard limits
//!   that keep hostile input cheap.
//!
//! # Example
//!
//! ```
//! use bulwark_pkgdb::{PackageSource, parse_dpkg_status, parse_os_release};
//!
//! let status = "\
//! Package: libc6
//! Status: install ok installed
//! Architecture: amd64
//! Version: 2.36-9+deb12u14
//!
//! Package: rsyslog
//! Status: deinstall ok config-files
//! Architecture: amd64
//! Version: 8.2302.0-1
//!
//! Package: broken
//! Status: install ok installed
//! ";
//! let (packages, diagnostics) = parse_dpkg_status(status);
//! assert_eq!(packages.len(), 1); // rsyslog only has config files left
//! assert_eq!(packages[0].name, "libc6");
//! assert_eq!(packages[0].arch.as_deref(), Some("amd64"));
//! assert_eq!(packages[0].source, PackageSource::Dpkg);
//! assert_eq!(diagnostics[0].line, 11);
//! assert_eq!(
//!     diagnostics[0].message,
//!     "package \"broken\": missing Version field; stanza skipped"
//! );
//!
//! let os = parse_os_release("ID=debian\nVERSION_ID=\"12\"\n");
//! assert_eq!(os.id.as_deref(), Some("debian"));
//! assert_eq!(os.version_id.as_deref(), Some("12"));
//! ```
//!
//! # Design
//!
//! * Every parser is one forward pass over the lines, keeping borrowed
//!   slices of the few fields it needs, so time and extra memory are linear
//!   in the input size whatever the input looks like; nothing panics
//!   (checked by unit tests on multi-megabyte inputs and by the
//!   `pkgdb_parsers` fuzz target in `fuzz/`).
//! * Parsers are tolerant: a bad stanza becomes a [`Diagnostic`] and parsing
//!   continues. Inputs are `&str`; callers holding bytes should use
//!   [`String::from_utf8_lossy`].
//! * Package lists are sorted by (name, arch, version) and exact duplicates
//!   removed, so output is deterministic. Repeated fields inside one stanza:
//!   the first occurrence wins (os-release: the last, like a shell).
//! * Names, versions and architectures containing whitespace or control
//!   characters are rejected, so downstream logs and SBOMs never see NUL
//!   bytes or embedded newlines.
//!
//! # Current limitations
//!
//! * dpkg/opkg: only state `installed` counts; packages in `unpacked`,
//!   `half-configured` or `triggers-pending` state (whose files are on disk)
//!   are not reported. `Source:` (the source package) is not extracted.
//! * opkg: a status file without `Version` lines (some images keep versions
//!   only in `/usr/lib/opkg/info/*.control`) yields diagnostics, not
//!   packages.
//! * os-release: no line continuations; only five keys are extracted.
//! * Versions are opaque strings; no version comparison is provided.

mod apk;
mod collect;
mod deb822;
mod model;
mod os_release;
mod text;

pub use crate::{
    apk::parse_apk_installed,
    deb822::{parse_dpkg_status, parse_opkg_status},
    model::{Diagnostic, MAX_DIAGNOSTICS, MAX_FIELD_LEN, MAX_PACKAGES, Package, PackageSource},
    os_release::{OsRelease, parse_os_release},
};
