//! The fixture rules over the fixture files, rendered one hit per line and
//! compared with `tests/fixtures/expected-hits.txt`.

use std::fmt::Write as _;

use crate::scan_fixture_files;

#[test]
fn fixture_files_produce_expected_hits() {
    let mut actual = String::new();
    for (file, hit) in scan_fixture_files() {
        let meta: Vec<String> = hit
            .metadata
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        writeln!(
            actual,
            "{file} {}:{} tags=[{}] patterns=[{}] meta=[{}]",
            hit.namespace,
            hit.rule,
            hit.tags.join(","),
            hit.matched_patterns.join(","),
            meta.join(", ")
        )
        .expect("write to string");
    }
    expect_test::expect_file!["../fixtures/expected-hits.txt"].assert_eq(&actual);
}

#[test]
fn hit_path_is_the_label_passed_in() {
    let rules = bulwark_yara::Rules::compile_dir(&crate::fixture("rules")).expect("compile");
    let mut scanner = bulwark_yara::Scanner::new(&rules);
    let data = std::fs::read(crate::fixture("files/eicar.com")).expect("read");
    let hits = scanner
        .scan("artifact.tar!/opt/eicar.com", &data)
        .expect("scan");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].path, "artifact.tar!/opt/eicar.com");
}

#[test]
fn rules_are_shared_across_threads_with_arc() {
    let rules = std::sync::Arc::new(
        bulwark_yara::Rules::compile_dir(&crate::fixture("rules")).expect("compile"),
    );
    let data = std::sync::Arc::new(std::fs::read(crate::fixture("files/mirai.arm")).expect("read"));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (rules, data) = (rules.clone(), data.clone());
            std::thread::spawn(move || {
                let mut scanner = bulwark_yara::Scanner::new(&rules);
                scanner.scan("mirai.arm", &data).map(|hits| hits.len())
            })
        })
        .collect();
    for worker in workers {
        assert_eq!(worker.join().expect("thread").expect("scan"), 3);
    }
}
