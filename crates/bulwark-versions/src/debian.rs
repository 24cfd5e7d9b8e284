//! Debian package versions, ordered as dpkg orders them.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::Ecosystem;
use crate::error::{ParseError, ParseErrorKind, check_common};
use crate::num::cmp_digits;

/// dpkg refuses epochs above `INT_MAX`.
const MAX_EPOCH: u64 = i32::MAX as u64;

/// A Debian version, `[epoch:]upstream_version[-debian_revision]`.
///
/// Parsing follows dpkg's `parseversion` and ordering follows dpkg's
/// `verrevcmp`, as `dpkg --compare-versions` does. Where dpkg only *warns*
/// (the upstream version does not start with a digit, or has a character
/// outside `[A-Za-z0-9.+~-:]`), this type rejects the string. Equality is
/// dpkg's: `1.0` and `1.00` and `0:1.0-0` are equal.
#[derive(Debug, Clone)]
pub struct DebianVersion {
    original: String,
    epoch: u32,
    upstream: String,
    revision: String,
}

impl DebianVersion {
    /// The epoch; 0 when absent.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream version.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The Debian revision; empty when absent.
    pub fn revision(&self) -> &str {
        &self.revision
    }
}

fn err(input: &str, kind: ParseErrorKind) -> ParseError {
    ParseError::new(Ecosystem::Debian, input, kind)
}

fn malformed(input: &str, why: &'static str) -> ParseError {
    err(input, ParseErrorKind::Malformed { why })
}

impl FromStr for DebianVersion {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Self, ParseError> {
        check_common(Ecosystem::Debian, input)?;
        // dpkg ignores leading and trailing blanks (space and tab, not the
        // other ASCII whitespace), and rejects them inside.
        let is_blank = |c: char| c == ' ' || c == '\t';
        let s = input.trim_matches(is_blank);
        if s.is_empty() {
            return Err(err(input, ParseErrorKind::Empty));
        }
        // Offset of a subslice of `input`, for error messages.
        let offset = |part: &str| part.as_ptr() as usize - input.as_ptr() as usize;
        if let Some(at) = s.find(is_blank) {
            let ch = char::from(s.as_bytes()[at]);
            let at = at + offset(s);
            return Err(err(input, ParseErrorKind::InvalidChar { ch, at }));
        }
        let (epoch, rest) = match s.split_once(':') {
            None => (0, s),
            Some((epoch, rest)) => {
                if epoch.is_empty() {
                    return Err(malformed(input, "epoch is empty"));
                }
                if !epoch.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(malformed(input, "epoch is not a number"));
                }
                let significant = epoch.trim_start_matches('0');
                let value: u64 = match significant.len() {
                    0 => 0,
                    1..=10 => significant.parse().unwrap_or(u64::MAX),
                    _ => u64::MAX,
                };
                let epoch = match u32::try_from(value) {
                    Ok(v) if value <= MAX_EPOCH => v,
                    _ => return Err(err(input, ParseErrorKind::NumberTooLarge { what: "epoch" })),
                };
                if rest.is_empty() {
                    return Err(malformed(input, "nothing after the epoch's colon"));
                }
                (epoch, rest)
            }
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            None => (rest, ""),
            Some((_, "")) => return Err(malformed(input, "revision is empty")),
            Some((upstream, revision)) => (upstream, revision),
        };
        if upstream.is_empty() {
            return Err(malformed(input, "upstream version is empty"));
        }
        if !upstream.as_bytes()[0].is_ascii_digit() {
            return Err(malformed(
                input,
                "upstream version does not start with a digit",
            ));
        }
        if let Some(at) =
            upstream.find(|c: char| !(c.is_ascii_alphanumeric() || ".-+~:".contains(c)))
        {
            let ch = char::from(upstream.as_bytes()[at]);
            let at = at + offset(upstream);
            return Err(err(input, ParseErrorKind::InvalidChar { ch, at }));
        }
        if let Some(at) = revision.find(|c: char| !(c.is_ascii_alphanumeric() || ".+~".contains(c)))
        {
            let ch = char::from(revision.as_bytes()[at]);
            let at = at + offset(revision);
            return Err(err(input, ParseErrorKind::InvalidChar { ch, at }));
        }
        Ok(DebianVersion {
            original: s.to_owned(),
            epoch,
            upstream: upstream.to_owned(),
            revision: revision.to_owned(),
        })
    }
}

/// dpkg's weight of a non-digit byte: `~` first, then the end of the
/// string, then letters, then everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternate runs of non-digits (compared by [`weight`])
/// and runs of digits (compared numerically, any length).
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let is_digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !is_digit(a, i)) || (j < b.len() && !is_digit(b, j)) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        let start_a = i;
        while is_digit(a, i) {
            i += 1;
        }
        let start_b = j;
        while is_digit(b, j) {
            j += 1;
        }
        // Both slices are ASCII digits, so they are valid UTF-8.
        let run_a = std::str::from_utf8(&a[start_a..i]).unwrap_or("");
        let run_b = std::str::from_utf8(&b[start_b..j]).unwrap_or("");
        let ord = cmp_digits(run_a, run_b);
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

impl Ord for DebianVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

impl PartialOrd for DebianVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DebianVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DebianVersion {}

impl fmt::Display for DebianVersion {
    /// The version as written, without surrounding blanks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> DebianVersion {
        s.parse().unwrap()
    }

    #[test]
    fn parts() {
        let x = v("2:1.0-rc1-3ubuntu1");
        assert_eq!(
            (x.epoch(), x.upstream(), x.revision()),
            (2, "1.0-rc1", "3ubuntu1")
        );
        assert_eq!(v(" 1.0 ").to_string(), "1.0");
    }

    #[test]
    fn tilde_sorts_before_end() {
        assert!(v("1.0~rc1") < v("1.0"));
        assert!(v("1.0~~") < v("1.0~"));
        assert!(v("1.0a") < v("1.0+"));
        assert_eq!(v("1.0"), v("0:1.0-0"));
    }
}
