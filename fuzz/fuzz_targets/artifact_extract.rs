//! Fuzzes what the release gate takes apart: any bytes as an artifact (tar,
//! gzip, zstd, OCI layout, package databases, lockfiles, Go binaries), with
//! small limits so bombs are cut short, and every file handed on to the
//! secret detectors. Nothing may panic or hang.
#![no_main]

use bulwark_extract::{Limits, extract_reader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_total_bytes: 8 << 20,
        max_file_bytes: 1 << 20,
        max_entries: 4096,
        ..Limits::default()
    };
    let _ = extract_reader(
        std::io::Cursor::new(data),
        "fuzz",
        &limits,
        &mut |path: &str, _layer: usize, bytes: &[u8]| {
            let _ = bulwark_secrets::scan(path, bytes);
            Ok(())
        },
    );
});
