//! Small text helpers shared by the parsers: line splitting (LF or CRLF),
//! blank-line detection, value trimming and safe excerpts for diagnostics.

/// Longest excerpt of untrusted input quoted in a diagnostic message.
const EXCERPT_CHARS: usize = 40;

/// Splits `text` into `(1-based line number, line)` pairs.
///
/// Lines end at `\n`; one trailing `\r` is removed so CRLF files parse like
/// LF files. Runs in time linear in `text.len()`.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n').enumerate().map(|(index, line)| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        (index + 1, line)
    })
}

/// True for an empty line or one made only of spaces and tabs.
pub(crate) fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| b == b' ' || b == b'\t')
}

/// Removes leading and trailing spaces and tabs (but not other characters,
/// so stray control characters stay visible to validation).
pub(crate) fn trim_value(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

/// A short, escaped rendering of untrusted text for use in messages: at most
/// [`EXCERPT_CHARS`] characters, control characters escaped, `...` appended
/// when truncated.
pub(crate) fn excerpt(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    for c in chars.by_ref().take(EXCERPT_CHARS) {
        out.extend(c.escape_debug());
    }
    if chars.next().is_some() {
        out.push_str("...");
    }
    out
}

/// Checks a package name, version or architecture: it must be non-empty and
/// contain no whitespace, no control characters (NUL included) and no
/// U+FFFD replacement character (the trace of invalid UTF-8 decoded lossily).
/// On failure returns a short reason.
pub(crate) fn check_token(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("is empty");
    }
    if value.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    if value.chars().any(char::is_whitespace) {
        return Err("contains whitespace");
    }
    if value.contains(char::REPLACEMENT_CHARACTER) {
        return Err("contains U+FFFD (invalid UTF-8 in the input?)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_strip_one_cr() {
        let got: Vec<_> = lines("a\r\nb\n\r\r\nc").collect();
        assert_eq!(got, vec![(1, "a"), (2, "b"), (3, "\r"), (4, "c")]);
    }

    #[test]
    fn excerpt_escapes_and_truncates() {
        assert_eq!(excerpt("a\0b"), "a\\0b");
        let long = "x".repeat(100);
        assert_eq!(excerpt(&long), format!("{}...", "x".repeat(40)));
    }

    #[test]
    fn check_token_rejects_bad_values() {
        assert_eq!(check_token("1.2-3"), Ok(()));
        assert_eq!(check_token("ünïcode"), Ok(()));
        assert_eq!(check_token(""), Err("is empty"));
        assert_eq!(check_token("a\0"), Err("contains control characters"));
        assert_eq!(check_token("a b"), Err("contains whitespace"));
        assert!(check_token("a\u{FFFD}").is_err());
    }
}
