//! Fuzzes the MQTT device gateway: arbitrary bytes as the client side of one
//! `serve_session` over an in-memory duplex. The first byte picks the
//! protocol prelude (none, a v3.1.1 or a v5 CONNECT), so the fuzzer reaches
//! connected-state packets quickly. A command is queued up front, so a
//! subscription in the input exercises the command path. Nothing may panic,
//! and the session must end once the input is exhausted.
#![no_main]

use std::time::Duration;

use bulwark_mqtt::{
    GatewayHandler, RateLimit, Refused, Rejection, SessionCommand, SessionConfig, serve_session,
};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Nop;

impl GatewayHandler for Nop {
    fn admit(&self, _device: &str) -> Result<(), Refused> {
        Ok(())
    }
    fn publish(&self, _device: &str, _suffix: &str, _payload: &[u8]) {}
    fn reject(&self, _device: &str, _why: Rejection) {}
}

const CONNECT_V311: &[u8] = &[
    0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00,
];
const CONNECT_V5: &[u8] = &[
    0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x00,
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let prelude: &[u8] = match mode % 3 {
        0 => &[],
        1 => CONNECT_V311,
        _ => CONNECT_V5,
    };
    let mut input = prelude.to_vec();
    input.extend_from_slice(rest);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let cfg = SessionConfig {
            max_packet_bytes: 4096,
            rate: RateLimit {
                per_second: 1.0,
                burst: 4,
            },
            ..SessionConfig::default()
        };
        let (client, server) = tokio::io::duplex(8192);
        let (mut client_rd, mut client_wr) = tokio::io::split(client);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let _ = tx
            .send(SessionCommand::Publish {
                payload: b"cmd".to_vec(),
            })
            .await;
        let drain = tokio::spawn(async move {
            let mut sink = [0u8; 4096];
            while let Ok(n) = client_rd.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        });
        let feed = tokio::spawn(async move {
            // The session may close early: write errors are expected.
            let _ = client_wr.write_all(&input).await;
            let _ = client_wr.shutdown().await;
            client_wr
        });
        let session = serve_session(server, "fuzz-device", &cfg, &Nop, rx);
        let end = tokio::time::timeout(Duration::from_secs(5), session).await;
        assert!(end.is_ok(), "session did not end after EOF");
        drop(tx);
        let _ = feed.await;
        drain.abort();
    });
});
