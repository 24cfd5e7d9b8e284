//! Version parsing and ordering for vulnerability matching.
//!
//! An OSV advisory says "affected from `introduced` until `fixed`", in the
//! version scheme of the package's ecosystem. Matching an installed package
//! against it needs that ecosystem's ordering *exactly*: an ordering that is
//! only nearly right reports a fixed package as vulnerable, or worse, a
//! vulnerable one as fixed. This crate implements four schemes, each checked
//! against its reference implementation by differential tests
//! (`tests/differential.rs`):
//!
//! | [`Ecosystem`] | type | reference |
//! |---|---|---|
//! | `Debian` | [`DebianVersion`] | `dpkg --compare-versions` |
//! | `Pep440` | [`Pep440Version`] | Python `packaging.version.Version` |
//! | `Semver` | [`SemVersion`] | npm `semver.compare` (semver 7) |
//! | `Alpine` | [`ApkVersion`] | apk-tools' rules; *no* reference binary, only a fixture table |
//!
//! Every type is `FromStr` + `Ord`; equality is the ecosystem's (so
//! `1.0 == 1.0.0` under PEP 440, and build metadata is ignored by SemVer),
//! which is why none of them is `Hash`. [`compare`] parses and compares two
//! strings in one call.
//!
//! Invalid input is a [`ParseError`] that names the ecosystem and what is
//! wrong; nothing here panics on any input. Input longer than
//! [`MAX_VERSION_LEN`] bytes is rejected, and numbers of any length compare
//! numerically without overflow.
//!
//! Where this crate is stricter than its reference, on purpose:
//! - any non-ASCII character is an error (Python and JavaScript would trim
//!   Unicode whitespace; `packaging` would accept nothing else non-ASCII);
//! - Debian: what dpkg only *warns* about (an upstream version that does not
//!   start with a digit, or a character dpkg does not allow) is an error, and
//!   the epoch must be plain digits (dpkg's `strtol` would take `+1`, `-0`
//!   and leading whitespace such as `\n1`);
//!   dpkg's "blank" version (the empty string) is an error.
//!
//! And one place where npm is not exact: it compares numeric pre-release
//! identifiers as JavaScript numbers, so above 2^53 it loses precision; this
//! crate compares them exactly, as SemVer 2.0.0 says.
//!
//! The crate is pure: no I/O, no clock, no randomness.

mod apk;
mod debian;
mod error;
mod num;
mod pep440;
mod semver;

use std::cmp::Ordering;
use std::fmt;

pub use apk::{ApkSuffix, ApkVersion};
pub use debian::DebianVersion;
pub use error::{MAX_VERSION_LEN, ParseError, ParseErrorKind};
pub use pep440::{Pep440Version, PreRelease};
pub use semver::SemVersion;

/// A version scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ecosystem {
    /// Debian and Ubuntu packages (dpkg).
    Debian,
    /// Python packages (PEP 440).
    Pep440,
    /// Semantic Versioning 2.0.0: npm, Go modules (with a `v`), crates.io.
    Semver,
    /// Alpine packages (apk).
    Alpine,
}

impl Ecosystem {
    /// Every ecosystem.
    pub const ALL: [Ecosystem; 4] = [
        Ecosystem::Debian,
        Ecosystem::Pep440,
        Ecosystem::Semver,
        Ecosystem::Alpine,
    ];

    /// The version scheme of an OSV `affected[].package.ecosystem` value,
    /// e.g. `Debian:12`, `PyPI`, `npm`, `Go`, `crates.io`, `Alpine:v3.20`.
    /// `None` for ecosystems this crate does not know.
    pub fn from_osv(ecosystem: &str) -> Option<Ecosystem> {
        let name = ecosystem
            .split_once(':')
            .map_or(ecosystem, |(name, _)| name);
        match name {
            "Debian" | "Ubuntu" => Some(Ecosystem::Debian),
            "PyPI" => Some(Ecosystem::Pep440),
            "npm" | "Go" | "crates.io" => Some(Ecosystem::Semver),
            "Alpine" => Some(Ecosystem::Alpine),
            _ => None,
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ecosystem::Debian => "Debian",
            Ecosystem::Pep440 => "PEP 440",
            Ecosystem::Semver => "SemVer",
            Ecosystem::Alpine => "Alpine",
        })
    }
}

/// Parses `a` and `b` as versions of `ecosystem` and orders them.
///
/// ```
/// use std::cmp::Ordering;
/// use bulwark_versions::{compare, Ecosystem};
///
/// assert_eq!(compare(Ecosystem::Debian, "1.0~rc1", "1.0"), Ok(Ordering::Less));
/// assert_eq!(compare(Ecosystem::Pep440, "1.0a1", "1.0.0a1"), Ok(Ordering::Equal));
/// assert_eq!(compare(Ecosystem::Semver, "v1.2.3", "1.2.3-rc.1"), Ok(Ordering::Greater));
/// assert!(compare(Ecosystem::Alpine, "1.0", "").is_err());
/// ```
pub fn compare(ecosystem: Ecosystem, a: &str, b: &str) -> Result<Ordering, ParseError> {
    fn cmp<T: std::str::FromStr<Err = ParseError> + Ord>(
        a: &str,
        b: &str,
    ) -> Result<Ordering, ParseError> {
        Ok(a.parse::<T>()?.cmp(&b.parse::<T>()?))
    }
    match ecosystem {
        Ecosystem::Debian => cmp::<DebianVersion>(a, b),
        Ecosystem::Pep440 => cmp::<Pep440Version>(a, b),
        Ecosystem::Semver => cmp::<SemVersion>(a, b),
        Ecosystem::Alpine => cmp::<ApkVersion>(a, b),
    }
}

/// Checks that `version` is valid in `ecosystem`.
pub fn validate(ecosystem: Ecosystem, version: &str) -> Result<(), ParseError> {
    match ecosystem {
        Ecosystem::Debian => version.parse::<DebianVersion>().map(drop),
        Ecosystem::Pep440 => version.parse::<Pep440Version>().map(drop),
        Ecosystem::Semver => version.parse::<SemVersion>().map(drop),
        Ecosystem::Alpine => version.parse::<ApkVersion>().map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osv_ecosystem_names() {
        assert_eq!(Ecosystem::from_osv("Debian:12"), Some(Ecosystem::Debian));
        assert_eq!(
            Ecosystem::from_osv("Ubuntu:22.04:LTS"),
            Some(Ecosystem::Debian)
        );
        assert_eq!(Ecosystem::from_osv("PyPI"), Some(Ecosystem::Pep440));
        assert_eq!(Ecosystem::from_osv("Go"), Some(Ecosystem::Semver));
        assert_eq!(Ecosystem::from_osv("npm"), Some(Ecosystem::Semver));
        assert_eq!(Ecosystem::from_osv("crates.io"), Some(Ecosystem::Semver));
        assert_eq!(Ecosystem::from_osv("Alpine:v3.20"), Some(Ecosystem::Alpine));
        assert_eq!(Ecosystem::from_osv("Maven"), None);
        assert_eq!(Ecosystem::from_osv(""), None);
    }

    #[test]
    fn errors_name_the_ecosystem_and_the_problem() {
        let err = compare(Ecosystem::Debian, "1.0", "1:").unwrap_err();
        assert_eq!(err.ecosystem(), Ecosystem::Debian);
        assert_eq!(err.input(), "1:");
        assert_eq!(
            err.to_string(),
            "invalid Debian version \"1:\": nothing after the epoch's colon"
        );
        let long = "9".repeat(300);
        let err = validate(Ecosystem::Semver, &long).unwrap_err();
        assert_eq!(err.input().chars().count(), 65);
        assert_eq!(
            validate(Ecosystem::Semver, "9007199254740992.0.0")
                .unwrap_err()
                .kind(),
            &ParseErrorKind::NumberTooLarge {
                what: "major version"
            }
        );
        assert_eq!(
            validate(Ecosystem::Debian, "2147483648:1")
                .unwrap_err()
                .kind(),
            &ParseErrorKind::NumberTooLarge { what: "epoch" }
        );
    }
}
