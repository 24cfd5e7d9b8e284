//! dpkg and opkg status files: deb822-style stanzas.
//!
//! A stanza is a run of non-blank lines; stanzas are separated by lines that
//! are empty or contain only spaces/tabs. Each line is either `Name: value`
//! or a continuation line (starting with a space or tab) that extends the
//! previous field. Only `Package`, `Version`, `Architecture` and `Status` are
//! read; field names are matched ASCII-case-insensitively.
//!
//! Both parsers make one pass over the input and keep only borrowed slices
//! of the four interesting fields per stanza, so time and extra memory are
//! linear in the input size.

use crate::collect::{Collector, Flow};
use crate::model::{Diagnostic, MAX_FIELD_LEN, Package, PackageSource};
use crate::text::{excerpt, is_blank, lines, trim_value};

/// Parses a dpkg status database (`/var/lib/dpkg/status`).
///
/// Returns the packages whose `Status` state (third word) is `installed`,
/// sorted by (name, arch, version) and deduplicated, plus diagnostics for
/// stanzas that were skipped or partly ignored. Never panics.
///
/// Rules, in the order they are applied to each stanza (each "skip" also
/// produces a [`Diagnostic`] at the stanza's first line):
///
/// 1. a field longer than [`MAX_FIELD_LEN`](crate::MAX_FIELD_LEN): skip;
/// 2. lines that are neither `Name: value` nor a continuation line are
///    ignored (one diagnostic per stanza, the stanza is still used);
/// 3. no (or empty) `Package`: skip;
/// 4. a repeated `Package`/`Version`/`Architecture`/`Status` field: the
///    first occurrence wins (one diagnostic, the stanza is still used);
/// 5. no `Status`, or fewer than three words in it: skip;
/// 6. state other than `installed` (`config-files`, `half-installed`,
///    `not-installed`, `unpacked`, `triggers-pending`, ...): skipped
///    silently, without requiring a `Version`;
/// 7. no (or empty) `Version`: skip;
/// 8. name, version or architecture containing whitespace or control
///    characters (e.g. NUL): skip.
///
/// An empty `Architecture` is treated as absent. Continuation lines of the
/// four fields above are ignored (they are single-line fields). Stops after
/// [`MAX_PACKAGES`](crate::MAX_PACKAGES) packages.
pub fn parse_dpkg_status(text: &str) -> (Vec<Package>, Vec<Diagnostic>) {
    parse(text, PackageSource::Dpkg)
}

/// Parses an opkg status database (OpenWrt `/usr/lib/opkg/status`).
///
/// Same format and rules as [`parse_dpkg_status`]; opkg's `Status` looks
/// like `install user installed` or `install ok installed`, and only state
/// `installed` is kept. A stanza without `Version` is reported and skipped.
pub fn parse_opkg_status(text: &str) -> (Vec<Package>, Vec<Diagnostic>) {
    parse(text, PackageSource::Opkg)
}

/// The fields this module extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Package,
    Version,
    Architecture,
    Status,
}

impl Field {
    const ALL: [Self; 4] = [
        Self::Package,
        Self::Version,
        Self::Architecture,
        Self::Status,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Package => "Package",
            Self::Version => "Version",
            Self::Architecture => "Architecture",
            Self::Status => "Status",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }
}

/// What is known about the stanza being read.
#[derive(Debug, Default)]
struct Stanza<'a> {
    /// 1-based line of the first line.
    start: usize,
    /// First value of each [`Field`], indexed by `Field as usize`.
    values: [Option<&'a str>; 4],
    /// Which fields occurred more than once.
    duplicated: [bool; 4],
    /// Name and accumulated byte size of the field being read, if any.
    current: Option<(&'a str, usize)>,
    /// Name of the first field that exceeded [`MAX_FIELD_LEN`].
    oversized: Option<&'a str>,
    /// Number of malformed lines and the line number of the first one.
    malformed: usize,
    first_malformed: usize,
}

impl<'a> Stanza<'a> {
    fn new(start: usize) -> Self {
        Self {
            start,
            ..Self::default()
        }
    }

    fn value(&self, field: Field) -> Option<&'a str> {
        self.values[field as usize]
    }

    fn malformed_line(&mut self, line_no: usize) {
        if self.malformed == 0 {
            self.first_malformed = line_no;
        }
        self.malformed += 1;
        // A continuation after a malformed line has nothing to continue.
        self.current = None;
    }

    fn feed(&mut self, line_no: usize, line: &'a str) {
        if line.starts_with([' ', '\t']) {
            match &mut self.current {
                Some((name, size)) => {
                    *size = size.saturating_add(line.len() + 1);
                    if *size > MAX_FIELD_LEN && self.oversized.is_none() {
                        self.oversized = Some(*name);
                    }
                }
                None => self.malformed_line(line_no),
            }
            return;
        }
        let Some((name, value)) = line.split_once(':') else {
            self.malformed_line(line_no);
            return;
        };
        let name = trim_value(name);
        if name.is_empty() {
            self.malformed_line(line_no);
            return;
        }
        self.current = Some((name, line.len()));
        if line.len() > MAX_FIELD_LEN && self.oversized.is_none() {
            self.oversized = Some(name);
        }
        if let Some(field) = Field::from_name(name) {
            let slot = &mut self.values[field as usize];
            if slot.is_none() {
                *slot = Some(trim_value(value));
            } else {
                self.duplicated[field as usize] = true;
            }
        }
    }

    /// Turns the finished stanza into a package or diagnostics.
    fn finish(self, out: &mut Collector) -> Flow {
        let line = self.start;
        if let Some(name) = self.oversized {
            out.diag(line, || {
                format!(
                    "field \"{}\" is longer than {MAX_FIELD_LEN} bytes; stanza skipped",
                    excerpt(name)
                )
            });
            return Flow::Continue;
        }
        if self.malformed > 0 {
            let (count, first) = (self.malformed, self.first_malformed);
            out.diag(line, || {
                format!("ignored {count} malformed line(s), the first at line {first}")
            });
        }
        let Some(package) = self.value(Field::Package).filter(|p| !p.is_empty()) else {
            out.diag(line, || "missing Package field; stanza skipped".to_owned());
            return Flow::Continue;
        };
        let duplicated: Vec<&str> = Field::ALL
            .into_iter()
            .filter(|f| self.duplicated[*f as usize])
            .map(Field::name)
            .collect();
        if !duplicated.is_empty() {
            out.diag(line, || {
                format!(
                    "package \"{}\": repeated field(s) {}; first value used",
                    excerpt(package),
                    duplicated.join(", ")
                )
            });
        }
        let Some(status) = self.value(Field::Status) else {
            out.diag(line, || {
                format!(
                    "package \"{}\": missing Status field; stanza skipped",
                    excerpt(package)
                )
            });
            return Flow::Continue;
        };
        let Some(state) = status.split_whitespace().nth(2) else {
            out.diag(line, || {
                format!(
                    "package \"{}\": malformed Status \"{}\"; stanza skipped",
                    excerpt(package),
                    excerpt(status)
                )
            });
            return Flow::Continue;
        };
        if state != "installed" {
            return Flow::Continue;
        }
        let Some(version) = self.value(Field::Version).filter(|v| !v.is_empty()) else {
            out.diag(line, || {
                format!(
                    "package \"{}\": missing Version field; stanza skipped",
                    excerpt(package)
                )
            });
            return Flow::Continue;
        };
        let arch = self.value(Field::Architecture).filter(|a| !a.is_empty());
        out.package(line, package, version, arch)
    }
}

fn parse(text: &str, source: PackageSource) -> (Vec<Package>, Vec<Diagnostic>) {
    let mut out = Collector::new(source);
    let mut stanza: Option<Stanza<'_>> = None;
    for (line_no, line) in lines(text) {
        if is_blank(line) {
            if let Some(done) = stanza.take()
                && done.finish(&mut out) == Flow::Stop
            {
                return out.finish();
            }
            continue;
        }
        stanza
            .get_or_insert_with(|| Stanza::new(line_no))
            .feed(line_no, line);
    }
    if let Some(done) = stanza {
        let _ = done.finish(&mut out);
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MAX_PACKAGES;

    fn installed(name: &str, version: &str) -> String {
        format!("Package: {name}\nStatus: install ok installed\nVersion: {version}\n\n")
    }

    #[test]
    fn field_names_are_case_insensitive() {
        let (pkgs, diags) = parse_dpkg_status(
            "package: a\nSTATUS: install ok installed\nvErSiOn: 1\narchitecture: all\n",
        );
        assert_eq!(diags, vec![]);
        assert_eq!(pkgs.len(), 1);
        assert_eq!(pkgs[0].arch.as_deref(), Some("all"));
    }

    #[test]
    fn package_limit_stops_parsing() {
        let mut text = String::new();
        for i in 0..=MAX_PACKAGES {
            text.push_str(&installed(&format!("p{i}"), "1"));
        }
        let (pkgs, diags) = parse_dpkg_status(&text);
        assert_eq!(pkgs.len(), MAX_PACKAGES);
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].line, MAX_PACKAGES * 4 + 1);
        assert!(diags[0].message.contains("package limit"));
    }

    #[test]
    fn exactly_max_packages_is_fine() {
        let text: String = (0..MAX_PACKAGES)
            .map(|i| installed(&format!("p{i}"), "1"))
            .collect();
        let (pkgs, diags) = parse_opkg_status(&text);
        assert_eq!(pkgs.len(), MAX_PACKAGES);
        assert_eq!(diags, vec![]);
    }

    #[test]
    fn megabytes_of_continuation_lines_are_linear() {
        // 8 MiB of continuation lines after one field: a quadratic
        // implementation would not finish in reasonable time.
        let mut text = installed("before", "1");
        text.push_str("Package: big\nStatus: install ok installed\nVersion: 1\nDescription: x\n");
        for _ in 0..(8 * 1024 * 1024 / 4) {
            text.push_str(" ab\n");
        }
        text.push('\n');
        text.push_str(&installed("after", "2"));
        let (pkgs, diags) = parse_dpkg_status(&text);
        let names: Vec<_> = pkgs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["after", "before"]);
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.contains("\"Description\" is longer than"));
    }

    #[test]
    fn megabytes_of_malformed_lines_give_bounded_diagnostics() {
        let text = "no colon here\n".repeat(1 << 19);
        let (pkgs, diags) = parse_dpkg_status(&text);
        assert_eq!(pkgs, vec![]);
        assert_eq!(diags.len(), 2, "{diags:?}");
    }

    #[test]
    fn many_bad_stanzas_cap_diagnostics() {
        let text = "Foo: bar\n\n".repeat(5_000);
        let (_, diags) = parse_dpkg_status(&text);
        assert_eq!(diags.len(), crate::model::MAX_DIAGNOSTICS + 1);
        let last = diags.last().map(|d| d.to_string());
        assert_eq!(
            last.as_deref(),
            Some(
                "line 2001: 4000 further diagnostics suppressed (limit 1000), the first at this line"
            )
        );
    }

    #[test]
    fn giant_single_line_is_oversized() {
        let text = format!(
            "Package: a\nStatus: install ok installed\nVersion: {}\n",
            "1".repeat(MAX_FIELD_LEN)
        );
        let (pkgs, diags) = parse_dpkg_status(&text);
        assert_eq!(pkgs, vec![]);
        assert_eq!(diags.len(), 1);
    }
}
