//! `cargo xtask corpus [OUT_DIR]`: builds the detection development corpus
//! and scores it, so that anyone can rerun what BENCHMARKS.md reports.
//!
//! 1. `xtask/corpus/build.sh` makes hosts in network namespaces, runs real
//!    tools (nmap, masscan, hping3, hydra, a C&C beacon and retry storm;
//!    DNS, NTP, HTTPS, MQTT and downloads from two benign devices) and
//!    captures the bridge with tshark. Needs root and those Debian
//!    packages.
//! 2. `bulwark detect replay --pcap` scores every connection record with
//!    the built-in profile and writes the records (`--conn-out`).
//! 3. Labels by construction: every record of the infected host
//!    (10.99.0.66) is malicious, with the category of the tool that made
//!    it (from the tool's target and its time window); every other record
//!    is benign, with its service as category.
//! 4. `bulwark detect eval` prints TPR, FPR, precision, AUC and the tables.

use std::path::{Path, PathBuf};
use std::process::Command;

const INFECTED: &str = "10.99.0.66";

/// The value of `"key":` in one of our own Zeek JSON lines.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let rest = &line[line.find(&pat)? + pat.len()..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest.find(['"', ',', '}'])?;
    Some(&rest[..end])
}

fn category(windows: &[(String, f64, f64)], ts: f64, resp_h: &str, resp_p: &str) -> String {
    if resp_h == "203.0.113.66" {
        return "c2".into();
    }
    if resp_h == "198.51.100.30" && resp_p == "80" {
        return "flood-hping3".into();
    }
    // The tool that started last before the record (its window, plus a
    // few seconds for the last answers).
    let current = windows
        .iter()
        .filter(|(_, a, b)| ts >= a - 0.5 && ts <= b + 5.0)
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(n, _, _)| n.as_str());
    match current {
        Some("bruteforce-hydra") if resp_h == "198.51.100.25" && resp_p == "23" => {
            "bruteforce-hydra".into()
        }
        Some(w @ ("scan-nmap" | "scan-masscan")) => w.into(),
        _ => "malicious-other".into(),
    }
}

fn benign_category(resp_h: &str, resp_p: &str) -> String {
    let service = match resp_p {
        "53" => "dns",
        "123" => "ntp",
        "443" => "https",
        "80" => "http-download",
        "1883" => "mqtt",
        _ if resp_h.starts_with("fe80") || resp_h.starts_with("ff02") => "link-local",
        _ => "other",
    };
    format!("benign-{service}")
}

/// Writes `labels.csv` for `conn.json`; returns (malicious, benign).
pub(crate) fn label(dir: &Path) -> Result<(u64, u64), String> {
    let read =
        |name: &str| std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{name}: {e}"));
    let windows: Vec<(String, f64, f64)> = read("windows.tsv")?
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((
                f.next()?.to_owned(),
                f.next()?.parse().ok()?,
                f.next()?.parse().ok()?,
            ))
        })
        .collect();
    let mut out = String::from("uid,label,category\n");
    let (mut bad, mut good) = (0, 0);
    for line in read("conn.json")?.lines() {
        let (Some(uid), Some(ts), Some(orig), Some(resp), Some(port)) = (
            field(line, "uid"),
            field(line, "ts").and_then(|t| t.parse::<f64>().ok()),
            field(line, "id.orig_h"),
            field(line, "id.resp_h"),
            field(line, "id.resp_p"),
        ) else {
            return Err(format!("conn.json: unreadable record {line}"));
        };
        if orig == INFECTED || resp == INFECTED {
            bad += 1;
            let cat = category(&windows, ts, resp, port);
            out.push_str(&format!("{uid},malicious,{cat}\n"));
        } else {
            good += 1;
            out.push_str(&format!("{uid},benign,{}\n", benign_category(resp, port)));
        }
    }
    std::fs::write(dir.join("labels.csv"), out).map_err(|e| format!("labels.csv: {e}"))?;
    Ok((bad, good))
}

/// `cargo xtask corpus [OUT_DIR] [--reuse]`: `--reuse` scores the
/// capture already in OUT_DIR instead of making a new one.
pub(crate) fn corpus(args: &[String]) -> Result<(), String> {
    let reuse = args.iter().any(|a| a == "--reuse");
    let out: PathBuf = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target/corpus"));
    if !reuse {
        let mut build = Command::new("bash");
        build
            .arg(crate::root().join("xtask/corpus/build.sh"))
            .arg(&out);
        crate::run(build)?;
    }
    // The debug build the test suite already made (replaying a few
    // thousand records takes well under a second).
    let mut cargo = crate::cargo();
    cargo.args(["build", "-p", "bulwark-cli"]);
    crate::run(cargo)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| crate::root().join("target"), |d| crate::root().join(d));
    let bulwark = target.join("debug/bulwark");
    let mut replay = Command::new(&bulwark);
    replay
        .current_dir(&out)
        .args(["detect", "replay", "--pcap", "corpus.pcapng"])
        .args(["--conn-out", "conn.json", "--out", "scores.csv"]);
    crate::run(replay)?;
    let (bad, good) = label(&out)?;
    eprintln!("labels: {bad} malicious, {good} benign records");
    let mut eval = Command::new(&bulwark);
    eval.current_dir(&out).args([
        "detect",
        "eval",
        "--scores",
        "scores.csv",
        "--labels",
        "labels.csv",
    ]);
    crate::run(eval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_by_construction() {
        let dir = std::env::temp_dir().join(format!("xtask-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("windows.tsv"),
            "scan-nmap\t100\t110\nscan-masscan\t104\t108\nbruteforce-hydra\t200\t210\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("conn.json"),
            concat!(
                r#"{"ts":103.000000,"uid":"P0","id.orig_h":"10.99.0.66","id.orig_p":1,"id.resp_h":"198.51.100.21","id.resp_p":23,"proto":"tcp"}"#, "\n",
                r#"{"ts":205.000000,"uid":"P1","id.orig_h":"10.99.0.66","id.orig_p":1,"id.resp_h":"198.51.100.25","id.resp_p":23,"proto":"tcp"}"#, "\n",
                r#"{"ts":300.000000,"uid":"P2","id.orig_h":"10.99.0.66","id.orig_p":1,"id.resp_h":"203.0.113.66","id.resp_p":6667,"proto":"tcp"}"#, "\n",
                r#"{"ts":300.000000,"uid":"P3","id.orig_h":"10.99.0.20","id.orig_p":1,"id.resp_h":"203.0.113.53","id.resp_p":53,"proto":"udp"}"#, "\n",
            ),
        )
        .unwrap();
        assert_eq!(label(&dir).unwrap(), (3, 1));
        let labels = std::fs::read_to_string(dir.join("labels.csv")).unwrap();
        assert_eq!(
            labels,
            "uid,label,category\nP0,malicious,scan-nmap\nP1,malicious,bruteforce-hydra\nP2,malicious,c2\nP3,benign,benign-dns\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
