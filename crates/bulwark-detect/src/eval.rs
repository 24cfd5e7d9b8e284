//! `bulwark detect eval`: how well per-record scores separate labelled
//! records.
//!
//! Inputs are two CSV files with a header line:
//! - scores, as [`crate::replay`] writes them: `uid`, `score`, `alert`
//!   and `reason` columns (others ignored);
//! - labels: a `uid` column and a `label` column (`1`/`0`, `true`/`false`,
//!   `malicious`/`benign`, `attack`/`normal`, case-insensitive; the first
//!   word counts, so `Malicious C&C` is malicious), and optionally a
//!   `category` (or `detailed-label`) column for a table per category.
//!   Either as CSV with a header line, or as a labelled Zeek TSV log (a
//!   `#fields` header naming `uid`, `label` and maybe `detailed-label`;
//!   trailing columns separated by spaces instead of the separator are
//!   accepted, as some labelled logs have them).
//!
//! A labelled record with no score (the replay refused or never saw it)
//! counts as score 0 and no alert: a miss, not a record left out. Scores
//! with no label are counted and left out.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, BufRead};

/// Longest CSV line read.
pub const MAX_EVAL_LINE: usize = 64 * 1024;
/// Most labelled records one evaluation holds.
pub const MAX_EVAL_RECORDS: usize = 50_000_000;

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// Reading an input failed.
    #[error("reading {what}")]
    Read {
        /// `scores` or `labels`.
        what: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The header lacks a needed column.
    #[error("{what}: the header has no `{column}` column")]
    MissingColumn {
        /// `scores` or `labels`.
        what: &'static str,
        /// The column.
        column: &'static str,
    },
    /// No labelled record, or no record of one class.
    #[error("{0}")]
    Degenerate(String),
    /// Too many records.
    #[error("more than {MAX_EVAL_RECORDS} labelled records")]
    TooMany,
}

/// Counts of one group of records at the alert threshold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Malicious records alerted.
    pub tp: u64,
    /// Malicious records not alerted.
    pub fn_: u64,
    /// Benign records alerted.
    pub fp: u64,
    /// Benign records not alerted.
    pub tn: u64,
}

impl Counts {
    fn add(&mut self, malicious: bool, alert: bool) {
        match (malicious, alert) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }

    /// TP / (TP + FN), `None` without malicious records.
    pub fn tpr(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// FP / (FP + TN), `None` without benign records.
    pub fn fpr(&self) -> Option<f64> {
        ratio(self.fp, self.fp + self.tn)
    }

    /// TP / (TP + FP), `None` without alerts.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp)
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The result of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// All labelled records at the alert threshold.
    pub overall: Counts,
    /// ROC AUC of the score (ties count half).
    pub auc: f64,
    /// The best TPR a score threshold reaches with FPR at most 2 %, and
    /// that threshold.
    pub tpr_at_fpr_2pct: (f64, f64),
    /// Per behaviour named in an alerted record's reason: alerted records
    /// by class (`tp` and `fp` only).
    pub by_reason: BTreeMap<String, Counts>,
    /// Per label category, when the labels have one.
    pub by_category: BTreeMap<String, Counts>,
    /// Labelled records with no score (counted as score 0, no alert).
    pub unscored: u64,
    /// Scored records with no label (left out).
    pub unlabelled: u64,
    /// Lines skipped as malformed, both inputs.
    pub malformed: u64,
}

/// Splits one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Reads CSV lines, header first; calls `row` with the header's column
/// index of each wanted name and the fields. Returns malformed lines.
fn read_csv(
    mut r: impl BufRead,
    what: &'static str,
    need: &[&'static str],
    optional: &[&'static str],
    mut row: impl FnMut(&[Option<usize>], &[String]) -> Result<(), EvalError>,
) -> Result<u64, EvalError> {
    let mut buf = Vec::new();
    let mut header: Option<Vec<Option<usize>>> = None;
    let mut malformed = 0;
    loop {
        buf.clear();
        let n = io::Read::take(&mut r, MAX_EVAL_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|source| EvalError::Read { what, source })?;
        if n == 0 {
            break;
        }
        if buf.len() > MAX_EVAL_LINE && !buf.ends_with(b"\n") {
            // Drop the rest of an over-long line.
            malformed += 1;
            let mut sink = Vec::new();
            r.read_until(b'\n', &mut sink)
                .map_err(|source| EvalError::Read { what, source })?;
            continue;
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            malformed += 1;
            continue;
        };
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            continue;
        }
        let fields = csv_fields(line);
        match &header {
            None => {
                let find = |name: &str| {
                    fields
                        .iter()
                        .position(|f| f.trim().eq_ignore_ascii_case(name))
                };
                for column in need {
                    if find(column).is_none() {
                        return Err(EvalError::MissingColumn { what, column });
                    }
                }
                header = Some(need.iter().chain(optional).map(|c| find(c)).collect());
            }
            Some(h) => {
                if h.iter().flatten().any(|&i| i >= fields.len()) {
                    malformed += 1;
                    continue;
                }
                row(h, &fields)?;
            }
        }
    }
    if header.is_none() {
        return Err(EvalError::MissingColumn {
            what,
            column: need.first().copied().unwrap_or("uid"),
        });
    }
    Ok(malformed)
}

fn label_of(s: &str) -> Option<bool> {
    let word = s.split_whitespace().next()?.to_ascii_lowercase();
    match word.as_str() {
        "1" | "true" | "malicious" | "attack" | "yes" => Some(true),
        "0" | "false" | "benign" | "normal" | "no" => Some(false),
        _ => None,
    }
}

struct Scored {
    score: f64,
    alert: bool,
    reasons: Vec<String>,
}

/// Reads labels from a labelled Zeek TSV log: `(uid, malicious,
/// category)` per record, and the malformed line count.
fn read_zeek_labels(
    mut r: impl BufRead,
    mut row: impl FnMut(&str, &str, Option<&str>) -> Result<(), EvalError>,
) -> Result<u64, EvalError> {
    let mut buf = Vec::new();
    let mut sep = "\t".to_owned();
    let mut cols: Option<(usize, usize, Option<usize>, usize)> = None;
    let mut malformed = 0;
    loop {
        buf.clear();
        let n = io::Read::take(&mut r, MAX_EVAL_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|source| EvalError::Read {
                what: "labels",
                source,
            })?;
        if n == 0 {
            break;
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            malformed += 1;
            continue;
        };
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(v) = line.strip_prefix("#separator ") {
            match crate::zeek::separator(v) {
                Some(v) => sep = v,
                None => malformed += 1,
            }
            continue;
        }
        if let Some(f) = line.strip_prefix("#fields") {
            let names: Vec<&str> = f.split(sep.as_str()).filter(|n| !n.is_empty()).collect();
            let find = |n: &str| names.iter().position(|x| *x == n);
            let (Some(uid), Some(label)) = (find("uid"), find("label")) else {
                return Err(EvalError::MissingColumn {
                    what: "labels",
                    column: "label",
                });
            };
            cols = Some((uid, label, find("detailed-label"), names.len()));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((uid, label, detail, count)) = cols else {
            malformed += 1;
            continue;
        };
        let values = crate::zeek::split_fields(line, &sep, count);
        if values.len() != count {
            malformed += 1;
            continue;
        }
        row(values[uid], values[label], detail.map(|i| values[i]))?;
    }
    if cols.is_none() {
        return Err(EvalError::MissingColumn {
            what: "labels",
            column: "uid",
        });
    }
    Ok(malformed)
}

/// Evaluates `scores` against `labels`.
pub fn evaluate(scores: impl BufRead, mut labels: impl BufRead) -> Result<Evaluation, EvalError> {
    let mut label_of_uid: HashMap<String, (bool, Option<String>)> = HashMap::new();
    let zeek = labels
        .fill_buf()
        .map_err(|source| EvalError::Read {
            what: "labels",
            source,
        })?
        .starts_with(b"#");
    let mut add = |uid: &str, label: &str, category: Option<&str>| {
        let Some(malicious) = label_of(label) else {
            return Ok(());
        };
        if label_of_uid.len() >= MAX_EVAL_RECORDS {
            return Err(EvalError::TooMany);
        }
        let category = category
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty() && c != "-" && c.len() <= 128);
        label_of_uid.insert(uid.trim().to_owned(), (malicious, category));
        Ok(())
    };
    let mut malformed = if zeek {
        read_zeek_labels(labels, &mut add)?
    } else {
        read_csv(
            labels,
            "labels",
            &["uid", "label"],
            &["category", "detailed-label"],
            |h, f| {
                let (Some(uid), Some(label)) = (h[0], h[1]) else {
                    return Ok(());
                };
                add(&f[uid], &f[label], h[2].or(h[3]).map(|i| f[i].as_str()))
            },
        )?
    };
    let mut scored: HashMap<String, Scored> = HashMap::new();
    let mut unlabelled = 0;
    malformed += read_csv(
        scores,
        "scores",
        &["uid", "score", "alert"],
        &["reason"],
        |h, f| {
            let (Some(uid), Some(score), Some(alert)) = (h[0], h[1], h[2]) else {
                return Ok(());
            };
            let uid = f[uid].trim();
            if !label_of_uid.contains_key(uid) {
                unlabelled += 1;
                return Ok(());
            }
            let score: f64 = f[score].trim().parse().unwrap_or(f64::NAN);
            let score = if score.is_finite() { score } else { 0.0 };
            let reasons = h[3]
                .map(|i| {
                    // Only behaviours whose condition held; contributions
                    // that did not are in parentheses.
                    f[i].split(" | ")
                        .filter(|r| !r.starts_with('('))
                        .filter_map(|r| r.split_once(':').map(|(b, _)| b.trim().to_owned()))
                        .filter(|b| !b.is_empty() && b.len() <= 128)
                        .collect()
                })
                .unwrap_or_default();
            scored.insert(
                uid.to_owned(),
                Scored {
                    score,
                    alert: f[alert].trim() == "1",
                    reasons,
                },
            );
            Ok(())
        },
    )?;
    let mut overall = Counts::default();
    let mut by_reason: BTreeMap<String, Counts> = BTreeMap::new();
    let mut by_category: BTreeMap<String, Counts> = BTreeMap::new();
    let mut points: Vec<(f64, bool)> = Vec::with_capacity(label_of_uid.len());
    let mut unscored = 0;
    for (uid, (malicious, category)) in &label_of_uid {
        let (score, alert) = match scored.get(uid) {
            Some(s) => {
                if s.alert {
                    for r in &s.reasons {
                        by_reason
                            .entry(r.clone())
                            .or_default()
                            .add(*malicious, true);
                    }
                }
                (s.score, s.alert)
            }
            None => {
                unscored += 1;
                (0.0, false)
            }
        };
        overall.add(*malicious, alert);
        if let Some(c) = category {
            by_category
                .entry(c.clone())
                .or_default()
                .add(*malicious, alert);
        }
        points.push((score, *malicious));
    }
    let positives = overall.tp + overall.fn_;
    let negatives = overall.fp + overall.tn;
    if positives == 0 || negatives == 0 {
        return Err(EvalError::Degenerate(format!(
            "{positives} malicious and {negatives} benign labelled records: both classes are needed"
        )));
    }
    let (auc, tpr_at_fpr_2pct) = roc(&mut points, positives, negatives);
    Ok(Evaluation {
        overall,
        auc,
        tpr_at_fpr_2pct,
        by_reason,
        by_category,
        unscored,
        unlabelled,
        malformed,
    })
}

/// ROC AUC (Mann–Whitney with ties counting half) and the best TPR at
/// FPR ≤ 2 % with its score threshold.
fn roc(points: &mut [(f64, bool)], pos: u64, neg: u64) -> (f64, (f64, f64)) {
    points.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut area = 0.0;
    let mut best = (0.0, f64::INFINITY);
    let mut i = 0;
    while i < points.len() {
        let s = points[i].0;
        let (mut dtp, mut dfp) = (0u64, 0u64);
        while i < points.len() && points[i].0 == s {
            if points[i].1 {
                dtp += 1;
            } else {
                dfp += 1;
            }
            i += 1;
        }
        // Trapezoid over the tied block.
        area += dfp as f64 * (tp as f64 + dtp as f64 / 2.0);
        tp += dtp;
        fp += dfp;
        let (tpr, fpr) = (tp as f64 / pos as f64, fp as f64 / neg as f64);
        if fpr <= 0.02 && tpr > best.0 {
            best = (tpr, s);
        }
    }
    (area / (pos as f64 * neg as f64), best)
}

fn opt(x: Option<f64>) -> String {
    x.map_or("-".to_owned(), |v| format!("{v:.4}"))
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.overall;
        writeln!(
            f,
            "records: {} malicious, {} benign ({} unscored counted as misses, {} scores unlabelled, {} malformed lines)",
            o.tp + o.fn_,
            o.fp + o.tn,
            self.unscored,
            self.unlabelled,
            self.malformed
        )?;
        writeln!(
            f,
            "at the alert threshold: TPR {}  FPR {}  precision {}  (TP {} FN {} FP {} TN {})",
            opt(o.tpr()),
            opt(o.fpr()),
            opt(o.precision()),
            o.tp,
            o.fn_,
            o.fp,
            o.tn
        )?;
        writeln!(f, "ROC AUC {:.4}", self.auc)?;
        if self.tpr_at_fpr_2pct.1.is_finite() {
            writeln!(
                f,
                "best TPR at FPR <= 0.02: {:.4} (score >= {:.3})",
                self.tpr_at_fpr_2pct.0, self.tpr_at_fpr_2pct.1
            )?;
        }
        if !self.by_reason.is_empty() {
            writeln!(f, "\nper reason (alerted records naming it):")?;
            writeln!(
                f,
                "{:<28} {:>10} {:>10} {:>10}",
                "reason", "malicious", "benign", "precision"
            )?;
            for (r, c) in &self.by_reason {
                writeln!(
                    f,
                    "{r:<28} {:>10} {:>10} {:>10}",
                    c.tp,
                    c.fp,
                    opt(c.precision())
                )?;
            }
        }
        if !self.by_category.is_empty() {
            writeln!(f, "\nper category:")?;
            writeln!(
                f,
                "{:<36} {:>10} {:>8} {:>8}",
                "category", "records", "TPR", "FPR"
            )?;
            for (cat, c) in &self.by_category {
                writeln!(
                    f,
                    "{cat:<36} {:>10} {:>8} {:>8}",
                    c.tp + c.fn_ + c.fp + c.tn,
                    opt(c.tpr()),
                    opt(c.fpr())
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(
            csv_fields(r#"a,"b,c","d""e",,"#),
            ["a", "b,c", "d\"e", "", ""]
        );
    }

    #[test]
    fn auc_counts_ties_half_and_perfect_ranking_is_one() {
        let mut p = vec![(1.0, true), (0.0, false), (0.5, true), (0.2, false)];
        assert_eq!(roc(&mut p, 2, 2).0, 1.0);
        let mut tied = vec![(1.0, true), (1.0, false)];
        assert_eq!(roc(&mut tied, 1, 1).0, 0.5);
        let mut worst = vec![(0.0, true), (1.0, false)];
        assert_eq!(roc(&mut worst, 1, 1).0, 0.0);
    }

    #[test]
    fn evaluates_and_counts_misses() {
        let scores = "ts,uid,score,alert,reason\n\
            1,a,2.0,1,scanning: horizontal scan | command-and-control: x | (flood: y)\n\
            2,b,0.1,0,\n\
            3,c,1.5,1,scanning: horizontal\n\
            4,zz,9,1,unlabelled\n";
        let labels = "uid,label,detailed-label\na,Malicious,PartOfAHorizontalPortScan\nb,Benign,-\nc,benign,-\nd,1,C&C\n";
        let e = evaluate(scores.as_bytes(), labels.as_bytes()).unwrap();
        assert_eq!(
            e.overall,
            Counts {
                tp: 1,
                fn_: 1,
                fp: 1,
                tn: 1
            }
        );
        assert_eq!(e.unscored, 1);
        assert_eq!(e.unlabelled, 1);
        assert_eq!(
            e.by_reason["scanning"],
            Counts {
                tp: 1,
                fp: 1,
                ..Counts::default()
            }
        );
        assert_eq!(e.by_reason["command-and-control"].tp, 1);
        assert!(!e.by_reason.contains_key("flood"), "{:?}", e.by_reason);
        assert_eq!(e.by_category["C&C"].fn_, 1);
        // a 2.0 (M), c 1.5 (B), b 0.1 (B), d 0 (M, unscored).
        assert_eq!(e.auc, 0.5);
        let shown = e.to_string();
        assert!(shown.contains("TPR 0.5000"), "{shown}");
    }

    #[test]
    fn labels_from_a_labelled_zeek_log_with_space_separated_tails() {
        let scores = "ts,uid,score,alert,reason\n1,C1,2.0,1,scanning: x\n2,C2,0.0,0,\n";
        let labels = "#separator \\x09\n#fields\tts\tuid\tproto\ttunnel_parents\tlabel\tdetailed-label\n\
            1\tC1\ttcp\t-   Malicious   PartOfAHorizontalPortScan\n\
            2\tC2\tudp\t-\tBenign\t-\n\
            3\tC3\ttcp\n";
        let e = evaluate(scores.as_bytes(), labels.as_bytes()).unwrap();
        assert_eq!(
            e.overall,
            Counts {
                tp: 1,
                tn: 1,
                ..Counts::default()
            }
        );
        assert_eq!(e.malformed, 1);
        assert_eq!(e.by_category["PartOfAHorizontalPortScan"].tp, 1);
        assert!(matches!(
            evaluate(scores.as_bytes(), "#fields\tts\tuid\n".as_bytes()),
            Err(EvalError::MissingColumn {
                column: "label",
                ..
            })
        ));
    }

    #[test]
    fn bad_inputs_are_errors_or_counted() {
        assert!(matches!(
            evaluate("uid,score\n".as_bytes(), "uid,label\n".as_bytes()),
            Err(EvalError::MissingColumn {
                column: "alert",
                ..
            })
        ));
        assert!(matches!(
            evaluate(
                "uid,score,alert\n".as_bytes(),
                "uid,label\na,1\n".as_bytes()
            ),
            Err(EvalError::Degenerate(_))
        ));
        let long = format!(
            "uid,score,alert\n{}\na,1,1\nb,0,0\n",
            "x".repeat(MAX_EVAL_LINE * 2)
        );
        let e = evaluate(long.as_bytes(), "uid,label\na,1\nb,0\n\u{0}\n".as_bytes()).unwrap();
        assert_eq!(e.malformed, 2);
        assert_eq!(e.auc, 1.0);
    }
}
