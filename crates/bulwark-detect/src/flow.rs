//! Flows: what a device's connections to one remote endpoint did, the
//! input of the behaviour semantics ([`crate::Kind::Scan`] and friends).
//!
//! Both paths build the same [`Flow`]s: `detect replay` makes one per
//! Zeek conn.log record (from `conn_state` and `history`), the server one
//! per socket the agent reported (its kernel state). Whatever the path,
//! a flow says who started it ([`Direction`]), where it went, how many
//! attempts it stands for and how they ended ([`Flow::answered`],
//! [`Flow::rejected`], the rest unanswered), and the traffic it carried.

use std::fmt;
use std::net::IpAddr;

/// Most flows in one datapoint (as many as a set may hold elements).
pub const MAX_FLOWS: usize = crate::metric::MAX_SET_LEN;

/// Who opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// The device opened it: the remote end is a destination.
    Outbound,
    /// A peer opened it towards one of the device's own listening ports.
    Inbound,
}

/// The transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP (the "port" is the ICMP type, as Zeek reports it).
    Icmp,
    /// Anything else, or not known.
    Other,
}

impl Proto {
    /// `tcp`, `udp`, `icmp` or `any`.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Other => "any",
        }
    }

    /// The protocol of a name (`tcp`, `udp`, `icmp`, case-insensitive);
    /// [`Proto::Other`] for anything else.
    pub fn from_name(name: &str) -> Proto {
        if name.eq_ignore_ascii_case("tcp") {
            Proto::Tcp
        } else if name.eq_ignore_ascii_case("udp") {
            Proto::Udp
        } else if name.eq_ignore_ascii_case("icmp") {
            Proto::Icmp
        } else {
            Proto::Other
        }
    }
}

/// Where an address is, as far as behaviour goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Loopback, link-local, multicast, broadcast or unspecified: traffic
    /// that never leaves the device's link. Never a destination.
    Local,
    /// Private (RFC 1918, unique-local, shared address space): the
    /// device's own network.
    Private,
    /// Anything else: the internet.
    Public,
}

impl Scope {
    /// The scope of an address.
    pub fn of(addr: IpAddr) -> Scope {
        match addr {
            IpAddr::V4(a) => {
                let o = a.octets();
                if a.is_loopback()
                    || a.is_link_local()
                    || a.is_multicast()
                    || a.is_broadcast()
                    || a.is_unspecified()
                    || o[0] == 0
                    || o[0] >= 240
                {
                    Scope::Local
                } else if a.is_private() || (o[0] == 100 && (64..128).contains(&o[1])) {
                    Scope::Private
                } else {
                    Scope::Public
                }
            }
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    return Scope::of(IpAddr::V4(v4));
                }
                let s = a.segments();
                if a.is_loopback()
                    || a.is_unspecified()
                    || a.is_multicast()
                    || (s[0] & 0xffc0) == 0xfe80
                {
                    Scope::Local
                } else if (s[0] & 0xfe00) == 0xfc00 {
                    Scope::Private
                } else {
                    Scope::Public
                }
            }
        }
    }
}

/// Connections to one remote endpoint, in one direction, since the last
/// datapoint (a live sample) or in one record (a conn.log line).
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// Who opened it.
    pub direction: Direction,
    /// The transport.
    pub proto: Proto,
    /// The other end's address.
    pub remote: IpAddr,
    /// The other end's port: the destination port of an outbound flow,
    /// the peer's (ephemeral) port of an inbound one.
    pub remote_port: u16,
    /// The device's port: its own service port for an inbound flow.
    pub local_port: u16,
    /// Connection attempts this flow stands for (at least 1).
    pub attempts: u32,
    /// Attempts the peer answered (handshake completed, or a UDP reply).
    pub answered: u32,
    /// Attempts the peer refused (a reset, an ICMP unreachable).
    pub rejected: u32,
    /// Bytes the device sent.
    pub bytes_out: u64,
    /// Bytes the device received.
    pub bytes_in: u64,
    /// Packets the device sent (0 when not known).
    pub packets_out: u64,
    /// Packets the device received (0 when not known).
    pub packets_in: u64,
    /// How long it lasted, seconds (`None` when not known).
    pub duration: Option<f64>,
}

impl Flow {
    /// An outbound flow of one attempt with nothing else known yet.
    pub fn outbound(proto: Proto, remote: IpAddr, remote_port: u16) -> Flow {
        Flow {
            direction: Direction::Outbound,
            proto,
            remote,
            remote_port,
            local_port: 0,
            attempts: 1,
            answered: 0,
            rejected: 0,
            bytes_out: 0,
            bytes_in: 0,
            packets_out: 0,
            packets_in: 0,
            duration: None,
        }
    }

    /// Attempts neither answered nor refused: half-open connections,
    /// probes into the void.
    pub fn unanswered(&self) -> u32 {
        self.attempts
            .saturating_sub(self.answered)
            .saturating_sub(self.rejected)
    }

    /// The remote address's [`Scope`].
    pub fn scope(&self) -> Scope {
        Scope::of(self.remote)
    }

    /// `host:port` of the remote end (`[v6]:port` for IPv6).
    pub fn endpoint(&self) -> String {
        host_port(self.remote, self.remote_port)
    }

    /// Checks the counts: at least one attempt, no more answered plus
    /// refused than attempts, a finite non-negative duration.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.attempts == 0 {
            return Err("a flow has at least one attempt");
        }
        if u64::from(self.answered) + u64::from(self.rejected) > u64::from(self.attempts) {
            return Err("a flow has more answered and refused attempts than attempts");
        }
        if self.duration.is_some_and(|d| !d.is_finite() || d < 0.0) {
            return Err("a flow's duration is not a finite, non-negative number");
        }
        Ok(())
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match self.direction {
            Direction::Outbound => "->",
            Direction::Inbound => "<-",
        };
        write!(
            f,
            "{arrow} {}/{} x{} ({} answered, {} refused)",
            self.proto.name(),
            self.endpoint(),
            self.attempts,
            self.answered,
            self.rejected
        )
    }
}

/// `host:port`, `[v6]:port` for IPv6.
pub(crate) fn host_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// What kind of service a destination port is, for the semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// Infrastructure every device uses: DNS, NTP, DHCP, mDNS, SSDP.
    /// Contacting it repeatedly is normal; scanning it is still scanning.
    Infrastructure,
    /// Web and IoT application protocols (HTTP(S), MQTT, CoAP, ...).
    Application,
    /// Remote login: telnet, SSH, FTP, RDP, VNC, ...
    Login,
    /// Anything else: not a port an IoT device's software usually dials.
    Unusual,
}

impl Service {
    pub(crate) fn of(proto: Proto, port: u16) -> Service {
        match (proto, port) {
            (Proto::Icmp, _) => Service::Infrastructure,
            (_, 53 | 67 | 68 | 123 | 546 | 547 | 853 | 1900 | 5353 | 5355) => {
                Service::Infrastructure
            }
            (_, 21 | 22 | 23 | 2222 | 2323 | 3389 | 5900 | 5901 | 110 | 143) => Service::Login,
            (
                _,
                80 | 443 | 8080 | 8443 | 8883 | 1883 | 5683 | 5684 | 8000 | 8008 | 8888 | 993 | 995
                | 465 | 587 | 5222 | 5223 | 3478 | 5349,
            ) => Service::Application,
            _ => Service::Unusual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let s = |a: &str| Scope::of(a.parse().unwrap());
        for local in [
            "127.0.0.1",
            "169.254.1.1",
            "224.0.0.251",
            "239.255.255.250",
            "255.255.255.255",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "ff02::fb",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(s(local), Scope::Local, "{local}");
        }
        for private in [
            "10.1.2.3",
            "192.168.1.1",
            "172.16.0.9",
            "100.64.0.1",
            "fd00::1",
        ] {
            assert_eq!(s(private), Scope::Private, "{private}");
        }
        for public in ["8.8.8.8", "2001:db8::1", "::ffff:1.1.1.1", "100.128.0.1"] {
            assert_eq!(s(public), Scope::Public, "{public}");
        }
    }

    #[test]
    fn counts_are_checked() {
        let mut f = Flow::outbound(Proto::Tcp, "1.2.3.4".parse().unwrap(), 23);
        assert_eq!(f.check(), Ok(()));
        assert_eq!(f.unanswered(), 1);
        f.answered = 1;
        f.rejected = 1;
        assert!(f.check().is_err());
        f.attempts = 0;
        assert!(f.check().is_err());
        f.attempts = 2;
        f.duration = Some(f64::NAN);
        assert!(f.check().is_err());
    }
}
