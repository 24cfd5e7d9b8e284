//! Fuzzes what `bulwark advisories import` reads from an advisory feed:
//! any bytes as an OSV advisory (JSON and YAML) and as an advisory archive
//! (zip, tar, gzip or one document, told apart by magic bytes; the zip
//! seed in `fuzz/seeds/osv_advisories/` is shaped like OSV's `all.zip`).
//! Nothing may panic; an advisory that parses must round-trip through its
//! JSON form.
#![no_main]

use bulwark_osv::{AdvisoryDb, Format, parse_advisory};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Json, Format::Yaml] {
        if let Ok(a) = parse_advisory(data, format) {
            let json = serde_json::to_vec(&a).expect("an advisory serialises");
            let again = parse_advisory(&json, Format::Json).expect("our own JSON parses");
            assert_eq!(again.id, a.id);
        }
    }
    let mut db = AdvisoryDb::new();
    let _ = db.import_archive(data, "fuzz.tar.gz");
    let _ = db.import_kev(data);
});
