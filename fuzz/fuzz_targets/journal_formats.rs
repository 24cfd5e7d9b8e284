//! Fuzzes what a journal verifier reads from an untrusted server or bundle:
//! signed notes, checkpoints, entry bundles and journal entries. Nothing
//! may panic; a note accepted by `open` must carry a valid signature by the
//! one known key, and what parses must re-encode to the same bytes.
#![no_main]

use bulwark_tlog::{Checkpoint, NoteSigner, decode_entry_bundle, encode_entry_bundle, open};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let signer = NoteSigner::new("fuzz.invalid/log", &[5; 32]).unwrap();
    let verifier = signer.verifier();
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(v) = open(text, std::slice::from_ref(&verifier)) {
            // Only the fixed key can have signed it; the fuzzer cannot forge Ed25519.
            assert!(v.signers.iter().any(|s| s.name == "fuzz.invalid/log"));
        }
        if let Ok(cp) = Checkpoint::parse(text) {
            assert_eq!(Checkpoint::parse(&cp.to_text()).unwrap(), cp);
        }
        let _ = Checkpoint::open(text, std::slice::from_ref(&verifier));
        let _ = bulwark_tlog::NoteVerifier::from_vkey(text);
    }
    if let Ok(entries) = decode_entry_bundle(data) {
        assert_eq!(encode_entry_bundle(&entries).unwrap(), data);
    }
    if let Ok(e) = bulwark_proto::JournalEntry::from_canonical(data) {
        assert_eq!(e.to_canonical(), data);
    }
});
