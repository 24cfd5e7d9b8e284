//! `test_data/parse/*`: one advisory per file, hostile ones included; the
//! verdict of every file is one line of `test_data/parse.expect`.

use bulwark_osv::{AdvisoryError, Format, MAX_ADVISORY_BYTES, parse_advisory};
use expect_test::expect_file;

use crate::{sorted_entries, test_data};

fn verdict(bytes: &[u8], format: Format) -> String {
    match parse_advisory(bytes, format) {
        Ok(a) => format!(
            "ok {} ({} affected, {} aliases)",
            a.id,
            a.affected.len(),
            a.aliases.len()
        ),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn parse_fixtures() {
    let mut out = String::new();
    for path in sorted_entries(&test_data("parse")) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let format = Format::from_path(&name).expect("fixture has a known extension");
        let bytes = std::fs::read(&path).unwrap();
        out.push_str(&format!("{name}: {}\n", verdict(&bytes, format)));
    }
    expect_file![test_data("parse.expect")].assert_eq(&out);
}

#[test]
fn oversized_advisory_is_rejected_before_parsing() {
    let huge = vec![b' '; MAX_ADVISORY_BYTES + 1];
    for format in [Format::Json, Format::Yaml] {
        assert_eq!(
            parse_advisory(&huge, format),
            Err(AdvisoryError::TooLarge {
                len: MAX_ADVISORY_BYTES + 1
            })
        );
    }
}

#[test]
fn arbitrary_bytes_do_not_panic() {
    // A cheap stand-in for the fuzz target: every prefix of every fixture,
    // and some byte noise, in both formats.
    for path in sorted_entries(&test_data("parse")) {
        let bytes = std::fs::read(&path).unwrap();
        for end in (0..bytes.len()).step_by(7) {
            let _ = parse_advisory(&bytes[..end], Format::Json);
            let _ = parse_advisory(&bytes[..end], Format::Yaml);
        }
    }
    let mut x: u32 = 1;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let _ = parse_advisory(&noise, Format::Json);
    let _ = parse_advisory(&noise, Format::Yaml);
}

#[test]
fn json_round_trip_is_lossless() {
    for path in sorted_entries(&test_data("parse")) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        if let Ok(a) = parse_advisory(&bytes, Format::from_path(&name).unwrap()) {
            let json = serde_json::to_vec(&a).unwrap();
            assert_eq!(
                parse_advisory(&json, Format::Json).as_ref(),
                Ok(&a),
                "{name}"
            );
        }
    }
}
