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
    /// Records with at least one alert.
    pub alerted: u64,
    /// Alerts in total.
    pub alerts: u64,
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
}

/// One connection, as much of it as detection uses.
#[derive(Debug, Clone, PartialEq)]
struct Conn {
    ts: f64,
    uid: String,
    resp_h: IpAddr,
    resp_p: u16,
    proto: Option<String>,
    orig_bytes: Option<u64>,
    resp_bytes: Option<u64>,
    orig_pkts: Option<u64>,
    resp_pkts: Option<u64>,
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

fn split<'a>(line: &'a str, sep: &str) -> Vec<&'a str> {
    line.split(sep).collect()
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
            let v = v.trim_end_matches('\r');
            let sep = unescape(v);
            // One plain character, or only `\xHH` escapes.
            let escapes_only = v.len() % 4 == 0 && sep.len() == v.len() / 4;
            let plain = v.chars().count() == 1 && v != "\\";
            if !(escapes_only || plain)
                || sep.is_empty()
                || sep.len() > 8
                || std::str::from_utf8(&sep).is_err()
            {
                return Err("bad #separator".into());
            }
            self.separator = sep;
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
        let values = split(line, &sep);
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
            resp_h: resp_h
                .parse()
                .map_err(|_| format!("id.resp_h `{}` is not an address", short(resp_h)))?,
            resp_p: resp_p
                .parse()
                .map_err(|_| format!("id.resp_p `{}` is not a port", short(resp_p)))?,
            proto: get("proto").map(str::to_owned),
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
    Ok(Conn {
        ts,
        uid: parse_uid(str_field("uid")?)?,
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

impl Conn {
    fn datapoint(&self) -> Result<Datapoint, String> {
        let time = OffsetDateTime::from_unix_timestamp_nanos((self.ts * 1e9) as i128)
            .map_err(|_| "ts is out of range".to_owned())?;
        let dest = match self.resp_h {
            IpAddr::V4(a) => format!("{a}:{}", self.resp_p),
            IpAddr::V6(a) => format!("[{a}]:{}", self.resp_p),
        };
        let proto = self.proto.as_deref().unwrap_or("any");
        if proto.len() > 16 || !proto.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("proto is not a protocol name".into());
        }
        let mut metrics = Metrics::from([
            ("remote_destinations", Value::Set(Set::from([dest]))),
            (
                "remote_ports",
                Value::Set(Set::from([format!("{proto}/{}", self.resp_p)])),
            ),
            (
                "bytes_out",
                Value::Number(self.orig_bytes.unwrap_or(0) as f64),
            ),
            (
                "bytes_in",
                Value::Number(self.resp_bytes.unwrap_or(0) as f64),
            ),
            ("connection_attempts", Value::Number(1.0)),
        ]);
        if let Some(p) = self.orig_pkts {
            metrics.insert("packets_out", Value::Number(p as f64));
        }
        if let Some(p) = self.resp_pkts {
            metrics.insert("packets_in", Value::Number(p as f64));
        }
        Ok(Datapoint {
            device: REPLAY_DEVICE.into(),
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

/// Replays a conn.log through a fresh [`Engine`] for `profile`, writing
/// `ts,uid,score,alert,reason` CSV (header first) to `out`.
pub fn replay(
    reader: impl BufRead,
    profile: Profile,
    out: impl Write,
) -> Result<ReplaySummary, ReplayError> {
    replay_with(reader, &mut Engine::new(profile), out)
}

/// Like [`replay`], with a caller-owned engine (to keep its state).
pub fn replay_with(
    mut reader: impl BufRead,
    engine: &mut Engine,
    mut out: impl Write,
) -> Result<ReplaySummary, ReplayError> {
    let mut summary = ReplaySummary::default();
    let mut tsv = Tsv::default();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let problem = |s: &mut ReplaySummary, line: u64, why: String, malformed: bool| {
        if malformed {
            s.malformed += 1;
        } else {
            s.rejected += 1;
        }
        if s.problems.len() < MAX_PROBLEMS {
            s.problems.push(format!("line {line}: {why}"));
        }
    };
    writeln!(out, "ts,uid,score,alert,reason").map_err(ReplayError::Write)?;
    while let Some(long) =
        read_line_bounded(&mut reader, &mut buf, MAX_LINE).map_err(ReplayError::Read)?
    {
        line_no += 1;
        if long {
            problem(
                &mut summary,
                line_no,
                format!("longer than {MAX_LINE} bytes"),
                true,
            );
            continue;
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            problem(&mut summary, line_no, "not UTF-8".into(), true);
            continue;
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let conn = if line.starts_with('#') {
            if let Err(why) = tsv.header(line) {
                problem(&mut summary, line_no, why, true);
            }
            continue;
        } else if line.starts_with(['{', '[']) {
            json_record(line)
        } else {
            tsv.record(line)
        };
        let dp = match conn.and_then(|c| c.datapoint().map(|dp| (c, dp))) {
            Ok(x) => x,
            Err(why) => {
                problem(&mut summary, line_no, why, true);
                continue;
            }
        };
        let (conn, dp) = dp;
        let obs = match engine.observe_scored(&dp) {
            Ok(obs) => obs,
            Err(e) => {
                problem(&mut summary, line_no, e.to_string(), false);
                continue;
            }
        };
        summary.records += 1;
        summary.alerts += obs.alerts.len() as u64;
        if !obs.alerts.is_empty() {
            summary.alerted += 1;
        }
        let reason = obs
            .alerts
            .iter()
            .map(|a| format!("{}: {}", a.behaviour, a.reason))
            .collect::<Vec<_>>()
            .join(" | ");
        writeln!(
            out,
            "{:.6},{},{:.3},{},{}",
            conn.ts,
            conn.uid,
            obs.score,
            u8::from(!obs.alerts.is_empty()),
            csv_field(&reason)
        )
        .map_err(ReplayError::Write)?;
    }
    out.flush().map_err(ReplayError::Write)?;
    Ok(summary)
}
