//! Parsers for `/proc/net/{tcp,tcp6,udp,udp6}`, `/proc/net/dev` and
//! `/proc/net/snmp`. Pure: text in, values out; malformed lines are counted
//! and skipped, never fatal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bulwark_proto::telemetry::{
    Connection, ConnectionState, ListeningPort, NetCounters, TransportProto,
};

/// What one socket table holds, with the number of lines that could not be
/// read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketTable {
    /// TCP sockets in LISTEN; UDP sockets bound with no peer.
    pub listening: Vec<ListeningPort>,
    /// Sockets with a peer: TCP established / SYN-SENT / SYN-RECV /
    /// closing (FIN-WAIT, TIME-WAIT, CLOSE-WAIT, LAST-ACK, CLOSING), and
    /// connected UDP.
    pub connections: Vec<Connection>,
    /// Lines skipped because they were malformed.
    pub bad_lines: usize,
}

/// Kernel TCP states (`include/net/tcp_states.h`) this module cares about.
const TCP_ESTABLISHED: u8 = 0x01;
const TCP_SYN_SENT: u8 = 0x02;
const TCP_SYN_RECV: u8 = 0x03;
const TCP_FIN_WAIT1: u8 = 0x04;
const TCP_FIN_WAIT2: u8 = 0x05;
const TCP_TIME_WAIT: u8 = 0x06;
const TCP_CLOSE: u8 = 0x07;
const TCP_CLOSE_WAIT: u8 = 0x08;
const TCP_LAST_ACK: u8 = 0x09;
const TCP_LISTEN: u8 = 0x0A;
const TCP_CLOSING: u8 = 0x0B;

/// Decodes the kernel's `ADDR:PORT` hex. The address is printed as 32-bit
/// words in host order; Bulwark's targets (x86, ARM, RISC-V) are
/// little-endian, so each word is read little-endian. Eight hex digits are
/// IPv4, thirty-two IPv6; anything else is refused.
pub fn parse_hex_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.split_once(':')?;
    if port.len() != 4 || !port.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let port = u16::from_str_radix(port, 16).ok()?;
    if !addr.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_le_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Parses one of `/proc/net/{tcp,tcp6,udp,udp6}` (the header line is
/// skipped). Results are sorted and free of duplicates.
pub fn parse_socket_table(text: &str, proto: TransportProto) -> SocketTable {
    let mut table = SocketTable::default();
    for line in text.lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        let parsed = (|| {
            let _slot = fields.next()?.strip_suffix(':')?;
            let local = parse_hex_endpoint(fields.next()?)?;
            let remote = parse_hex_endpoint(fields.next()?)?;
            let state = fields.next()?;
            if state.len() != 2 {
                return None;
            }
            let state = u8::from_str_radix(state, 16).ok()?;
            Some((local, remote, state))
        })();
        let Some(((laddr, lport), (raddr, rport), state)) = parsed else {
            table.bad_lines += 1;
            continue;
        };
        let listening = match proto {
            TransportProto::Tcp => state == TCP_LISTEN,
            TransportProto::Udp => state == TCP_CLOSE && rport == 0 && raddr.is_unspecified(),
        };
        if listening {
            if lport != 0 {
                table.listening.push(ListeningPort {
                    proto,
                    port: lport,
                    addr: laddr,
                });
            }
            continue;
        }
        let state = match (proto, state) {
            (_, TCP_ESTABLISHED) => ConnectionState::Established,
            (TransportProto::Tcp, TCP_SYN_SENT) => ConnectionState::SynSent,
            (TransportProto::Tcp, TCP_SYN_RECV) => ConnectionState::SynRecv,
            // Answered, and closing or just closed: a short connection
            // made since the last sample is still here (TIME-WAIT: 60 s).
            (
                TransportProto::Tcp,
                TCP_FIN_WAIT1 | TCP_FIN_WAIT2 | TCP_TIME_WAIT | TCP_CLOSE_WAIT | TCP_LAST_ACK
                | TCP_CLOSING,
            ) => ConnectionState::Closing,
            _ => continue,
        };
        table.connections.push(Connection {
            proto,
            local_port: lport,
            remote_addr: raddr,
            remote_port: rport,
            state,
        });
    }
    table.listening.sort();
    table.listening.dedup();
    table.connections.sort();
    table.connections.dedup();
    table
}

/// Sums `/proc/net/dev` over every interface except `lo`; returns the
/// counters and the number of malformed lines.
pub fn parse_net_dev(text: &str) -> (NetCounters, usize) {
    let mut c = NetCounters::default();
    let mut bad = 0;
    for line in text.lines().skip(2) {
        if line.trim().is_empty() {
            continue;
        }
        let Some((iface, rest)) = line.split_once(':') else {
            bad += 1;
            continue;
        };
        let nums: Option<Vec<u64>> = rest.split_whitespace().map(|f| f.parse().ok()).collect();
        let Some(nums) = nums.filter(|n| n.len() >= 10) else {
            bad += 1;
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        c.bytes_in = c.bytes_in.saturating_add(nums[0]);
        c.packets_in = c.packets_in.saturating_add(nums[1]);
        c.bytes_out = c.bytes_out.saturating_add(nums[8]);
        c.packets_out = c.packets_out.saturating_add(nums[9]);
    }
    (c, bad)
}

/// `Tcp: ActiveOpens` from `/proc/net/snmp` (a header line of names, then a
/// line of values); `None` when absent or malformed.
pub fn parse_snmp_active_opens(text: &str) -> Option<u64> {
    parse_snmp_tcp(text, "ActiveOpens")
}

/// The `Tcp:` counter `name` of `/proc/net/snmp` (`ActiveOpens`,
/// `AttemptFails`, ...); `None` when absent or malformed.
pub fn parse_snmp_tcp(text: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("Tcp:"));
    let names = lines.next()?;
    let values = lines.next()?;
    let i = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(i)?.parse().ok()
}
