//! Alpine's apk installed database (`/lib/apk/db/installed`).
//!
//! Records are runs of non-blank lines separated by blank lines; each line is
//! `X:value` with a single-character key. Only `P:` (name), `V:` (version)
//! and `A:` (architecture) are read. Keys are case-sensitive: apk uses both
//! `a:` (file ACL) and `A:` (architecture), `p:` (provides) and `P:` (name).

use crate::collect::{Collector, Flow};
use crate::model::{Diagnostic, MAX_FIELD_LEN, Package, PackageSource};
use crate::text::{excerpt, is_blank, lines, trim_value};

/// Parses an apk installed database (`/lib/apk/db/installed`).
///
/// Every record describes an installed package. Returns the packages sorted
/// by (name, arch, version) and deduplicated, plus diagnostics. Never panics;
/// one linear pass over the input.
///
/// Per record (each "skip" produces a [`Diagnostic`] at the record's first
/// line):
///
/// * a line longer than [`MAX_FIELD_LEN`](crate::MAX_FIELD_LEN): skip;
/// * lines not of the form `X:value` are ignored (one diagnostic per record,
///   the record is still used);
/// * a repeated `P:`, `V:` or `A:`: the first occurrence wins (one diagnostic);
/// * no (or empty) `P:` or `V:`: skip;
/// * name, version or architecture containing whitespace or control
///   characters: skip.
///
/// Values are trimmed of surrounding spaces and tabs; an empty `A:` counts as
/// absent. Stops after [`MAX_PACKAGES`](crate::MAX_PACKAGES) packages.
pub fn parse_apk_installed(text: &str) -> (Vec<Package>, Vec<Diagnostic>) {
    let mut out = Collector::new(PackageSource::Apk);
    let mut record: Option<Record<'_>> = None;
    for (line_no, line) in lines(text) {
        if is_blank(line) {
            if let Some(done) = record.take()
                && done.finish(&mut out) == Flow::Stop
            {
                return out.finish();
            }
            continue;
        }
        record
            .get_or_insert_with(|| Record::new(line_no))
            .feed(line_no, line);
    }
    if let Some(done) = record {
        let _ = done.finish(&mut out);
    }
    out.finish()
}

/// Keys read by this module, in slot order.
const KEYS: [u8; 3] = [b'P', b'V', b'A'];

#[derive(Debug, Default)]
struct Record<'a> {
    start: usize,
    /// First values of `P:`, `V:`, `A:`.
    values: [Option<&'a str>; 3],
    duplicated: [bool; 3],
    /// Key of the first line longer than [`MAX_FIELD_LEN`].
    oversized: Option<&'a str>,
    malformed: usize,
    first_malformed: usize,
}

impl<'a> Record<'a> {
    fn new(start: usize) -> Self {
        Self {
            start,
            ..Self::default()
        }
    }

    fn feed(&mut self, line_no: usize, line: &'a str) {
        let bytes = line.as_bytes();
        let well_formed = bytes.len() >= 2 && bytes[0].is_ascii_alphanumeric() && bytes[1] == b':';
        if !well_formed {
            if self.malformed == 0 {
                self.first_malformed = line_no;
            }
            self.malformed += 1;
            return;
        }
        // Both checked bytes are ASCII, so these are char boundaries.
        let (key, value) = (&line[..1], &line[2..]);
        if line.len() > MAX_FIELD_LEN && self.oversized.is_none() {
            self.oversized = Some(key);
        }
        if let Some(slot) = KEYS.iter().position(|k| *k == bytes[0]) {
            if self.values[slot].is_none() {
                self.values[slot] = Some(trim_value(value));
            } else {
                self.duplicated[slot] = true;
            }
        }
    }

    fn finish(self, out: &mut Collector) -> Flow {
        let line = self.start;
        if let Some(key) = self.oversized {
            out.diag(line, || {
                format!("\"{key}:\" line is longer than {MAX_FIELD_LEN} bytes; record skipped")
            });
            return Flow::Continue;
        }
        if self.malformed > 0 {
            let (count, first) = (self.malformed, self.first_malformed);
            out.diag(line, || {
                format!("ignored {count} malformed line(s), the first at line {first}")
            });
        }
        if self.duplicated.iter().any(|d| *d) {
            let keys: Vec<String> = KEYS
                .iter()
                .zip(self.duplicated)
                .filter(|(_, dup)| *dup)
                .map(|(k, _)| format!("{}:", char::from(*k)))
                .collect();
            out.diag(line, || {
                format!("repeated field(s) {}; first value used", keys.join(", "))
            });
        }
        let [name, version, arch] = self.values.map(|v| v.filter(|v| !v.is_empty()));
        let Some(name) = name else {
            out.diag(line, || {
                "missing P: (package name); record skipped".to_owned()
            });
            return Flow::Continue;
        };
        let Some(version) = version else {
            out.diag(line, || {
                format!(
                    "package \"{}\": missing V: (version); record skipped",
                    excerpt(name)
                )
            });
            return Flow::Continue;
        };
        out.package(line, name, version, arch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_sensitive() {
        let (pkgs, diags) = parse_apk_installed("p:so:libc.musl\nP:musl\na:0:0:755\nV:1.2\n");
        assert_eq!(diags, vec![]);
        assert_eq!(pkgs.len(), 1);
        assert_eq!(pkgs[0].name, "musl");
        assert_eq!(pkgs[0].arch, None);
    }

    #[test]
    fn multibyte_first_char_is_malformed_not_a_panic() {
        let (pkgs, diags) = parse_apk_installed("é:x\nP:a\nV:1\n\u{1F600}\n");
        assert_eq!(pkgs.len(), 1);
        assert_eq!(diags.len(), 1);
        assert_eq!(
            diags[0].message,
            "ignored 2 malformed line(s), the first at line 1"
        );
    }

    #[test]
    fn huge_input_is_linear() {
        let text = format!("P:a\nV:1\n{}\n\nP:b\nV:2\n", "F:x\n".repeat(2 << 20));
        let (pkgs, diags) = parse_apk_installed(&text);
        assert_eq!(pkgs.len(), 2);
        assert_eq!(diags, vec![]);
    }
}
