//! Integration tests, one binary: data-driven engine cases
//! (`tests/fixtures/cases/*.toml`), profiles good and hostile
//! (`tests/fixtures/profiles/`), and Zeek replay
//! (`tests/fixtures/zeek/`). Set `UPDATE_EXPECT=1` to rewrite the replay
//! snapshots.

mod cases;
mod engine;
mod profiles;
mod zeek;

use std::path::{Path, PathBuf};

/// The files in `tests/fixtures/<dir>` ending in one of `exts`, sorted.
pub(crate) fn fixtures(dir: &str, exts: &[&str]) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| exts.iter().any(|e| x == *e)))
        .collect();
    files.sort();
    files
}

pub(crate) fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}
