//! Importing archives: counts, updates, withdrawals, per-file errors,
//! unsupported and broken archives, KEV catalogs, persistence failures.

use std::io::Write as _;

use bulwark_osv::{AdvisoryDb, Error};
use expect_test::expect;

use crate::test_data;

fn advisory(id: &str, modified: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","modified":"{modified}"{extra},"affected":[{{"package":{{"ecosystem":"PyPI","name":"pkg"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"1.0"}}]}}]}}]}}"#
    )
    .into_bytes()
}

/// A tar (gzipped when `gzip`) of `(path, bytes)` files plus a symlink.
fn archive(files: &[(&str, Vec<u8>)], gzip: bool) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, &bytes[..]).unwrap();
    }
    let mut link = tar::Header::new_ustar();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder
        .append_link(&mut link, "vulns/link.json", "/etc/passwd")
        .unwrap();
    let tar = builder.into_inner().unwrap();
    if !gzip {
        return tar;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

#[test]
fn archive_counts_and_per_file_errors() {
    let mut files = vec![
        ("db/LICENSE", b"CC-BY-4.0".to_vec()),
        ("db/vulns/.id-allocator", b"7".to_vec()),
        (
            "db/vulns/a/PYSEC-1.json",
            advisory("PYSEC-1", "2024-01-01T00:00:00Z", ""),
        ),
        (
            "db/vulns/a/PYSEC-2.json",
            advisory(
                "PYSEC-2",
                "2024-01-01T00:00:00Z",
                r#","withdrawn":"2024-02-01T00:00:00Z""#,
            ),
        ),
        (
            "db/vulns/package.json",
            br#"{"name":"not-an-advisory"}"#.to_vec(),
        ),
        ("db/vulns/broken.json", b"{\"id\": \"PYSEC-3\", ".to_vec()),
        (
            "db/vulns/huge.json",
            vec![b' '; bulwark_osv::MAX_ADVISORY_BYTES + 1],
        ),
    ];
    for entry in std::fs::read_dir(test_data("parse")).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("db/hostile/{}", path.file_name().unwrap().to_string_lossy());
        files.push((
            Box::leak(name.into_boxed_str()),
            std::fs::read(&path).unwrap(),
        ));
    }
    for gzip in [true, false] {
        let mut db = AdvisoryDb::new();
        let report = db
            .import_archive(&archive(&files, gzip)[..], "test.tar.gz")
            .unwrap();
        let mut errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        errors.sort();
        expect![[r#"
            test.tar.gz: 4 new, 0 updated, 4 unchanged, 1 withdrawn, 4 non-OSV files skipped, 23 errors
            changed: PYSEC-1 PYSEC-2 TEST-1 TEST-2
        "#]]
        .assert_eq(&format!(
            "{report}\nchanged: {}\n",
            report.changed_ids.join(" ")
        ));
        assert_eq!(
            report.osv_files,
            report.imported + report.updated + report.unchanged + report.errors.len()
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("db/vulns/huge.json: advisory is"))
        );
        assert!(
            errors.iter().any(
                |e| e.starts_with("db/vulns/broken.json: advisory ?: not a valid OSV document")
            )
        );
        assert_eq!(db.generation(), 1);
    }
}

#[test]
fn newer_modified_replaces_older() {
    let mut db = AdvisoryDb::new();
    let first = db
        .import_archive(
            &advisory("GHSA-1", "2024-01-01T00:00:00Z", "")[..],
            "a.json",
        )
        .unwrap();
    assert_eq!((first.imported, first.generation), (1, 1));
    let same = db
        .import_archive(
            &advisory("GHSA-1", "2024-01-01T00:00:00Z", r#","summary":"x""#)[..],
            "a.json",
        )
        .unwrap();
    assert_eq!(
        (same.unchanged, same.generation, db.generation()),
        (1, 1, 1)
    );
    assert_eq!(db.get("GHSA-1").unwrap().summary, None);
    let older = db
        .import_archive(
            &advisory("GHSA-1", "2023-01-01T00:00:00Z", "")[..],
            "a.json",
        )
        .unwrap();
    assert_eq!(older.unchanged, 1);
    let newer = db
        .import_archive(
            &advisory(
                "GHSA-1",
                "2024-03-01T00:00:00+01:00",
                r#","withdrawn":"2024-03-01T00:00:00Z""#,
            )[..],
            "b.yaml",
        )
        .unwrap();
    assert_eq!(
        (newer.updated, newer.withdrawn, newer.generation),
        (1, 1, 2)
    );
    assert_eq!(db.ids_changed_since(1), ["GHSA-1"]);
    assert!(db.ids_changed_since(2).is_empty());
    assert_eq!(db.source_of("GHSA-1"), Some("b.yaml"));
    // Withdrawn: kept, never matched.
    let c = bulwark_sbom::Component::new(bulwark_sbom::ComponentEcosystem::Pypi, "pkg", "0.1", &[]);
    assert!(db.matches(&c).is_empty());
}

#[test]
fn single_yaml_document_and_gzipped_json() {
    let mut db = AdvisoryDb::new();
    let yaml = std::fs::read(test_data("parse/ok-yaml.yaml")).unwrap();
    let r = db.import_archive(&yaml[..], "advisory.yaml").unwrap();
    assert_eq!(r.imported, 1);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&advisory("GO-1", "2024-01-01T00:00:00Z", ""))
        .unwrap();
    let r = db
        .import_archive(&gz.finish().unwrap()[..], "GO-1.json.gz")
        .unwrap();
    assert_eq!(r.imported, 1);
    // No extension: sniffed from the first byte.
    let r = db
        .import_archive(&advisory("GO-2", "2024-01-01T00:00:00Z", "")[..], "stdin")
        .unwrap();
    assert_eq!(r.imported, 1);
}

#[test]
fn broken_archives_change_nothing() {
    let mut db = AdvisoryDb::new();
    let good = archive(
        &[("x/GO-1.json", advisory("GO-1", "2024-01-01T00:00:00Z", ""))],
        true,
    );
    let truncated = &good[..good.len() / 2];
    let err = db.import_archive(truncated, "cut.tar.gz").unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err}");
    assert!(db.is_empty());
    assert_eq!(db.generation(), 0);

    let err = db
        .import_archive(&b"PK\x03\x04rest of a zip"[..], "db.zip")
        .unwrap_err();
    expect!["db.zip: not a usable zip archive: no readable central directory (truncated?): Missing end of central directory"]
        .assert_eq(&err.to_string());
}

#[test]
fn directory_import_does_not_follow_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("osv");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::write(
        dir.join("nested/GO-1.json"),
        advisory("GO-1", "2024-01-01T00:00:00Z", ""),
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("outside.json"),
        advisory("GO-2", "2024-01-01T00:00:00Z", ""),
    )
    .unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(tmp.path().join("outside.json"), dir.join("link.json")).unwrap();
    let mut db = AdvisoryDb::new();
    let r = db.import_path(&dir).unwrap();
    assert_eq!((r.imported, r.skipped, r.errors.len()), (1, 0, 0));
    assert_eq!(r.source, "osv");
}

#[test]
fn kev_catalog_validation() {
    let mut db = AdvisoryDb::new();
    let err = db
        .import_kev(br#"{"catalogVersion":"1","vulnerabilities":[{"cveID":"CVE-2024-1"}]}"#)
        .unwrap_err();
    expect![[r#"known exploited vulnerabilities catalog: vulnerabilities[0].cveID: "CVE-2024-1" is not a CVE id"#]]
        .assert_eq(&err.to_string());
    assert!(db.import_kev(b"[]").is_err());
    let ok = db
        .import_kev(br#"{"catalogVersion":"2","vulnerabilities":[{"cveID":"CVE-2024-12345"}]}"#)
        .unwrap();
    assert_eq!((ok.cves, ok.catalog_version.as_deref()), (1, Some("2")));
    assert!(db.is_known_exploited("CVE-2024-12345"));
}

#[test]
fn corrupt_database_files_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        AdvisoryDb::load(tmp.path()),
        Err(Error::DbIo { .. })
    ));
    assert!(AdvisoryDb::load_or_new(tmp.path()).unwrap().is_empty());
    let file = AdvisoryDb::file_in(tmp.path());
    for (content, expected) in [
        ("", "line 1: bad header"),
        (
            r#"{"format":"other","version":1,"generation":0}"#,
            "is not bulwark-osv-db version 1",
        ),
        (
            "{\"format\":\"bulwark-osv-db\",\"version\":1,\"generation\":1}\n{\"source\":\"s\",\"generation\":1,\"advisory\":{\"id\":\"../x\",\"modified\":\"2024-01-01T00:00:00Z\"}}",
            "line 2: advisory ?: field id",
        ),
    ] {
        std::fs::write(&file, content).unwrap();
        let err = AdvisoryDb::load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn the_import_time_is_saved_and_older_files_have_none() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = AdvisoryDb::new();
    assert_eq!(db.updated_at(), None);
    db.import_archive(&advisory("GO-1", "2024-01-01T00:00:00Z", "")[..], "a.json")
        .unwrap();
    let at = time::macros::datetime!(2026-11-20 10:00 UTC);
    db.set_updated_at(at);
    db.save(tmp.path()).unwrap();
    assert_eq!(AdvisoryDb::load(tmp.path()).unwrap().updated_at(), Some(at));
    // A file saved before the time was recorded loads undated.
    std::fs::write(
        AdvisoryDb::file_in(tmp.path()),
        "{\"format\":\"bulwark-osv-db\",\"version\":1,\"generation\":0}\n",
    )
    .unwrap();
    assert_eq!(AdvisoryDb::load(tmp.path()).unwrap().updated_at(), None);
}
