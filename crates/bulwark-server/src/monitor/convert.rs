//! Telemetry samples → detection datapoints.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use bulwark_detect::{Datapoint, Metric, Metrics, Value};
use bulwark_proto::telemetry::{NetCounters, Telemetry, TransportProto};
use time::OffsetDateTime;

fn proto(p: TransportProto) -> &'static str {
    match p {
        TransportProto::Tcp => "tcp",
        TransportProto::Udp => "udp",
    }
}

/// `proto/port` (`tcp/22`), into a string sized for it up front: it runs
/// for every socket of every sample.
fn proto_port(p: TransportProto, port: u16) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(9);
    s.push_str(proto(p));
    // Writing to a String cannot fail.
    let _ = write!(s, "/{port}");
    s
}

/// A set from a handful of elements (the usual sample has one listening
/// port and few connections): inserted one by one, so a set of one costs
/// one node, where `collect` first gathers, sorts and then bulk-builds.
fn set_of(items: impl ExactSizeIterator<Item = String>) -> BTreeSet<String> {
    const SMALL: usize = 16;
    if items.len() > SMALL {
        return items.collect();
    }
    let mut set = BTreeSet::new();
    for item in items {
        set.insert(item);
    }
    set
}

fn destination(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// The datapoint of one sample, timed by the server's clock (`now`): the
/// device's clock is not trusted for detection windows.
///
/// Traffic counters in telemetry are totals since boot; the datapoint
/// carries the increase since `previous` (this device's last sample). On
/// the first sample, or when a counter went backwards (reboot, wrap), the
/// traffic metrics are left out rather than guessed.
pub(crate) fn datapoint(
    device: &Arc<str>,
    t: &Telemetry,
    previous: Option<NetCounters>,
    now: OffsetDateTime,
) -> Datapoint {
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
    let listening = set_of(t.listening.iter().map(|l| proto_port(l.proto, l.port)));
    m.set(Metric::ListeningPorts, Value::Set(listening));
    let destinations = set_of(
        t.connections
            .iter()
            .map(|c| destination(c.remote_addr, c.remote_port)),
    );
    let ports = set_of(
        t.connections
            .iter()
            .map(|c| proto_port(c.proto, c.remote_port)),
    );
    m.set(Metric::RemoteDestinations, Value::Set(destinations));
    m.set(Metric::RemotePorts, Value::Set(ports));
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
    fn small_and_large_sets_are_the_same_sets() {
        for n in [0usize, 1, 2, 16, 17, 100] {
            // Duplicates and reverse order.
            let items: Vec<String> = (0..n).rev().map(|i| format!("e{}", i / 2)).collect();
            let expected: BTreeSet<String> = items.iter().cloned().collect();
            assert_eq!(set_of(items.into_iter()), expected, "{n} items");
        }
    }

    #[test]
    fn proto_port_matches_the_formatted_text_for_every_port() {
        for port in 0..=u16::MAX {
            for p in [TransportProto::Tcp, TransportProto::Udp] {
                assert_eq!(proto_port(p, port), format!("{}/{port}", proto(p)));
            }
        }
    }

    #[test]
    fn every_metric_is_known_to_the_engine_and_deltas_need_a_previous_sample() {
        let now = datetime!(2026-11-23 10:00 UTC);
        let first = datapoint(&"d".into(), &sample(1000), None, now);
        assert!(!first.metrics.contains_key("bytes_out"));
        for name in first.metrics.keys() {
            assert!(bulwark_detect::metric_kind(name).is_some(), "{name}");
        }
        let prev = sample(1000).net;
        let next = datapoint(&"d".into(), &sample(1500), Some(prev), now);
        assert_eq!(next.metrics.get("bytes_out"), Some(&Value::Number(500.0)));
        assert_eq!(next.time, now);
        assert_eq!(
            next.metrics.get("remote_destinations"),
            Some(&Value::Set(
                ["10.0.0.5:443".into(), "[2001:db8::1]:53".into()].into()
            ))
        );
        assert_eq!(
            next.metrics.get("listening_ports"),
            Some(&Value::Set(["tcp/23".into()].into()))
        );
        // A counter going backwards (reboot): traffic left out.
        let reboot = datapoint(&"d".into(), &sample(10), Some(prev), now);
        assert!(!reboot.metrics.contains_key("bytes_out"));
    }
}
