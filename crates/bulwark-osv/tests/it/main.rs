//! Integration tests for `bulwark-osv`: one binary, data-driven over
//! `tests/test_data/` plus the shared real advisory archives.
//!
//! Refresh snapshots with `UPDATE_EXPECT=1`.

mod import;
mod match_cases;
mod parse_cases;
mod range_model;
mod real_data;
mod zip;

use std::path::PathBuf;

/// `tests/test_data/<sub>`.
pub(crate) fn test_data(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/test_data")
        .join(sub)
}

/// The advisory archives: `$BULWARK_ADVISORY_DATA`, else
/// `<workspace>/data/advisories` when it exists, else
/// `/work/shared/data/advisories`.
pub(crate) fn advisory_data() -> PathBuf {
    if let Some(dir) = std::env::var_os("BULWARK_ADVISORY_DATA") {
        return PathBuf::from(dir);
    }
    let vendored = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/advisories");
    if vendored.is_dir() {
        return vendored;
    }
    PathBuf::from("/work/shared/data/advisories")
}

/// Sorted file names in `dir`.
pub(crate) fn sorted_entries(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}
