//! Zeek replay over `tests/fixtures/zeek/*.{log,json}` with the built-in
//! profile (what `detect replay` uses without `--profile`): each log's CSV
//! output and summary must equal its `<name>.out` snapshot (rewritten with
//! `UPDATE_EXPECT=1`).
//!
//! The scenario logs were made by construction (a script drew the
//! records; each file's comment in the session notes says how):
//! - `scan*`: a Mirai-style telnet scan, must be flagged as `scanning`;
//! - `attack-<what>*`: must flag records naming the behaviour for `<what>`;
//! - `normal*`: must flag nothing: ordinary DNS/NTP/HTTPS, a CDN fan-out
//!   that every host answers, and a honeypot that internet hosts scan
//!   and brute-force while it chatters SSDP/mDNS/broadcast on its link.

use std::io::BufReader;

use bulwark_detect::{MAX_LINE, MAX_REORDER, Profile, ReplaySummary, builtin_profile, replay};

fn profile() -> Profile {
    builtin_profile()
}

/// The behaviour an `attack-<what>` fixture must be flagged by.
fn expected_behaviour(name: &str) -> Option<&'static str> {
    [
        ("scan", "scanning"),
        ("attack-c2", "command-and-control"),
        ("attack-beacon", "command-and-control"),
        ("attack-flood", "flood"),
        ("attack-bruteforce", "brute-force"),
    ]
    .into_iter()
    .find(|(prefix, _)| name.starts_with(prefix))
    .map(|(_, b)| b)
}

fn run(input: &[u8]) -> (String, ReplaySummary) {
    let mut out = Vec::new();
    let summary = replay(BufReader::new(input), profile(), &mut out).unwrap();
    (String::from_utf8(out).unwrap(), summary)
}

#[test]
fn fixtures() {
    let files = super::fixtures("zeek", &["log", "json"]);
    assert!(files.len() >= 12, "zeek fixtures missing");
    for path in files {
        let name = super::name(&path);
        let (csv, summary) = run(&std::fs::read(&path).unwrap());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "ts,uid,score,alert,reason", "{name}");
        assert_eq!(lines.len() as u64 - 1, summary.records, "{name}");
        if let Some(behaviour) = expected_behaviour(&name) {
            assert!(
                csv.lines().any(|l| l.contains(&format!(",1,{behaviour}: "))
                    || l.contains(&format!(",1,\"{behaviour}: "))),
                "{name}: no record flagged by {behaviour}\n{csv}"
            );
            assert!(summary.alerts >= 1, "{name}: no alert raised");
            assert_eq!(summary.malformed, 0, "{name}: {:?}", summary.problems);
        }
        if name.starts_with("normal") {
            assert_eq!(summary.alerts, 0, "{name}: false positive\n{csv}");
            assert_eq!(summary.alerted, 0, "{name}: records flagged\n{csv}");
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

#[test]
fn a_record_later_than_the_reorder_buffer_is_rejected_and_counted() {
    let mut input = String::new();
    let t0 = 1_767_225_600.0;
    for i in 0..(MAX_REORDER + 10) {
        input.push_str(&format!(
            r#"{{"ts":{},"uid":"C{i}","id.orig_h":"10.0.0.2","id.resp_h":"10.0.0.1","id.resp_p":53,"proto":"udp","conn_state":"SF"}}"#,
            t0 + i as f64 * 0.01
        ));
        input.push('\n');
    }
    // A clock jump back by an hour, after the buffer has moved on.
    input.push_str(&format!(
        r#"{{"ts":{},"uid":"Clate","id.orig_h":"10.0.0.2","id.resp_h":"10.0.0.1","id.resp_p":53,"proto":"udp"}}"#,
        t0 - 3600.0
    ));
    input.push('\n');
    let (csv, summary) = run(input.as_bytes());
    assert_eq!(summary.rejected, 1, "{:?}", summary.problems);
    assert_eq!(summary.records as usize, MAX_REORDER + 10);
    assert!(!csv.contains("Clate"));
    assert!(
        summary.problems[0].contains("behind the device's latest"),
        "{:?}",
        summary.problems
    );
}
