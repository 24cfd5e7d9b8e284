//! The error type shared by every ecosystem, and the input limits.

use std::fmt;

use crate::Ecosystem;

/// Longest version string accepted, in bytes, for every ecosystem.
///
/// 256 is npm `semver`'s `MAX_LENGTH`; no real Debian, PyPI or Alpine version
/// comes close. Capping the input bounds the cost of every comparison.
pub const MAX_VERSION_LEN: usize = 256;

/// How many bytes of a rejected input an error keeps for display.
const SHOWN_INPUT_LEN: usize = 64;

/// A version string that is not valid in its ecosystem.
///
/// It records which ecosystem rejected the string, a (truncated) copy of the
/// string, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {ecosystem} version {input:?}: {kind}")]
pub struct ParseError {
    ecosystem: Ecosystem,
    input: String,
    kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(ecosystem: Ecosystem, input: &str, kind: ParseErrorKind) -> Self {
        let mut end = input.len().min(SHOWN_INPUT_LEN);
        while !input.is_char_boundary(end) {
            end -= 1;
        }
        let mut shown = input[..end].to_owned();
        if end < input.len() {
            shown.push('…');
        }
        ParseError {
            ecosystem,
            input: shown,
            kind,
        }
    }

    /// The ecosystem whose rules the string broke.
    pub fn ecosystem(&self) -> Ecosystem {
        self.ecosystem
    }

    /// The rejected string, cut to its first 64 bytes (marked with `…`).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What is wrong with the string.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }
}

/// What is wrong with a version string.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The string is empty, or only whitespace.
    Empty,
    /// The string is longer than [`MAX_VERSION_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A character that the ecosystem never allows (including any
    /// non-ASCII character), at this byte offset.
    InvalidChar {
        /// The character.
        ch: char,
        /// Its byte offset in the input.
        at: usize,
    },
    /// A number larger than the reference implementation accepts.
    NumberTooLarge {
        /// Which number, e.g. "epoch" or "major".
        what: &'static str,
    },
    /// The string does not have the ecosystem's shape.
    Malformed {
        /// Why, e.g. "revision number is empty".
        why: &'static str,
    },
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::Empty => f.write_str("version is empty"),
            ParseErrorKind::TooLong { len } => {
                write!(
                    f,
                    "version is {len} bytes long, the limit is {MAX_VERSION_LEN}"
                )
            }
            ParseErrorKind::InvalidChar { ch, at } => {
                write!(f, "invalid character {ch:?} at byte {at}")
            }
            ParseErrorKind::NumberTooLarge { what } => write!(f, "{what} is too large"),
            ParseErrorKind::Malformed { why } => f.write_str(why),
        }
    }
}

/// Checks the limits every ecosystem shares: not too long, and ASCII only
/// (no reference implementation gives a non-ASCII character a meaning we
/// want; see the crate docs for the exact divergences).
pub(crate) fn check_common(ecosystem: Ecosystem, input: &str) -> Result<(), ParseError> {
    if input.len() > MAX_VERSION_LEN {
        return Err(ParseError::new(
            ecosystem,
            input,
            ParseErrorKind::TooLong { len: input.len() },
        ));
    }
    if let Some((at, ch)) = input.char_indices().find(|(_, c)| !c.is_ascii()) {
        return Err(ParseError::new(
            ecosystem,
            input,
            ParseErrorKind::InvalidChar { ch, at },
        ));
    }
    Ok(())
}
