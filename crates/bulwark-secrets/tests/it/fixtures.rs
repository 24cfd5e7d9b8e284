//! Data-driven fixture cases.
//!
//! `tests/fixtures/<case>/` is laid out like a root filesystem. Every file
//! except `expected.json` is scanned with its path relative to the case
//! folder, and the findings, as `{kind, path, line, severity}` (plus
//! `offset` for binaries, which have no lines), must equal
//! `expected.json`. Run with `UPDATE_EXPECT=1` to rewrite the expectations
//! after a deliberate change, then review the diff.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Expected {
    path: String,
    line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<usize>,
    kind: String,
    severity: String,
}

pub(crate) fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every regular file under `dir`, as (relative path with `/`, full path),
/// sorted.
pub(crate) fn files_under(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read fixture dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir");
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path));
            }
        }
    }
    out.sort();
    out
}

pub(crate) fn scan_case(case: &Path) -> Vec<bulwark_secrets::SecretFinding> {
    files_under(case)
        .into_iter()
        .filter(|(rel, _)| rel != "expected.json")
        .flat_map(|(rel, full)| {
            let data = std::fs::read(&full).expect("read fixture");
            bulwark_secrets::scan(&rel, &data)
        })
        .collect()
}

#[track_caller]
fn check_case(name: &str) {
    let case = fixtures_dir().join(name);
    let mut actual: Vec<Expected> = scan_case(&case)
        .into_iter()
        .map(|f| Expected {
            path: f.path,
            line: f.line,
            offset: f.line.is_none().then_some(f.offset),
            kind: f.kind.code().to_owned(),
            severity: f.severity.code().to_owned(),
        })
        .collect();
    actual.sort();
    let expected_path = case.join("expected.json");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        let json = serde_json::to_string_pretty(&actual).expect("serialize") + "\n";
        std::fs::write(&expected_path, json).expect("write expected.json");
        return;
    }
    let text = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_EXPECT=1)",
            expected_path.display()
        )
    });
    let mut expected: Vec<Expected> = serde_json::from_str(&text).expect("parse expected.json");
    expected.sort();
    assert_eq!(
        actual, expected,
        "findings of fixture case {name} differ from expected.json"
    );
}

#[test]
fn every_case_folder_has_a_test() {
    let mut cases: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert_eq!(
        cases,
        [
            "accounts",
            "hostile",
            "keys",
            "negatives",
            "services",
            "tokens"
        ]
    );
}

#[test]
fn accounts() {
    check_case("accounts");
}

#[test]
fn hostile() {
    check_case("hostile");
}

#[test]
fn keys() {
    check_case("keys");
}

#[test]
fn negatives() {
    check_case("negatives");
}

#[test]
fn services() {
    check_case("services");
}

#[test]
fn tokens() {
    check_case("tokens");
}
