//! Data-driven tests of the signer's check, [`check_targets_proposal`], over
//! `tests/fixtures/proposals/`: targets proposals a compromised server could
//! ask a release manager to sign, each refused for one reason, and the
//! honest ones. Regenerate with `tests/fixtures/gen/proposals.py`, whose
//! docs describe the files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use bulwark_tuf::{
    ExpectedTarget, Metadata, ProposalSummary, TargetFile, Targets, check_targets_proposal,
    expires_format,
};
use time::{Duration, OffsetDateTime};

/// Every `ProposalError::kind`: each must have at least one fixture.
const KINDS: [&str; 20] = [
    "malformed",
    "wrong-role",
    "not-canonical",
    "base-mismatch",
    "version-not-next",
    "expired",
    "expiry-too-far",
    "spec-version-changed",
    "delegations-changed",
    "other-fields-changed",
    "target-removed",
    "target-changed",
    "already-published",
    "unexpected-targets",
    "expected-target-missing",
    "target-length",
    "target-digest",
    "target-extra-hashes",
    "target-custom",
    "target-unknown-fields",
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proposals")
}

/// The reference time, maximum lifetime and expected target all cases share.
struct Shared {
    now: OffsetDateTime,
    max_lifetime: Duration,
    target: ExpectedTarget,
}

fn shared() -> Shared {
    let v: serde_json::Value =
        serde_json::from_slice(&fs::read(dir().join("expected.json")).unwrap()).unwrap();
    let t = &v["target"];
    Shared {
        now: expires_format::parse(v["now"].as_str().unwrap()).unwrap(),
        max_lifetime: Duration::days(v["max_lifetime_days"].as_i64().unwrap()),
        target: ExpectedTarget {
            path: t["path"].as_str().unwrap().to_owned(),
            length: t["length"].as_u64().unwrap(),
            sha256: t["sha256"].as_str().unwrap().to_owned(),
            custom: Some(t["custom"].clone()),
        },
    }
}

fn published(name: &str) -> Option<Targets> {
    if name == "none" {
        return None;
    }
    let md = Metadata::<Targets>::from_slice(&fs::read(dir().join(name)).unwrap())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    Some(md.signed().clone())
}

/// A `.expect` file: `key: value` lines.
fn expectation(name: &str) -> BTreeMap<String, String> {
    let text = fs::read_to_string(dir().join(format!("{name}.expect"))).unwrap();
    text.lines()
        .map(|l| {
            let (k, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("{name}.expect: bad line {l:?}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn summary_text(s: &ProposalSummary) -> String {
    format!(
        "version {}, adds {}, {} unchanged, expires {}",
        s.version,
        s.added,
        s.unchanged,
        expires_format::format(s.expires)
    )
}

/// The case names (`<name>.expect` files), sorted.
fn cases() -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().ok()?;
            Some(name.strip_suffix(".expect")?.to_owned())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no proposal fixtures");
    out
}

#[test]
fn proposals_are_checked_as_the_fixtures_expect() {
    let shared = shared();
    let mut refused_kinds = BTreeSet::new();
    let mut accepted = 0;
    for name in cases() {
        let e = expectation(&name);
        let field = |k: &str| {
            e.get(k)
                .unwrap_or_else(|| panic!("{name}.expect: no {k}"))
                .as_str()
        };
        let bytes = fs::read(dir().join(format!("{name}.json"))).unwrap();
        let base = published(field("published"));
        let base_version: u64 = field("base_version").parse().unwrap();
        let mut target = shared.target.clone();
        if let Some(path) = e.get("path") {
            target.path.clone_from(path);
        }
        let result = check_targets_proposal(
            &bytes,
            base.as_ref(),
            base_version,
            &target,
            shared.now,
            shared.max_lifetime,
        );
        match (field("result"), result) {
            ("ok", Ok(summary)) => {
                assert_eq!(summary_text(&summary), field("summary"), "{name}");
                assert_eq!(summary.sha256, target.sha256, "{name}");
                assert_eq!(summary.length, target.length, "{name}");
                accepted += 1;
            }
            ("ok", Err(err)) => panic!("{name}: refused ({}): {err}", err.kind()),
            (kind, Ok(_)) => panic!("{name}: accepted, should be refused as {kind}"),
            (kind, Err(err)) => {
                assert_eq!(
                    err.kind(),
                    kind,
                    "{name}: refused for another reason: {err}"
                );
                let message = err.to_string();
                assert!(
                    message.contains(field("message")),
                    "{name}: message {message:?} lacks {:?}",
                    field("message")
                );
                refused_kinds.insert(kind.to_owned());
            }
        }
    }
    assert!(accepted >= 3, "accepted cases: {accepted}");
    let all: BTreeSet<String> = KINDS.iter().map(|k| (*k).to_owned()).collect();
    assert_eq!(refused_kinds, all, "every refusal has a fixture");
}

/// A proposal built the way the server builds one (clone the published
/// targets, bump the version, set the expiry, insert the release's target,
/// canonical JSON of the signed part) is accepted, and is byte for byte the
/// fixture's honest proposal.
#[test]
fn the_servers_way_of_building_a_proposal_is_accepted() {
    let shared = shared();
    let mut targets = published("published.json").unwrap();
    targets.version += 1;
    targets.expires = shared.now + Duration::days(365);
    let mut file = TargetFile::from_bytes(&[]);
    file.length = shared.target.length;
    file.hashes = BTreeMap::from([("sha256".to_owned(), shared.target.sha256.clone())]);
    file.custom.clone_from(&shared.target.custom);
    targets.targets.insert(shared.target.path.clone(), file);
    let bytes = Metadata::new(targets).signed_bytes().unwrap();
    let base = published("published.json");
    let summary = check_targets_proposal(
        &bytes,
        base.as_ref(),
        3,
        &shared.target,
        shared.now,
        shared.max_lifetime,
    )
    .unwrap();
    assert_eq!(summary.unchanged, 2);
    assert_eq!(
        bytes,
        fs::read(dir().join("ok-adds-to-published.json")).unwrap()
    );
}
