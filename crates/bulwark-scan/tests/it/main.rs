//! The pipeline on small artifacts built here: files reach YARA and the
//! secret detectors, components become the SBOM, an uploaded SBOM is
//! merged, vulnerabilities come from the advisories given, device
//! inventories become components, and SARIF names every finding.

use bulwark_extract::Limits;
use bulwark_gate::{Policy, Stage, Status, Subject, evaluate};
use bulwark_osv::AdvisoryDb;
use bulwark_proto::{InstalledPackage, Inventory};
use bulwark_sbom::{Component, ComponentEcosystem, Sbom};

fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

const ADVISORY: &str = r#"{"schema_version": "1.6.0", "id": "PYSEC-0000-3", "modified": "2026-01-01T00:00:00Z",
  "database_specific": {"severity": "HIGH"},
  "affected": [{"package": {"ecosystem": "PyPI", "name": "demo-lib"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]}]}"#;

#[test]
fn every_file_is_scanned_and_judged() {
    let rules = bulwark_yara::Rules::compile_sources(&[(
        "iot",
        r#"rule mirai { strings: $a = "/bin/busybox MIRAI" condition: $a }"#,
    )])
    .unwrap();
    let artifact = tar(&[
        (
            "usr/lib/python3/site-packages/demo_lib-1.0.dist-info/METADATA",
            b"Name: demo-lib\nVersion: 1.0\n",
        ),
        ("usr/bin/helper", b"xx /bin/busybox MIRAI xx"),
        ("etc/shadow", b"root::19000:0:99999:7:::\n"),
    ]);
    let mut scan =
        bulwark_scan::scan_bytes(&artifact, "fw", Some(&rules), &Limits::default()).unwrap();
    assert_eq!(scan.files_scanned, 3);
    assert_eq!(scan.malware.len(), 1);
    assert_eq!(scan.malware[0].path, "usr/bin/helper");
    assert!(
        scan.secrets.iter().any(|s| s.path == "etc/shadow"),
        "{:?}",
        scan.secrets
    );
    assert_eq!(scan.sbom.components.len(), 1);
    assert_eq!(scan.sbom_source, "extracted");
    // An uploaded SBOM adds to what was extracted.
    let up = Sbom {
        subject: "fw".into(),
        subject_version: None,
        components: vec![Component::new(
            ComponentEcosystem::Cargo,
            "serde",
            "1.0.0",
            &[],
        )],
    };
    bulwark_scan::merge_sbom(&mut scan, up);
    assert_eq!(scan.sbom.components.len(), 2);
    assert_eq!(scan.sbom_source, "uploaded+extracted");

    let mut db = AdvisoryDb::new();
    db.import_archive(ADVISORY.as_bytes(), "a.json").unwrap();
    let (findings, _) = bulwark_scan::findings(&scan, &db);
    assert_eq!(findings.vulnerabilities.len(), 1);
    assert_eq!(findings.vulnerabilities[0].id, "PYSEC-0000-3");
    assert_eq!(findings.vulnerabilities[0].fixed, vec!["2.0".to_owned()]);
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let subject = Subject {
        release: "fw@1",
        components: 2,
        findings: &findings,
        stage: Stage::Sign,
        unreadable: None,
        advisories: bulwark_gate::AdvisoryInput {
            count: db.len() as u64,
            updated_at: Some(now),
        },
    };
    let v = evaluate(&Policy::default(), 0, subject, &[], now);
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    assert_eq!(v.status, Status::Block);
    let codes: Vec<&str> = v.reasons.iter().map(|r| r.code.as_str()).collect();
    assert!(
        codes.contains(&"malware") && codes.contains(&"secret"),
        "{codes:?}"
    );
    let sarif = bulwark_scan::sarif(&scan, &findings, &v);
    assert_eq!(
        sarif["runs"][0]["results"].as_array().unwrap().len(),
        2 + findings.secrets.len()
    );
}

#[test]
fn unreadable_artifacts_are_errors_and_inventories_become_components() {
    assert!(
        bulwark_scan::scan_bytes(b"\x1f\x8b\x08\x00junk", "x", None, &Limits::default()).is_err()
    );
    let inv = Inventory {
        arch: "aarch64".into(),
        packages: vec![
            InstalledPackage {
                name: "openssl".into(),
                version: "3.0.11-1~deb12u2".into(),
                arch: Some("arm64".into()),
                source: "dpkg".into(),
            },
            InstalledPackage {
                name: "musl".into(),
                version: "1.2.4-r2".into(),
                arch: None,
                source: "apk".into(),
            },
        ],
        ..Inventory::default()
    };
    let c = bulwark_scan::inventory_components(&inv);
    assert_eq!(
        c[0].purl,
        "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=arm64"
    );
    assert_eq!(c[1].ecosystem, ComponentEcosystem::Alpine);
}
