//! Python package versions (PEP 440), ordered as `packaging.version` orders
//! them.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::Ecosystem;
use crate::error::{ParseError, ParseErrorKind, check_common};
use crate::num::Digits;

/// A pre-release phase; `alpha` < `beta` < `rc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PreRelease {
    /// `a`, spelled `a` or `alpha`.
    Alpha,
    /// `b`, spelled `b` or `beta`.
    Beta,
    /// `rc`, spelled `rc`, `c`, `pre` or `preview`.
    Rc,
}

impl PreRelease {
    fn as_str(self) -> &'static str {
        match self {
            PreRelease::Alpha => "a",
            PreRelease::Beta => "b",
            PreRelease::Rc => "rc",
        }
    }
}

/// One dot-separated part of a local version label.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LocalPart {
    Num(Digits),
    /// Lowercased.
    Str(String),
}

impl Ord for LocalPart {
    /// Strings sort before numbers (PEP 440).
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (LocalPart::Num(a), LocalPart::Num(b)) => a.cmp(b),
            (LocalPart::Str(a), LocalPart::Str(b)) => a.cmp(b),
            (LocalPart::Str(_), LocalPart::Num(_)) => Ordering::Less,
            (LocalPart::Num(_), LocalPart::Str(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for LocalPart {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A PEP 440 version, `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`.
///
/// Parsing accepts exactly the spellings that Python's
/// `packaging.version.Version` accepts (its `VERSION_PATTERN`, matched
/// case-insensitively: `v1.0`, `1.0-post1`, `1.0.alpha.1`, `1.0-1`, ...),
/// except that non-ASCII characters are always rejected. `Display` gives the
/// normalised form, as `str(Version(...))` does. Ordering and equality are
/// `packaging`'s: trailing zeros of the release do not count (`1.0a1` ==
/// `1.0.0a1`), and numbers of any size compare numerically.
#[derive(Debug, Clone)]
pub struct Pep440Version {
    epoch: Digits,
    release: Vec<Digits>,
    pre: Option<(PreRelease, Digits)>,
    post: Option<Digits>,
    dev: Option<Digits>,
    local: Option<Vec<LocalPart>>,
}

impl Pep440Version {
    /// True for pre-releases and development releases.
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    /// True when the version has a local label (`+...`).
    pub fn has_local(&self) -> bool {
        self.local.is_some()
    }

    /// `packaging`'s ordering key for the pre/post/dev suffix, with numbers
    /// kept exact: (pre rank, pre number, has post, post number, has no dev,
    /// dev number). A dev release with neither pre nor post sorts before
    /// every pre-release; a release without pre sorts after them. A missing
    /// number only ever meets another missing number (the flag or rank
    /// before it already differs otherwise), so `None` stands for zero.
    fn suffix_key(
        &self,
    ) -> (
        i8,
        Option<&Digits>,
        bool,
        Option<&Digits>,
        bool,
        Option<&Digits>,
    ) {
        let (pre_rank, pre_n) = match (&self.pre, &self.post, &self.dev) {
            (Some((kind, n)), _, _) => (*kind as i8, Some(n)),
            (None, None, Some(_)) => (-1, None),
            (None, _, _) => (3, None),
        };
        (
            pre_rank,
            pre_n,
            self.post.is_some(),
            self.post.as_ref(),
            self.dev.is_none(),
            self.dev.as_ref(),
        )
    }

    /// The release without trailing zeros.
    fn trimmed_release(&self) -> &[Digits] {
        let mut end = self.release.len();
        while end > 0 && self.release[end - 1].is_zero() {
            end -= 1;
        }
        &self.release[..end]
    }
}

impl Ord for Pep440Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| self.trimmed_release().cmp(other.trimmed_release()))
            .then_with(|| self.suffix_key().cmp(&other.suffix_key()))
            // `None` (no local label) sorts first.
            .then_with(|| self.local.cmp(&other.local))
    }
}

impl PartialOrd for Pep440Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pep440Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pep440Version {}

impl fmt::Display for Pep440Version {
    /// The normalised form, e.g. `v1.0-ALPHA.1` prints as `1.0a1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.epoch.is_zero() {
            write!(f, "{}!", self.epoch)?;
        }
        for (i, part) in self.release.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{part}")?;
        }
        if let Some((kind, n)) = &self.pre {
            write!(f, "{}{n}", kind.as_str())?;
        }
        if let Some(n) = &self.post {
            write!(f, ".post{n}")?;
        }
        if let Some(n) = &self.dev {
            write!(f, ".dev{n}")?;
        }
        if let Some(local) = &self.local {
            f.write_str("+")?;
            for (i, part) in local.iter().enumerate() {
                if i > 0 {
                    f.write_str(".")?;
                }
                match part {
                    LocalPart::Num(n) => write!(f, "{n}")?,
                    LocalPart::Str(s) => f.write_str(s)?,
                }
            }
        }
        Ok(())
    }
}

/// Python's `\s` on ASCII: space, `\t\n\v\f\r` and `\x1c`-`\x1f`.
fn is_py_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f'
    )
}

/// A cursor over the lowercased version.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_sep(&mut self) -> bool {
        matches!(self.peek(), Some(b'.' | b'_' | b'-')) && {
            self.pos += 1;
            true
        }
    }

    /// The first of `words` that the input continues with, consumed.
    fn eat_word(&mut self, words: &[&'static str]) -> Option<&'static str> {
        let rest = &self.s[self.pos..];
        let word = words.iter().find(|w| rest.starts_with(w.as_bytes()))?;
        self.pos += word.len();
        Some(word)
    }

    fn digits(&mut self) -> Option<Digits> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        (self.pos > start).then(|| Digits::new(self.text(start)))
    }

    fn alnums(&mut self) -> Option<&str> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric()) {
            self.pos += 1;
        }
        (self.pos > start).then(|| self.text(start))
    }

    fn text(&self, start: usize) -> &str {
        // The input is ASCII, so every slice is valid UTF-8.
        std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("")
    }
}

impl FromStr for Pep440Version {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Self, ParseError> {
        check_common(Ecosystem::Pep440, input)?;
        let trimmed = input.trim_matches(is_py_space);
        if trimmed.is_empty() {
            return Err(ParseError::new(
                Ecosystem::Pep440,
                input,
                ParseErrorKind::Empty,
            ));
        }
        let lower = trimmed.to_ascii_lowercase();
        parse(&lower).map_err(|why| {
            ParseError::new(Ecosystem::Pep440, input, ParseErrorKind::Malformed { why })
        })
    }
}

/// Matches `packaging`'s `VERSION_PATTERN` by hand. Every optional group in
/// that pattern is possessive (or behaves as if it were), so a single
/// left-to-right pass that commits to the first alternative that matches
/// accepts exactly the same strings.
fn parse(s: &str) -> Result<Pep440Version, &'static str> {
    let mut c = Cursor {
        s: s.as_bytes(),
        pos: 0,
    };
    c.eat(b'v');
    let first = c.digits().ok_or("expected a release number")?;
    let (epoch, first) = if c.eat(b'!') {
        let release = c
            .digits()
            .ok_or("expected a release number after the epoch")?;
        (first, release)
    } else {
        (Digits::zero(), first)
    };
    let mut release = vec![first];
    while c.peek() == Some(b'.') && c.s.get(c.pos + 1).is_some_and(u8::is_ascii_digit) {
        c.pos += 1;
        release.extend(c.digits());
    }

    // Pre-release: [._-]? (alpha|a|beta|b|preview|pre|c|rc) [._-]? N?
    let start = c.pos;
    c.eat_sep();
    let pre = match c.eat_word(&["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"]) {
        Some(word) => {
            let kind = match word {
                "alpha" | "a" => PreRelease::Alpha,
                "beta" | "b" => PreRelease::Beta,
                _ => PreRelease::Rc,
            };
            c.eat_sep();
            Some((kind, c.digits().unwrap_or_else(Digits::zero)))
        }
        None => {
            c.pos = start;
            None
        }
    };

    // Post-release: -N | [._-]? (post|rev|r) [._-]? N?
    let start = c.pos;
    let post = if c.eat(b'-') && c.peek().is_some_and(|b| b.is_ascii_digit()) {
        c.digits()
    } else {
        c.pos = start;
        c.eat_sep();
        if c.eat_word(&["post", "rev", "r"]).is_some() {
            c.eat_sep();
            Some(c.digits().unwrap_or_else(Digits::zero))
        } else {
            c.pos = start;
            None
        }
    };

    // Development release: [._-]? dev [._-]? N?
    let start = c.pos;
    c.eat_sep();
    let dev = if c.eat_word(&["dev"]).is_some() {
        c.eat_sep();
        Some(c.digits().unwrap_or_else(Digits::zero))
    } else {
        c.pos = start;
        None
    };

    // Local label: + [a-z0-9]+ ([._-][a-z0-9]+)*
    let local = if c.eat(b'+') {
        let mut parts = Vec::new();
        loop {
            let part = c.alnums().ok_or("empty part in local version label")?;
            parts.push(if part.bytes().all(|b| b.is_ascii_digit()) {
                LocalPart::Num(Digits::new(part))
            } else {
                LocalPart::Str(part.to_owned())
            });
            if !c.eat_sep() {
                break;
            }
        }
        Some(parts)
    } else {
        None
    };

    if c.pos != c.s.len() {
        return Err("unexpected text after the version");
    }
    Ok(Pep440Version {
        epoch,
        release,
        pre,
        post,
        dev,
        local,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Pep440Version {
        s.parse().unwrap()
    }

    #[test]
    fn normalises() {
        for (raw, norm) in [
            ("v1.0", "1.0"),
            ("1.0-post1", "1.0.post1"),
            ("1.0-1", "1.0.post1"),
            ("1.0.ALPHA.1", "1.0a1"),
            (
                "1!2.0preview3-r4.dev_5+Ubuntu-01",
                "1!2.0rc3.post4.dev5+ubuntu.1",
            ),
            ("  1.0c  ", "1.0rc0"),
            ("1.0a-", "1.0a0"),
        ] {
            assert_eq!(v(raw).to_string(), norm, "{raw}");
        }
    }

    #[test]
    fn orders() {
        assert_eq!(v("1.0a1"), v("1.0.0a1"));
        assert!(v("1.0.dev0") < v("1.0a0"));
        assert!(v("1.0a0") < v("1.0a0.post0.dev0"));
        assert!(v("1.0") < v("1.0+abc") && v("1.0+abc") < v("1.0+0"));
        assert!(v("1.0.post0.dev0") < v("1.0.post0"));
        assert!(
            !v("1.0").is_prerelease() && v("1.0.dev1").is_prerelease() && v("1.0+x").has_local()
        );
    }
}
