//! Fuzzes what `bulwark scan --sbom` and `release publish --sbom` read: any
//! bytes as a CycloneDX or SPDX document, and purls. Nothing may panic; an
//! SBOM that parses must write back out and parse again to the same
//! components.
#![no_main]

use bulwark_sbom::{Limits, Purl, Sbom};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(p) = Purl::parse(text)
    {
        let again = Purl::parse(&p.to_string()).expect("a canonical purl parses");
        assert_eq!(again, p);
    }
    let limits = Limits::default();
    let Ok(sbom) = Sbom::from_json(data, &limits) else {
        return;
    };
    let when = time::OffsetDateTime::UNIX_EPOCH;
    if let Ok(doc) = sbom.to_cyclonedx_1_6(uuid::Uuid::nil(), when) {
        let bytes = serde_json::to_vec(&doc).expect("a JSON value serialises");
        let back = Sbom::from_json(&bytes, &limits).expect("our own CycloneDX reads back");
        assert_eq!(back.components.len(), sbom.components.len());
    }
});
