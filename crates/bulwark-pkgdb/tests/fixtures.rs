//! Data-driven tests: every folder `test_data/<format>/<case>/` holds an
//! `input` file and the `expected` rendering of parsing it.
//!
//! Run with `UPDATE_EXPECT=1` to (re)write the `expected` files, then review
//! the diff:
//!
//! ```text
//! UPDATE_EXPECT=1 cargo test -p bulwark-pkgdb --test fixtures
//! ```

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use bulwark_pkgdb::{
    Diagnostic, OsRelease, Package, parse_apk_installed, parse_dpkg_status, parse_opkg_status,
    parse_os_release,
};

fn render_packages((packages, diagnostics): (Vec<Package>, Vec<Diagnostic>)) -> String {
    let mut out = String::new();
    for p in &packages {
        let arch = p.arch.as_deref().unwrap_or("-");
        writeln!(
            out,
            "{} {} {} {}",
            p.name,
            p.version,
            arch,
            p.source.as_str()
        )
        .unwrap();
    }
    for d in &diagnostics {
        writeln!(out, "diagnostic line {}: {}", d.line, d.message).unwrap();
    }
    out
}

fn render_os_release(os: &OsRelease) -> String {
    let OsRelease {
        id,
        version_id,
        pretty_name,
        name,
        version_codename,
    } = os;
    let mut out = String::new();
    for (key, value) in [
        ("id", id),
        ("version_id", version_id),
        ("pretty_name", pretty_name),
        ("name", name),
        ("version_codename", version_codename),
    ] {
        match value {
            Some(v) => writeln!(out, "{key} = {v:?}").unwrap(),
            None => writeln!(out, "{key} = <none>").unwrap(),
        }
    }
    out
}

/// Walks `test_data/<format>/*`, renders each `input` with `render` and
/// compares with (or, under `UPDATE_EXPECT=1`, writes) `expected`. Reports
/// every failing case at once.
fn run_fixtures(format: &str, render: impl Fn(&str) -> String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(format);
    let update = std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1");
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixture cases in {}", root.display());

    let mut failures = Vec::new();
    for case in &cases {
        let input_path = case.join("input");
        let expected_path = case.join("expected");
        let bytes = fs::read(&input_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", input_path.display()));
        let actual = render(&String::from_utf8_lossy(&bytes));
        if update {
            fs::write(&expected_path, &actual)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", expected_path.display()));
            continue;
        }
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}: output differs from `expected`\n--- expected\n{expected}--- actual\n{actual}",
                case.display()
            )),
            Err(e) => failures.push(format!(
                "{}: cannot read `expected` ({e}); create it with \
                 `UPDATE_EXPECT=1 cargo test -p bulwark-pkgdb --test fixtures` and review it",
                expected_path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {format} fixture(s) failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn dpkg_fixtures() {
    run_fixtures("dpkg", |text| render_packages(parse_dpkg_status(text)));
}

#[test]
fn opkg_fixtures() {
    run_fixtures("opkg", |text| render_packages(parse_opkg_status(text)));
}

#[test]
fn apk_fixtures() {
    run_fixtures("apk", |text| render_packages(parse_apk_installed(text)));
}

#[test]
fn os_release_fixtures() {
    run_fixtures("os-release", |text| {
        render_os_release(&parse_os_release(text))
    });
}
