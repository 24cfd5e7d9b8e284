//! Fuzzes what the device gateway will read from every device: any bytes
//! as a telemetry message. Nothing may panic; a message that decodes must
//! encode and decode again to the same value.
#![no_main]

use bulwark_proto::telemetry::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = decode(data) {
        let bytes = t.encode().expect("a decoded message is valid and encodes");
        assert_eq!(decode(&bytes).expect("our own encoding decodes"), t);
    }
});
