//! Differential test against the C YARA CLI (Debian package `yara`, 4.2.x):
//! the same rules over the same files must give the same (rule, file) pairs.
//! Without `yara` the test says so and returns, or fails when `CI` is set
//! (`bulwark_testpg::require_tool`).
//!
//! No fixture rule currently uses a feature where yara-x and YARA 4.x are
//! documented to differ, so nothing is excluded. If one is added, exclude
//! the pair here with a comment linking yara-x's "differences" page.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::{file_name, files_in, fixture, scan_fixture_files};

/// Runs `yara -e -w ns:rules.yar… files/` (namespace-qualified rule names,
/// warnings off) and returns its (namespace:rule, file name) pairs.
fn yara_cli_pairs(yara: &Path) -> BTreeSet<(String, String)> {
    let mut command = Command::new(yara);
    command.args(["-e", "-w"]);
    for rule_file in files_in(&fixture("rules")) {
        let namespace = rule_file
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        command.arg(format!("{namespace}:{}", rule_file.display()));
    }
    command.arg(fixture("files"));
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", yara.display()));
    assert!(
        output.status.success(),
        "yara failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8 output")
        .lines()
        .map(|line| {
            let (rule, path) = line.split_once(' ').expect("`rule path` line");
            (rule.to_owned(), file_name(std::path::Path::new(path)))
        })
        .collect()
}

#[test]
fn same_rule_file_pairs_as_the_c_yara_cli() {
    let Some(yara) = bulwark_testpg::require_tool("yara", "apt-get install -y yara") else {
        return;
    };
    let ours: BTreeSet<(String, String)> = scan_fixture_files()
        .into_iter()
        .map(|(file, hit)| (format!("{}:{}", hit.namespace, hit.rule), file))
        .collect();
    let theirs = yara_cli_pairs(&yara);
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "bulwark-yara and yara disagree\n only bulwark-yara: {only_ours:?}\n only yara: {only_theirs:?}"
    );
    assert!(!ours.is_empty(), "the fixtures must produce hits");
}
