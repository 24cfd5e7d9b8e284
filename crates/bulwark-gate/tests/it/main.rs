//! The gate over the cases in `tests/cases/*.json`: each names a policy
//! (default when absent), findings, waivers, a stage and a time, and the
//! expected status, blocking reason codes and waived findings.

use std::path::Path;

use bulwark_gate::{Findings, Policy, Stage, Status, Subject, Waiver, evaluate};
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
    #[serde(with = "time::serde::rfc3339")]
    now: OffsetDateTime,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: Status,
    reasons: Vec<String>,
    #[serde(default)]
    waived: Vec<String>,
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
    assert!(names.len() >= 8, "cases missing");
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
        };
        let v = evaluate(&policy, 7, subject, &case.waivers, case.now);
        let codes: Vec<&str> = v.reasons.iter().map(|r| r.code.as_str()).collect();
        let waived: Vec<&str> = v.waived.iter().map(|w| w.waiver.as_str()).collect();
        assert_eq!(v.status, case.expect.status, "{name}: {:#?}", v.reasons);
        assert_eq!(codes, case.expect.reasons, "{name}");
        assert_eq!(waived, case.expect.waived, "{name}");
        assert_eq!(v.policy_version, 7);
        for r in &v.reasons {
            assert!(!r.message.is_empty(), "{name}: reason without evidence");
        }
    }
}

#[test]
fn hostile_policies_and_waivers_are_refused() {
    for bad in [
        &b"{\"block_severity\": \"apocalyptic\"}"[..],
        b"{\"unknown_rule\": true}",
        b"{\"require_signatures\": 1000}",
        b"{\"require_signatures\": -1}",
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
