//! Replays a Zeek `conn.log` through an [`Engine`] (the engine behind
//! `bulwark detect replay`).
//!
//! Both Zeek encodings are read, even mixed in one stream: TSV (with
//! `#separator`, `#fields`, `#types` headers, `-` for unset and `(empty)`
//! for empty) and JSON lines. All records are one device's traffic
//! ([`REPLAY_DEVICE`]); each becomes one datapoint at its `ts`:
//!
//! | metric | from |
//! |---|---|
//! | `remote_destinations` | `{id.resp_h:id.resp_p}` (`[v6]:port` for IPv6) |
//! | `remote_ports` | `{proto/id.resp_p}` (`any/…` when `proto` is unset) |
//! | `bytes_out` / `bytes_in` | `orig_bytes` / `resp_bytes` (0 when unset) |
//! | `packets_out` / `packets_in` | `orig_pkts` / `resp_pkts` when present |
//! | `connection_attempts` | 1 |
//!
//! The output is CSV, `ts,uid,score,alert,reason`, one line per observed
//! record. A malformed line (bad JSON, wrong field count, non-numeric
//! field, line over [`MAX_LINE`], data before `#fields`, a header without
//! the required fields) and a record the engine rejects (more than
//! [`crate::REORDER_TOLERANCE`] behind the latest) write nothing and are
//! counted in the [`ReplaySummary`].

use std::io::{self, BufRead, Write};
use std::net::IpAddr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::engine::Engine;
use crate::flow::{Direction, Flow, Proto, Scope};
use crate::metric::{Datapoint, Metrics, Set, Value};
use crate::profile::Profile;

/// The device id every replayed record is attributed to.
pub const REPLAY_DEVICE: &str = "replay";
/// Longest line read; longer lines are skipped and counted malformed.
pub const MAX_LINE: usize = 64 * 1024;
/// Most problems kept verbatim in a [`ReplaySummary`] (all are counted).
pub const MAX_PROBLEMS: usize = 100;
const MAX_FIELDS: usize = 256;
const MAX_UID: usize = 64;

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Records observed (one CSV line each).
    pub records: u64,
    /// Records at which some behaviour's alert condition held (the
    /// `alert` column).
    pub alerted: u64,
    /// Alerts in total.
    pub alerts: u64,
    /// Alerts raised, per behaviour name.
    pub alerts_by_behaviour: std::collections::BTreeMap<String, u64>,
    /// Lines skipped as malformed.
    pub malformed: u64,
    /// Records the engine rejected.
    pub rejected: u64,
    /// The first [`MAX_PROBLEMS`] problems, `line N: why`.
    pub problems: Vec<String>,
}

/// A replay that could not run: reading or writing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Reading the log failed.
    #[error("reading the conn.log")]
    Read(#[source] io::Error),
    /// Writing the CSV failed.
    #[error("writing the replay output")]
    Write(#[source] io::Error),
    /// The input is not a packet capture (or its header is damaged).
    #[error("reading the capture")]
    Capture(#[source] bulwark_pcap::CaptureError),
}

/// One connection, as much of it as detection uses.
#[derive(Debug, Clone, PartialEq)]
struct Conn {
    ts: f64,
    uid: String,
    orig_h: Option<IpAddr>,
    orig_p: Option<u16>,
    resp_h: IpAddr,
    resp_p: u16,
    proto: Option<String>,
    duration: Option<f64>,
    conn_state: Option<String>,
    history: Option<String>,
    orig_bytes: Option<u64>,
    resp_bytes: Option<u64>,
    orig_pkts: Option<u64>,
    resp_pkts: Option<u64>,
}

/// How an attempt ended, from Zeek's `conn_state` (or, without it, the
/// `history` letters and the responder's packet count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Answered,
    Rejected,
    Unanswered,
}

fn outcome(c: &Conn) -> Outcome {
    let replied = c.resp_pkts.is_some_and(|p| p > 0) || c.resp_bytes.is_some_and(|b| b > 0);
    match c.conn_state.as_deref() {
        // Attempt seen, no reply; SYN then RST or FIN with no SYN-ACK.
        Some("S0" | "RSTOS0" | "SH") => Outcome::Unanswered,
        // Refused; a SYN-ACK then RST without the SYN (backscatter).
        Some("REJ" | "RSTRH") => Outcome::Rejected,
        Some("S1" | "SF" | "S2" | "S3" | "RSTO" | "RSTR" | "SHR") => Outcome::Answered,
        // Mid-stream traffic (OTH) or no state: what the packets say.
        _ => {
            let h = c.history.as_deref().unwrap_or("");
            if h.contains(['h', 'd', 'a']) || replied {
                Outcome::Answered
            } else if h.contains('r') {
                Outcome::Rejected
            } else {
                Outcome::Unanswered
            }
        }
    }
}

#[derive(Debug)]
struct Tsv {
    separator: Vec<u8>,
    unset: String,
    empty: String,
    fields: Result<Vec<String>, String>,
}

impl Default for Tsv {
    fn default() -> Self {
        Tsv {
            separator: b"\t".to_vec(),
            unset: "-".into(),
            empty: "(empty)".into(),
            fields: Err("data line before a #fields header".into()),
        }
    }
}

/// Reads a line of at most `max` bytes into `buf` (without the newline).
/// `Ok(None)` at end of input, `Ok(Some(true))` when the line was longer
/// (the rest is consumed and dropped).
fn read_line_bounded(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut any = false;
    let mut long = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(any.then_some(long));
        }
        any = true;
        let (chunk, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..i], Some(i + 1)),
            None => (avail, None),
        };
        let room = max.saturating_sub(buf.len());
        if chunk.len() > room {
            long = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(avail.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(long));
        }
    }
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1] == b'x'
            && let (Some(h), Some(l)) = (hex(b[i + 2]), hex(b[i + 3]))
        {
            out.push((h * 16 + l) as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The value of a `#separator` header: one plain character, or only
/// `\xHH` escapes (at most 8 bytes, UTF-8); `None` for anything else.
pub(crate) fn separator(value: &str) -> Option<String> {
    let v = value.trim_end_matches('\r');
    let sep = unescape(v);
    let escapes_only = v.len().is_multiple_of(4) && sep.len() == v.len() / 4;
    let plain = v.chars().count() == 1 && v != "\\";
    if !(escapes_only || plain) || sep.is_empty() || sep.len() > 8 {
        return None;
    }
    String::from_utf8(sep).ok()
}

/// A data line's values for a header of `count` fields. Some tools append
/// columns (a label, a detailed label) separated by spaces instead of the
/// separator: a line short of `count` whose last value holds
/// whitespace-separated words is split there, when that makes the count
/// right. The caller checks the count.
pub(crate) fn split_fields<'a>(line: &'a str, sep: &str, count: usize) -> Vec<&'a str> {
    let mut values: Vec<&str> = line.split(sep).collect();
    if values.len() < count
        && let Some(last) = values.last().copied()
    {
        let words: Vec<&str> = last.split_whitespace().collect();
        if values.len() - 1 + words.len() == count {
            values.pop();
            values.extend(words);
        }
    }
    values
}

fn parse_uid(s: &str) -> Result<String, String> {
    if s.is_empty()
        || s.len() > MAX_UID
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("uid must be 1..=64 of [A-Za-z0-9_-]".into());
    }
    Ok(s.to_owned())
}

fn parse_ts(s: &str) -> Result<f64, String> {
    let ts: f64 = s
        .parse()
        .map_err(|_| format!("ts `{}` is not a number", short(s)))?;
    check_ts(ts)
}

fn check_ts(ts: f64) -> Result<f64, String> {
    // 0 .. year 5000: anything else is not a capture time.
    if !ts.is_finite() || !(0.0..1e11).contains(&ts) {
        return Err(if ts.abs() < 1e15 {
            format!("ts {ts} is out of range")
        } else {
            format!("ts {ts:e} is out of range")
        });
    }
    Ok(ts)
}

fn check_duration(d: f64) -> Result<f64, String> {
    // A connection longer than a year is not one.
    if !d.is_finite() || !(0.0..=31_622_400.0).contains(&d) {
        return Err(format!("duration {d:e} is out of range"));
    }
    Ok(d)
}

fn parse_duration_field(s: &str) -> Result<f64, String> {
    check_duration(
        s.parse()
            .map_err(|_| format!("duration `{}` is not a number", short(s)))?,
    )
}

/// `conn_state` and `history`: short ASCII letters.
fn parse_word(s: &str) -> Result<String, String> {
    if s.len() > 64 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'^') {
        return Err(format!("`{}` is not a state or history", short(s)));
    }
    Ok(s.to_owned())
}

fn short(s: &str) -> &str {
    let mut end = s.len().min(32);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Tsv {
    fn header(&mut self, line: &str) -> Result<(), String> {
        if let Some(v) = line.strip_prefix("#separator ") {
            self.separator = separator(v).ok_or("bad #separator")?.into_bytes();
            return Ok(());
        }
        let sep = String::from_utf8_lossy(&self.separator).into_owned();
        let mut parts = line.split(sep.as_str());
        let key = parts.next().unwrap_or("");
        let rest: Vec<&str> = parts.collect();
        match key {
            "#fields" => {
                if rest.is_empty() || rest.len() > MAX_FIELDS {
                    self.fields = Err("#fields header has no or too many fields".into());
                    return Err("bad #fields header".into());
                }
                let fields: Vec<String> = rest.iter().map(|s| (*s).to_owned()).collect();
                for need in ["ts", "uid", "id.resp_h", "id.resp_p"] {
                    if !fields.iter().any(|f| f == need) {
                        let why = format!("#fields header lacks `{need}`");
                        self.fields = Err(why.clone());
                        return Err(why);
                    }
                }
                self.fields = Ok(fields);
            }
            "#unset_field" => self.unset = rest.first().copied().unwrap_or("-").to_owned(),
            "#empty_field" => self.empty = rest.first().copied().unwrap_or("(empty)").to_owned(),
            // #types, #path, #open, #close, #set_separator: not needed.
            _ => {}
        }
        Ok(())
    }

    fn record(&self, line: &str) -> Result<Conn, String> {
        let fields = self.fields.as_ref().map_err(String::clone)?;
        let sep = String::from_utf8_lossy(&self.separator);
        let values = split_fields(line, &sep, fields.len());
        if values.len() != fields.len() {
            return Err(format!(
                "{} fields, the header names {}",
                values.len(),
                fields.len()
            ));
        }
        let get = |name: &str| -> Option<&str> {
            let i = fields.iter().position(|f| f == name)?;
            let v = values[i];
            (v != self.unset && v != self.empty).then_some(v)
        };
        let num = |name: &str| -> Result<Option<u64>, String> {
            get(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{name} `{}` is not a count", short(v)))
                })
                .transpose()
        };
        let resp_h = get("id.resp_h").ok_or("id.resp_h is unset")?;
        let resp_p = get("id.resp_p").ok_or("id.resp_p is unset")?;
        Ok(Conn {
            ts: parse_ts(get("ts").ok_or("ts is unset")?)?,
            uid: parse_uid(get("uid").ok_or("uid is unset")?)?,
            orig_h: get("id.orig_h")
                .map(|v| {
                    v.parse()
                        .map_err(|_| format!("id.orig_h `{}` is not an address", short(v)))
                })
                .transpose()?,
            orig_p: get("id.orig_p")
                .map(|v| {
                    v.parse()
                        .map_err(|_| format!("id.orig_p `{}` is not a port", short(v)))
                })
                .transpose()?,
            resp_h: resp_h
                .parse()
                .map_err(|_| format!("id.resp_h `{}` is not an address", short(resp_h)))?,
            resp_p: resp_p
                .parse()
                .map_err(|_| format!("id.resp_p `{}` is not a port", short(resp_p)))?,
            proto: get("proto").map(str::to_owned),
            duration: get("duration").map(parse_duration_field).transpose()?,
            conn_state: get("conn_state").map(parse_word).transpose()?,
            history: get("history").map(parse_word).transpose()?,
            orig_bytes: num("orig_bytes")?,
            resp_bytes: num("resp_bytes")?,
            orig_pkts: num("orig_pkts")?,
            resp_pkts: num("resp_pkts")?,
        })
    }
}

fn json_record(line: &str) -> Result<Conn, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("bad JSON: {e}"))?;
    let obj = v.as_object().ok_or("a JSON record is an object")?;
    let count = |name: &str| -> Result<Option<u64>, String> {
        match obj.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(x) => x
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("{name} is not a count")),
        }
    };
    let ts = match obj.get("ts") {
        Some(serde_json::Value::Number(n)) => check_ts(n.as_f64().unwrap_or(f64::NAN))?,
        Some(serde_json::Value::String(s)) => {
            let t = OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|_| format!("ts `{}` is not RFC 3339", short(s)))?;
            check_ts(t.unix_timestamp_nanos() as f64 / 1e9)?
        }
        _ => return Err("ts is missing or not a number".into()),
    };
    let str_field = |name: &str| -> Result<&str, String> {
        obj.get(name)
            .and_then(|x| x.as_str())
            .ok_or_else(|| format!("{name} is missing or not a string"))
    };
    let resp_h = str_field("id.resp_h")?;
    let opt_str = |name: &str| -> Result<Option<&str>, String> {
        match obj.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("{name} is not a string")),
        }
    };
    Ok(Conn {
        ts,
        uid: parse_uid(str_field("uid")?)?,
        orig_h: opt_str("id.orig_h")?
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("id.orig_h `{}` is not an address", short(v)))
            })
            .transpose()?,
        orig_p: match obj.get("id.orig_p") {
            None | Some(serde_json::Value::Null) => None,
            Some(x) => Some(
                x.as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or("id.orig_p is not a port")?,
            ),
        },
        duration: match obj.get("duration") {
            None | Some(serde_json::Value::Null) => None,
            Some(x) => Some(check_duration(
                x.as_f64().ok_or("duration is not a number")?,
            )?),
        },
        conn_state: opt_str("conn_state")?.map(parse_word).transpose()?,
        history: opt_str("history")?.map(parse_word).transpose()?,
        resp_h: resp_h
            .parse()
            .map_err(|_| format!("id.resp_h `{}` is not an address", short(resp_h)))?,
        resp_p: obj
            .get("id.resp_p")
            .and_then(|x| x.as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("id.resp_p is missing or not a port")?,
        proto: obj.get("proto").and_then(|x| x.as_str()).map(str::to_owned),
        orig_bytes: count("orig_bytes")?,
        resp_bytes: count("resp_bytes")?,
        orig_pkts: count("orig_pkts")?,
        resp_pkts: count("resp_pkts")?,
    })
}

/// Which addresses are the monitored device(s).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayOptions {
    /// The device's own addresses. Empty: inferred per record (see
    /// [`replay`]).
    pub device_addrs: Vec<IpAddr>,
}

impl Conn {
    /// The device this record belongs to and whether the device opened it.
    fn side(&self, opts: &ReplayOptions) -> (Option<IpAddr>, Direction) {
        let Some(orig) = self.orig_h else {
            return (None, Direction::Outbound);
        };
        if !opts.device_addrs.is_empty() {
            if opts.device_addrs.contains(&orig) {
                return (Some(orig), Direction::Outbound);
            }
            if opts.device_addrs.contains(&self.resp_h) {
                return (Some(self.resp_h), Direction::Inbound);
            }
            return (Some(orig), Direction::Outbound);
        }
        // A peer on the internet opening a connection to a local host
        // calls in; everything else is its originator's doing.
        if Scope::of(orig) == Scope::Public && Scope::of(self.resp_h) != Scope::Public {
            (Some(self.resp_h), Direction::Inbound)
        } else {
            (Some(orig), Direction::Outbound)
        }
    }

    /// When the record reached the log: Zeek writes a connection when it
    /// ends, so this is when the engine sees it.
    fn arrival(&self) -> f64 {
        self.ts + self.duration.unwrap_or(0.0)
    }

    fn datapoint(&self, opts: &ReplayOptions) -> Result<Datapoint, String> {
        let time = OffsetDateTime::from_unix_timestamp_nanos((self.arrival() * 1e9) as i128)
            .map_err(|_| "ts is out of range".to_owned())?;
        let proto_name = self.proto.as_deref().unwrap_or("any");
        if proto_name.len() > 16 || !proto_name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("proto is not a protocol name".into());
        }
        let proto = Proto::from_name(proto_name);
        let (device, direction) = self.side(opts);
        let (answered, rejected) = match outcome(self) {
            Outcome::Answered => (1, 0),
            Outcome::Rejected => (0, 1),
            Outcome::Unanswered => (0, 0),
        };
        let (out, inn) = match direction {
            Direction::Outbound => (
                (self.orig_bytes, self.orig_pkts),
                (self.resp_bytes, self.resp_pkts),
            ),
            Direction::Inbound => (
                (self.resp_bytes, self.resp_pkts),
                (self.orig_bytes, self.orig_pkts),
            ),
        };
        let flow = match direction {
            Direction::Outbound => Flow {
                local_port: self.orig_p.unwrap_or(0),
                ..Flow::outbound(proto, self.resp_h, self.resp_p)
            },
            Direction::Inbound => Flow {
                direction,
                local_port: self.resp_p,
                ..Flow::outbound(
                    proto,
                    self.orig_h.unwrap_or(self.resp_h),
                    self.orig_p.unwrap_or(0),
                )
            },
        };
        let flow = Flow {
            answered,
            rejected,
            bytes_out: out.0.unwrap_or(0),
            bytes_in: inn.0.unwrap_or(0),
            packets_out: out.1.unwrap_or(0),
            packets_in: inn.1.unwrap_or(0),
            duration: self.duration,
            ..flow
        };
        let mut metrics = Metrics::new();
        // Only the device's own outbound traffic to a real destination is
        // a destination; its link (loopback, multicast, ...) and peers
        // calling in are not.
        if direction == Direction::Outbound && flow.scope() != Scope::Local {
            metrics.insert(
                "remote_destinations",
                Value::Set(Set::from([flow.endpoint()])),
            );
            metrics.insert(
                "remote_ports",
                Value::Set(Set::from([format!("{proto_name}/{}", self.resp_p)])),
            );
            metrics.insert("connection_attempts", Value::Number(1.0));
        }
        metrics.insert("bytes_out", Value::Number(flow.bytes_out as f64));
        metrics.insert("bytes_in", Value::Number(flow.bytes_in as f64));
        if let Some(p) = out.1 {
            metrics.insert("packets_out", Value::Number(p as f64));
        }
        if let Some(p) = inn.1 {
            metrics.insert("packets_in", Value::Number(p as f64));
        }
        metrics.insert("flows", Value::Flows(vec![flow]));
        let device: std::sync::Arc<str> = match device {
            Some(a) => a.to_string().into(),
            None => REPLAY_DEVICE.into(),
        };
        Ok(Datapoint {
            device,
            time,
            metrics,
        })
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Records held back to put the log in the order connections ended
/// (Zeek writes a connection when it ends, long ones late).
pub const MAX_REORDER: usize = 65_536;

/// A record waiting in the reorder buffer, smallest arrival first.
#[derive(Debug)]
struct Pending {
    arrival_ns: i128,
    seq: u64,
    line: u64,
    conn: Conn,
    dp: Datapoint,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.arrival_ns, self.seq) == (other.arrival_ns, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: BinaryHeap is a max-heap.
        (other.arrival_ns, other.seq).cmp(&(self.arrival_ns, self.seq))
    }
}

/// Replays a conn.log through a fresh [`Engine`] for `profile`, writing
/// `ts,uid,score,alert,reason` CSV (header first) to `out`.
///
/// - Each record is one datapoint of the device it belongs to: with no
///   [`ReplayOptions::device_addrs`], a record from an internet address
///   to a local one is inbound to the local host, anything else belongs
///   to its originator (so a LAN capture replays as several devices, and
///   scanners calling in to a honeypot are not the honeypot's doing).
/// - Records are observed in the order their connections ended (`ts +
///   duration`), through a buffer of [`MAX_REORDER`] records.
/// - `score` is the [`crate::Observation::score`]: 1 is a behaviour's
///   alert threshold. `alert` is 1 when some behaviour's condition holds
///   at that record ([`crate::Observation::flagged`]), whether its alert
///   was raised at this record or earlier in the same episode. `reason`
///   lists the behaviours that scored at least half their threshold: the
///   ones whose condition holds as `name: detail`, the others as
///   `(name: detail)`.
pub fn replay(
    reader: impl BufRead,
    profile: Profile,
    out: impl Write,
) -> Result<ReplaySummary, ReplayError> {
    replay_with(
        reader,
        &mut Engine::new(profile),
        &ReplayOptions::default(),
        out,
    )
}

/// Like [`replay`], with a caller-owned engine (to keep its state) and
/// options.
pub fn replay_with(
    mut reader: impl BufRead,
    engine: &mut Engine,
    opts: &ReplayOptions,
    out: impl Write,
) -> Result<ReplaySummary, ReplayError> {
    let mut sink = Sink::new(engine, opts, out)?;
    let mut tsv = Tsv::default();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    while let Some(long) =
        read_line_bounded(&mut reader, &mut buf, MAX_LINE).map_err(ReplayError::Read)?
    {
        line_no += 1;
        if long {
            sink.problem(line_no, format!("longer than {MAX_LINE} bytes"), true);
            continue;
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            sink.problem(line_no, "not UTF-8".into(), true);
            continue;
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let conn = if line.starts_with('#') {
            if let Err(why) = tsv.header(line) {
                sink.problem(line_no, why, true);
            }
            continue;
        } else if line.starts_with(['{', '[']) {
            json_record(line)
        } else {
            tsv.record(line)
        };
        sink.push(line_no, conn)?;
    }
    sink.finish()
}

/// Replays a packet capture (classic pcap or pcapng): its packets are
/// assembled into connection records by [`bulwark_pcap`] (the fields a
/// Zeek `conn.log` of it would hold), which then go through the engine as
/// [`replay_with`] does. The `uid` column names the assembled records
/// (`P` and a counter); `conn_out`, if given, receives them as Zeek JSON
/// lines, so that scores can be joined with what they score.
///
/// A capture that ends early (truncated, or a block that cannot be
/// right) keeps every record before the damage and counts one malformed
/// problem; one whose header is not a capture's is
/// [`ReplayError::Capture`].
pub fn replay_pcap(
    reader: impl io::Read,
    engine: &mut Engine,
    opts: &ReplayOptions,
    out: impl Write,
    mut conn_out: Option<&mut dyn Write>,
) -> Result<(ReplaySummary, bulwark_pcap::Stats), ReplayError> {
    let mut conns = bulwark_pcap::Conns::new(reader).map_err(ReplayError::Capture)?;
    let mut sink = Sink::new(engine, opts, out)?;
    let mut n = 0u64;
    for rec in conns.by_ref() {
        n += 1;
        if let Some(w) = conn_out.as_deref_mut() {
            writeln!(w, "{}", rec.to_zeek_json()).map_err(ReplayError::Write)?;
        }
        let conn = Conn {
            ts: rec.ts,
            uid: rec.uid,
            orig_h: Some(rec.orig_h),
            orig_p: Some(rec.orig_p),
            resp_h: rec.resp_h,
            resp_p: rec.resp_p,
            proto: Some(rec.proto.name().to_owned()),
            duration: Some(rec.duration),
            conn_state: Some(rec.conn_state.to_owned()),
            history: Some(rec.history),
            orig_bytes: Some(rec.orig_bytes),
            resp_bytes: Some(rec.resp_bytes),
            orig_pkts: Some(rec.orig_pkts),
            resp_pkts: Some(rec.resp_pkts),
        };
        sink.push(n, Ok(conn))?;
    }
    if let Some(e) = conns.error() {
        sink.problem(n + 1, format!("capture: {e}"), true);
    }
    if let Some(w) = conn_out {
        w.flush().map_err(ReplayError::Write)?;
    }
    let stats = conns.stats().clone();
    Ok((sink.finish()?, stats))
}

/// Where replayed records go: the reorder buffer, the engine, the CSV.
struct Sink<'a, W: Write> {
    engine: &'a mut Engine,
    opts: &'a ReplayOptions,
    out: W,
    summary: ReplaySummary,
    pending: std::collections::BinaryHeap<Pending>,
    seq: u64,
}

impl<'a, W: Write> Sink<'a, W> {
    fn new(
        engine: &'a mut Engine,
        opts: &'a ReplayOptions,
        mut out: W,
    ) -> Result<Self, ReplayError> {
        writeln!(out, "ts,uid,score,alert,reason").map_err(ReplayError::Write)?;
        Ok(Sink {
            engine,
            opts,
            out,
            summary: ReplaySummary::default(),
            pending: std::collections::BinaryHeap::new(),
            seq: 0,
        })
    }

    fn problem(&mut self, line: u64, why: String, malformed: bool) {
        problem(&mut self.summary, line, why, malformed);
    }

    fn push(&mut self, line: u64, conn: Result<Conn, String>) -> Result<(), ReplayError> {
        match conn.and_then(|c| c.datapoint(self.opts).map(|dp| (c, dp))) {
            Ok((conn, dp)) => {
                self.pending.push(Pending {
                    arrival_ns: dp.time.unix_timestamp_nanos(),
                    seq: self.seq,
                    line,
                    conn,
                    dp,
                });
                self.seq += 1;
            }
            Err(why) => self.problem(line, why, true),
        }
        if self.pending.len() > MAX_REORDER
            && let Some(p) = self.pending.pop()
        {
            observe(self.engine, p, &mut self.summary, &mut self.out)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<ReplaySummary, ReplayError> {
        while let Some(p) = self.pending.pop() {
            observe(self.engine, p, &mut self.summary, &mut self.out)?;
        }
        self.out.flush().map_err(ReplayError::Write)?;
        Ok(self.summary)
    }
}

fn problem(s: &mut ReplaySummary, line: u64, why: String, malformed: bool) {
    if malformed {
        s.malformed += 1;
    } else {
        s.rejected += 1;
    }
    if s.problems.len() < MAX_PROBLEMS {
        s.problems.push(format!("line {line}: {why}"));
    }
}

fn observe(
    engine: &mut Engine,
    p: Pending,
    summary: &mut ReplaySummary,
    out: &mut impl Write,
) -> Result<(), ReplayError> {
    let obs = match engine.observe_scored(&p.dp) {
        Ok(obs) => obs,
        Err(e) => {
            problem(summary, p.line, e.to_string(), false);
            return Ok(());
        }
    };
    summary.records += 1;
    summary.alerts += obs.alerts.len() as u64;
    for a in &obs.alerts {
        *summary
            .alerts_by_behaviour
            .entry(a.behaviour.clone())
            .or_default() += 1;
    }
    if obs.flagged {
        summary.alerted += 1;
    }
    // Behaviours whose condition holds, then (in parentheses) the ones
    // that contributed without holding.
    let reason = obs
        .reasons
        .iter()
        .map(|r| {
            if r.holds {
                format!("{}: {}", r.behaviour, r.detail)
            } else {
                format!("({}: {})", r.behaviour, r.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(" | ");
    writeln!(
        out,
        "{:.6},{},{:.3},{},{}",
        p.conn.ts,
        p.conn.uid,
        obs.score,
        u8::from(obs.flagged),
        csv_field(&reason)
    )
    .map_err(ReplayError::Write)
}
