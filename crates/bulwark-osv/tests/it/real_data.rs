//! The real shared archives: PyPA (YAML), Go vulndb and RustSec (JSON).
//! All must import with zero errors; spot checks pin real advisories.

use std::sync::OnceLock;
use std::time::Instant;

use bulwark_osv::{AdvisoryDb, FindingStatus, Match};
use bulwark_sbom::{Component, ComponentEcosystem};
use expect_test::expect;

use crate::advisory_data;

const ARCHIVES: [&str; 3] = [
    "pypa/pypa-advisory-database-3ccb6125.tar.gz",
    "golang/golang-vulndb-osv-a752ea54.tar.gz",
    "rustsec/rustsec-advisory-db-osv-7fa931cb.tar.gz",
];

/// All three archives, imported once per test binary run.
fn shared_db() -> &'static (AdvisoryDb, String) {
    static DB: OnceLock<(AdvisoryDb, String)> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = AdvisoryDb::new();
        let mut reports = String::new();
        for archive in ARCHIVES {
            let path = advisory_data().join(archive);
            let report = db.import_path(&path).unwrap();
            for e in &report.errors {
                reports.push_str(&format!("  error {e}\n"));
            }
            reports.push_str(&format!("{report}\n"));
        }
        (db, reports)
    })
}

#[test]
fn shared_archives_import_without_errors() {
    let (db, reports) = shared_db();
    expect![[r#"
        pypa-advisory-database-3ccb6125.tar.gz: 2661 new, 0 updated, 0 unchanged, 10 withdrawn, 2 non-OSV files skipped, 0 errors
        golang-vulndb-osv-a752ea54.tar.gz: 4291 new, 0 updated, 0 unchanged, 17 withdrawn, 0 non-OSV files skipped, 0 errors
        rustsec-advisory-db-osv-7fa931cb.tar.gz: 1206 new, 0 updated, 0 unchanged, 13 withdrawn, 0 non-OSV files skipped, 0 errors
    "#]]
    .assert_eq(reports);
    assert_eq!(db.len(), 2661 + 4291 + 1206);
    assert_eq!(db.generation(), 3);
}

#[test]
fn rustsec_markdown_repository_holds_no_osv() {
    // The Markdown tarball may not be vendored next to the OSV ones.
    let name = "rustsec/rustsec-advisory-db-main-bf5c0d24.tar.gz";
    let path = [advisory_data(), "/work/shared/data/advisories".into()]
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|p| p.exists());
    let mut db = AdvisoryDb::new();
    let report = match path {
        Some(path) => db.import_path(&path).unwrap(),
        None => {
            // Stand-in with the same shape: Markdown, TOML and licence files.
            let mut builder = tar::Builder::new(Vec::new());
            for file in [
                "db/crates/x/RUSTSEC-2020-0001.md",
                "db/LICENSE.txt",
                "db/.duplicates.toml",
            ] {
                let mut h = tar::Header::new_ustar();
                h.set_size(3);
                h.set_cksum();
                builder.append_data(&mut h, file, &b"abc"[..]).unwrap();
            }
            let tar = builder.into_inner().unwrap();
            db.import_archive(&tar[..], "rustsec-advisory-db-main-bf5c0d24.tar.gz")
                .unwrap()
        }
    };
    assert!(report.contains_no_osv());
    assert!(
        report
            .to_string()
            .starts_with("rustsec-advisory-db-main-bf5c0d24.tar.gz: contains no OSV files"),
        "{report}"
    );
    assert!(db.is_empty());
    assert_eq!(db.generation(), 0);
}

fn c(eco: ComponentEcosystem, name: &str, version: &str) -> Component {
    Component::new(eco, name, version, &[])
}

/// Primary ids of the affected findings for one component.
fn hits(db: &AdvisoryDb, component: &Component) -> Vec<String> {
    db.matches(component)
        .into_iter()
        .filter(|f| f.status == FindingStatus::Affected)
        .flat_map(|f| f.advisories)
        .collect()
}

#[test]
fn real_spot_checks() {
    let (db, _) = shared_db();
    use ComponentEcosystem::*;
    // PyPI, through name normalisation: PYSEC-2021-335 (AccessControl
    // 4.0–4.2 and 5.0–5.1 affected, fixed in 4.3 and 5.2).
    for (version, affected) in [("4.2", true), ("4.3", false), ("5.1", true), ("5.2", false)] {
        let found = hits(db, &c(Pypi, "AccessControl", version));
        assert_eq!(
            found.contains(&"PYSEC-2021-335".to_owned()),
            affected,
            "{version}: {found:?}"
        );
    }
    // Go module: GO-2020-0001 (gin before 1.6.0).
    assert!(
        hits(db, &c(Golang, "github.com/gin-gonic/gin", "v1.5.0"))
            .contains(&"GO-2020-0001".to_owned())
    );
    assert!(
        !hits(db, &c(Golang, "github.com/gin-gonic/gin", "v1.6.0"))
            .contains(&"GO-2020-0001".to_owned())
    );
    // Go standard library: GO-2024-2887 (fixed in 1.21.11 and 1.22.4).
    for (version, affected) in [
        ("go1.21.10", true),
        ("go1.21.11", false),
        ("1.22.3", true),
        ("1.22.4", false),
    ] {
        let found = hits(db, &c(Golang, "stdlib", version));
        assert_eq!(
            found.contains(&"GO-2024-2887".to_owned()),
            affected,
            "{version}"
        );
    }
    // crates.io: RUSTSEC-2026-0068 (tar before 0.4.45); this workspace's own
    // tar (0.4.46) is clear of it.
    assert!(hits(db, &c(Cargo, "tar", "0.4.44")).contains(&"RUSTSEC-2026-0068".to_owned()));
    assert!(!hits(db, &c(Cargo, "tar", "0.4.45")).contains(&"RUSTSEC-2026-0068".to_owned()));
    assert!(hits(db, &c(Cargo, "tar", "0.4.46")).is_empty());
}

#[test]
fn real_alias_merging() {
    let (db, _) = shared_db();
    // GO-2020-0001 aliases GHSA-6vm3-jj99-7229 and CVE-2020-36567.
    let findings = db.matches(&c(
        ComponentEcosystem::Golang,
        "github.com/gin-gonic/gin",
        "v1.5.0",
    ));
    let f = findings
        .iter()
        .find(|f| f.primary_id == "GO-2020-0001")
        .unwrap();
    assert!(f.ids.contains(&"CVE-2020-36567".to_owned()));
    assert!(f.ids.contains(&"GHSA-6vm3-jj99-7229".to_owned()));
}

#[test]
fn unparsable_bounds_in_real_data() {
    // Event versions that do not parse under their range's ordering: each
    // turns a comparison into `Unknown` rather than a silent miss. Pinned so
    // a new snapshot's data problems are noticed.
    let (db, _) = shared_db();
    let mut bad = Vec::new();
    for a in db.advisories() {
        for affected in &a.affected {
            for range in &affected.ranges {
                if range.kind == bulwark_osv::RangeType::Git {
                    continue;
                }
                let probe = bulwark_osv::Affected {
                    ranges: vec![range.clone()],
                    versions: vec![],
                    ..affected.clone()
                };
                let version = match affected.package.as_ref().map(|p| p.ecosystem.as_str()) {
                    Some("PyPI") => "1.0",
                    _ => "1.0.0",
                };
                if let Match::Unknown(reason) = probe.matches_version(version) {
                    bad.push(format!("{}: {reason}", a.id));
                }
            }
        }
    }
    bad.sort();
    bad.dedup();
    expect![[r#"
        PYSEC-2019-125: advisory event "2019-09-12": invalid PEP 440 version "2019-09-12": unexpected text after the version
        PYSEC-2021-371: advisory event "0.2.0-n653": invalid PEP 440 version "0.2.0-n653": unexpected text after the version"#]].assert_eq(&bad.join("\n"));
}

#[test]
fn thousand_component_scan_and_persistence() {
    let (db, _) = shared_db();
    // A synthetic SBOM: every tenth package name of the three ecosystems
    // (hits guaranteed), padded with names that have no advisories.
    let mut components = Vec::new();
    for (i, a) in db.advisories().enumerate().filter(|(i, _)| i % 10 == 0) {
        let Some(p) = a.affected.first().and_then(|x| x.package.as_ref()) else {
            continue;
        };
        let eco = match p.ecosystem.as_str() {
            "PyPI" => ComponentEcosystem::Pypi,
            "Go" => ComponentEcosystem::Golang,
            _ => ComponentEcosystem::Cargo,
        };
        components.push(c(
            eco,
            &p.name,
            if i % 20 == 0 { "0.1.0" } else { "99.0.0" },
        ));
    }
    while components.len() < 1000 {
        components.push(c(
            ComponentEcosystem::Npm,
            &format!("no-such-{}", components.len()),
            "1.0.0",
        ));
    }
    components.truncate(1000);
    let _ = db.scan(&components);
    let start = Instant::now();
    let findings = db.scan(&components);
    let scan_time = start.elapsed();
    assert!(!findings.is_empty());

    let tmp = tempfile::tempdir().unwrap();
    let start = Instant::now();
    db.save(tmp.path()).unwrap();
    let save_time = start.elapsed();
    let start = Instant::now();
    let loaded = AdvisoryDb::load(tmp.path()).unwrap();
    let load_time = start.elapsed();
    eprintln!(
        "scan 1000 components: {scan_time:?}; save: {save_time:?}; load: {load_time:?} (this build's profile)"
    );
    assert_eq!(loaded.len(), db.len());
    assert_eq!(loaded.scan(&components), findings);
}
