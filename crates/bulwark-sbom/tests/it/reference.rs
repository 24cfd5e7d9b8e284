//! The reference validators, `cyclonedx-python-lib` (strict JSON schema
//! validation) and `spdx-tools` (parse and validate), over our fixtures
//! and our writers' output. When a reference is missing a test says so
//! and returns, or fails when `CI` is set; the install commands are in
//! `support`.

use std::path::{Path, PathBuf};

use crate::support::{CYCLONEDX, SPDX, Verdict, file_name, json_files, run_reference};
use crate::write::{SERIAL, WHEN, sample};

fn is_cyclonedx(path: &Path) -> bool {
    file_name(path).contains("cdx")
}

/// Runs the matching reference on each file; `None` when one is missing
/// outside CI.
fn verdicts(files: Vec<PathBuf>) -> Option<Vec<Verdict>> {
    let (cdx, spdx): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|p| is_cyclonedx(p));
    let mut out = Vec::new();
    if !cdx.is_empty() {
        out.extend(run_reference(CYCLONEDX, &cdx)?);
    }
    if !spdx.is_empty() {
        out.extend(run_reference(SPDX, &spdx)?);
    }
    Some(out)
}

/// Every `valid/` fixture passes the reference; every `laxer/` one fails
/// it (we accept more, see the README there).
#[test]
fn reference_agrees_on_readable_fixtures() {
    let Some(valid) = verdicts(json_files("sbom/valid")) else {
        return;
    };
    let Some(laxer) = verdicts(json_files("sbom/laxer")) else {
        return;
    };
    for v in valid {
        assert_eq!(v.problem, None, "reference rejects {}", v.path.display());
    }
    for v in laxer {
        if file_name(&v.path).contains("duplicate-member") {
            // Python's json keeps the last member too: same document.
            assert_eq!(v.problem, None, "{}", v.path.display());
        } else {
            assert!(
                v.problem.is_some(),
                "reference accepts laxer fixture {}",
                v.path.display()
            );
        }
    }
}

/// `invalid/both-*` fail the reference too; `invalid/stricter-*` pass it
/// (we reject more, see the README). The others (not JSON, other spec
/// versions) are outside what the references judge.
#[test]
fn reference_agrees_on_invalid_fixtures() {
    let files: Vec<PathBuf> = json_files("sbom/invalid")
        .into_iter()
        .filter(|p| {
            let name = file_name(p);
            name.starts_with("both-") || name.starts_with("stricter-")
        })
        .collect();
    let Some(verdicts) = verdicts(files) else {
        return;
    };
    for v in verdicts {
        let name = file_name(&v.path);
        if name.starts_with("both-") {
            assert!(v.problem.is_some(), "reference accepts {name}");
        } else {
            assert_eq!(v.problem, None, "reference rejects {name}; rename it both-");
        }
    }
}

/// What the writers produce validates against the official schemas.
#[test]
fn writer_output_passes_the_reference() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    let mut write = |name: &str, doc: serde_json::Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(&doc).expect("serialise")).expect("write");
        files.push(path);
    };
    let full = sample();
    let mut empty = sample();
    empty.subject.clear();
    empty.subject_version = None;
    empty.components.clear();
    for (label, sbom) in [("full", &full), ("empty", &empty)] {
        write(
            &format!("out-{label}-cdx.json"),
            sbom.to_cyclonedx_1_6(SERIAL, WHEN).expect("writes"),
        );
        write(
            &format!("out-{label}-spdx.json"),
            sbom.to_spdx_2_3(SERIAL, WHEN).expect("writes"),
        );
    }
    // And every valid fixture, read and written again.
    for path in json_files("sbom/valid") {
        let sbom = crate::support::read_fixture(&path).expect("valid fixture reads");
        let stem = file_name(&path).replace(".json", "").replace("cdx", "c");
        write(
            &format!("rewritten-{stem}-cdx.json"),
            sbom.to_cyclonedx_1_6(SERIAL, WHEN).expect("writes"),
        );
        write(
            &format!("rewritten-{stem}-spdx.json"),
            sbom.to_spdx_2_3(SERIAL, WHEN).expect("writes"),
        );
    }
    let Some(verdicts) = verdicts(files) else {
        return;
    };
    for v in verdicts {
        assert_eq!(v.problem, None, "reference rejects {}", file_name(&v.path));
    }
}
