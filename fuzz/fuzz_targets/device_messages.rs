//! Fuzzes what a device (or anyone who reaches the device listener) can
//! send: JSON check-in and enrollment messages, decoded and validated the
//! way the server does. Nothing may panic; a message that validates must
//! survive a re-encode round trip unchanged.
#![no_main]

use bulwark_proto::{CheckinRequest, DeviceId, EnrollRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<CheckinRequest>(data) {
        if req.validate().is_ok() {
            let again: CheckinRequest = serde_json::from_slice(&serde_json::to_vec(&req).unwrap()).unwrap();
            assert_eq!(again, req);
            if let Some(inv) = &req.inventory {
                assert_eq!(inv.digest(), req.inventory_digest);
            }
        }
    }
    if let Ok(req) = serde_json::from_slice::<EnrollRequest>(data) {
        let _ = req.validate();
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(id) = DeviceId::parse(s) {
            assert_eq!(id.to_string(), s);
        }
        let _ = DeviceId::from_san_uri(s);
    }
});
