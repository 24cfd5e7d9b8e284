//! Profiles: every `tests/fixtures/profiles/good/*.toml` parses; every
//! `bad/*.toml` fails with exactly the problems its `# expect:` lines
//! name (each a substring of one reported problem, in order).

use bulwark_detect::{Kind, MAX_BEHAVIOURS, Profile};

#[test]
fn good_profiles_parse() {
    let files = super::fixtures("profiles/good", &["toml"]);
    assert!(!files.is_empty());
    for path in files {
        let name = super::name(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        let p = Profile::from_toml(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!p.behaviours.is_empty(), "{name}");
        if name == "minimal.toml" {
            assert_eq!(p.version, "3");
        }
    }
}

#[test]
fn bad_profiles_report_every_problem() {
    let files = super::fixtures("profiles/bad", &["toml"]);
    assert!(files.len() >= 8, "hostile profiles missing");
    for path in files {
        let name = super::name(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        let expect: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(!expect.is_empty(), "{name}: no `# expect:` lines");
        let err = match Profile::from_toml(&text) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => e,
        };
        assert_eq!(
            err.problems.len(),
            expect.len(),
            "{name}: problems {:#?}",
            err.problems
        );
        for (want, have) in expect.iter().zip(&err.problems) {
            assert!(have.contains(want), "{name}: `{have}` lacks `{want}`");
        }
    }
}

#[test]
fn too_many_behaviours() {
    let mut text = String::from("group = \"g\"\nversion = \"1\"\n");
    for i in 0..=MAX_BEHAVIOURS {
        text.push_str(&format!(
            "[[behaviour]]\nname = \"b{i}\"\nseverity = \"low\"\nmetric = \"cpu_percent\"\noperator = \">\"\nthreshold = 1\n"
        ));
    }
    let err = Profile::from_toml(&text).unwrap_err();
    expect_test::expect![[r#"
        [
            "257 behaviours (at most 256)",
        ]
    "#]]
    .assert_debug_eq(&err.problems);
}

#[test]
fn huge_profile_is_refused_before_parsing() {
    let text = "#".repeat(bulwark_detect::MAX_PROFILE_BYTES + 1);
    let err = Profile::from_toml(&text).unwrap_err();
    assert!(err.problems[0].contains("bytes"), "{err}");
}

#[test]
fn defaults() {
    let p = Profile::from_toml(
        r#"
        group = "g"
        version = "1"
        [[behaviour]]
        name = "z"
        kind = "zscore"
        severity = "low"
        metric = "cpu_percent"
        threshold = 3
        "#,
    )
    .unwrap();
    expect_test::expect![[r#"
        ZScore {
            alpha: 0.1,
            threshold: 3.0,
            min_samples: 10,
        }
    "#]]
    .assert_debug_eq(&p.behaviours[0].kind);
    assert!(matches!(p.behaviours[0].kind, Kind::ZScore { .. }));
}
