//! Fuzz target: feeds arbitrary bytes (decoded as lossy UTF-8) to every
//! `bulwark-pkgdb` parser and checks invariants that must hold for any
//! input: no panic, bounded output, sorted and deduplicated package lists,
//! diagnostics that point at real lines.
//!
//! Run with `cargo fuzz run pkgdb_parsers` from the `fuzz/` directory.

#![no_main]

use bulwark_pkgdb::{
    Diagnostic, MAX_DIAGNOSTICS, MAX_PACKAGES, Package, PackageSource, parse_apk_installed,
    parse_dpkg_status, parse_opkg_status, parse_os_release,
};
use libfuzzer_sys::fuzz_target;

fn check(
    text: &str,
    source: PackageSource,
    (packages, diagnostics): (Vec<Package>, Vec<Diagnostic>),
) {
    let line_count = text.split('\n').count();
    assert!(packages.len() <= MAX_PACKAGES);
    assert!(diagnostics.len() <= MAX_DIAGNOSTICS + 2);
    for pair in packages.windows(2) {
        let key = |p: &Package| (p.name.clone(), p.arch.clone(), p.version.clone());
        assert!(key(&pair[0]) <= key(&pair[1]), "not sorted");
        assert_ne!(pair[0], pair[1], "not deduplicated");
    }
    for p in &packages {
        assert_eq!(p.source, source);
        for value in [Some(&p.name), Some(&p.version), p.arch.as_ref()]
            .into_iter()
            .flatten()
        {
            assert!(!value.is_empty());
            assert!(!value.chars().any(|c| c.is_control() || c.is_whitespace()));
        }
    }
    for d in &diagnostics {
        assert!(d.line >= 1 && d.line <= line_count, "bad line {}", d.line);
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check(&text, PackageSource::Dpkg, parse_dpkg_status(&text));
    check(&text, PackageSource::Opkg, parse_opkg_status(&text));
    check(&text, PackageSource::Apk, parse_apk_installed(&text));
    let _ = parse_os_release(&text);
});
