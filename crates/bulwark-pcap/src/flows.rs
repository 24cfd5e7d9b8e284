//! Flow assembly: packets in, connection records out, with Zeek's
//! `conn.log` meaning for `conn_state` and `history`, so that a capture
//! and a Zeek log of it tell detection the same story.
//!
//! - A flow is keyed by protocol and both endpoints. Its originator sends
//!   the first packet, except that a TCP flow first seen at a SYN-ACK is
//!   flipped (the responder answered someone we did not see) and its
//!   history starts with `^`.
//! - History letters, originator upper case, responder lower case, each
//!   at its first occurrence: `S` SYN, `H` SYN-ACK, `A` bare ACK, `D`
//!   data, `F` FIN, `R` RST.
//! - A flow ends when it has been idle for its timeout (TCP attempts and
//!   closed TCP: [`TCP_CLOSED_IDLE`]; established TCP: [`TCP_IDLE`]; UDP
//!   and ICMP: [`UDP_IDLE`]), measured on the capture's clock, or at the
//!   end of the capture.
//! - At most [`MAX_FLOWS`] flows are open at once; past that the least
//!   recently active is ended early and counted in [`Stats::evicted`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::decode::{ACK, FIN, Headers, RST, SYN, Skip, Transport};

/// Idle time after which an unanswered or closed TCP flow ends (Zeek's
/// `tcp_attempt_delay` and close delays), nanoseconds.
pub const TCP_CLOSED_IDLE: i128 = 5_000_000_000;
/// Idle time after which an established TCP flow ends (Zeek's
/// `tcp_inactivity_timeout`).
pub const TCP_IDLE: i128 = 300_000_000_000;
/// Idle time after which a UDP or ICMP flow ends.
pub const UDP_IDLE: i128 = 60_000_000_000;
/// Most flows open at once.
pub const MAX_FLOWS: usize = 1_000_000;
/// How often, on the capture's clock, idle flows are looked for.
const SWEEP_EVERY: i128 = 1_000_000_000;

/// One connection, as a Zeek `conn.log` record names its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnRecord {
    /// First packet, seconds since the Unix epoch.
    pub ts: f64,
    /// Unique within one capture: `P` and a counter.
    pub uid: String,
    /// Originator address and port.
    pub orig_h: IpAddr,
    /// Originator port (ICMP: type).
    pub orig_p: u16,
    /// Responder address.
    pub resp_h: IpAddr,
    /// Responder port (ICMP: code).
    pub resp_p: u16,
    /// The transport.
    pub proto: Transport,
    /// Last packet minus first, seconds.
    pub duration: f64,
    /// Payload bytes the originator sent.
    pub orig_bytes: u64,
    /// Payload bytes the responder sent.
    pub resp_bytes: u64,
    /// Zeek's connection state (`S0`, `SF`, `REJ`, ...).
    pub conn_state: &'static str,
    /// Zeek's history letters.
    pub history: String,
    /// Packets the originator sent.
    pub orig_pkts: u64,
    /// IP bytes the originator sent.
    pub orig_ip_bytes: u64,
    /// Packets the responder sent.
    pub resp_pkts: u64,
    /// IP bytes the responder sent.
    pub resp_ip_bytes: u64,
}

impl ConnRecord {
    /// The record as one line of Zeek's JSON `conn.log`.
    pub fn to_zeek_json(&self) -> String {
        format!(
            concat!(
                r#"{{"ts":{:.6},"uid":"{}","id.orig_h":"{}","id.orig_p":{},"id.resp_h":"{}","id.resp_p":{},"#,
                r#""proto":"{}","duration":{:.6},"orig_bytes":{},"resp_bytes":{},"conn_state":"{}","#,
                r#""history":"{}","orig_pkts":{},"orig_ip_bytes":{},"resp_pkts":{},"resp_ip_bytes":{}}}"#
            ),
            self.ts,
            self.uid,
            self.orig_h,
            self.orig_p,
            self.resp_h,
            self.resp_p,
            self.proto.name(),
            self.duration,
            self.orig_bytes,
            self.resp_bytes,
            self.conn_state,
            self.history,
            self.orig_pkts,
            self.orig_ip_bytes,
            self.resp_pkts,
            self.resp_ip_bytes
        )
    }
}

/// What assembly did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets read.
    pub packets: u64,
    /// Packets skipped, by reason.
    pub skipped: BTreeMap<Skip, u64>,
    /// Connection records produced.
    pub records: u64,
    /// Flows ended early because [`MAX_FLOWS`] were open.
    pub evicted: u64,
    /// Packets more than a second older than the newest one seen (their
    /// flow keeps them; the capture's clock does not go back).
    pub reordered: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Side {
    syn: bool,
    synack: bool,
    fin: bool,
    rst: bool,
    any: bool,
    pkts: u64,
    bytes: u64,
    ip_bytes: u64,
}

#[derive(Debug)]
struct Flow {
    uid: u64,
    first: i128,
    last: i128,
    orig: (IpAddr, u16),
    resp: (IpAddr, u16),
    transport: Transport,
    o: Side,
    r: Side,
    history: String,
}

type Key = (Transport, (IpAddr, u16), (IpAddr, u16));

fn key(t: Transport, a: (IpAddr, u16), b: (IpAddr, u16)) -> Key {
    if a <= b { (t, a, b) } else { (t, b, a) }
}

impl Flow {
    fn idle_limit(&self) -> i128 {
        match self.transport {
            Transport::Tcp => {
                let established = self.o.syn && self.r.synack;
                let closed = self.o.rst
                    || self.r.rst
                    || (self.o.fin && self.r.fin)
                    || (!established && (self.o.fin || self.r.fin));
                if established && !closed {
                    TCP_IDLE
                } else {
                    TCP_CLOSED_IDLE
                }
            }
            Transport::Udp | Transport::Icmp => UDP_IDLE,
        }
    }

    fn add(&mut self, h: &Headers, from_orig: bool, ts: i128) {
        self.first = self.first.min(ts);
        self.last = self.last.max(ts);
        let history = &mut self.history;
        let mut mark = |letter: char| {
            if !history.contains(letter) && history.len() < 32 {
                history.push(letter);
            }
        };
        let side = if from_orig { &mut self.o } else { &mut self.r };
        side.any = true;
        side.pkts += 1;
        side.bytes += h.payload;
        side.ip_bytes += h.ip_bytes;
        let case = |c: char| {
            if from_orig { c } else { c.to_ascii_lowercase() }
        };
        if h.transport == Transport::Tcp {
            let f = h.flags;
            if f & SYN != 0 && f & ACK == 0 {
                side.syn = true;
                mark(case('S'));
            } else if f & SYN != 0 {
                side.synack = true;
                mark(case('H'));
            }
            if f & FIN != 0 {
                side.fin = true;
                mark(case('F'));
            }
            if f & RST != 0 {
                side.rst = true;
                mark(case('R'));
            }
            if h.payload > 0 {
                mark(case('D'));
            } else if f & ACK != 0 && f & (SYN | FIN | RST) == 0 {
                mark(case('A'));
            }
        } else if h.payload > 0 {
            mark(case('D'));
        }
    }

    fn state(&self) -> &'static str {
        let (o, r) = (&self.o, &self.r);
        if self.transport != Transport::Tcp {
            return if r.any { "SF" } else { "S0" };
        }
        let established = o.syn && r.synack;
        if established {
            return if o.rst {
                "RSTO"
            } else if r.rst {
                "RSTR"
            } else if o.fin && r.fin {
                "SF"
            } else if o.fin {
                "S2"
            } else if r.fin {
                "S3"
            } else {
                "S1"
            };
        }
        if o.syn {
            return if r.rst {
                "REJ"
            } else if o.rst {
                "RSTOS0"
            } else if o.fin {
                "SH"
            } else if r.any {
                "OTH"
            } else {
                "S0"
            };
        }
        if r.synack {
            return if r.rst {
                "RSTRH"
            } else if r.fin {
                "SHR"
            } else {
                "OTH"
            };
        }
        "OTH"
    }

    fn record(&self) -> ConnRecord {
        ConnRecord {
            ts: self.first as f64 / 1e9,
            uid: format!("P{:x}", self.uid),
            orig_h: self.orig.0,
            orig_p: self.orig.1,
            resp_h: self.resp.0,
            resp_p: self.resp.1,
            proto: self.transport,
            duration: (self.last - self.first) as f64 / 1e9,
            orig_bytes: self.o.bytes,
            resp_bytes: self.r.bytes,
            conn_state: self.state(),
            history: self.history.clone(),
            orig_pkts: self.o.pkts,
            orig_ip_bytes: self.o.ip_bytes,
            resp_pkts: self.r.pkts,
            resp_ip_bytes: self.r.ip_bytes,
        }
    }
}

/// Turns packets into connection records.
#[derive(Debug, Default)]
pub struct Assembler {
    flows: HashMap<Key, Flow>,
    next_uid: u64,
    now: Option<i128>,
    last_sweep: i128,
    stats: Stats,
}

impl Assembler {
    /// An assembler with no flows.
    pub fn new() -> Assembler {
        Assembler::default()
    }

    /// What it has done so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Feeds one captured packet; appends the records of flows that ended
    /// (idle past their timeout by this packet's time) to `out`.
    pub fn push(&mut self, ts_ns: i128, linktype: u32, data: &[u8], out: &mut Vec<ConnRecord>) {
        self.stats.packets += 1;
        let now = match self.now {
            Some(n) if ts_ns < n - 1_000_000_000 => {
                self.stats.reordered += 1;
                n
            }
            Some(n) => n.max(ts_ns),
            None => ts_ns,
        };
        self.now = Some(now);
        if now - self.last_sweep >= SWEEP_EVERY {
            self.sweep(now, out);
            self.last_sweep = now;
        }
        let h = match crate::decode::decode(linktype, data) {
            Ok(h) => h,
            Err(skip) => {
                *self.stats.skipped.entry(skip).or_default() += 1;
                return;
            }
        };
        let a = (h.src, h.sport);
        let b = (h.dst, h.dport);
        let k = key(h.transport, a, b);
        if let Some(f) = self.flows.get_mut(&k) {
            let from_orig = f.orig == a;
            f.add(&h, from_orig, ts_ns);
            return;
        }
        if self.flows.len() >= MAX_FLOWS {
            self.sweep(now, out);
            if self.flows.len() >= MAX_FLOWS
                && let Some(oldest) = self
                    .flows
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| *k)
                && let Some(f) = self.flows.remove(&oldest)
            {
                self.stats.evicted += 1;
                self.emit(&f, out);
            }
        }
        // A flow first seen at a SYN-ACK: the other side started it.
        let flipped = h.transport == Transport::Tcp && h.flags & (SYN | ACK) == (SYN | ACK);
        let (orig, resp) = if flipped { (b, a) } else { (a, b) };
        let mut f = Flow {
            uid: self.next_uid,
            first: ts_ns,
            last: ts_ns,
            orig,
            resp,
            transport: h.transport,
            o: Side::default(),
            r: Side::default(),
            history: if flipped { "^".into() } else { String::new() },
        };
        self.next_uid += 1;
        f.add(&h, !flipped, ts_ns);
        self.flows.insert(k, f);
    }

    fn emit(&mut self, f: &Flow, out: &mut Vec<ConnRecord>) {
        self.stats.records += 1;
        out.push(f.record());
    }

    fn sweep(&mut self, now: i128, out: &mut Vec<ConnRecord>) {
        let mut ended: Vec<Flow> = Vec::new();
        self.flows.retain(|_, f| {
            if now - f.last > f.idle_limit() {
                ended.push(Flow {
                    history: std::mem::take(&mut f.history),
                    ..*f
                });
                false
            } else {
                true
            }
        });
        ended.sort_by_key(|f| (f.last, f.uid));
        for f in &ended {
            self.emit(f, out);
        }
    }

    /// Ends every open flow (the capture is over); appends their records
    /// in the order they went idle.
    pub fn finish(&mut self, out: &mut Vec<ConnRecord>) {
        let mut rest: Vec<Flow> = self.flows.drain().map(|(_, f)| f).collect();
        rest.sort_by_key(|f| (f.last, f.uid));
        for f in &rest {
            self.emit(f, out);
        }
    }
}
