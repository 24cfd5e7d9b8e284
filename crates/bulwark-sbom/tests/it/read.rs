//! `Sbom::from_json` over the fixture folders: each `NAME.json` has a
//! `NAME.expected` beside it with the SBOM read, or the error.

use std::path::Path;

use expect_test::expect_file;

use crate::support::{file_name, json_files, read_fixture, render};

fn expected_path(path: &Path) -> std::path::PathBuf {
    path.with_extension("expected")
}

/// Documents that must read: `valid/` (the reference validators accept
/// them too) and `laxer/` (they do not; see the README there).
#[test]
fn valid_and_laxer_fixtures_read() {
    for dir in ["sbom/valid", "sbom/laxer"] {
        for path in json_files(dir) {
            let sbom = read_fixture(&path)
                .unwrap_or_else(|e| panic!("{dir}/{} must read: {e}", file_name(&path)));
            expect_file![expected_path(&path)].assert_eq(&render(&sbom));
        }
    }
}

#[test]
fn invalid_fixtures_fail_with_a_path() {
    for path in json_files("sbom/invalid") {
        let err = match read_fixture(&path) {
            Ok(sbom) => panic!(
                "invalid/{} must not read, got:\n{}",
                file_name(&path),
                render(&sbom)
            ),
            Err(e) => e,
        };
        expect_file![expected_path(&path)].assert_eq(&format!("{err}\n"));
    }
}
