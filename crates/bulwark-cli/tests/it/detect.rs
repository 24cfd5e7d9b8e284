//! `bulwark detect replay` over the detection crate's Zeek fixtures: a scan
//! alerts, normal traffic does not, and bad input is a clear error; and
//! `bulwark detect eval` over a replay's scores.

use std::path::{Path, PathBuf};

use crate::support::*;

fn zeek(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bulwark-detect/tests/fixtures/zeek")
        .join(name)
}

fn replay(log: &Path, out: &Path, profile: Option<&Path>) -> (i32, String, String) {
    let mut c = bulwark();
    c.args(["detect", "replay", "--conn-log"])
        .arg(log)
        .arg("--out")
        .arg(out);
    if let Some(p) = profile {
        c.arg("--profile").arg(p);
    }
    run(&mut c)
}

fn alerts(csv: &Path) -> usize {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ts,uid,score,alert,reason"));
    lines.filter(|l| l.split(',').nth(3) == Some("1")).count()
}

#[test]
fn a_scan_in_a_conn_log_alerts_and_normal_traffic_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("scores.csv");
    for log in ["scan.log", "scan.json"] {
        let (code, _, err) = replay(&zeek(log), &out, None);
        assert_eq!(code, 0, "{err}");
        assert!(alerts(&out) >= 1, "{log}: the scan must alert");
    }
    for log in ["normal.log", "normal.json"] {
        let (code, _, err) = replay(&zeek(log), &out, None);
        assert_eq!(code, 0, "{err}");
        assert_eq!(alerts(&out), 0, "{log}");
    }
    // Malformed lines are skipped and reported, not fatal.
    let (code, _, err) = replay(&zeek("hostile-fields.log"), &out, None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("malformed"), "{err}");
    // A bad profile names the problem; a missing log is exit 1.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "group = \"g\"\nversion = \"1\"\n[[behaviour]]\nname = \"x\"\nkind = \"telepathy\"\n",
    )
    .unwrap();
    let (code, _, err) = replay(&zeek("scan.log"), &out, Some(&bad));
    assert_eq!(code, 1);
    assert!(err.contains("bad.toml"), "{err}");
    let (code, _, err) = run(bulwark().args(["profiles", "validate"]).arg(&bad));
    assert_eq!(code, 1, "{err}");
    let (code, out_text, _) = run(bulwark()
        .args(["profiles", "validate"])
        .arg(zeek("../profiles/good/minimal.toml")));
    assert_eq!(code, 0);
    assert!(out_text.contains("valid"), "{out_text}");
    let (code, _, _) = replay(&tmp.path().join("missing.log"), &out, None);
    assert_eq!(code, 1);
}

#[test]
fn eval_scores_a_replay_against_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let scores = tmp.path().join("scores.csv");
    let (code, _, err) = replay(&zeek("scan.log"), &scores, None);
    assert_eq!(code, 0, "{err}");
    // Labels by construction: in this log the scan's attempts are the
    // unanswered ones (conn_state S0), the device's own traffic is SF.
    let log = std::fs::read_to_string(zeek("scan.log")).unwrap();
    let mut labels = String::from("uid,label,category\n");
    for line in log.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let (label, cat) = if f[11] == "S0" {
            ("malicious", "scan")
        } else {
            ("benign", "-")
        };
        labels.push_str(&format!("{},{label},{cat}\n", f[1]));
    }
    let labels_path = tmp.path().join("labels.csv");
    std::fs::write(&labels_path, labels).unwrap();
    let (code, out, err) = run(bulwark()
        .args(["detect", "eval", "--scores"])
        .arg(&scores)
        .arg("--labels")
        .arg(&labels_path));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ROC AUC"), "{out}");
    assert!(out.contains("per reason"), "{out}");
    assert!(out.contains("scanning"), "{out}");
    let auc: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("ROC AUC "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(auc > 0.9, "{out}");
    // Labels without a label column: a clear error, exit 1.
    std::fs::write(&labels_path, "uid,verdict\nC1,bad\n").unwrap();
    let (code, _, err) = run(bulwark()
        .args(["detect", "eval", "--scores"])
        .arg(&scores)
        .arg("--labels")
        .arg(&labels_path));
    assert_eq!(code, 1);
    assert!(err.contains("no `label` column"), "{err}");
}
