//! Fixture files: loading and the small escape language they use.

use std::cmp::Ordering;
use std::path::PathBuf;

use bulwark_versions::Ecosystem;

/// The fixture folder of an ecosystem.
pub(crate) fn fixture_dir(eco: Ecosystem) -> PathBuf {
    let name = match eco {
        Ecosystem::Debian => "debian",
        Ecosystem::Pep440 => "pep440",
        Ecosystem::Semver => "semver",
        Ecosystem::Alpine => "alpine",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The expected outcome of comparing two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    Cmp(Ordering),
    /// At least one side is invalid.
    Err,
}

impl Expected {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Expected::Cmp(Ordering::Less) => "<",
            Expected::Cmp(Ordering::Equal) => "=",
            Expected::Cmp(Ordering::Greater) => ">",
            Expected::Err => "err",
        }
    }

    pub(crate) fn of(result: &Result<Ordering, bulwark_versions::ParseError>) -> Expected {
        match result {
            Ok(ord) => Expected::Cmp(*ord),
            Err(_) => Expected::Err,
        }
    }
}

/// One line of a comparison table.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) a: String,
    pub(crate) b: String,
    pub(crate) expected: Expected,
    /// `file:line`, for failure messages.
    pub(crate) at: String,
}

/// One line of `invalid.txt`.
#[derive(Debug, Clone)]
pub(crate) struct Invalid {
    pub(crate) version: String,
    /// The reference accepts it; we reject it on purpose (documented).
    pub(crate) stricter_than_reference: bool,
    pub(crate) at: String,
}

/// Decodes a fixture field. Fields are separated by whitespace, so:
/// `\e` alone is the empty string, `\s` a space, `\t` `\n` `\r` `\v` `\f`,
/// `\\` a backslash, `\u{HEX}` any character, and `\r{N}{TEXT}` repeats
/// TEXT N times (for huge inputs).
pub(crate) fn decode(field: &str) -> String {
    if field == "\\e" {
        return String::new();
    }
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('v') => out.push('\x0b'),
            Some('f') => out.push('\x0c'),
            Some('\\') => out.push('\\'),
            Some('u') => {
                let hex = braced(&mut chars);
                let code = u32::from_str_radix(&hex, 16).expect("bad \\u{} escape");
                out.push(char::from_u32(code).expect("bad \\u{} code point"));
            }
            Some('r') if chars.peek() == Some(&'{') => {
                let n: usize = braced(&mut chars).parse().expect("bad \\r{N}");
                let text = braced(&mut chars);
                out.push_str(&text.repeat(n));
            }
            Some('r') => out.push('\r'),
            other => panic!("unknown escape \\{other:?} in fixture field {field:?}"),
        }
    }
    out
}

fn braced(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    assert_eq!(chars.next(), Some('{'), "expected '{{' in fixture escape");
    chars.by_ref().take_while(|&c| c != '}').collect()
}

/// Lines of a fixture file without comments and blank lines, with their
/// `file:line`.
fn lines(eco: Ecosystem, file: &str) -> Vec<(String, Vec<String>)> {
    let path = fixture_dir(eco).join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let fields = line.split_whitespace().map(str::to_owned).collect();
            Some((
                format!("{}/{file}:{}", fixture_dir(eco).display(), i + 1),
                fields,
            ))
        })
        .collect()
}

/// Every `*.cmp` table of an ecosystem: lines `A B EXPECTED`, EXPECTED one of
/// `<`, `=`, `>`, `err`.
pub(crate) fn cases(eco: Ecosystem) -> Vec<Case> {
    let mut files: Vec<String> = std::fs::read_dir(fixture_dir(eco))
        .expect("fixture dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".cmp"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .cmp fixtures for {eco}");
    let mut out = Vec::new();
    for file in files {
        for (at, fields) in lines(eco, &file) {
            assert_eq!(fields.len(), 3, "{at}: expected `A B EXPECTED`");
            let expected = match fields[2].as_str() {
                "<" => Expected::Cmp(Ordering::Less),
                "=" => Expected::Cmp(Ordering::Equal),
                ">" => Expected::Cmp(Ordering::Greater),
                "err" => Expected::Err,
                other => panic!("{at}: bad expectation {other:?}"),
            };
            out.push(Case {
                a: decode(&fields[0]),
                b: decode(&fields[1]),
                expected,
                at,
            });
        }
    }
    out
}

/// `invalid.txt`: one version per line, optionally preceded by `strict`
/// (the reference accepts it, we do not, on purpose).
pub(crate) fn invalid(eco: Ecosystem) -> Vec<Invalid> {
    lines(eco, "invalid.txt")
        .into_iter()
        .map(|(at, fields)| {
            let (strict, field) = match fields.as_slice() {
                [v] => (false, v),
                [tag, v] if tag == "strict" => (true, v),
                _ => panic!("{at}: expected `[strict] VERSION`"),
            };
            Invalid {
                version: decode(field),
                stricter_than_reference: strict,
                at,
            }
        })
        .collect()
}

/// `real-world.txt`: one valid version per line.
pub(crate) fn real_world(eco: Ecosystem) -> Vec<String> {
    lines(eco, "real-world.txt")
        .into_iter()
        .map(|(at, fields)| {
            assert_eq!(fields.len(), 1, "{at}: expected one version");
            decode(&fields[0])
        })
        .collect()
}
