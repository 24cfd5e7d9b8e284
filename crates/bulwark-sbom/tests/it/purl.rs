//! `Purl::parse` over `fixtures/purl/cases.txt`.

use std::fmt::Write as _;

use bulwark_sbom::{ComponentEcosystem, Purl};
use expect_test::expect_file;

use crate::support::fixtures;

#[test]
fn purl_cases() {
    let input = std::fs::read_to_string(fixtures("purl/cases.txt")).expect("read cases.txt");
    let mut out = String::new();
    for line in input.lines() {
        if line.is_empty() || line.starts_with("# ") {
            continue;
        }
        writeln!(out, "{line}").expect("write to String");
        match Purl::parse(line) {
            Ok(purl) => {
                let canonical = purl.to_string();
                // Display is canonical: parsing it again changes nothing.
                assert_eq!(Purl::parse(&canonical).as_ref(), Ok(&purl), "{line}");
                writeln!(
                    out,
                    "  => {canonical}\n     {:?} ns={:?} name={:?} version={:?} qualifiers={:?} subpath={:?} component_name={:?}",
                    purl.ecosystem(),
                    purl.namespace,
                    purl.name,
                    purl.version,
                    purl.qualifiers,
                    purl.subpath,
                    purl.component_name(),
                )
                .expect("write to String");
            }
            Err(e) => writeln!(out, "  !! {e}").expect("write to String"),
        }
    }
    expect_file![fixtures("purl/cases.expected")].assert_eq(&out);
}

/// `for_component` and `parse` agree: the purl an extractor builds reads
/// back to the same value, ecosystem and name.
#[test]
fn for_component_round_trips() {
    let cases = [
        (ComponentEcosystem::Debian, "libc6", "2.36-9+deb12u4"),
        (ComponentEcosystem::Alpine, "musl", "1.2.4-r2"),
        (ComponentEcosystem::Openwrt, "busybox", "1.36.1-1"),
        (ComponentEcosystem::Pypi, "requests", "2.31.0"),
        (ComponentEcosystem::Cargo, "serde", "1.0.0"),
        (ComponentEcosystem::Npm, "@angular/core", "16.0.0"),
        (ComponentEcosystem::Golang, "golang.org/x/net", "v0.17.0"),
        (ComponentEcosystem::Generic, "vendor blob/v2", "1.0@rc1"),
    ];
    for (ecosystem, name, version) in cases {
        let built = Purl::for_component(ecosystem, name, version, &[("arch", "arm64")]);
        let parsed = Purl::parse(&built.to_string()).expect("a built purl parses");
        assert_eq!(parsed, built, "{name}");
        assert_eq!(parsed.ecosystem(), ecosystem, "{name}");
        assert_eq!(parsed.component_name(), name, "{name}");
    }
}

#[test]
fn purl_limits() {
    let long = format!("pkg:generic/{}", "a".repeat(bulwark_sbom::MAX_PURL_LEN));
    let err = Purl::parse(&long).expect_err("over the limit");
    assert_eq!(
        err.to_string(),
        "purl is 8204 bytes long, over the limit of 8192"
    );
    // Many qualifiers: linear, and the duplicate found.
    let mut many = "pkg:generic/x?".to_owned();
    for i in 0..1000 {
        write!(many, "k{i}=v&").expect("write to String");
    }
    many.push_str("k5=again");
    let err = Purl::parse(&many).expect_err("duplicate key");
    assert_eq!(
        err.to_string(),
        "purl qualifier key \"k5\" appears more than once"
    );
}
