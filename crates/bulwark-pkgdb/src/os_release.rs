//! os-release(5) parsing (`/etc/os-release`, `/usr/lib/os-release`).
//!
//! The accepted syntax is documented on [`parse_os_release`].

use crate::model::MAX_FIELD_LEN;
use crate::text::lines;

/// OS identification from os-release(5).
///
/// Every field is `None` when the key is absent, empty or malformed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`, `alpine`, `openwrt`, `ubuntu`.
    pub id: Option<String>,
    /// `VERSION_ID`, e.g. `12`, `3.20.3`, `23.05.5`.
    pub version_id: Option<String>,
    /// `PRETTY_NAME`, e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub pretty_name: Option<String>,
    /// `NAME`, e.g. `Debian GNU/Linux`.
    pub name: Option<String>,
    /// `VERSION_CODENAME`, e.g. `bookworm`.
    pub version_codename: Option<String>,
}

/// Parses the text of an os-release(5) file. Never fails.
///
/// The file is a list of shell-compatible variable assignments. This parser
/// accepts the subset os-release(5) allows, following the rules of systemd's
/// own parser:
///
/// * `KEY=value` with `KEY` matching `[A-Za-z_][A-Za-z0-9_]*`
///   (case-sensitive, no spaces around `=`; leading indentation is allowed);
/// * values may be unquoted, `"double quoted"` or `'single quoted'`, and
///   adjacent pieces concatenate (`A="x"'y'z` is `xyz`);
/// * in double quotes a backslash escapes `"`, `\`, `` ` `` and `$`; before
///   any other character it is kept literally (shell semantics);
///   unquoted, a backslash escapes any character; in single quotes nothing
///   is special;
/// * after an unquoted space or tab the rest of the line must be empty or a
///   `#` comment;
/// * lines starting with `#` and blank lines are skipped;
/// * a key assigned twice takes the **last** value, as when the file is
///   sourced by a shell.
///
/// Malformed lines (no `=`, bad key, unterminated quote, trailing backslash,
/// text after a space, raw value longer than
/// [`MAX_FIELD_LEN`](crate::MAX_FIELD_LEN), control characters in the value)
/// are ignored. Line continuations are not supported. An empty value is
/// reported as `None`. Only `ID`, `VERSION_ID`, `PRETTY_NAME`, `NAME` and
/// `VERSION_CODENAME` are extracted.
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut os = OsRelease::default();
    for (_, line) in lines(text) {
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        if !is_valid_key(key) || raw.len() > MAX_FIELD_LEN {
            continue;
        }
        let slot = match key {
            "ID" => &mut os.id,
            "VERSION_ID" => &mut os.version_id,
            "PRETTY_NAME" => &mut os.pretty_name,
            "NAME" => &mut os.name,
            "VERSION_CODENAME" => &mut os.version_codename,
            _ => continue,
        };
        let Some(value) = unquote(raw) else { continue };
        if value.chars().any(char::is_control) {
            continue;
        }
        *slot = Some(value).filter(|v| !v.is_empty());
    }
    os
}

fn is_valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Decodes a shell-quoted value; `None` if it is malformed.
fn unquote(raw: &str) -> Option<String> {
    #[derive(Clone, Copy)]
    enum State {
        Bare,
        Double,
        Single,
    }
    let mut out = String::with_capacity(raw.len());
    let mut state = State::Bare;
    let mut chars = raw.char_indices();
    while let Some((at, c)) = chars.next() {
        match (state, c) {
            (State::Bare, '"') => state = State::Double,
            (State::Bare, '\'') => state = State::Single,
            (State::Bare, '\\') => out.push(chars.next()?.1),
            (State::Bare, ' ' | '\t') => {
                let rest = raw[at..].trim_start_matches([' ', '\t']);
                return (rest.is_empty() || rest.starts_with('#')).then_some(out);
            }
            (State::Double, '"') | (State::Single, '\'') => state = State::Bare,
            (State::Double, '\\') => {
                let next = chars.next()?.1;
                if !matches!(next, '"' | '\\' | '`' | '$') {
                    out.push('\\');
                }
                out.push(next);
            }
            (_, c) => out.push(c),
        }
    }
    matches!(state, State::Bare).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(text: &str, expected: Expect) {
        expected.assert_debug_eq(&parse_os_release(text));
    }

    #[test]
    fn quoting_styles() {
        check(
            "ID=debian\nNAME=\"Debian GNU/Linux\"\nPRETTY_NAME='It''s \"x\"'\nVERSION_ID=\"1\"'2'3\n",
            expect![[r#"
                OsRelease {
                    id: Some(
                        "debian",
                    ),
                    version_id: Some(
                        "123",
                    ),
                    pretty_name: Some(
                        "Its \"x\"",
                    ),
                    name: Some(
                        "Debian GNU/Linux",
                    ),
                    version_codename: None,
                }
            "#]],
        );
    }

    #[test]
    fn double_quote_escapes() {
        check(
            r#"PRETTY_NAME="a \"q\" \\ \$HOME \`cmd\` \n \x"
NAME=un\ quoted\"
ID='no \escapes in single'
"#,
            expect![[r#"
                OsRelease {
                    id: Some(
                        "no \\escapes in single",
                    ),
                    version_id: None,
                    pretty_name: Some(
                        "a \"q\" \\ $HOME `cmd` \\n \\x",
                    ),
                    name: Some(
                        "un quoted\"",
                    ),
                    version_codename: None,
                }
            "#]],
        );
    }

    #[test]
    fn comments_blank_lines_and_indentation() {
        check(
            "# comment\n\n   \n  ID=alpine   # trailing comment\n#ID=nope\n\tVERSION_ID=3.20\n",
            expect![[r#"
                OsRelease {
                    id: Some(
                        "alpine",
                    ),
                    version_id: Some(
                        "3.20",
                    ),
                    pretty_name: None,
                    name: None,
                    version_codename: None,
                }
            "#]],
        );
    }

    #[test]
    fn malformed_lines_are_ignored() {
        check(
            concat!(
                "ID=\"unterminated\n",
                "NAME=two words\n",
                "VERSION_ID=trailing\\\n",
                "PRETTY_NAME = spaced\n",
                "1ID=bad-key\n",
                "no equals sign\n",
                "VERSION_CODENAME=ok\n",
                "ID=nul\0byte\n",
            ),
            expect![[r#"
                OsRelease {
                    id: None,
                    version_id: None,
                    pretty_name: None,
                    name: None,
                    version_codename: Some(
                        "ok",
                    ),
                }
            "#]],
        );
    }

    #[test]
    fn last_assignment_wins_and_empty_is_none() {
        check(
            "ID=first\nID=second\nNAME=x\nNAME=\nVERSION_ID=\"\"\r\nVERSION_CODENAME=crlf\r\n",
            expect![[r#"
                OsRelease {
                    id: Some(
                        "second",
                    ),
                    version_id: None,
                    pretty_name: None,
                    name: None,
                    version_codename: Some(
                        "crlf",
                    ),
                }
            "#]],
        );
    }
}
