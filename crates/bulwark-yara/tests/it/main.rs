//! Integration tests for `bulwark-yara`, driven by `tests/fixtures/`:
//!
//! - `rules/*.yar` + `files/*` → `expected-hits.txt` (refresh with
//!   `UPDATE_EXPECT=1`), and the same (rule, file) pairs as Debian's `yara`;
//! - `bad-rules/<case>/` → a compile error naming file and line;
//! - `slow-rules/` → a per-file timeout that does not stop the next file.

mod differential;
mod hits;
mod hostile;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bulwark_yara::{Hit, Rules, scan_paths};

pub(crate) fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Regular files directly in `dir`, sorted.
pub(crate) fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

/// Compiles `rules/` and scans every file of `files/` on two threads.
pub(crate) fn scan_fixture_files() -> Vec<(String, Hit)> {
    let rules = Rules::compile_dir(&fixture("rules")).expect("fixture rules compile");
    let files = files_in(&fixture("files"));
    let threads = NonZeroUsize::new(2).expect("non-zero");
    let mut out = Vec::new();
    for scan in scan_paths(&rules, &files, threads, Duration::from_secs(10)) {
        let name = file_name(&scan.path);
        let hits = scan.result.unwrap_or_else(|e| panic!("{name}: {e}"));
        out.extend(hits.into_iter().map(|hit| (name.clone(), hit)));
    }
    out.sort_by(|a, b| (&a.0, &a.1.namespace, &a.1.rule).cmp(&(&b.0, &b.1.namespace, &b.1.rule)));
    out
}
