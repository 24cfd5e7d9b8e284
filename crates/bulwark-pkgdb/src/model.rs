//! Data types shared by every parser: [`Package`], [`PackageSource`],
//! [`Diagnostic`] and the hard input limits.

use std::fmt;

/// Stop parsing a package database after this many accepted packages.
///
/// Reaching the limit produces one [`Diagnostic`] at the stanza that would
/// have been package number `MAX_PACKAGES + 1`; the rest of the input is
/// ignored.
pub const MAX_PACKAGES: usize = 100_000;

/// Longest accepted field, in bytes.
///
/// For deb822 formats (dpkg, opkg) this counts every physical line of the
/// field, including its name and continuation lines; for apk it is the length
/// of one `X:value` line. A longer field is reported as a [`Diagnostic`] and
/// its whole stanza is skipped.
pub const MAX_FIELD_LEN: usize = 64 * 1024;

/// At most this many diagnostics are reported per parse.
///
/// When more problems are found, one final diagnostic saying how many were
/// suppressed is appended. The "package limit reached" diagnostic (see
/// [`MAX_PACKAGES`]) is never suppressed, so the vector holds at most
/// `MAX_DIAGNOSTICS + 2` entries. Parsing itself continues regardless.
pub const MAX_DIAGNOSTICS: usize = 1_000;

/// One installed package.
///
/// Note that the derived [`Ord`] compares fields in declaration order
/// (name, version, arch, source); the parsers return their lists sorted by
/// (name, arch, version) instead.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Package {
    /// Package name, e.g. `libc6`.
    pub name: String,
    /// Version string exactly as recorded by the package manager.
    pub version: String,
    /// Architecture (`amd64`, `all`, `x86_64`, `mips_24kc`, ...), when recorded.
    pub arch: Option<String>,
    /// Which database the package came from.
    pub source: PackageSource,
}

/// The package database a [`Package`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PackageSource {
    /// Debian/Ubuntu `/var/lib/dpkg/status`.
    Dpkg,
    /// OpenWrt and other opkg systems, `/usr/lib/opkg/status`.
    Opkg,
    /// Alpine `/lib/apk/db/installed`.
    Apk,
}

impl PackageSource {
    /// Stable lowercase name: `"dpkg"`, `"opkg"` or `"apk"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dpkg => "dpkg",
            Self::Opkg => "opkg",
            Self::Apk => "apk",
        }
    }
}

impl fmt::Display for PackageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem found while parsing; the affected stanza was skipped unless the
/// message says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line number of the first line of the stanza concerned.
    pub line: usize,
    /// Human-readable description (plain text, no trailing period).
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}
