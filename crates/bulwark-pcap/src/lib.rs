//! Packet captures to connection records, for `bulwark detect replay
//! --pcap`: the same records a Zeek `conn.log` of the capture would hold
//! (`conn_state`, `history`, bytes and packets per side), assembled here
//! so that detection needs no Zeek.
//!
//! # Layout
//!
//! - `file`: [`CaptureReader`], classic pcap and pcapng, strict and
//!   bounded ([`MAX_PACKET`], [`MAX_BLOCK`]).
//! - `decode`: link layer, IPv4/IPv6, TCP/UDP/ICMP headers; anything else
//!   is a counted [`Skip`].
//! - `flows`: [`Assembler`], packets to [`ConnRecord`]s with Zeek's
//!   meaning of `conn_state` and `history`.
//! - [`Conns`]: the three in a streaming iterator.
//!
//! # Example
//!
//! ```
//! // The smallest classic pcap: a header and no packets.
//! let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
//! file.extend([0; 8]);
//! file.extend(65535u32.to_le_bytes());
//! file.extend(1u32.to_le_bytes());
//! let mut conns = bulwark_pcap::Conns::new(&file[..]).unwrap();
//! assert_eq!(conns.next(), None);
//! assert!(conns.error().is_none());
//! ```
//!
//! # Design
//!
//! Pure: bytes in, records out. No clock (time is the capture's), no
//! randomness (uids count up), bounded memory ([`MAX_FLOWS`] open flows,
//! one packet at a time). Malformed input is an error value or a counted
//! skip, never a panic; the `capture_replay` fuzz target holds it to that.
//!
//! # Rejected designs
//!
//! - *Running Zeek*: not packaged here, and a dependency on an external
//!   program for the one path that must work offline on any machine.
//! - *libpcap bindings*: a C parser of untrusted files in the process.

mod decode;
mod file;
mod flows;

use std::collections::VecDeque;
use std::io::Read;

pub use decode::{Skip, Transport};
pub use file::{CaptureError, CaptureReader, MAX_BLOCK, MAX_INTERFACES, MAX_PACKET, Packet};
pub use flows::{Assembler, ConnRecord, MAX_FLOWS, Stats, TCP_CLOSED_IDLE, TCP_IDLE, UDP_IDLE};

/// Connection records of a capture, in the order their flows ended.
///
/// Iteration stops at the end of the capture or at the first error that
/// makes the rest unreadable ([`Conns::error`]); either way the flows
/// still open are ended and yielded first.
#[derive(Debug)]
pub struct Conns<R> {
    reader: CaptureReader<R>,
    asm: Assembler,
    ready: VecDeque<ConnRecord>,
    buf: Vec<ConnRecord>,
    error: Option<CaptureError>,
    done: bool,
}

impl<R: Read> Conns<R> {
    /// Reads the capture's header.
    pub fn new(r: R) -> Result<Self, CaptureError> {
        Ok(Conns {
            reader: CaptureReader::new(r)?,
            asm: Assembler::new(),
            ready: VecDeque::new(),
            buf: Vec::new(),
            error: None,
            done: false,
        })
    }

    /// What assembly did so far.
    pub fn stats(&self) -> &Stats {
        self.asm.stats()
    }

    /// The error that ended the capture early, if any.
    pub fn error(&self) -> Option<&CaptureError> {
        self.error.as_ref()
    }
}

impl<R: Read> Iterator for Conns<R> {
    type Item = ConnRecord;

    fn next(&mut self) -> Option<ConnRecord> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(r);
            }
            if self.done {
                return None;
            }
            match self.reader.next_packet() {
                Ok(Some(p)) => self.asm.push(p.ts_ns, p.linktype, &p.data, &mut self.buf),
                Ok(None) => {
                    self.asm.finish(&mut self.buf);
                    self.done = true;
                }
                Err(e) => {
                    self.error = Some(e);
                    self.asm.finish(&mut self.buf);
                    self.done = true;
                }
            }
            self.ready.extend(self.buf.drain(..));
        }
    }
}
