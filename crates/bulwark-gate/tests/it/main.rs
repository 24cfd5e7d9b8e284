//! The gate over the cases in `tests/cases/*.json`: each names a policy
//! (default when absent), findings, waivers, a stage and a time, and the
//! expected status, blocking reason codes, warning codes and waived
//! findings. A case's advisory database (`advisories`: count and
//! `updated_at`) defaults to 1,000 advisories imported a day before `now`.

use std::path::Path;

use bulwark_gate::{
    AdvisoryInput, AdvisoryState, Findings, Policy, Stage, Status, Subject, Verdict, Waiver,
    evaluate,
};
use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(default)]
    policy: Option<serde_json::Value>,
    release: String,
    components: u64,
    #[serde(default)]
    findings: Findings,
    #[serde(default)]
    waivers: Vec<Waiver>,
    #[serde(default)]
    signatures: Option<u32>,
    #[serde(default)]
    unreadable: Option<String>,
    #[serde(default)]
    advisories: Option<CaseAdvisories>,
    #[serde(with = "time::serde::rfc3339")]
    now: OffsetDateTime,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseAdvisories {
    count: u64,
    #[serde(default, with = "time::serde::rfc3339::option")]
    updated_at: Option<OffsetDateTime>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: Status,
    reasons: Vec<String>,
    #[serde(default)]
    waived: Vec<String>,
    #[serde(default)]
    warnings: Vec<String>,
    /// Seconds from the import to `now`, when the case says.
    #[serde(default)]
    age_seconds: Option<u64>,
    /// Words every blocking reason's message holds, in order of reasons.
    #[serde(default)]
    messages: Vec<String>,
}

#[test]
fn cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "cases missing");
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let case: Case = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let policy = match &case.policy {
            Some(v) => Policy::from_json(v.to_string().as_bytes())
                .unwrap_or_else(|e| panic!("{name}: {e}")),
            None => Policy::default(),
        };
        let stage = match case.signatures {
            Some(signatures) => Stage::Promote { signatures },
            None => Stage::Sign,
        };
        let subject = Subject {
            release: &case.release,
            components: case.components,
            findings: &case.findings,
            stage,
            unreadable: case.unreadable.as_deref(),
            advisories: match &case.advisories {
                Some(a) => AdvisoryInput {
                    count: a.count,
                    updated_at: a.updated_at,
                },
                None => AdvisoryInput {
                    count: 1_000,
                    updated_at: Some(case.now - time::Duration::days(1)),
                },
            },
        };
        let v = evaluate(&policy, 7, subject, &case.waivers, case.now);
        let codes: Vec<&str> = v.reasons.iter().map(|r| r.code.as_str()).collect();
        let waived: Vec<&str> = v.waived.iter().map(|w| w.waiver.as_str()).collect();
        let warnings: Vec<&str> = v.warnings.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(v.status, case.expect.status, "{name}: {:#?}", v.reasons);
        assert_eq!(codes, case.expect.reasons, "{name}");
        assert_eq!(waived, case.expect.waived, "{name}");
        assert_eq!(warnings, case.expect.warnings, "{name}: {:#?}", v.warnings);
        assert_eq!(v.policy_version, 7);
        let state = v.advisories.expect("a verdict states its advisories");
        assert_eq!(state.count, subject.advisories.count, "{name}");
        assert_eq!(state.updated_at, subject.advisories.updated_at, "{name}");
        if let Some(age) = case.expect.age_seconds {
            assert_eq!(state.age_seconds, Some(age), "{name}");
        }
        for r in v.reasons.iter().chain(&v.warnings) {
            assert!(!r.message.is_empty(), "{name}: reason without evidence");
        }
        for (r, words) in v.reasons.iter().zip(&case.expect.messages) {
            assert!(r.message.contains(words.as_str()), "{name}: {}", r.message);
        }
    }
}

/// A verdict stored before the advisory state and warnings existed still
/// reads (no advisories, no warnings); a new one round-trips.
#[test]
fn stored_verdicts_old_and_new_read_back() {
    let old = br#"{"status":"pass","policy_version":3,"evaluated_at":"2026-01-01T00:00:00Z",
        "reasons":[],"waived":[],"counts":{"components":4,"vulnerabilities":0,"malware":0,"secrets":0}}"#;
    let v: Verdict = serde_json::from_slice(old).unwrap();
    assert_eq!((v.advisories, v.warnings.len()), (None, 0));
    let now = time::macros::datetime!(2026-11-23 00:00 UTC);
    let findings = Findings::default();
    let v = evaluate(
        &Policy::default(),
        1,
        Subject {
            release: "fw@1",
            components: 1,
            findings: &findings,
            stage: Stage::Sign,
            unreadable: None,
            advisories: AdvisoryInput::default(),
        },
        &[],
        now,
    );
    let again: Verdict = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
    assert_eq!(again, v);
    assert_eq!(
        v.advisories,
        Some(AdvisoryState {
            count: 0,
            updated_at: None,
            age_seconds: None
        })
    );
}

/// Policy documents written before the advisory fields existed keep their
/// meaning, and the new fields' defaults are the documented ones.
#[test]
fn old_policies_read_with_the_new_defaults() {
    let p = Policy::from_json(br#"{"block_severity": "high", "require_signatures": 2}"#).unwrap();
    assert_eq!(p.unscored_severity, bulwark_gate::Severity::None);
    assert_eq!(
        p.stale_advisories_days,
        Some(bulwark_gate::DEFAULT_STALE_ADVISORIES_DAYS)
    );
    assert!(!p.block_stale_advisories && !p.block_without_advisories);
    let p =
        Policy::from_json(br#"{"unscored_severity": "critical", "stale_advisories_days": null}"#)
            .unwrap();
    assert_eq!(
        (p.unscored_severity, p.stale_advisories_days),
        (bulwark_gate::Severity::Critical, None)
    );
}

#[test]
fn hostile_policies_and_waivers_are_refused() {
    for bad in [
        &b"{\"block_severity\": \"apocalyptic\"}"[..],
        b"{\"unknown_rule\": true}",
        b"{\"require_signatures\": 1000}",
        b"{\"require_signatures\": -1}",
        b"{\"unscored_severity\": \"dire\"}",
        b"{\"unscored_severity\": null}",
        b"{\"stale_advisories_days\": 0}",
        b"{\"stale_advisories_days\": 100000}",
        b"{\"stale_advisories_days\": null, \"block_stale_advisories\": true}",
        b"{\"block_without_advisories\": \"yes\"}",
        b"[]",
        b"not json",
    ] {
        assert!(
            Policy::from_json(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let now = time::macros::datetime!(2026-11-23 00:00 UTC);
    let ok = Waiver {
        id: "w1".into(),
        finding: "CVE-2024-1".into(),
        release: "fw@1.0".into(),
        reason: "not reachable".into(),
        expires_at: now + time::Duration::days(30),
        created_by: String::new(),
    };
    assert_eq!(ok.validate(now), Ok(()));
    type Edit<'a> = Box<dyn Fn(&mut Waiver) + 'a>;
    let cases: [(&str, Edit<'_>); 6] = [
        ("expired", Box::new(|w| w.expires_at = now)),
        ("no reason", Box::new(|w| w.reason = "  ".into())),
        ("no version", Box::new(|w| w.release = "fw".into())),
        ("two @", Box::new(|w| w.release = "fw@1@2".into())),
        ("control", Box::new(|w| w.finding = "CVE\n1".into())),
        ("long", Box::new(|w| w.reason = "x".repeat(5000))),
    ];
    for (what, edit) in cases {
        let mut w = ok.clone();
        edit(&mut w);
        assert!(w.validate(now).is_err(), "{what}");
    }
}
