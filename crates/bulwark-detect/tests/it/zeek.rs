//! Zeek replay over `tests/fixtures/zeek/*.{log,json}` with
//! `profile.toml`: each log's CSV output and summary must equal its
//! `<name>.out` snapshot (rewritten with `UPDATE_EXPECT=1`), and the scan logs
//! must alert through fan-out while the normal ones stay quiet.

use std::io::BufReader;
use std::path::Path;

use bulwark_detect::{MAX_LINE, Profile, ReplaySummary, replay};

fn profile() -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zeek/profile.toml");
    Profile::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn run(input: &[u8]) -> (String, ReplaySummary) {
    let mut out = Vec::new();
    let summary = replay(BufReader::new(input), profile(), &mut out).unwrap();
    (String::from_utf8(out).unwrap(), summary)
}

#[test]
fn fixtures() {
    let files = super::fixtures("zeek", &["log", "json"]);
    assert!(files.len() >= 6, "zeek fixtures missing");
    for path in files {
        let name = super::name(&path);
        let (csv, summary) = run(&std::fs::read(&path).unwrap());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "ts,uid,score,alert,reason", "{name}");
        assert_eq!(lines.len() as u64 - 1, summary.records, "{name}");
        if name.starts_with("scan") {
            assert!(
                csv.contains(",1,scan-fanout:"),
                "{name}: the scan did not alert through fan-out\n{csv}"
            );
        }
        if name.starts_with("normal") {
            assert_eq!(summary.alerts, 0, "{name}: false positive\n{csv}");
            assert_eq!(summary.malformed, 0, "{name}: {:?}", summary.problems);
        }
        if name.starts_with("hostile") {
            assert!(summary.malformed > 0, "{name}: nothing counted malformed");
        }
        let actual = format!("{csv}--- summary\n{summary:#?}\n");
        let snapshot = path.with_file_name(format!("{name}.out"));
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(&snapshot, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&snapshot)
            .unwrap_or_else(|e| panic!("{name}: {e} (run with UPDATE_EXPECT=1)"));
        assert_eq!(
            actual, expected,
            "{name}: output differs from its .out snapshot"
        );
    }
}

#[test]
fn huge_line_is_skipped_not_buffered() {
    let mut input = b"{\"ts\": 1, \"uid\": \"C".to_vec();
    input.extend(std::iter::repeat_n(b'a', MAX_LINE * 4));
    input.extend_from_slice(b"\"}\n");
    input.extend_from_slice(
        br#"{"ts":1767225600.5,"uid":"Cok","id.orig_h":"10.0.0.2","id.orig_p":5000,"id.resp_h":"10.0.0.1","id.resp_p":53,"proto":"udp"}"#,
    );
    let (csv, summary) = run(&input);
    assert_eq!(summary.malformed, 1);
    assert_eq!(summary.records, 1);
    assert!(
        summary.problems[0].starts_with("line 1: longer than"),
        "{summary:?}"
    );
    assert!(csv.contains("Cok"), "{csv}");
}

#[test]
fn binary_garbage_does_not_stop_the_replay() {
    let mut input: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    input.extend_from_slice(b"\n\xff\xfe\n");
    let (_, summary) = run(&input);
    assert_eq!(summary.records, 0);
    assert!(summary.malformed >= 1);
}

#[test]
fn problems_are_capped_but_counted() {
    let input = "not a record\n".repeat(1000);
    let (_, summary) = run(input.as_bytes());
    assert_eq!(summary.malformed, 1000);
    assert_eq!(summary.problems.len(), bulwark_detect::MAX_PROBLEMS);
}
