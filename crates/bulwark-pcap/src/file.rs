//! Capture files: classic pcap (microsecond and nanosecond, either byte
//! order) and pcapng (sections, interfaces with their link types and time
//! resolutions, enhanced, simple and obsolete packet blocks).
//!
//! Strict and bounded: a record or block longer than [`MAX_BLOCK`] or a
//! packet longer than [`MAX_PACKET`] stops the read with an error (the
//! length fields can no longer be trusted), unknown pcapng blocks are
//! skipped by their length, and a file that ends mid-record is
//! [`CaptureError::Truncated`], with every packet before it delivered.

use std::io::{self, Read};

/// Longest captured packet accepted, in bytes.
pub const MAX_PACKET: usize = 256 * 1024;
/// Longest pcapng block accepted, in bytes.
pub const MAX_BLOCK: usize = 16 * 1024 * 1024;
/// Most pcapng interfaces in one section.
pub const MAX_INTERFACES: usize = 1024;

/// Why a capture could not be read (further).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// Reading failed.
    #[error("reading the capture")]
    Io(#[source] io::Error),
    /// Not a pcap or pcapng file.
    #[error("not a pcap or pcapng capture (magic {0:08x})")]
    BadMagic(u32),
    /// The file ends inside a header, record or block.
    #[error("truncated at byte {offset}: {what}")]
    Truncated {
        /// Where the incomplete part starts.
        offset: u64,
        /// What was being read.
        what: &'static str,
    },
    /// A structure that cannot be right.
    #[error("malformed at byte {offset}: {why}")]
    Malformed {
        /// Where.
        offset: u64,
        /// What is wrong.
        why: String,
    },
}

/// One captured packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: i128,
    /// The link type of its interface (`LINKTYPE_*`).
    pub linktype: u32,
    /// The captured bytes (possibly cut at the snap length).
    pub data: Vec<u8>,
    /// The packet's length on the wire.
    pub orig_len: u32,
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Pcap {
        big: bool,
        nanos: bool,
        linktype: u32,
    },
    PcapNg,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    /// Units per second of this interface's timestamps.
    ticks_per_sec: u64,
}

/// Reads packets from a capture, one at a time.
#[derive(Debug)]
pub struct CaptureReader<R> {
    r: R,
    offset: u64,
    format: Format,
    big: bool,
    interfaces: Vec<Interface>,
    /// Simple packet blocks carry no time: they get the last one seen.
    last_ts: i128,
    at_end: bool,
}

fn u16_of(b: &[u8], big: bool) -> u16 {
    let a = [b[0], b[1]];
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

fn u32_of(b: &[u8], big: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header (or the first section header).
    pub fn new(mut r: R) -> Result<Self, CaptureError> {
        let mut head = [0u8; 4];
        let n = read_full(&mut r, &mut head)?;
        if n < 4 {
            return Err(CaptureError::Truncated {
                offset: 0,
                what: "file header",
            });
        }
        let magic_le = u32::from_le_bytes(head);
        let mut reader = CaptureReader {
            r,
            offset: 4,
            format: Format::PcapNg,
            big: false,
            interfaces: Vec::new(),
            last_ts: 0,
            at_end: false,
        };
        match magic_le {
            0xa1b2_c3d4 | 0xa1b2_3c4d | 0xd4c3_b2a1 | 0x4d3c_b2a1 => {
                let big = matches!(magic_le, 0xd4c3_b2a1 | 0x4d3c_b2a1);
                let nanos = matches!(magic_le, 0xa1b2_3c4d | 0x4d3c_b2a1);
                let mut rest = [0u8; 20];
                reader.exact(&mut rest, "file header")?;
                let major = u16_of(&rest[0..2], big);
                if major != 2 {
                    return Err(CaptureError::Malformed {
                        offset: 4,
                        why: format!("pcap version {major} (2 expected)"),
                    });
                }
                let linktype = u32_of(&rest[16..20], big) & 0x0fff_ffff;
                reader.format = Format::Pcap {
                    big,
                    nanos,
                    linktype,
                };
            }
            0x0a0d_0d0a => {
                reader.section_header()?;
            }
            other => return Err(CaptureError::BadMagic(other)),
        }
        Ok(reader)
    }

    fn exact(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), CaptureError> {
        let n = read_full(&mut self.r, buf)?;
        if n < buf.len() {
            return Err(CaptureError::Truncated {
                offset: self.offset,
                what,
            });
        }
        self.offset += n as u64;
        Ok(())
    }

    fn malformed(&self, why: impl Into<String>) -> CaptureError {
        CaptureError::Malformed {
            offset: self.offset,
            why: why.into(),
        }
    }

    /// A section header after its 4-byte type: the length (in the
    /// section's own byte order, not known yet), the byte-order magic, the
    /// rest. A new section may change the byte order and starts with no
    /// interfaces.
    fn section_header(&mut self) -> Result<(), CaptureError> {
        let mut len = [0u8; 4];
        self.exact(&mut len, "section header")?;
        self.section_header_after_length(len)
    }

    fn section_header_after_length(&mut self, len: [u8; 4]) -> Result<(), CaptureError> {
        let mut bom = [0u8; 4];
        self.exact(&mut bom, "section header")?;
        let big = match u32::from_le_bytes(bom) {
            0x1a2b_3c4d => false,
            0x4d3c_2b1a => true,
            other => return Err(self.malformed(format!("section byte-order magic {other:08x}"))),
        };
        let len = u32_of(&len, big) as usize;
        if !(28..=MAX_BLOCK).contains(&len) || !len.is_multiple_of(4) {
            return Err(self.malformed(format!("section header of {len} bytes")));
        }
        let mut rest = vec![0u8; len - 12];
        self.exact(&mut rest, "section header")?;
        self.big = big;
        self.interfaces.clear();
        Ok(())
    }

    /// The next packet; `Ok(None)` at the end of the capture.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, CaptureError> {
        match self.format {
            Format::Pcap {
                big,
                nanos,
                linktype,
            } => self.pcap_record(big, nanos, linktype),
            Format::PcapNg => loop {
                if let Some(p) = self.pcapng_block()? {
                    return Ok(Some(p));
                }
                if self.at_end {
                    return Ok(None);
                }
            },
        }
    }

    fn pcap_record(
        &mut self,
        big: bool,
        nanos: bool,
        linktype: u32,
    ) -> Result<Option<Packet>, CaptureError> {
        let mut h = [0u8; 16];
        let n = read_full(&mut self.r, &mut h)?;
        if n == 0 {
            return Ok(None);
        }
        if n < 16 {
            return Err(CaptureError::Truncated {
                offset: self.offset,
                what: "record header",
            });
        }
        self.offset += 16;
        let secs = u32_of(&h[0..4], big);
        let frac = u32_of(&h[4..8], big);
        let incl = u32_of(&h[8..12], big) as usize;
        let orig_len = u32_of(&h[12..16], big);
        if incl > MAX_PACKET {
            return Err(self.malformed(format!("record of {incl} bytes (at most {MAX_PACKET})")));
        }
        let frac_ns = if nanos {
            if frac >= 1_000_000_000 {
                return Err(self.malformed("nanoseconds over a second"));
            }
            i128::from(frac)
        } else {
            if frac >= 1_000_000 {
                return Err(self.malformed("microseconds over a second"));
            }
            i128::from(frac) * 1000
        };
        let mut data = vec![0u8; incl];
        self.exact(&mut data, "packet data")?;
        let ts_ns = i128::from(secs) * 1_000_000_000 + frac_ns;
        Ok(Some(Packet {
            ts_ns,
            linktype,
            data,
            orig_len,
        }))
    }
}

impl<R: Read> CaptureReader<R> {
    /// One pcapng block: a packet, or `None` for any other block (and at
    /// the end, with `at_end` set).
    fn pcapng_block(&mut self) -> Result<Option<Packet>, CaptureError> {
        let mut h = [0u8; 8];
        let n = read_full(&mut self.r, &mut h)?;
        if n == 0 {
            self.at_end = true;
            return Ok(None);
        }
        if n < 8 {
            return Err(CaptureError::Truncated {
                offset: self.offset,
                what: "block header",
            });
        }
        let start = self.offset;
        self.offset += 8;
        if u32::from_le_bytes([h[0], h[1], h[2], h[3]]) == 0x0a0d_0d0a {
            // A new section; the length just read is in its byte order.
            self.section_header_after_length([h[4], h[5], h[6], h[7]])?;
            return Ok(None);
        }
        let big = self.big;
        let kind = u32_of(&h[0..4], big);
        let len = u32_of(&h[4..8], big) as usize;
        if !(12..=MAX_BLOCK).contains(&len) || !len.is_multiple_of(4) {
            return Err(CaptureError::Malformed {
                offset: start,
                why: format!("block of {len} bytes"),
            });
        }
        let mut body = vec![0u8; len - 8];
        self.exact(&mut body, "block")?;
        let trailer = u32_of(&body[body.len() - 4..], big) as usize;
        if trailer != len {
            return Err(CaptureError::Malformed {
                offset: start,
                why: format!("block length {len} and trailing length {trailer} differ"),
            });
        }
        let body = &body[..body.len() - 4];
        let bad = |why: &str| CaptureError::Malformed {
            offset: start,
            why: why.to_owned(),
        };
        match kind {
            // Interface description.
            1 => {
                if body.len() < 8 {
                    return Err(bad("interface description too short"));
                }
                if self.interfaces.len() >= MAX_INTERFACES {
                    return Err(bad("too many interfaces"));
                }
                let linktype = u32::from(u16_of(&body[0..2], big));
                let ticks_per_sec = if_tsresol(&body[8..], big).map_err(|w| bad(&w))?;
                self.interfaces.push(Interface {
                    linktype,
                    ticks_per_sec,
                });
                Ok(None)
            }
            // Enhanced packet, obsolete packet.
            6 | 2 => {
                if body.len() < 20 {
                    return Err(bad("packet block too short"));
                }
                let iface = if kind == 6 {
                    u32_of(&body[0..4], big) as usize
                } else {
                    usize::from(u16_of(&body[0..2], big))
                };
                let Some(i) = self.interfaces.get(iface).copied() else {
                    return Err(bad("packet of an undeclared interface"));
                };
                let ts = (u64::from(u32_of(&body[4..8], big)) << 32)
                    | u64::from(u32_of(&body[8..12], big));
                let caplen = u32_of(&body[12..16], big) as usize;
                let orig_len = u32_of(&body[16..20], big);
                if caplen > body.len() - 20 || caplen > MAX_PACKET {
                    return Err(bad("captured length past the block"));
                }
                let ts_ns = i128::from(ts / i.ticks_per_sec) * 1_000_000_000
                    + i128::from(ts % i.ticks_per_sec) * 1_000_000_000
                        / i128::from(i.ticks_per_sec);
                self.last_ts = ts_ns;
                Ok(Some(Packet {
                    ts_ns,
                    linktype: i.linktype,
                    data: body[20..20 + caplen].to_vec(),
                    orig_len,
                }))
            }
            // Simple packet: interface 0, no time of its own.
            3 => {
                if body.len() < 4 {
                    return Err(bad("simple packet block too short"));
                }
                let Some(i) = self.interfaces.first().copied() else {
                    return Err(bad("packet of an undeclared interface"));
                };
                let orig_len = u32_of(&body[0..4], big);
                let caplen = (orig_len as usize).min(body.len() - 4);
                if caplen > MAX_PACKET {
                    return Err(bad("packet too long"));
                }
                Ok(Some(Packet {
                    ts_ns: self.last_ts,
                    linktype: i.linktype,
                    data: body[4..4 + caplen].to_vec(),
                    orig_len,
                }))
            }
            // Name resolution, statistics, custom and others: not needed.
            _ => Ok(None),
        }
    }
}

/// The `if_tsresol` option of an interface description (default µs).
fn if_tsresol(mut opts: &[u8], big: bool) -> Result<u64, String> {
    while opts.len() >= 4 {
        let code = u16_of(&opts[0..2], big);
        let len = usize::from(u16_of(&opts[2..4], big));
        let padded = len.div_ceil(4) * 4;
        if 4 + padded > opts.len() {
            return Err("interface option past the block".into());
        }
        if code == 0 {
            break;
        }
        if code == 9 && len == 1 {
            let v = opts[4];
            let exp = u32::from(v & 0x7f);
            return if v & 0x80 == 0 {
                10u64
                    .checked_pow(exp)
                    .filter(|t| *t <= 1_000_000_000_000)
                    .ok_or_else(|| format!("time resolution 10^-{exp}"))
            } else {
                2u64.checked_pow(exp)
                    .filter(|t| *t <= 1 << 40)
                    .ok_or_else(|| format!("time resolution 2^-{exp}"))
            };
        }
        opts = &opts[4 + padded..];
    }
    Ok(1_000_000)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, CaptureError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CaptureError::Io(e)),
        }
    }
    Ok(n)
}
