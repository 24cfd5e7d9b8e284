//! Hostile inputs too large to commit, generated here: deep nesting, too
//! many components, oversize input and strings. Each must fail with its
//! own error, quickly and without exhausting the stack.

use bulwark_sbom::{Limits, Sbom};
use expect_test::{Expect, expect};

#[track_caller]
fn check(bytes: &[u8], limits: &Limits, expect: Expect) {
    let got = match Sbom::from_json(bytes, limits) {
        Ok(sbom) => format!("read {} components", sbom.components.len()),
        Err(e) => e.to_string(),
    };
    expect.assert_eq(&got);
}

/// A CycloneDX 1.6 document whose components nest `depth` deep.
fn nested(depth: usize) -> Vec<u8> {
    let mut doc = r#"{"bomFormat":"CycloneDX","specVersion":"1.6","components":"#.to_owned();
    for i in 0..depth {
        doc.push_str(&format!(
            r#"[{{"type":"library","name":"c{i}","components":"#
        ));
    }
    doc.push_str("[]");
    doc.push_str(&"}]".repeat(depth));
    doc.push('}');
    doc.into_bytes()
}

/// A CycloneDX 1.6 document with `n` flat components.
fn flat(n: usize) -> Vec<u8> {
    let items: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"type":"library","name":"c{i}","purl":"pkg:cargo/c{i}@1"}}"#))
        .collect();
    format!(
        r#"{{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

#[test]
fn nesting_within_the_limit_reads() {
    check(
        &nested(32),
        &Limits::default(),
        expect!["read 32 components"],
    );
}

#[test]
fn components_nested_one_too_deep() {
    check(
        &nested(33),
        &Limits::default(),
        expect![
            "`components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0]` nests components more than 32 levels deep"
        ],
    );
}

#[test]
fn components_nested_ten_thousand_deep() {
    check(
        &nested(10_000),
        &Limits::default(),
        expect!["JSON nests arrays and objects deeper than 128 levels"],
    );
}

#[test]
fn arrays_nested_a_million_deep() {
    let mut doc = "[".repeat(1_000_000);
    doc.push_str(&"]".repeat(1_000_000));
    check(
        doc.as_bytes(),
        &Limits::default(),
        expect!["JSON nests arrays and objects deeper than 128 levels"],
    );
}

#[test]
fn brackets_inside_strings_are_not_nesting() {
    let doc = format!(
        r#"{{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{{"type":"library","name":"{}\"{}"}}]}}"#,
        "[".repeat(500),
        "{".repeat(500)
    );
    check(
        doc.as_bytes(),
        &Limits::default(),
        expect!["read 1 components"],
    );
}

#[test]
fn too_many_components() {
    let limits = Limits {
        max_components: 1000,
        ..Limits::default()
    };
    check(&flat(1000), &limits, expect!["read 1000 components"]);
    check(
        &flat(1001),
        &limits,
        expect!["`components[1000]` is one component more than the limit of 1000"],
    );
}

#[test]
fn too_many_nested_components_count_at_every_level() {
    let limits = Limits {
        max_components: 10,
        ..Limits::default()
    };
    check(
        &nested(11),
        &limits,
        expect![
            "`components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0].components[0]` is one component more than the limit of 10"
        ],
    );
}

#[test]
fn too_many_spdx_packages() {
    let packages: Vec<String> = (0..4)
        .map(|i| format!(r#"{{"SPDXID":"SPDXRef-{i}","name":"p{i}","downloadLocation":"NONE"}}"#))
        .collect();
    let doc = format!(
        r#"{{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"d","documentNamespace":"https://example.invalid/d","creationInfo":{{"created":"2024-01-01T00:00:00Z","creators":["Tool: t"]}},"packages":[{}]}}"#,
        packages.join(",")
    );
    let limits = Limits {
        max_components: 3,
        ..Limits::default()
    };
    check(
        doc.as_bytes(),
        &limits,
        expect!["`packages[3]` is one component more than the limit of 3"],
    );
}

#[test]
fn oversize_input() {
    let limits = Limits {
        max_bytes: 1024,
        ..Limits::default()
    };
    let doc = flat(100);
    check(
        &doc,
        &limits,
        expect!["input is 5740 bytes, over the limit of 1024"],
    );
    // The size is checked before anything is parsed.
    check(
        &vec![b'['; 1025],
        &limits,
        expect!["input is 1025 bytes, over the limit of 1024"],
    );
}

#[test]
fn oversize_string() {
    let limits = Limits {
        max_string_len: 100,
        ..Limits::default()
    };
    let doc = format!(
        r#"{{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{{"type":"library","name":"{}"}}]}}"#,
        "n".repeat(101)
    );
    check(
        doc.as_bytes(),
        &limits,
        expect!["`components[0].name` is 101 bytes long, over the limit of 100"],
    );
}

#[test]
fn byte_order_mark_and_junk() {
    let doc = b"\xEF\xBB\xBF{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\"}";
    check(doc, &Limits::default(), expect!["read 0 components"]);
    check(
        b"",
        &Limits::default(),
        expect!["input is not valid JSON: EOF while parsing a value at line 1 column 0"],
    );
    check(
        b"\xFF\xFE{}",
        &Limits::default(),
        expect!["input is not valid JSON: expected value at line 1 column 1"],
    );
    check(
        b"null",
        &Limits::default(),
        expect!["`$` must be an object, found null"],
    );
    check(
        br#"{"bomFormat":"CycloneDX","specVersion":"1.6"} trailing"#,
        &Limits::default(),
        expect!["input is not valid JSON: trailing characters at line 1 column 47"],
    );
}
