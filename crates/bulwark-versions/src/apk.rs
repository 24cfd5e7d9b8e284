//! Alpine package versions, ordered by apk-tools' rules.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::Ecosystem;
use crate::error::{ParseError, ParseErrorKind, check_common};
use crate::num::cmp_digits;

/// A version suffix, in apk's order: the four pre-release suffixes sort
/// before "no suffix", the five post-release ones after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApkSuffix {
    /// `_alpha`
    Alpha,
    /// `_beta`
    Beta,
    /// `_pre`
    Pre,
    /// `_rc`
    Rc,
    /// `_cvs`
    Cvs,
    /// `_svn`
    Svn,
    /// `_git`
    Git,
    /// `_hg`
    Hg,
    /// `_p`
    P,
}

impl ApkSuffix {
    const ALL: [(&'static str, ApkSuffix); 9] = [
        ("alpha", ApkSuffix::Alpha),
        ("beta", ApkSuffix::Beta),
        ("pre", ApkSuffix::Pre),
        ("rc", ApkSuffix::Rc),
        ("cvs", ApkSuffix::Cvs),
        ("svn", ApkSuffix::Svn),
        ("git", ApkSuffix::Git),
        ("hg", ApkSuffix::Hg),
        ("p", ApkSuffix::P),
    ];

    /// True for the suffixes that mark a version older than the bare one.
    pub fn is_pre_release(self) -> bool {
        self <= ApkSuffix::Rc
    }
}

/// One token of a version, in the order apk compares token *kinds*: when
/// two versions agree up to a point and then continue with tokens of
/// different kinds, the one whose next token comes *earlier* in this list is
/// the newer, except that a pre-release suffix is always older.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// The first number: compared as an integer.
    First(String),
    /// A later number (after `.`): compared as an integer, unless either
    /// side starts with `0`, then compared as a string.
    Digit(String),
    Letter(u8),
    Suffix(ApkSuffix),
    SuffixNumber(String),
    Revision(String),
}

impl Token {
    fn kind(&self) -> u8 {
        match self {
            Token::First(_) | Token::Digit(_) => 0,
            Token::Letter(_) => 1,
            Token::Suffix(_) => 2,
            Token::SuffixNumber(_) => 3,
            Token::Revision(_) => 4,
        }
    }

    /// Compares two tokens of the same kind.
    fn cmp_value(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Token::Digit(a), Token::Digit(b)) if a.starts_with('0') || b.starts_with('0') => {
                a.cmp(b)
            }
            (Token::First(a) | Token::Digit(a), Token::First(b) | Token::Digit(b))
            | (Token::SuffixNumber(a), Token::SuffixNumber(b))
            | (Token::Revision(a), Token::Revision(b)) => cmp_digits(a, b),
            (Token::Letter(a), Token::Letter(b)) => a.cmp(b),
            (Token::Suffix(a), Token::Suffix(b)) => a.cmp(b),
            _ => self.kind().cmp(&other.kind()),
        }
    }
}

/// An Alpine package version,
/// `N(.N)*[a-z](_suffix[N])*[-rN]`, e.g. `1.2.3_rc1-r0` or `6.5_p20250503-r2`.
///
/// There is no apk binary to test against, so the rules are those that
/// apk-tools documents and implements, checked by the fixture table in
/// `tests/fixtures/alpine`: numbers compare numerically, except that a
/// number after the first that starts with `0` compares as a string (as in
/// apk-tools 3 and Gentoo, whose format apk's follows); a letter makes a
/// version newer; `_alpha` < `_beta` < `_pre` < `_rc` < (none) < `_cvs` <
/// `_svn` < `_git` < `_hg` < `_p`; and `-rN` is the package revision.
/// apk's `~hash` commit suffix is not supported and is rejected.
#[derive(Debug, Clone)]
pub struct ApkVersion {
    original: String,
    tokens: Vec<Token>,
}

impl ApkVersion {
    /// The digits of the `-rN` package revision (text, since they can be any
    /// length); `None` when the version has no revision.
    pub fn revision(&self) -> Option<&str> {
        match self.tokens.last() {
            Some(Token::Revision(r)) => Some(r),
            _ => None,
        }
    }
}

impl FromStr for ApkVersion {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Self, ParseError> {
        check_common(Ecosystem::Alpine, input)?;
        if input.is_empty() {
            return Err(ParseError::new(
                Ecosystem::Alpine,
                input,
                ParseErrorKind::Empty,
            ));
        }
        let bytes = input.as_bytes();
        let mut pos = 0;
        let malformed =
            |why| ParseError::new(Ecosystem::Alpine, input, ParseErrorKind::Malformed { why });
        let digits = |pos: &mut usize| -> Option<String> {
            let start = *pos;
            while bytes.get(*pos).is_some_and(u8::is_ascii_digit) {
                *pos += 1;
            }
            (*pos > start).then(|| input[start..*pos].to_owned())
        };
        let mut tokens =
            vec![Token::First(digits(&mut pos).ok_or_else(|| {
                malformed("version must start with a number")
            })?)];
        while bytes.get(pos) == Some(&b'.') {
            pos += 1;
            tokens.push(Token::Digit(
                digits(&mut pos).ok_or_else(|| malformed("expected a number after '.'"))?,
            ));
        }
        if let Some(&c) = bytes.get(pos).filter(|c| c.is_ascii_lowercase()) {
            tokens.push(Token::Letter(c));
            pos += 1;
        }
        while bytes.get(pos) == Some(&b'_') {
            pos += 1;
            let rest = &input[pos..];
            let (name, suffix) = ApkSuffix::ALL
                .iter()
                .filter(|(name, _)| rest.starts_with(name))
                .max_by_key(|(name, _)| name.len())
                .ok_or_else(|| malformed("unknown suffix after '_'"))?;
            pos += name.len();
            tokens.push(Token::Suffix(*suffix));
            if let Some(n) = digits(&mut pos) {
                tokens.push(Token::SuffixNumber(n));
            }
        }
        if input[pos..].starts_with("-r") {
            pos += 2;
            tokens.push(Token::Revision(
                digits(&mut pos).ok_or_else(|| malformed("expected a number after '-r'"))?,
            ));
        }
        if let Some(&c) = bytes.get(pos) {
            return Err(ParseError::new(
                Ecosystem::Alpine,
                input,
                ParseErrorKind::InvalidChar {
                    ch: char::from(c),
                    at: pos,
                },
            ));
        }
        Ok(ApkVersion {
            original: input.to_owned(),
            tokens,
        })
    }
}

impl Ord for ApkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let mut a = self.tokens.iter();
        let mut b = other.tokens.iter();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return Ordering::Equal,
                (Some(x), Some(y)) if x.kind() == y.kind() => match x.cmp_value(y) {
                    Ordering::Equal => continue,
                    ord => return ord,
                },
                // The two versions continue differently.
                (x, y) => {
                    let pre = |t: Option<&Token>| matches!(t, Some(Token::Suffix(s)) if s.is_pre_release());
                    if pre(x) {
                        return Ordering::Less;
                    }
                    if pre(y) {
                        return Ordering::Greater;
                    }
                    // The end of the string counts as the last kind.
                    let kind = |t: Option<&Token>| t.map_or(u8::MAX, Token::kind);
                    return kind(y).cmp(&kind(x));
                }
            }
        }
    }
}

impl PartialOrd for ApkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ApkVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ApkVersion {}

impl fmt::Display for ApkVersion {
    /// The version as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ApkVersion {
        s.parse().unwrap()
    }

    #[test]
    fn suffix_order() {
        let chain = [
            "1.0_alpha",
            "1.0_alpha1",
            "1.0_beta",
            "1.0_pre2",
            "1.0_rc1",
            "1.0",
            "1.0-r1",
            "1.0_cvs",
            "1.0_svn",
            "1.0_git",
            "1.0_hg",
            "1.0_p1",
            "1.0a",
            "1.0.1",
        ];
        for pair in chain.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{pair:?}");
        }
        assert_eq!(v("1.0-r3").revision(), Some("3"));
        assert_eq!(v("1.0").revision(), None);
    }
}
