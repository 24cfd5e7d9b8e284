//! Fuzzes what a device's TUF client reads from an untrusted server: every
//! metadata role, canonical JSON, and a root verifying arbitrary metadata.
//! Nothing may panic; nothing the fuzzer makes may pass a signature check
//! by a key it does not hold.
#![no_main]

use bulwark_tuf::{Metadata, Root, Snapshot, Targets, Timestamp, canonical_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(c) = canonical_json(&v) {
            // Canonical JSON is a fixed point. (OLPC canonical JSON leaves
            // control characters unescaped, so it is not always JSON.)
            if let Ok(again) = serde_json::from_slice::<serde_json::Value>(&c) {
                assert_eq!(canonical_json(&again).unwrap(), c);
            }
        }
    }
    let _ = Metadata::<Timestamp>::from_slice(data);
    let _ = Metadata::<Snapshot>::from_slice(data);
    if let Ok(t) = Metadata::<Targets>::from_slice(data) {
        for path in t.signed().targets.keys().take(4) {
            if let Some(d) = &t.signed().delegations {
                let _ = d.roles_for_target(path);
            }
        }
    }
    if let Ok(root) = Metadata::<Root>::from_slice(data) {
        // A self-signed root made by the fuzzer may verify only with keys it
        // generated into the document; verification itself must not panic.
        let _ = root.signed().verify_role("root", &root);
        let _ = root.signed().verify_role("targets", &root);
    }
});
