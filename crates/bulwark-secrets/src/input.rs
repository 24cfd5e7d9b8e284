//! Preparing one file for the detectors: size cap, text/binary decision, the
//! "strings view" of binaries, and offset → line mapping.

use crate::finding::{Excerpt, Fingerprint, SecretFinding, SecretKind, Severity};

/// Only the first this-many bytes of a file are scanned.
pub const MAX_SCAN_BYTES: usize = 64 * 1024 * 1024;

/// At most this many findings are reported per file; a hostile file full of
/// token-shaped strings cannot blow up the report.
pub const MAX_FINDINGS_PER_FILE: usize = 1000;

/// How many leading bytes decide whether a file is text.
const SNIFF_BYTES: usize = 8192;

/// A file as the detectors see it.
pub(crate) struct Input<'a> {
    pub(crate) path: &'a str,
    /// The file name (last path component), for path-selected detectors.
    pub(crate) file_name: &'a str,
    /// Text files: the data itself. Binaries: the data with every byte that is
    /// not printable ASCII or whitespace replaced by `\n`, so printable runs
    /// ("strings") keep their offsets but cannot join across binary noise.
    pub(crate) view: std::borrow::Cow<'a, [u8]>,
    pub(crate) is_text: bool,
    newlines: Vec<usize>,
    findings: Vec<SecretFinding>,
}

impl<'a> Input<'a> {
    pub(crate) fn new(path: &'a str, data: &'a [u8]) -> Input<'a> {
        let data = &data[..data.len().min(MAX_SCAN_BYTES)];
        let is_text = looks_like_text(&data[..data.len().min(SNIFF_BYTES)]);
        let view = if is_text {
            std::borrow::Cow::Borrowed(data)
        } else {
            std::borrow::Cow::Owned(
                data.iter()
                    .map(|&b| if is_texty(b) { b } else { b'\n' })
                    .collect(),
            )
        };
        let newlines = if is_text {
            data.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i)
                .collect()
        } else {
            Vec::new()
        };
        let file_name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        Input {
            path,
            file_name,
            view,
            is_text,
            newlines,
            findings: Vec::new(),
        }
    }

    /// Whether the file lives under an `etc`-like directory (`etc`,
    /// `etc_ro`, `etc.defaults`, …), where init scripts and daemon
    /// configuration are.
    pub(crate) fn under_etc(&self) -> bool {
        self.path
            .split(['/', '\\'])
            .rev()
            .skip(1)
            .any(|c| c == "etc" || c.starts_with("etc_") || c.starts_with("etc."))
    }

    /// 1-based line of `offset`, for text files.
    fn line_of(&self, offset: usize) -> Option<usize> {
        self.is_text
            .then(|| self.newlines.partition_point(|&nl| nl < offset) + 1)
    }

    pub(crate) fn report(&mut self, finding: Found) {
        if self.findings.len() >= MAX_FINDINGS_PER_FILE {
            return;
        }
        let line = self.line_of(finding.offset);
        self.findings.push(SecretFinding {
            kind: finding.kind,
            path: self.path.to_owned(),
            line,
            offset: finding.offset,
            description: finding.description,
            severity: finding.severity,
            excerpt: finding.excerpt,
            fingerprint: finding.fingerprint,
        });
    }

    pub(crate) fn has_finding_at(&self, kind: SecretKind, offset: usize) -> bool {
        self.findings
            .iter()
            .any(|f| f.kind == kind && f.offset == offset)
    }

    pub(crate) fn into_findings(mut self) -> Vec<SecretFinding> {
        self.findings
            .sort_by(|a, b| a.offset.cmp(&b.offset).then(a.kind.cmp(&b.kind)));
        self.findings
            .dedup_by(|a, b| a.offset == b.offset && a.kind == b.kind);
        self.findings
    }
}

/// A finding before the path and line are attached.
pub(crate) struct Found {
    pub(crate) kind: SecretKind,
    pub(crate) offset: usize,
    pub(crate) severity: Severity,
    pub(crate) description: String,
    pub(crate) excerpt: Excerpt,
    pub(crate) fingerprint: Fingerprint,
}

fn is_texty(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || matches!(b, b'\n' | b'\r' | b'\t')
}

/// Text if there is no NUL and at least 90% of bytes are ASCII text or
/// UTF-8 continuation/lead bytes (so non-English comments stay text).
fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    let texty = head.iter().filter(|&&b| is_texty(b) || b >= 0x80).count();
    texty * 10 >= head.len() * 9
}

/// Iterates over `(line_start_offset, line_without_newline)`.
pub(crate) fn lines(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut start = 0;
    data.split(|&b| b == b'\n').map(move |line| {
        let at = start;
        start += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        (at, line)
    })
}

/// `line` with leading and trailing ASCII whitespace removed.
pub(crate) fn trim(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based_and_binaries_have_none() {
        let input = Input::new("a.txt", b"one\ntwo\nthree");
        assert_eq!(input.line_of(0), Some(1));
        assert_eq!(input.line_of(4), Some(2));
        assert_eq!(input.line_of(8), Some(3));
        let input = Input::new("a.bin", b"\x7fELF\0\0key");
        assert!(!input.is_text);
        assert_eq!(input.line_of(6), None);
        assert_eq!(&*input.view, b"\nELF\n\nkey");
    }

    #[test]
    fn only_the_first_max_scan_bytes_are_seen() {
        let data = vec![b'a'; MAX_SCAN_BYTES + 10];
        let input = Input::new("big.txt", &data);
        assert_eq!(input.view.len(), MAX_SCAN_BYTES);
    }

    #[test]
    fn etc_detection() {
        assert!(Input::new("rootfs/etc/init.d/rcS", b"").under_etc());
        assert!(Input::new("/etc_ro/inittab", b"").under_etc());
        assert!(!Input::new("etc", b"").under_etc());
        assert!(!Input::new("usr/share/doc/etcetera", b"").under_etc());
    }
}
