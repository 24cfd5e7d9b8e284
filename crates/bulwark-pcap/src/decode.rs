//! One packet's headers: link layer (Ethernet with VLAN tags, Linux
//! cooked v1/v2, raw IP, BSD loopback), IPv4 or IPv6 (extension headers
//! skipped), then TCP, UDP, ICMP or ICMPv6. Every length is checked
//! against the bytes present; anything else is a [`Skip`] reason.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The transport protocol of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP or ICMPv6.
    Icmp,
}

impl Transport {
    /// `tcp`, `udp` or `icmp`, as Zeek names them.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Icmp => "icmp",
        }
    }
}

/// TCP flags.
pub(crate) const FIN: u8 = 0x01;
pub(crate) const SYN: u8 = 0x02;
pub(crate) const RST: u8 = 0x04;
pub(crate) const ACK: u8 = 0x10;

/// What a packet carries, as flow assembly needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Headers {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    pub(crate) transport: Transport,
    /// Ports; for ICMP the type and code, as Zeek reports them.
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    pub(crate) flags: u8,
    /// Transport payload bytes.
    pub(crate) payload: u64,
    /// IP bytes (header included), as on the wire.
    pub(crate) ip_bytes: u64,
}

/// Why a packet was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// A link type this reader does not decode.
    LinkType,
    /// Not IP (ARP, LLDP, ...).
    NotIp,
    /// Not TCP, UDP or ICMP.
    OtherTransport,
    /// A later IP fragment (no transport header).
    Fragment,
    /// Headers cut short or inconsistent.
    Malformed,
}

impl Skip {
    /// A short name for counts.
    pub fn name(self) -> &'static str {
        match self {
            Skip::LinkType => "unknown link type",
            Skip::NotIp => "not IP",
            Skip::OtherTransport => "not TCP, UDP or ICMP",
            Skip::Fragment => "IP fragment",
            Skip::Malformed => "malformed headers",
        }
    }
}

fn be16(b: &[u8], i: usize) -> Result<u16, Skip> {
    b.get(i..i + 2)
        .map(|x| u16::from_be_bytes([x[0], x[1]]))
        .ok_or(Skip::Malformed)
}

/// Decodes one packet of `linktype`.
pub(crate) fn decode(linktype: u32, data: &[u8]) -> Result<Headers, Skip> {
    let (ethertype, ip) = match linktype {
        // Ethernet, with up to two VLAN tags.
        1 => {
            let mut et = be16(data, 12)?;
            let mut off = 14;
            for _ in 0..2 {
                if et == 0x8100 || et == 0x88a8 {
                    et = be16(data, off + 2)?;
                    off += 4;
                }
            }
            (et, data.get(off..).ok_or(Skip::Malformed)?)
        }
        // Linux cooked capture v1.
        113 => (be16(data, 14)?, data.get(16..).ok_or(Skip::Malformed)?),
        // Linux cooked capture v2.
        276 => (be16(data, 0)?, data.get(20..).ok_or(Skip::Malformed)?),
        // Raw IP (101, and 12/14 as some systems number it), IPv4, IPv6.
        101 | 12 | 14 | 228 | 229 => {
            let v = data.first().ok_or(Skip::Malformed)? >> 4;
            (if v == 6 { 0x86dd } else { 0x0800 }, data)
        }
        // BSD loopback: a 4-byte address family in host order.
        0 | 108 => {
            let fam = data.get(..4).ok_or(Skip::Malformed)?;
            let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let et = match (le, be) {
                (2, _) | (_, 2) => 0x0800,
                (24 | 28 | 30, _) | (_, 24 | 28 | 30) => 0x86dd,
                _ => return Err(Skip::NotIp),
            };
            (et, &data[4..])
        }
        _ => return Err(Skip::LinkType),
    };
    match ethertype {
        0x0800 => ipv4(ip),
        0x86dd => ipv6(ip),
        _ => Err(Skip::NotIp),
    }
}

fn ipv4(b: &[u8]) -> Result<Headers, Skip> {
    let first = *b.first().ok_or(Skip::Malformed)?;
    if first >> 4 != 4 {
        return Err(Skip::Malformed);
    }
    let ihl = usize::from(first & 0x0f) * 4;
    let total = usize::from(be16(b, 2)?);
    if ihl < 20 || total < ihl || b.len() < ihl {
        return Err(Skip::Malformed);
    }
    let frag = be16(b, 6)?;
    if frag & 0x1fff != 0 {
        return Err(Skip::Fragment);
    }
    let proto = b[9];
    let src = IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19]));
    // The captured bytes may be cut at the snap length; the lengths come
    // from the headers.
    let payload_len = (total - ihl) as u64;
    transport(proto, &b[ihl..], src, dst, payload_len, total as u64, false)
}

fn ipv6(b: &[u8]) -> Result<Headers, Skip> {
    if b.len() < 40 || b[0] >> 4 != 6 {
        return Err(Skip::Malformed);
    }
    let payload_len = u64::from(be16(b, 4)?);
    let mut next = b[6];
    let mut o: usize = 40;
    let src = IpAddr::V6(Ipv6Addr::from(
        <[u8; 16]>::try_from(&b[8..24]).map_err(|_| Skip::Malformed)?,
    ));
    let dst = IpAddr::V6(Ipv6Addr::from(
        <[u8; 16]>::try_from(&b[24..40]).map_err(|_| Skip::Malformed)?,
    ));
    // At most eight extension headers.
    for _ in 0..8 {
        match next {
            0 | 43 | 60 => {
                let h = b.get(o..o + 2).ok_or(Skip::Malformed)?;
                next = h[0];
                o += (usize::from(h[1]) + 1) * 8;
            }
            44 => {
                let h = b.get(o..o + 8).ok_or(Skip::Malformed)?;
                if u16::from_be_bytes([h[2], h[3]]) & 0xfff8 != 0 {
                    return Err(Skip::Fragment);
                }
                next = h[0];
                o += 8;
            }
            _ => break,
        }
    }
    let rest = b.get(o..).ok_or(Skip::Malformed)?;
    let ext = (o - 40) as u64;
    let upper = payload_len.checked_sub(ext).ok_or(Skip::Malformed)?;
    transport(next, rest, src, dst, upper, 40 + payload_len, true)
}

fn transport(
    proto: u8,
    b: &[u8],
    src: IpAddr,
    dst: IpAddr,
    upper_len: u64,
    ip_bytes: u64,
    v6: bool,
) -> Result<Headers, Skip> {
    let base = Headers {
        src,
        dst,
        transport: Transport::Tcp,
        sport: 0,
        dport: 0,
        flags: 0,
        payload: 0,
        ip_bytes,
    };
    match proto {
        6 => {
            let off = usize::from(*b.get(12).ok_or(Skip::Malformed)? >> 4) * 4;
            if off < 20 || (off as u64) > upper_len {
                return Err(Skip::Malformed);
            }
            Ok(Headers {
                sport: be16(b, 0)?,
                dport: be16(b, 2)?,
                flags: *b.get(13).ok_or(Skip::Malformed)?,
                payload: upper_len - off as u64,
                ..base
            })
        }
        17 => {
            if upper_len < 8 {
                return Err(Skip::Malformed);
            }
            Ok(Headers {
                transport: Transport::Udp,
                sport: be16(b, 0)?,
                dport: be16(b, 2)?,
                payload: upper_len - 8,
                ..base
            })
        }
        1 | 58 if (proto == 58) == v6 => {
            let t = b.get(..2).ok_or(Skip::Malformed)?;
            Ok(Headers {
                transport: Transport::Icmp,
                sport: u16::from(t[0]),
                dport: u16::from(t[1]),
                payload: upper_len.saturating_sub(8),
                ..base
            })
        }
        _ => Err(Skip::OtherTransport),
    }
}
