//! Fuzzes what `bulwark detect replay` reads from a user's disk: any bytes
//! as a packet capture (pcap or pcapng) assembled into connection records
//! and replayed, and the same bytes as a Zeek conn.log. Nothing may panic;
//! every record a capture yields must be replayable.
#![no_main]

use bulwark_detect::{Engine, ReplayOptions, builtin_profile, replay, replay_pcap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut conns) = bulwark_pcap::Conns::new(data) {
        for r in conns.by_ref() {
            assert!(r.duration >= 0.0);
            assert!(r.ts.is_finite());
        }
    }
    let mut engine = Engine::new(builtin_profile());
    let mut out = Vec::new();
    let mut conn_out = Vec::new();
    if let Ok((summary, _)) = replay_pcap(
        data,
        &mut engine,
        &ReplayOptions::default(),
        &mut out,
        Some(&mut conn_out),
    ) {
        // Each assembled record is written once, and then scored or
        // counted as a problem.
        let written = conn_out.iter().filter(|b| **b == b'\n').count() as u64;
        assert!(summary.records + summary.rejected <= written);
        assert!(written <= summary.records + summary.rejected + summary.malformed);
    }
    let mut out = Vec::new();
    let _ = replay(data, builtin_profile(), &mut out);
});
