//! The release gate from the command line: `bulwark scan` locally (table,
//! JSON, SARIF, SBOM out, waivers file, exit codes), then against a real
//! server: `release publish` shows the verdict and exits 4 when blocked,
//! `advisories import --server` raises an alert, `advisories affected`,
//! `waivers add`, `release gate` (exit 4 when blocked) and `sbom`; an OSV
//! `all.zip` imported through the server, the verdict's advisory line and
//! warnings, and the policy's `unscored_severity`.

use std::path::Path;

use crate::support::*;

const RULE: &str = r#"rule mirai_marker { strings: $a = "/bin/busybox MIRAI" condition: $a }"#;
const ADVISORY: &str = r#"{"schema_version": "1.6.0", "id": "PYSEC-0000-9", "aliases": ["CVE-0000-9999"],
  "modified": "2026-01-01T00:00:00Z", "summary": "demo-lib runs what it reads",
  "database_specific": {"severity": "CRITICAL"},
  "affected": [{"package": {"ecosystem": "PyPI", "name": "demo-lib"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]}]}"#;

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// A root filesystem: one vulnerable Python distribution, and optionally
/// a bot and an account without a password.
fn rootfs(dir: &Path, dirty: bool) {
    write(
        dir,
        "usr/lib/python3/site-packages/demo_lib-1.0.dist-info/METADATA",
        b"Metadata-Version: 2.1\nName: demo-lib\nVersion: 1.0\n",
    );
    if dirty {
        write(
            dir,
            "usr/bin/helper",
            b"\x7fELF....../bin/busybox MIRAI....",
        );
        write(dir, "etc/shadow", b"root::19000:0:99999:7:::\n");
    }
}

fn tar_gz(dir: &Path, out: &Path) {
    let status = std::process::Command::new("tar")
        .args(["-czf"])
        .arg(out)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn scan_locally_then_gate_releases_on_a_server() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (dirty, clean) = (t.join("dirty"), t.join("clean"));
    rootfs(&dirty, true);
    rootfs(&clean, false);
    write(t, "rules/iot.yar", RULE.as_bytes());
    write(t, "adv/PYSEC-0000-9.json", ADVISORY.as_bytes());
    let db = t.join("db");
    let s = |p: &Path| p.to_str().unwrap().to_owned();

    // Local: import, then scan a directory.
    let (code, out, err) = run(bulwark().args([
        "advisories",
        "import",
        "--db",
        &s(&db),
        &s(&t.join("adv/PYSEC-0000-9.json")),
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 new"), "{out}");
    let scan = |extra: &[&str]| {
        let mut c = bulwark();
        c.args([
            "scan",
            &s(&dirty),
            "--db",
            &s(&db),
            "--rules",
            &s(&t.join("rules")),
        ])
        .args(extra);
        run(&mut c)
    };
    let (code, out, err) = scan(&[]);
    assert_eq!(code, 4, "blocked exits 4: {out}\n{err}");
    for needle in [
        "PYSEC-0000-9",
        "pkg:pypi/demo-lib@1.0",
        "iot.mirai_marker usr/bin/helper",
        "etc/shadow",
    ] {
        assert!(out.contains(needle), "missing {needle} in {out}");
    }
    assert!(err.contains("gate: BLOCKED"), "{err}");
    let (code, out, _) = scan(&["--sarif"]);
    assert_eq!(code, 4);
    let sarif: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(
        sarif["runs"][0]["results"].as_array().unwrap().len() >= 3,
        "{sarif}"
    );
    let sbom_out = t.join("sbom.cdx.json");
    let (_, out, _) = scan(&["--json", "--sbom-out", &s(&sbom_out)]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["verdict"]["status"], "block");
    let cdx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sbom_out).unwrap()).unwrap();
    assert_eq!(cdx["specVersion"], "1.6");
    // The clean tree passes once its one vulnerability is waived.
    write(
        t,
        "waivers.json",
        br#"[{"finding": "CVE-0000-9999", "release": "clean@*", "reason": "not reachable", "expires_at": "2099-01-01T00:00:00Z"}]"#,
    );
    let (code, _, err) = run(bulwark().args([
        "scan",
        &s(&clean),
        "--db",
        &s(&db),
        "--name",
        "clean@1",
        "--waivers",
        &s(&t.join("waivers.json")),
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("waived"), "{err}");
    // Bad input: a clear message and exit 1.
    let (code, _, err) = run(bulwark().args(["scan", &s(&t.join("missing")), "--db", &s(&db)]));
    assert_eq!(code, 1, "{err}");
    write(t, "bad.yar", b"rule broken {");
    let (code, _, err) =
        run(bulwark().args(["scan", &s(&clean), "--db", &s(&db), "--rules", &s(t)]));
    assert_eq!(code, 1);
    assert!(err.contains("bad.yar"), "{err}");

    // A server with the same rules.
    let data = t.join("data");
    write(&data, "rules/iot.yar", RULE.as_bytes());
    let srv = start_server(&data);
    let (dirty_tgz, clean_tgz) = (t.join("dirty.tar.gz"), t.join("clean.tar.gz"));
    tar_gz(&dirty, &dirty_tgz);
    tar_gz(&clean, &clean_tgz);
    let publish = |file: &Path, version: &str| {
        run(srv.cli().args([
            "release",
            "publish",
            &s(file),
            "--name",
            "fw",
            "--version",
            version,
            "--installer",
            "ab",
        ]))
    };
    let (code, out, err) = publish(&dirty_tgz, "1.0");
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains("[malware]") && err.contains("mirai_marker"),
        "{err}"
    );
    let (code, out, err) = publish(&clean_tgz, "1.1");
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.trim().len(), 64, "stdout is the digest: {out}");
    assert!(err.contains("gate: PASS"), "{err}");

    // New advisories hit the passed release: an alert, and `affected`.
    let (code, out, err) = run(srv.cli().args([
        "advisories",
        "import",
        &s(&t.join("adv/PYSEC-0000-9.json")),
        "--server", // bare: $BULWARK_SERVER
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("alert PYSEC-0000-9 release:fw@1.1"), "{out}");
    let (_, out, _) = run(srv.cli().args(["advisories", "affected", "CVE-0000-9999"]));
    assert!(
        out.contains("release fw@1.1: pkg:pypi/demo-lib@1.0"),
        "{out}"
    );
    let (_, out, _) = run(srv.cli().args(["alerts", "list"]));
    assert!(out.contains("release:fw@1.1"), "{out}");
    // A header, the id first; filters (issue 19).
    assert_eq!(
        out.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "ID", "TIME", "KIND", "SEVERITY", "SUBJECT", "WHAT", "MESSAGE"
        ],
        "{out}"
    );
    let (_, out, _) = run(srv.cli().args(["alerts", "list", "--since", "1h"]));
    assert!(out.contains("release:fw@1.1"), "{out}");
    let (code, out, err) = run(srv.cli().args(["alerts", "list", "--severity", "high"]));
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("release:fw@1.1"), "{out}");
    let (code, _, err) = run(srv.cli().args(["alerts", "list", "--severity", "urgent"]));
    assert_ne!(code, 0);
    assert!(err.contains("severity"), "{err}");
    let (code, out, _) = run(srv.cli().args(["release", "gate", "fw@1.1"]));
    assert_eq!(code, 4, "a blocked release's gate exits 4: {out}");
    assert!(
        out.contains("gate: BLOCKED") && out.contains("PYSEC-0000-9"),
        "{out}"
    );

    // A waiver opens it again.
    let (code, _, err) = run(srv.cli().args([
        "waivers",
        "add",
        "PYSEC-0000-9",
        "--release",
        "fw@1.1",
        "--expires",
        "2099-12-31",
        "--reason",
        "demo-lib parses only our own files",
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(srv.cli().args([
        "waivers",
        "add",
        "PYSEC-0000-9",
        "--release",
        "fw@1.1",
        "--expires",
        "yesterday",
        "--reason",
        "x",
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("--expires"), "{err}");
    let (code, out, _) = run(srv.cli().args(["release", "gate", "fw@1.1"]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("gate: PASS") && out.contains("waived"),
        "{out}"
    );
    let (_, out, _) = run(srv.cli().args(["waivers", "list"]));
    assert!(out.contains("demo-lib parses only our own files"), "{out}");

    // SBOM export.
    let (code, out, _) = run(srv.cli().args(["sbom", "fw@1.1", "--format", "spdx"]));
    assert_eq!(code, 0);
    let spdx: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    // A bad SBOM is named, and nothing is published.
    write(
        t,
        "bad.cdx.json",
        br#"{"bomFormat": "CycloneDX", "specVersion": "1.4"}"#,
    );
    let (code, _, err) = run(srv.cli().args([
        "release",
        "publish",
        &s(&clean_tgz),
        "--name",
        "fw",
        "--version",
        "1.2",
        "--installer",
        "ab",
        "--sbom",
        &s(&t.join("bad.cdx.json")),
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("bad.cdx.json"), "{err}");
}

/// The advisory archives: `$BULWARK_ADVISORY_DATA`, else the vendored
/// `data/advisories`, else `/work/shared/data/advisories`.
fn advisory_data() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("BULWARK_ADVISORY_DATA") {
        return dir.into();
    }
    let vendored = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/advisories");
    if vendored.is_dir() {
        return vendored;
    }
    "/work/shared/data/advisories".into()
}

/// An archive shaped like OSV's `all.zip`: flat `<ID>.json` entries,
/// deflated. The first `n` Go advisories of the vendored snapshot
/// (CC-BY-4.0, attributed in `data/advisories/PROVENANCE.md`), plus `extra`.
fn all_zip(n: usize, extra: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::{Read as _, Write as _};
    let tarball = advisory_data().join("golang/golang-vulndb-osv-a752ea54.tar.gz");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(tarball).unwrap(),
    ));
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        if files.len() < n && path.extension().is_some_and(|x| x == "json") {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.push((name, bytes));
        }
    }
    assert_eq!(files.len(), n);
    files.extend(extra.iter().map(|(n, b)| (n.to_string(), b.to_vec())));
    let mut out = Vec::new();
    let mut zip = rawzip::ZipArchiveWriter::new(&mut out);
    for (name, bytes) in &files {
        let (mut entry, config) = zip
            .new_file(name)
            .compression_method(rawzip::CompressionMethod::DEFLATE)
            .start()
            .unwrap();
        let encoder = flate2::write::DeflateEncoder::new(&mut entry, flate2::Compression::fast());
        let mut writer = config.wrap(encoder);
        writer.write_all(bytes).unwrap();
        let (encoder, descriptor) = writer.finish().unwrap();
        encoder.finish().unwrap();
        entry.finish(descriptor).unwrap();
    }
    zip.finish().unwrap();
    out
}

#[test]
fn osv_all_zip_through_the_server_and_what_the_gate_says_about_it() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let srv = start_server(&t.join("data"));
    let rootfs_dir = t.join("rootfs");
    rootfs(&rootfs_dir, false);
    let tgz = t.join("fw.tar.gz");
    tar_gz(&rootfs_dir, &tgz);

    // No advisories yet: the verdict passes, and says why that means little.
    let (code, _, err) = run(srv.cli().args([
        "release",
        "publish",
        &s(&tgz),
        "--name",
        "fw",
        "--version",
        "1.0",
        "--installer",
        "ab",
    ]));
    assert_eq!(code, 0, "{err}");
    for needle in [
        "gate: PASS",
        "advisories: none loaded",
        "warning [advisories_empty]",
    ] {
        assert!(err.contains(needle), "missing {needle} in {err}");
    }

    // OSV's all.zip, with one advisory (no score at all) that hits fw@1.0.
    let unscored = ADVISORY.replace(r#""database_specific": {"severity": "CRITICAL"},"#, "");
    let zip = all_zip(20, &[("PYSEC-0000-9.json", unscored.as_bytes())]);
    std::fs::write(t.join("all.zip"), &zip).unwrap();
    let (code, out, err) =
        run(srv
            .cli()
            .args(["advisories", "import", &s(&t.join("all.zip")), "--server"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("all.zip: 21 new"), "{out}");
    assert!(out.contains("alert PYSEC-0000-9 release:fw@1.0"), "{out}");
    let (_, out, _) = run(srv.cli().args(["advisories", "status"]));
    assert!(out.starts_with("21 advisories, last imported 20"), "{out}");

    // Unscored counts as "none" by default: a pass, with the database's line.
    let (code, out, _) = run(srv.cli().args(["release", "gate", "fw@1.0"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("gate: PASS"), "{out}");
    assert!(out.contains("advisories: 21, updated just now"), "{out}");
    assert!(!out.contains("warning ["), "{out}");
    let (_, out, _) = run(srv.cli().args(["release", "gate", "fw@1.0", "--json"]));
    let g: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(g["verdict"]["advisories"]["count"], 21, "{g}");
    assert_eq!(g["verdict"]["warnings"], serde_json::json!([]), "{g}");

    // The policy says unscored means critical: blocked, exit 4.
    std::fs::write(
        t.join("policy.json"),
        br#"{"unscored_severity": "critical"}"#,
    )
    .unwrap();
    let (code, _, err) = run(srv
        .cli()
        .args(["gate", "set-policy", &s(&t.join("policy.json"))]));
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(srv.cli().args(["release", "gate", "fw@1.0"]));
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("gate: BLOCKED") && out.contains("(no score; critical by policy)"),
        "{out}"
    );

    // Hostile or empty archives: refused with the reason, nothing changes.
    std::fs::write(t.join("fake.zip"), ADVISORY).unwrap();
    std::fs::write(
        t.join("empty.zip"),
        b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    )
    .unwrap();
    std::fs::write(t.join("cut.zip"), &zip[..zip.len() / 2]).unwrap();
    for (file, needle) in [
        ("fake.zip", "named .zip but not a zip archive"),
        ("empty.zip", "empty.zip contains no OSV advisories"),
        ("cut.zip", "not a usable zip archive"),
    ] {
        let (code, _, err) =
            run(srv
                .cli()
                .args(["advisories", "import", &s(&t.join(file)), "--server"]));
        assert_eq!(code, 1, "{file}: {err}");
        assert!(err.contains(needle), "{file}: {err}");
    }
    let (_, out, _) = run(srv.cli().args(["advisories", "status"]));
    assert!(out.starts_with("21 advisories"), "{out}");
}
