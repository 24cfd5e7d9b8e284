//! The writers: round trips through the readers, determinism, and the
//! inputs they refuse.

use bulwark_sbom::{Component, ComponentEcosystem, Limits, Sbom};
use expect_test::expect;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

pub(crate) const SERIAL: Uuid = Uuid::from_u128(0x3e67_1687_395b_41f5_a30f_a589_21a6_9b79);
pub(crate) const WHEN: OffsetDateTime = datetime!(2024-05-01 14:30:15.123 +02:00);

/// An SBOM using every field and ecosystem, with awkward strings.
pub(crate) fn sample() -> Sbom {
    let mut libc = Component::new(
        ComponentEcosystem::Debian,
        "libc6",
        "2.36-9+deb12u4",
        &[("arch", "arm64")],
    );
    libc.license = Some("LGPL-2.1-or-later AND GPL-2.0-or-later".into());
    libc.sha256 = Some("3f5d2c1b".repeat(8));
    libc.found_in = Some("var/lib/dpkg/status".into());
    let mut django = Component::new(ComponentEcosystem::Pypi, "Django", "4.2.1", &[]);
    django.license = Some("BSD-3-Clause".into());
    django.found_in = Some("usr/lib/python3/dist-packages/Django-4.2.1.dist-info".into());
    let mut blob = Component::new(ComponentEcosystem::Generic, "vendor blob \"ü\"/v2", "", &[]);
    blob.sha256 = Some("ab".repeat(32));
    Sbom {
        subject: "gateway-firmware".into(),
        subject_version: Some("4.2.0".into()),
        components: vec![
            libc,
            Component::new(ComponentEcosystem::Alpine, "musl", "1.2.4-r2", &[]),
            Component::new(ComponentEcosystem::Openwrt, "busybox", "1.36.1-1", &[]),
            django,
            Component::new(ComponentEcosystem::Cargo, "serde", "1.0.200", &[]),
            Component::new(ComponentEcosystem::Npm, "@angular/core", "16.0.0", &[]),
            Component::new(
                ComponentEcosystem::Golang,
                "golang.org/x/net",
                "v0.17.0",
                &[],
            ),
            blob,
        ],
    }
}

/// Serialises a written document and reads it again.
fn read_back(doc: &serde_json::Value) -> Sbom {
    let bytes = serde_json::to_vec_pretty(doc).expect("a JSON value serialises");
    Sbom::from_json(&bytes, &Limits::default()).expect("our output reads back")
}

#[test]
fn cyclonedx_round_trip() {
    let sbom = sample();
    let doc = sbom.to_cyclonedx_1_6(SERIAL, WHEN).expect("writes");
    assert_eq!(read_back(&doc), sbom);
}

#[test]
fn spdx_round_trip() {
    let sbom = sample();
    let doc = sbom.to_spdx_2_3(SERIAL, WHEN).expect("writes");
    assert_eq!(read_back(&doc), sbom);
}

#[test]
fn round_trip_of_every_valid_fixture() {
    for path in crate::support::json_files("sbom/valid") {
        let mut sbom = crate::support::read_fixture(&path).expect("valid fixture reads");
        // The SPDX writer names an unnamed subject.
        if sbom.subject.is_empty() {
            sbom.subject = "unnamed".into();
        }
        let cdx = read_back(&sbom.to_cyclonedx_1_6(SERIAL, WHEN).expect("writes"));
        let spdx = read_back(&sbom.to_spdx_2_3(SERIAL, WHEN).expect("writes"));
        assert_eq!(cdx, sbom, "{}", path.display());
        assert_eq!(spdx, sbom, "{}", path.display());
    }
}

#[test]
fn output_is_deterministic() {
    let a = sample().to_cyclonedx_1_6(SERIAL, WHEN).expect("writes");
    let b = sample().to_cyclonedx_1_6(SERIAL, WHEN).expect("writes");
    assert_eq!(
        serde_json::to_string(&a).expect("serialise"),
        serde_json::to_string(&b).expect("serialise")
    );
    let a = sample().to_spdx_2_3(SERIAL, WHEN).expect("writes");
    let b = sample().to_spdx_2_3(SERIAL, WHEN).expect("writes");
    assert_eq!(
        serde_json::to_string(&a).expect("serialise"),
        serde_json::to_string(&b).expect("serialise")
    );
}

#[test]
fn header_fields() {
    let cdx = sample().to_cyclonedx_1_6(SERIAL, WHEN).expect("writes");
    expect![[r#"
        "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79" "2024-05-01T12:30:15Z""#]]
    .assert_eq(&format!(
        "{} {}",
        cdx["serialNumber"], cdx["metadata"]["timestamp"]
    ));
    let spdx = sample().to_spdx_2_3(SERIAL, WHEN).expect("writes");
    expect![[r#"
        "https://spdx.org/spdxdocs/bulwark-3e671687-395b-41f5-a30f-a58921a69b79" "2024-05-01T12:30:15Z""#]]
    .assert_eq(&format!(
        "{} {}",
        spdx["documentNamespace"], spdx["creationInfo"]["created"]
    ));
}

#[test]
fn free_text_licence_is_noassertion_in_spdx() {
    let mut sbom = sample();
    sbom.components[0].license = Some("GPLv2 or later".into());
    let doc = sbom.to_spdx_2_3(SERIAL, WHEN).expect("writes");
    assert_eq!(doc["packages"][1]["licenseDeclared"], "NOASSERTION");
    // CycloneDX keeps it as an expression string.
    let doc = sbom.to_cyclonedx_1_6(SERIAL, WHEN).expect("writes");
    assert_eq!(
        doc["components"][0]["licenses"][0]["expression"],
        "GPLv2 or later"
    );
}

#[test]
fn writers_refuse_what_would_be_invalid() {
    let check = |edit: &dyn Fn(&mut Sbom), expect: expect_test::Expect| {
        let mut sbom = sample();
        edit(&mut sbom);
        let cdx = sbom
            .to_cyclonedx_1_6(SERIAL, WHEN)
            .map(|_| ())
            .map_err(|e| e.to_string());
        let spdx = sbom
            .to_spdx_2_3(SERIAL, WHEN)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(cdx, spdx, "both writers agree");
        expect.assert_eq(&cdx.expect_err("refused"));
    };
    check(
        &|s| s.components[2].purl = "busybox@1".into(),
        expect!["`components[2].purl` is not a valid purl: purl must start with the scheme `pkg:`"],
    );
    check(
        &|s| s.components[1].sha256 = Some("abc".into()),
        expect!["`components[1].sha256` is invalid: a SHA-256 is 64 hex digits"],
    );
    check(
        &|s| s.components[4].name.clear(),
        expect!["`components[4].name` is invalid: must not be empty"],
    );
    let far = datetime!(-0001-12-31 23:00 UTC);
    expect!["timestamp -0001-12-31 23:00:00.0 +00:00:00 is outside the years 0000-9999"].assert_eq(
        &sample()
            .to_spdx_2_3(SERIAL, far)
            .expect_err("refused")
            .to_string(),
    );
}
