//! Telemetry samples → detection datapoints.

use std::net::IpAddr;
use std::sync::Arc;

use bulwark_detect::{Datapoint, Direction, Flow, Metric, Metrics, Proto, Scope, Set, Value};
use bulwark_proto::telemetry::{
    Connection, ConnectionState, ListeningPort, NetCounters, Telemetry, TransportProto,
};
use smol_str::{SmolStr, format_smolstr};
use time::OffsetDateTime;

/// `proto/port` (`tcp/22`), built on the stack (at most 9 bytes, so the
/// element is stored inline): it runs for every socket of every sample.
/// Fixed-size writes only: copying a variable-length slice here was a
/// `memcpy` call per element, 1.5 % of gateway ingest.
fn proto_port(p: TransportProto, port: u16) -> SmolStr {
    let mut buf = [0u8; 21];
    buf[..4].copy_from_slice(match p {
        TransportProto::Tcp => b"tcp/",
        TransportProto::Udp => b"udp/",
    });
    let end = put_decimal(&mut buf, 4, port);
    // ASCII throughout; the fallback is unreachable.
    SmolStr::new_inline(std::str::from_utf8(&buf[..end]).unwrap_or_default())
}

/// Writes `n` in decimal at `buf[at..]`; returns the end.
fn put_decimal(buf: &mut [u8; 21], at: usize, n: u16) -> usize {
    let digits = match n {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1000..=9999 => 4,
        _ => 5,
    };
    let mut v = n;
    for b in buf[at..at + digits].iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
    at + digits
}

/// `host:port` (`10.0.0.5:443`, `[2001:db8::1]:53`): inline up to 23
/// bytes, which every IPv4 peer fits. IPv4 is written digit by digit on
/// the stack (at most 21 bytes): through `fmt`, the octets and port were
/// 3 % of gateway ingest of the typical sample.
fn destination(addr: IpAddr, port: u16) -> SmolStr {
    match addr {
        IpAddr::V4(a) => {
            let mut buf = [0u8; 21];
            let mut at = 0;
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[at] = b'.';
                    at += 1;
                }
                at = put_decimal(&mut buf, at, u16::from(o));
            }
            buf[at] = b':';
            at = put_decimal(&mut buf, at + 1, port);
            // ASCII throughout; the fallback is unreachable.
            SmolStr::new_inline(std::str::from_utf8(&buf[..at]).unwrap_or_default())
        }
        IpAddr::V6(a) => format_smolstr!("[{a}]:{port}"),
    }
}

/// Who opened a connection: a peer, when the device's side is one of its
/// own listening ports (or the kernel holds it half-open as an incoming
/// attempt); the device otherwise.
fn direction(c: &Connection, listening: &[ListeningPort]) -> Direction {
    let listens = listening
        .iter()
        .any(|l| l.proto == c.proto && l.port == c.local_port);
    if listens || c.state == ConnectionState::SynRecv {
        Direction::Inbound
    } else {
        Direction::Outbound
    }
}

/// What the conversion of a device's next sample needs from its previous
/// one: the traffic counters (for deltas) and which sockets it already
/// reported (a socket seen again is the same connection, not a new
/// attempt). Kept per device by whoever decodes its samples.
#[derive(Debug, Default)]
pub struct PreviousSample {
    net: Option<NetCounters>,
    /// Keys of the previous sample's sockets, sorted.
    sockets: Vec<u64>,
    /// The buffer the next sample's keys are built in (reused).
    scratch: Vec<u64>,
}

/// A socket's identity: protocol, local port, remote address and port.
fn socket_key(c: &Connection) -> u64 {
    use std::hash::BuildHasher as _;
    // A fixed seed: keys only ever meet keys of the same process.
    foldhash::fast::FixedState::with_seed(0x6275_6c77_6172_6b00).hash_one((
        c.proto == TransportProto::Tcp,
        c.local_port,
        c.remote_addr,
        c.remote_port,
    ))
}

/// One socket as a flow: an attempt nobody has answered yet while in
/// SYN-SENT (or SYN-RECV, incoming), answered in any other state.
fn flow(c: &Connection, direction: Direction) -> Flow {
    let proto = match c.proto {
        TransportProto::Tcp => Proto::Tcp,
        TransportProto::Udp => Proto::Udp,
    };
    let answered = u32::from(!matches!(
        c.state,
        ConnectionState::SynSent | ConnectionState::SynRecv
    ));
    Flow {
        direction,
        local_port: c.local_port,
        answered,
        ..Flow::outbound(proto, c.remote_addr, c.remote_port)
    }
}

/// The datapoint of one sample, timed by the server's clock (`now`): the
/// device's clock is not trusted for detection windows.
///
/// Traffic counters in telemetry are totals since boot; the datapoint
/// carries the increase since `previous` (this device's last sample). On
/// the first sample, or when a counter went backwards (reboot, wrap), the
/// traffic metrics are left out rather than guessed.
pub fn datapoint(
    device: &Arc<str>,
    t: &Telemetry,
    before: &mut PreviousSample,
    now: OffsetDateTime,
) -> Datapoint {
    let previous = before.net.replace(t.net);
    let mut m = Metrics::new();
    let num = |v: f64| Value::Number(v);
    m.set(Metric::CpuPercent, num(f64::from(t.cpu_percent)));
    m.set(Metric::MemoryPercent, num(f64::from(t.memory_percent)));
    m.set(Metric::ProcessCount, num(t.process_count as f64));
    m.set(
        Metric::ConnectionAttempts,
        num(t.connection_attempts as f64),
    );
    if let Some(f) = t.failed_logins {
        m.set(Metric::FailedLogins, num(f as f64));
    }
    if let Some(f) = t.failed_attempts {
        m.set(Metric::FailedAttempts, num(f as f64));
    }
    if let Some(p) = previous {
        let deltas = [
            (Metric::BytesIn, t.net.bytes_in.checked_sub(p.bytes_in)),
            (Metric::BytesOut, t.net.bytes_out.checked_sub(p.bytes_out)),
            (
                Metric::PacketsIn,
                t.net.packets_in.checked_sub(p.packets_in),
            ),
            (
                Metric::PacketsOut,
                t.net.packets_out.checked_sub(p.packets_out),
            ),
        ];
        if deltas.iter().all(|(_, d)| d.is_some()) {
            for (metric, d) in deltas {
                m.set(metric, num(d.unwrap_or(0) as f64));
            }
        }
    }
    let listening: Set = t
        .listening
        .iter()
        .map(|l| proto_port(l.proto, l.port))
        .collect();
    m.set(Metric::ListeningPorts, Value::Set(listening));
    // One pass over the sockets. Beyond the device's link (loopback and
    // link-local peers are never destinations, and the semantics ignore
    // them): the device's own connections are its destinations (clients
    // of its own listeners are not: a local service's clients once counted
    // as 104 "destinations" and quarantined a real agent), and every
    // socket the previous sample did not have is a flow (a connection
    // that lasts is one attempt, not one per sample).
    let mut keys = std::mem::take(&mut before.scratch);
    keys.clear();
    let (mut destinations, mut ports, mut flows) = (Vec::new(), Vec::new(), Vec::new());
    for c in &t.connections {
        let key = socket_key(c);
        keys.push(key);
        if Scope::of(c.remote_addr) == Scope::Local {
            continue;
        }
        let direction = direction(c, &t.listening);
        if direction == Direction::Outbound {
            destinations.push(destination(c.remote_addr, c.remote_port));
            ports.push(proto_port(c.proto, c.remote_port));
        }
        if before.sockets.binary_search(&key).is_err() {
            flows.push(flow(c, direction));
        }
    }
    m.set(
        Metric::RemoteDestinations,
        Value::Set(destinations.into_iter().collect()),
    );
    m.set(Metric::RemotePorts, Value::Set(ports.into_iter().collect()));
    m.set(Metric::Flows, Value::Flows(flows));
    keys.sort_unstable();
    before.scratch = std::mem::replace(&mut before.sockets, keys);
    Datapoint {
        device: Arc::clone(device),
        time: now,
        metrics: m,
    }
}

#[cfg(test)]
mod tests {
    use bulwark_proto::telemetry::{Connection, ConnectionState, ListeningPort};
    use time::macros::datetime;

    use super::*;

    fn proto(p: TransportProto) -> &'static str {
        match p {
            TransportProto::Tcp => "tcp",
            TransportProto::Udp => "udp",
        }
    }

    fn sample(bytes_out: u64) -> Telemetry {
        Telemetry {
            time: 1,
            listening: vec![ListeningPort {
                proto: TransportProto::Tcp,
                port: 23,
                addr: "0.0.0.0".parse().unwrap(),
            }],
            connections: vec![
                Connection {
                    proto: TransportProto::Tcp,
                    local_port: 40000,
                    remote_addr: "10.0.0.5".parse().unwrap(),
                    remote_port: 443,
                    state: ConnectionState::Established,
                },
                Connection {
                    proto: TransportProto::Udp,
                    local_port: 40001,
                    remote_addr: "2001:db8::1".parse().unwrap(),
                    remote_port: 53,
                    state: ConnectionState::Established,
                },
            ],
            net: NetCounters {
                bytes_out,
                ..NetCounters::default()
            },
            failed_logins: Some(3),
            process_count: 42,
            ..Telemetry::default()
        }
    }

    #[test]
    fn proto_port_matches_the_formatted_text_for_every_port() {
        for port in 0..=u16::MAX {
            for p in [TransportProto::Tcp, TransportProto::Udp] {
                let element = proto_port(p, port);
                assert_eq!(element, format!("{}/{port}", proto(p)));
                assert!(!element.is_heap_allocated());
            }
        }
    }

    #[test]
    fn ipv4_destinations_match_the_formatted_text() {
        let mut r: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000u32 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let a = std::net::Ipv4Addr::from((r >> 16) as u32);
            let port = match i % 4 {
                0 => (r & 0xffff) as u16,
                1 => (r % 10) as u16,
                2 => u16::MAX,
                _ => (r % 1000) as u16,
            };
            let got = destination(IpAddr::V4(a), port);
            assert_eq!(got, format!("{a}:{port}"));
            assert!(!got.is_heap_allocated());
        }
    }

    #[test]
    fn destinations_are_host_port_and_ipv4_ones_are_stored_inline() {
        let longest_v4 = destination("255.255.255.255".parse().unwrap(), 65535);
        assert_eq!(longest_v4, "255.255.255.255:65535");
        assert!(!longest_v4.is_heap_allocated());
        let v6 = destination(
            "2001:db8:1234:5678:9abc:def0:1234:5678".parse().unwrap(),
            53,
        );
        assert_eq!(v6, "[2001:db8:1234:5678:9abc:def0:1234:5678]:53");
    }

    #[test]
    fn loopback_peers_and_clients_of_own_listeners_are_not_destinations() {
        // The false quarantine of issue 17: an agent beside a local
        // service, whose 104 loopback clients counted as destinations.
        let mut t = sample(0);
        t.listening.push(ListeningPort {
            proto: TransportProto::Tcp,
            port: 8080,
            addr: "0.0.0.0".parse().unwrap(),
        });
        for i in 0..104u16 {
            t.connections.push(Connection {
                proto: TransportProto::Tcp,
                local_port: 40000 + i,
                remote_addr: "127.0.0.1".parse().unwrap(),
                remote_port: 8080,
                state: ConnectionState::Established,
            });
            t.connections.push(Connection {
                proto: TransportProto::Tcp,
                local_port: 8080,
                remote_addr: format!("192.0.2.{}", i + 1).parse().unwrap(),
                remote_port: 50000 + i,
                state: ConnectionState::Established,
            });
        }
        t.connections.push(Connection {
            proto: TransportProto::Tcp,
            local_port: 23,
            remote_addr: "198.51.100.9".parse().unwrap(),
            remote_port: 41000,
            state: ConnectionState::SynRecv,
        });
        t.connections.push(Connection {
            proto: TransportProto::Udp,
            local_port: 5353,
            remote_addr: "fe80::1".parse().unwrap(),
            remote_port: 5353,
            state: ConnectionState::Established,
        });
        let dp = datapoint(
            &"d".into(),
            &t,
            &mut PreviousSample::default(),
            datetime!(2026-11-23 10:00 UTC),
        );
        assert_eq!(
            dp.metrics.get("remote_destinations"),
            Some(&Value::Set(Set::from(["10.0.0.5:443", "[2001:db8::1]:53"])))
        );
        let Some(Value::Flows(flows)) = dp.metrics.get("flows") else {
            panic!("no flows");
        };
        // 2 outbound, 104 + 1 inbound; loopback and link-local left out.
        assert_eq!(flows.len(), 107);
        assert_eq!(
            flows
                .iter()
                .filter(|f| f.direction == Direction::Inbound)
                .count(),
            105
        );
        // And the built-in profile stays quiet on it.
        let mut engine = bulwark_detect::Engine::new(bulwark_detect::builtin_profile());
        assert_eq!(engine.observe(&dp).unwrap(), vec![]);
    }

    #[test]
    fn every_metric_is_known_to_the_engine_and_deltas_need_a_previous_sample() {
        let now = datetime!(2026-11-23 10:00 UTC);
        let mut before = PreviousSample::default();
        let first = datapoint(&"d".into(), &sample(1000), &mut before, now);
        assert!(!first.metrics.contains_key("bytes_out"));
        for name in first.metrics.keys() {
            assert!(bulwark_detect::metric_kind(name).is_some(), "{name}");
        }
        let mut fresh = PreviousSample {
            net: Some(sample(1000).net),
            ..PreviousSample::default()
        };
        let next = datapoint(&"d".into(), &sample(1500), &mut fresh, now);
        assert_eq!(next.metrics.get("bytes_out"), Some(&Value::Number(500.0)));
        assert_eq!(next.time, now);
        assert_eq!(
            next.metrics.get("remote_destinations"),
            Some(&Value::Set(Set::from(["10.0.0.5:443", "[2001:db8::1]:53"])))
        );
        assert_eq!(
            next.metrics.get("listening_ports"),
            Some(&Value::Set(Set::from(["tcp/23"])))
        );
        let flows = match next.metrics.get("flows") {
            Some(Value::Flows(f)) => f.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(flows.len(), 2);
        assert!(flows.iter().all(|f| f.direction == Direction::Outbound));
        // A counter going backwards (reboot): traffic left out.
        let reboot = datapoint(&"d".into(), &sample(10), &mut fresh, now);
        assert!(!reboot.metrics.contains_key("bytes_out"));
        // The same sockets again: no new flows (a connection that lasts is
        // one attempt, not one per sample).
        let Some(Value::Flows(again)) = reboot.metrics.get("flows") else {
            panic!("no flows");
        };
        assert!(again.is_empty(), "{again:?}");
        let Some(Value::Flows(first_flows)) = first.metrics.get("flows") else {
            panic!("no flows");
        };
        assert_eq!(first_flows.len(), 2);
    }
}
