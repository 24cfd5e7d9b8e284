//! Where webhook deliveries may go: not into the server's own networks.
//!
//! Whoever may register a webhook could otherwise make the server POST to
//! its cloud metadata service (169.254.169.254), its own loopback ports, or
//! any host on the private networks behind it (server-side request
//! forgery). By default a delivery may only reach a public address:
//!
//! - refused addresses: unspecified, loopback, private (RFC 1918, unique
//!   local `fc00::/7`, site-local), shared (carrier-grade NAT,
//!   `100.64.0.0/10`), link-local, cloud metadata, multicast, broadcast and
//!   reserved ranges; an IPv6 address that embeds an IPv4 one (mapped,
//!   NAT64, 6to4) is judged by the IPv4 address;
//! - refused names: `localhost` and `*.localhost`, `*.local` (mDNS),
//!   `*.internal`, `*.home.arpa` and single-label names (resolved through
//!   the search domains of the server's own network);
//! - the allow-list (`webhook_allow` in the configuration) names networks
//!   (`10.1.2.0/24`, `127.0.0.1`) and host names that may be reached
//!   anyway. An allowed name is trusted with whatever it resolves to.
//!
//! Names are checked when a webhook is registered and again, with every
//! address they resolve to, when a delivery connects
//! ([`super::Webhooks`]'s resolver): a name that resolved to a public
//! address at registration and to a private one later (DNS rebinding)
//! is refused at the connection.
//!
//! Pure: no DNS here; callers pass names and addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` is inside (an IPv4 network holds the IPv4-mapped form
    /// of its addresses too).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    /// `a.b.c.d/n`, `x::y/n`, or one address (the whole prefix).
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0..={max}"))?,
        };
        Ok(Network {
            addr: canonical(addr),
            prefix,
        })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The IPv4 address an IPv6 one stands for (mapped `::ffff:a.b.c.d`), or
/// the address itself.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Why an address is not a public destination, or `None` when it is.
pub fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(a) => special_v4(a),
        IpAddr::V6(a) => special_v6(a),
    }
}

fn special_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [o0, o1, o2, o3] = a.octets();
    Some(match (o0, o1) {
        _ if a == Ipv4Addr::new(169, 254, 169, 254) => "cloud metadata",
        (0, _) => "unspecified (0.0.0.0/8)",
        (10, _) | (172, 16..=31) | (192, 168) => "private (RFC 1918)",
        (100, 64..=127) => "shared (carrier-grade NAT, 100.64.0.0/10)",
        (127, _) => "loopback",
        (169, 254) => "link-local",
        (192, 0) if o2 == 0 => "IETF protocol assignments (192.0.0.0/24)",
        (198, 18 | 19) => "benchmarking (198.18.0.0/15)",
        (224..=239, _) => "multicast",
        _ if (o0, o1, o2, o3) == (255, 255, 255, 255) => "broadcast",
        (240..=255, _) => "reserved (240.0.0.0/4)",
        _ => return None,
    })
}

fn special_v6(a: Ipv6Addr) -> Option<&'static str> {
    let seg = a.segments();
    let bits = u128::from(a);
    let embedded_v4 = || Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    Some(match seg[0] {
        _ if a.is_unspecified() => "unspecified (::)",
        _ if a.is_loopback() => "loopback",
        // AWS's IPv6 instance metadata service.
        _ if a == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => "cloud metadata",
        // NAT64 (64:ff9b::/96) and IPv4-compatible (::/96) forms reach the
        // IPv4 address they carry.
        0x64 if seg[1] == 0xff9b && seg[2..6] == [0; 4] => {
            return special_v4(embedded_v4()).or(None);
        }
        0 if seg[1..6] == [0; 5] => return special_v4(embedded_v4()),
        // 6to4 (2002::/16) carries its IPv4 address in bits 16..48.
        0x2002 => {
            return special_v4(Ipv4Addr::from((bits >> 80) as u32));
        }
        0xfc00..=0xfdff => "private (unique local, fc00::/7)",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "private (site-local, fec0::/10)",
        0xff00..=0xffff => "multicast",
        _ => return None,
    })
}

/// Name suffixes that only mean something inside some private network.
const PRIVATE_SUFFIXES: [&str; 4] = [".localhost", ".local", ".internal", ".home.arpa"];

/// Why a host name is not a public destination, or `None`.
pub fn private_name(host: &str) -> Option<&'static str> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h == "localhost" {
        return Some("loopback (localhost)");
    }
    if let Some(s) = PRIVATE_SUFFIXES.iter().find(|s| h.ends_with(*s)) {
        return Some(match *s {
            ".localhost" => "loopback (*.localhost)",
            ".local" => "link-local name (*.local, mDNS)",
            ".internal" => "private name (*.internal)",
            _ => "private name (*.home.arpa)",
        });
    }
    if !h.contains('.') {
        return Some("single-label name (resolved through the server's own search domains)");
    }
    None
}

/// The configured exceptions, and the checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationPolicy {
    networks: Vec<Network>,
    names: Vec<String>,
}

/// A refused destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} is a {why} destination; webhooks reach public addresses only unless the server's `webhook_allow` setting lists it"
)]
pub struct Refused {
    /// The address or name.
    pub what: String,
    /// The kind of destination.
    pub why: &'static str,
}

impl DestinationPolicy {
    /// Exceptions from the configuration: networks (`10.0.0.0/8`,
    /// `127.0.0.1`) or host names; each entry's problem is reported.
    pub fn new<S: AsRef<str>>(allow: &[S]) -> Result<Self, Vec<String>> {
        let mut policy = DestinationPolicy::default();
        let mut problems = Vec::new();
        for entry in allow {
            let e = entry.as_ref().trim();
            let looks_like_ip = e.contains(':') || e.contains('/') || e.parse::<IpAddr>().is_ok();
            if looks_like_ip {
                match e.parse::<Network>() {
                    Ok(n) => policy.networks.push(n),
                    Err(p) => problems.push(p),
                }
            } else if is_dns_name(e) {
                policy
                    .names
                    .push(e.trim_end_matches('.').to_ascii_lowercase());
            } else {
                problems.push(format!("{e:?} is not a network, address or DNS name"));
            }
        }
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(problems)
        }
    }

    /// Whether the allow-list names `host` (then anything it resolves to
    /// may be reached).
    pub fn name_allowed(&self, host: &str) -> bool {
        let h = host.trim_end_matches('.');
        self.names.iter().any(|n| n.eq_ignore_ascii_case(h))
    }

    /// An address a delivery may connect to.
    pub fn check_addr(&self, ip: IpAddr) -> Result<(), Refused> {
        match special_purpose(ip) {
            Some(why) if !self.networks.iter().any(|n| n.contains(ip)) => Err(Refused {
                what: ip.to_string(),
                why,
            }),
            _ => Ok(()),
        }
    }

    /// A URL's host, as written (`[…]` around IPv6 taken off): an address
    /// is checked as one; a name by its form (its addresses are checked
    /// when a delivery resolves it).
    pub fn check_host(&self, host: &str) -> Result<(), Refused> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.check_addr(ip);
        }
        if self.name_allowed(bare) {
            return Ok(());
        }
        match private_name(bare) {
            Some(why) => Err(Refused {
                what: bare.to_owned(),
                why,
            }),
            None => Ok(()),
        }
    }
}

fn is_dns_name(s: &str) -> bool {
    let s = s.trim_end_matches('.');
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_refused_by_default() {
        let p = DestinationPolicy::default();
        for (addr, why) in [
            ("169.254.169.254", "cloud metadata"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared"),
            ("100.100.100.200", "shared"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("fc00::1", "private"),
            ("fdff:ffff::1", "private"),
            ("fec0::1", "site-local"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("192.0.0.170", "IETF"),
            ("198.18.0.1", "benchmarking"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
            ("64:ff9b::7f00:1", "loopback"),
            ("2002:a9fe:a9fe::1", "cloud metadata"),
            ("2002:0a00:0001::", "private"),
            ("::127.0.0.1", "loopback"),
        ] {
            let e = p.check_addr(ip(addr)).unwrap_err();
            assert!(e.why.contains(why), "{addr}: {}", e.why);
            assert!(e.to_string().contains("webhook_allow"), "{e}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "169.253.0.1",
            "2606:4700::1111",
            "2001:db8::1",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
            "198.20.0.1",
            "192.0.1.1",
        ] {
            assert_eq!(p.check_addr(ip(public)), Ok(()), "{public}");
        }
    }

    #[test]
    fn private_names_are_refused_by_form() {
        let p = DestinationPolicy::default();
        for name in [
            "localhost",
            "LOCALHOST.",
            "api.localhost",
            "printer.local",
            "metadata.google.internal",
            "nas.home.arpa",
            "intranet",
            "[::1]",
            "127.0.0.1",
        ] {
            assert!(p.check_host(name).is_err(), "{name}");
        }
        for name in [
            "hooks.example",
            "hooks.example.",
            "[2606:4700::1111]",
            "8.8.8.8",
        ] {
            assert_eq!(p.check_host(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn the_allow_list_opens_exactly_what_it_names() {
        let p = DestinationPolicy::new(&[
            "127.0.0.1",
            "10.1.0.0/16",
            "fd12::/16",
            "alerts.internal",
            "Siem",
        ])
        .unwrap();
        assert_eq!(p.check_addr(ip("127.0.0.1")), Ok(()));
        assert_eq!(p.check_addr(ip("::ffff:127.0.0.1")), Ok(()));
        assert!(p.check_addr(ip("127.0.0.2")).is_err());
        assert_eq!(p.check_addr(ip("10.1.200.3")), Ok(()));
        assert!(p.check_addr(ip("10.2.0.1")).is_err());
        assert_eq!(p.check_addr(ip("fd12:3::1")), Ok(()));
        assert!(p.check_addr(ip("fd13::1")).is_err());
        assert!(p.check_addr(ip("169.254.169.254")).is_err());
        assert_eq!(p.check_host("alerts.internal"), Ok(()));
        assert_eq!(p.check_host("siem"), Ok(()));
        assert!(p.name_allowed("ALERTS.internal."));
        assert!(p.check_host("other.internal").is_err());
        let all = DestinationPolicy::new(&["0.0.0.0/0", "::/0"]).unwrap();
        assert_eq!(all.check_addr(ip("169.254.169.254")), Ok(()));
        assert_eq!(all.check_addr(ip("fe80::1")), Ok(()));
    }

    #[test]
    fn bad_allow_entries_are_reported() {
        let e = DestinationPolicy::new(&["10.0.0.0/33", "::/129", "1.2.3.4/x", "bad name", ""])
            .unwrap_err();
        assert_eq!(e.len(), 5, "{e:?}");
    }
}
