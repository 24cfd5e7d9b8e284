//! Fuzzes what the device gateway will read from every device: any bytes
//! as a telemetry message, JSON or CBOR (told apart by the first byte).
//! Nothing may panic; a message that decodes must encode, in both
//! encodings, and decode again to the same value. The JSON fast path may
//! only ever accept what `serde_json` accepts, as the same value.
#![no_main]

use bulwark_proto::telemetry::{Encoding, Telemetry, decode, decode_json_fast};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(fast) = decode_json_fast(text)
    {
        let slow: Telemetry = serde_json::from_str(text).expect("serde_json accepts what the fast path did");
        assert_eq!(slow, fast);
    }
    if let Ok(t) = decode(data) {
        for encoding in [Encoding::Json, Encoding::Cbor] {
            let bytes = t
                .encode_as(encoding)
                .expect("a decoded message is valid and encodes");
            assert_eq!(Encoding::of(&bytes), encoding);
            assert_eq!(decode(&bytes).expect("our own encoding decodes"), t);
        }
    }
});
