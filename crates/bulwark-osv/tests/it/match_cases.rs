//! `test_data/match/<case>/`: `advisories/*.json` (+ optional `kev.json`)
//! and `components.txt` (`<ecosystem> <name> <version>` per line) →
//! `findings.txt`, one block per finding.

use std::fmt::Write as _;
use std::path::Path;

use bulwark_osv::{AdvisoryDb, Finding, FindingStatus};
use bulwark_sbom::{Component, ComponentEcosystem};
use expect_test::expect_file;

use crate::{sorted_entries, test_data};

pub(crate) fn component(line: &str) -> Component {
    let mut parts = line.splitn(3, ' ');
    let (eco, name, version) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let eco = match eco {
        "debian" => ComponentEcosystem::Debian,
        "alpine" => ComponentEcosystem::Alpine,
        "openwrt" => ComponentEcosystem::Openwrt,
        "pypi" => ComponentEcosystem::Pypi,
        "cargo" => ComponentEcosystem::Cargo,
        "npm" => ComponentEcosystem::Npm,
        "golang" => ComponentEcosystem::Golang,
        "generic" => ComponentEcosystem::Generic,
        other => panic!("unknown ecosystem {other}"),
    };
    Component::new(eco, name, version, &[])
}

pub(crate) fn render(components: &[Component], findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let c = &components[f.component];
        let status = match &f.status {
            FindingStatus::Affected => "affected".to_owned(),
            FindingStatus::Unknown(reason) => format!("unknown: {reason}"),
        };
        writeln!(
            out,
            "{} {} {}: {} [{status}]",
            c.ecosystem.purl_type(),
            c.name,
            c.version,
            f.primary_id
        )
        .unwrap();
        writeln!(out, "  advisories: {}", f.advisories.join(" ")).unwrap();
        writeln!(out, "  ids: {}", f.ids.join(" ")).unwrap();
        write!(out, "  severity: {}", f.severity.level).unwrap();
        if let Some(score) = f.severity.score {
            write!(out, " {score:.1}").unwrap();
        }
        writeln!(out).unwrap();
        writeln!(out, "  fixed: {}", f.fixed_versions.join(" ")).unwrap();
        writeln!(out, "  summary: {}", f.summary).unwrap();
        if f.known_exploited {
            writeln!(out, "  known exploited").unwrap();
        }
        if let Some(kind) = &f.informational {
            writeln!(out, "  informational: {kind}").unwrap();
        }
    }
    if findings.is_empty() {
        out.push_str("no findings\n");
    }
    out
}

fn load_case(dir: &Path) -> (AdvisoryDb, Vec<Component>) {
    let mut db = AdvisoryDb::new();
    let report = db.import_path(&dir.join("advisories")).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let kev = dir.join("kev.json");
    if kev.exists() {
        db.import_kev(&std::fs::read(kev).unwrap()).unwrap();
    }
    let components = std::fs::read_to_string(dir.join("components.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(component)
        .collect();
    (db, components)
}

#[test]
fn match_fixtures() {
    for dir in sorted_entries(&test_data("match")) {
        let (db, components) = load_case(&dir);
        let findings = db.scan(&components);
        // `matches` on each component agrees with the batch scan.
        let one_by_one: Vec<Finding> = components
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                db.matches(c).into_iter().map(move |mut f| {
                    f.component = i;
                    f
                })
            })
            .collect();
        assert_eq!(findings, one_by_one, "{}", dir.display());
        expect_file![dir.join("findings.txt")].assert_eq(&render(&components, &findings));
    }
}

#[test]
fn persistence_round_trip_keeps_findings() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in sorted_entries(&test_data("match")) {
        let (db, components) = load_case(&dir);
        let store = tmp.path().join(dir.file_name().unwrap());
        db.save(&store).unwrap();
        let loaded = AdvisoryDb::load(&store).unwrap();
        assert_eq!(loaded.len(), db.len());
        assert_eq!(loaded.generation(), db.generation());
        assert_eq!(loaded.kev_catalog_version(), db.kev_catalog_version());
        assert_eq!(
            loaded.scan(&components),
            db.scan(&components),
            "{}",
            dir.display()
        );
        for a in db.advisories() {
            assert_eq!(loaded.get(&a.id), Some(a));
        }
    }
}
