//! Semantic Versioning 2.0.0, ordered as npm's `semver.compare` orders it.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::Ecosystem;
use crate::error::{ParseError, ParseErrorKind, check_common};
use crate::num::Digits;

/// npm `semver` rejects major, minor and patch above `Number.MAX_SAFE_INTEGER`.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// One dot-separated pre-release identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identifier {
    /// Digits only, no leading zero.
    Num(Digits),
    /// Contains a letter or `-`.
    Alnum(String),
}

impl Ord for Identifier {
    /// Numeric identifiers sort before alphanumeric ones (SemVer 11.4.3).
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Identifier::Num(a), Identifier::Num(b)) => a.cmp(b),
            (Identifier::Alnum(a), Identifier::Alnum(b)) => a.cmp(b),
            (Identifier::Num(_), Identifier::Alnum(_)) => Ordering::Less,
            (Identifier::Alnum(_), Identifier::Num(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for Identifier {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A semantic version, `[v]MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`.
///
/// Parsing is npm `semver`'s strict mode (`new SemVer(v)`): surrounding
/// whitespace is trimmed, a leading `v` is allowed (Go module versions),
/// numbers have no leading zeros, and major, minor and patch are at most
/// 2^53 - 1. Ordering is SemVer 2.0.0 precedence, as `semver.compare`:
/// build metadata is ignored, so `1.0.0+a` == `1.0.0+b`.
#[derive(Debug, Clone)]
pub struct SemVersion {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<Identifier>,
    build: Option<String>,
}

impl SemVersion {
    /// The major version.
    pub fn major(&self) -> u64 {
        self.major
    }

    /// The minor version.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The patch version.
    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// True when the version has pre-release identifiers.
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    /// The build metadata after `+`, if any.
    pub fn build(&self) -> Option<&str> {
        self.build.as_deref()
    }
}

impl Ord for SemVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                // A pre-release sorts before the release.
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                // Identifier by identifier; a longer list wins a tie.
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}

impl PartialOrd for SemVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SemVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SemVersion {}

impl fmt::Display for SemVersion {
    /// The canonical form, without a `v` prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (i, id) in self.pre.iter().enumerate() {
            f.write_str(if i == 0 { "-" } else { "." })?;
            match id {
                Identifier::Num(n) => write!(f, "{n}")?,
                Identifier::Alnum(s) => f.write_str(s)?,
            }
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

/// JavaScript's `String.prototype.trim` on ASCII.
fn is_js_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

impl FromStr for SemVersion {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Self, ParseError> {
        check_common(Ecosystem::Semver, input)?;
        let malformed =
            |why| ParseError::new(Ecosystem::Semver, input, ParseErrorKind::Malformed { why });
        let s = input.trim_matches(is_js_space);
        if s.is_empty() {
            return Err(ParseError::new(
                Ecosystem::Semver,
                input,
                ParseErrorKind::Empty,
            ));
        }
        let s = s.strip_prefix('v').unwrap_or(s);
        let (s, build) = match s.split_once('+') {
            None => (s, None),
            Some((s, build)) => {
                if !build
                    .split('.')
                    .all(|id| !id.is_empty() && id.chars().all(is_ident_char))
                {
                    return Err(malformed(
                        "build metadata must be dot-separated [0-9A-Za-z-]+",
                    ));
                }
                (s, Some(build.to_owned()))
            }
        };
        let (core, pre) = match s.split_once('-') {
            None => (s, None),
            Some((core, pre)) => (core, Some(pre)),
        };
        let mut numbers = core.split('.');
        let mut number = |what: &'static str| -> Result<u64, ParseError> {
            let text = numbers
                .next()
                .ok_or_else(|| malformed("expected MAJOR.MINOR.PATCH"))?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed("MAJOR.MINOR.PATCH must be three numbers"));
            }
            if text.len() > 1 && text.starts_with('0') {
                return Err(malformed("numbers must not have leading zeros"));
            }
            match Digits::new(text).to_u64() {
                Some(n) if n <= MAX_SAFE_INTEGER => Ok(n),
                _ => Err(ParseError::new(
                    Ecosystem::Semver,
                    input,
                    ParseErrorKind::NumberTooLarge { what },
                )),
            }
        };
        let major = number("major version")?;
        let minor = number("minor version")?;
        let patch = number("patch version")?;
        if numbers.next().is_some() {
            return Err(malformed("MAJOR.MINOR.PATCH must be three numbers"));
        }
        let mut ids = Vec::new();
        if let Some(pre) = pre {
            for id in pre.split('.') {
                if id.is_empty() || !id.chars().all(is_ident_char) {
                    return Err(malformed("pre-release must be dot-separated [0-9A-Za-z-]+"));
                }
                if id.bytes().all(|b| b.is_ascii_digit()) {
                    if id.len() > 1 && id.starts_with('0') {
                        return Err(malformed(
                            "numeric pre-release identifiers must not have leading zeros",
                        ));
                    }
                    ids.push(Identifier::Num(Digits::new(id)));
                } else {
                    ids.push(Identifier::Alnum(id.to_owned()));
                }
            }
        }
        Ok(SemVersion {
            major,
            minor,
            patch,
            pre: ids,
            build,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> SemVersion {
        s.parse().unwrap()
    }

    #[test]
    fn precedence_example_from_the_spec() {
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for pair in chain.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn accessors_and_display() {
        let x = v(" v1.2.3-rc.01a+build.5 ");
        assert_eq!((x.major(), x.minor(), x.patch()), (1, 2, 3));
        assert!(x.is_prerelease());
        assert_eq!(x.build(), Some("build.5"));
        assert_eq!(x.to_string(), "1.2.3-rc.01a+build.5");
        assert_eq!(v("1.0.0+a"), v("1.0.0+b"));
    }
}
