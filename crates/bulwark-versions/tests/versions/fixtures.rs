//! The fixture tables, checked against this crate alone (the differential
//! tests check the same tables against the references), and properties
//! that hold for every ecosystem.

use std::cmp::Ordering;

use bulwark_versions::{Ecosystem, ParseErrorKind, compare, validate};

use crate::generate::{Rng, pairs, version};
use crate::support::{Expected, cases, invalid, real_world};

#[test]
fn comparison_tables() {
    let mut failures = Vec::new();
    let mut count = 0;
    for eco in Ecosystem::ALL {
        for case in cases(eco) {
            count += 1;
            let got = Expected::of(&compare(eco, &case.a, &case.b));
            if got != case.expected {
                failures.push(format!(
                    "{}: {eco} {:?} vs {:?}: expected {}, got {}",
                    case.at,
                    case.a,
                    case.b,
                    case.expected.symbol(),
                    got.symbol()
                ));
            }
            // Swapping the sides reverses the answer.
            let swapped = Expected::of(&compare(eco, &case.b, &case.a));
            let reversed = match case.expected {
                Expected::Cmp(ord) => Expected::Cmp(ord.reverse()),
                Expected::Err => Expected::Err,
            };
            if swapped != reversed {
                failures.push(format!("{}: not antisymmetric", case.at));
            }
        }
    }
    assert!(count > 200, "only {count} fixture cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_versions_are_clear_errors() {
    for eco in Ecosystem::ALL {
        let entries = invalid(eco);
        assert!(
            entries.len() >= 15,
            "{eco}: only {} invalid fixtures",
            entries.len()
        );
        for entry in entries {
            let err = validate(eco, &entry.version).expect_err(&format!(
                "{}: {:?} should be invalid",
                entry.at, entry.version
            ));
            assert_eq!(err.ecosystem(), eco, "{}", entry.at);
            let message = err.to_string();
            assert!(
                message.contains(&eco.to_string()),
                "{}: {message}",
                entry.at
            );
            assert!(
                err.input().len() <= 64 + '…'.len_utf8(),
                "{}: input not truncated",
                entry.at
            );
            // Either side being invalid fails the comparison.
            assert!(compare(eco, "1", &entry.version).is_err(), "{}", entry.at);
            assert!(compare(eco, &entry.version, "1").is_err(), "{}", entry.at);
        }
    }
}

#[test]
fn too_long_and_empty_are_named() {
    for eco in Ecosystem::ALL {
        let long = format!("1.{}", "0".repeat(300));
        let err = validate(eco, &long).unwrap_err();
        assert_eq!(err.kind(), &ParseErrorKind::TooLong { len: 302 });
        assert_eq!(
            validate(eco, "").unwrap_err().kind(),
            &ParseErrorKind::Empty
        );
        let unicode = validate(eco, "1.0é").unwrap_err();
        assert_eq!(
            unicode.kind(),
            &ParseErrorKind::InvalidChar { ch: 'é', at: 3 }
        );
    }
}

#[test]
fn real_world_versions_parse_and_sort_consistently() {
    for eco in Ecosystem::ALL {
        let mut versions = real_world(eco);
        assert!(
            versions.len() >= 40,
            "{eco}: only {} real-world versions",
            versions.len()
        );
        for v in &versions {
            validate(eco, v).unwrap_or_else(|e| panic!("{e}"));
        }
        versions.sort_by(|a, b| compare(eco, a, b).unwrap());
        // A total order: every earlier version is <= every later one.
        for (i, a) in versions.iter().enumerate() {
            for b in &versions[i..] {
                assert_ne!(
                    compare(eco, a, b),
                    Ok(Ordering::Greater),
                    "{eco}: {a} sorted before {b}"
                );
            }
        }
    }
}

#[test]
fn generated_pairs_are_antisymmetric_and_transitive() {
    for (salt, eco) in Ecosystem::ALL.into_iter().enumerate() {
        for (a, b) in pairs(eco, 2000, 100 + salt as u64) {
            let ab = compare(eco, &a, &b).ok();
            let ba = compare(eco, &b, &a).ok();
            assert_eq!(ab, ba.map(Ordering::reverse), "{eco}: {a:?} vs {b:?}");
            if ab.is_some() {
                assert_eq!(compare(eco, &a, &a), Ok(Ordering::Equal), "{eco}: {a:?}");
            }
        }
        // Sorting valid generated versions gives a consistent order.
        let mut rng = Rng::new(200 + salt as u64);
        let mut valid: Vec<String> = (0..400)
            .map(|_| version(eco, &mut rng))
            .filter(|v| validate(eco, v).is_ok())
            .collect();
        valid.sort_by(|a, b| compare(eco, a, b).unwrap());
        for (i, a) in valid.iter().enumerate() {
            for b in &valid[i..] {
                assert_ne!(
                    compare(eco, a, b),
                    Ok(Ordering::Greater),
                    "{eco}: {a} sorted before {b}"
                );
            }
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let alphabet: Vec<char> = "0123456789.-+~_:!abcdeprvxzAZ \t\n\0é∞\u{feff}"
        .chars()
        .collect();
    let mut rng = Rng::new(300);
    for eco in Ecosystem::ALL {
        for _ in 0..3000 {
            let len = rng.below(24);
            let a: String = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            let b = version(eco, &mut rng);
            let _ = compare(eco, &a, &b);
            let _ = compare(eco, &b, &a);
        }
    }
}
