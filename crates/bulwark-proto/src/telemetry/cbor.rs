//! The CBOR form of a telemetry sample (RFC 8949): the same fields as the
//! JSON form, keyed by small integers and with addresses as raw bytes, so
//! a typical sample is about a third of its JSON size. Decoding is as
//! strict as the JSON form's `deny_unknown_fields`, and stricter on order:
//!
//! - the message is one definite-length map, and nothing follows it;
//! - its first entry is the schema version (key 0): a message of another
//!   version is reported as [`TelemetryError::UnsupportedSchema`] whatever
//!   follows;
//! - keys are unsigned integers in ascending order, each at most once; an
//!   unknown key is refused; every key but 7 (`failed_logins`) and 11
//!   (`failed_attempts`) is required;
//! - list lengths are checked against the limits before anything is
//!   allocated for them.
//!
//! | key | field | CBOR value |
//! |---|---|---|
//! | 0 | `schema` | unsigned |
//! | 1 | `time` | unsigned (unix ms) |
//! | 2 | `seq` | unsigned |
//! | 3 | `listening` | array of `[proto, port, addr]` |
//! | 4 | `connections` | array of `[proto, local_port, remote_addr, remote_port, state]` |
//! | 5 | `net` | `[bytes_in, bytes_out, packets_in, packets_out]` |
//! | 6 | `connection_attempts` | unsigned |
//! | 7 | `failed_logins` | unsigned, or null / absent when unreadable |
//! | 8 | `process_count` | unsigned |
//! | 9 | `cpu_percent` | float (half, single or double) or integer |
//! | 10 | `memory_percent` | float (half, single or double) or integer |
//! | 11 | `failed_attempts` | unsigned, or null / absent when unreadable |
//!
//! `proto` is 0 for TCP and 1 for UDP; `state` is 0 established, 1
//! syn_sent, 2 syn_recv, 3 closing; an address is a byte string of 4 (IPv4) or 16
//! (IPv6) bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use minicbor::data::Type;
use minicbor::{Decoder, Encoder};

use super::{
    Connection, ConnectionState, ListeningPort, MAX_CONNECTIONS, MAX_LISTENING, NetCounters,
    TELEMETRY_SCHEMA, Telemetry, TelemetryError, TransportProto,
};
use crate::LimitError;

/// Keys of the map, in the order they must appear.
mod key {
    pub(super) const SCHEMA: u64 = 0;
    pub(super) const TIME: u64 = 1;
    pub(super) const SEQ: u64 = 2;
    pub(super) const LISTENING: u64 = 3;
    pub(super) const CONNECTIONS: u64 = 4;
    pub(super) const NET: u64 = 5;
    pub(super) const CONNECTION_ATTEMPTS: u64 = 6;
    pub(super) const FAILED_LOGINS: u64 = 7;
    pub(super) const PROCESS_COUNT: u64 = 8;
    pub(super) const CPU_PERCENT: u64 = 9;
    pub(super) const MEMORY_PERCENT: u64 = 10;
    pub(super) const FAILED_ATTEMPTS: u64 = 11;
    /// Every key but `FAILED_LOGINS` and `FAILED_ATTEMPTS`, as a bit set.
    pub(super) const REQUIRED: u16 = 0b0111_0111_1111;
    /// Names for messages.
    pub(super) const NAMES: [&str; 12] = [
        "schema",
        "time",
        "seq",
        "listening",
        "connections",
        "net",
        "connection_attempts",
        "failed_logins",
        "process_count",
        "cpu_percent",
        "memory_percent",
        "failed_attempts",
    ];
}

fn malformed(what: impl std::fmt::Display) -> TelemetryError {
    TelemetryError::Malformed(format!("CBOR: {what}"))
}

fn proto_code(p: TransportProto) -> u8 {
    match p {
        TransportProto::Tcp => 0,
        TransportProto::Udp => 1,
    }
}

fn state_code(s: ConnectionState) -> u8 {
    match s {
        ConnectionState::Established => 0,
        ConnectionState::SynSent => 1,
        ConnectionState::SynRecv => 2,
        ConnectionState::Closing => 3,
    }
}

fn addr_bytes(a: &IpAddr) -> ([u8; 16], usize) {
    let mut out = [0; 16];
    match a {
        IpAddr::V4(v4) => {
            out[..4].copy_from_slice(&v4.octets());
            (out, 4)
        }
        IpAddr::V6(v6) => (v6.octets(), 16),
    }
}

/// Encodes a sample (already validated by the caller).
pub(super) fn encode(t: &Telemetry) -> Result<Vec<u8>, TelemetryError> {
    // Writing into a Vec cannot fail; the error type says so only loosely.
    let err = |e: minicbor::encode::Error<std::convert::Infallible>| malformed(e);
    let mut e = Encoder::new(Vec::with_capacity(
        64 + 12 * t.listening.len() + 30 * t.connections.len(),
    ));
    let entries =
        10 + u64::from(t.failed_logins.is_some()) + u64::from(t.failed_attempts.is_some());
    e.map(entries).map_err(err)?;
    e.u64(key::SCHEMA)
        .and_then(|e| e.u32(t.schema))
        .map_err(err)?;
    e.u64(key::TIME).and_then(|e| e.u64(t.time)).map_err(err)?;
    e.u64(key::SEQ).and_then(|e| e.u64(t.seq)).map_err(err)?;
    e.u64(key::LISTENING)
        .and_then(|e| e.array(t.listening.len() as u64))
        .map_err(err)?;
    for l in &t.listening {
        let (addr, len) = addr_bytes(&l.addr);
        e.array(3)
            .and_then(|e| e.u8(proto_code(l.proto)))
            .and_then(|e| e.u16(l.port))
            .and_then(|e| e.bytes(&addr[..len]))
            .map_err(err)?;
    }
    e.u64(key::CONNECTIONS)
        .and_then(|e| e.array(t.connections.len() as u64))
        .map_err(err)?;
    for c in &t.connections {
        let (addr, len) = addr_bytes(&c.remote_addr);
        e.array(5)
            .and_then(|e| e.u8(proto_code(c.proto)))
            .and_then(|e| e.u16(c.local_port))
            .and_then(|e| e.bytes(&addr[..len]))
            .and_then(|e| e.u16(c.remote_port))
            .and_then(|e| e.u8(state_code(c.state)))
            .map_err(err)?;
    }
    let n = &t.net;
    e.u64(key::NET)
        .and_then(|e| e.array(4))
        .and_then(|e| e.u64(n.bytes_in))
        .and_then(|e| e.u64(n.bytes_out))
        .and_then(|e| e.u64(n.packets_in))
        .and_then(|e| e.u64(n.packets_out))
        .map_err(err)?;
    e.u64(key::CONNECTION_ATTEMPTS)
        .and_then(|e| e.u64(t.connection_attempts))
        .map_err(err)?;
    if let Some(f) = t.failed_logins {
        e.u64(key::FAILED_LOGINS)
            .and_then(|e| e.u64(f))
            .map_err(err)?;
    }
    e.u64(key::PROCESS_COUNT)
        .and_then(|e| e.u64(t.process_count))
        .map_err(err)?;
    e.u64(key::CPU_PERCENT)
        .and_then(|e| e.f32(t.cpu_percent))
        .map_err(err)?;
    e.u64(key::MEMORY_PERCENT)
        .and_then(|e| e.f32(t.memory_percent))
        .map_err(err)?;
    if let Some(f) = t.failed_attempts {
        e.u64(key::FAILED_ATTEMPTS)
            .and_then(|e| e.u64(f))
            .map_err(err)?;
    }
    Ok(e.into_writer())
}

/// A decoding step that names the field it was reading when it failed.
struct Reader<'b> {
    d: Decoder<'b>,
    field: &'static str,
}

impl<'b> Reader<'b> {
    fn fail(&self, e: minicbor::decode::Error) -> TelemetryError {
        malformed(format_args!("{}: {e}", self.field))
    }

    fn u64(&mut self) -> Result<u64, TelemetryError> {
        self.d.u64().map_err(|e| self.fail(e))
    }

    /// An unsigned integer, or null for "not known".
    fn optional_u64(&mut self) -> Result<Option<u64>, TelemetryError> {
        if self.d.datatype().map_err(|e| self.fail(e))? == Type::Null {
            self.d.null().map_err(|e| self.fail(e))?;
            Ok(None)
        } else {
            self.u64().map(Some)
        }
    }

    fn u16(&mut self) -> Result<u16, TelemetryError> {
        self.d.u16().map_err(|e| self.fail(e))
    }

    fn u8(&mut self) -> Result<u8, TelemetryError> {
        self.d.u8().map_err(|e| self.fail(e))
    }

    /// A definite-length array of exactly `len` items.
    fn tuple(&mut self, len: u64) -> Result<(), TelemetryError> {
        match self.d.array().map_err(|e| self.fail(e))? {
            Some(n) if n == len => Ok(()),
            Some(n) => Err(malformed(format_args!(
                "{}: {n} items where {len} are expected",
                self.field
            ))),
            None => Err(malformed(format_args!(
                "{}: indefinite-length array",
                self.field
            ))),
        }
    }

    /// A definite-length list of at most `max` items.
    fn list(&mut self, max: usize) -> Result<usize, TelemetryError> {
        match self.d.array().map_err(|e| self.fail(e))? {
            None => Err(malformed(format_args!(
                "{}: indefinite-length array",
                self.field
            ))),
            Some(n) if n > max as u64 => Err(TelemetryError::Invalid(vec![LimitError {
                field: self.field.to_owned(),
                problem: format!("more than {max} entries"),
            }])),
            // Bounded by `max` just above.
            Some(n) => Ok(n as usize),
        }
    }

    fn proto(&mut self) -> Result<TransportProto, TelemetryError> {
        match self.u8()? {
            0 => Ok(TransportProto::Tcp),
            1 => Ok(TransportProto::Udp),
            n => Err(malformed(format_args!("{}: unknown proto {n}", self.field))),
        }
    }

    fn state(&mut self) -> Result<ConnectionState, TelemetryError> {
        match self.u8()? {
            0 => Ok(ConnectionState::Established),
            1 => Ok(ConnectionState::SynSent),
            2 => Ok(ConnectionState::SynRecv),
            3 => Ok(ConnectionState::Closing),
            n => Err(malformed(format_args!("{}: unknown state {n}", self.field))),
        }
    }

    fn addr(&mut self) -> Result<IpAddr, TelemetryError> {
        let b = self.d.bytes().map_err(|e| self.fail(e))?;
        if let Ok(v4) = <[u8; 4]>::try_from(b) {
            Ok(IpAddr::V4(Ipv4Addr::from(v4)))
        } else if let Ok(v6) = <[u8; 16]>::try_from(b) {
            Ok(IpAddr::V6(Ipv6Addr::from(v6)))
        } else {
            Err(malformed(format_args!(
                "{}: an address of {} bytes (4 or 16 expected)",
                self.field,
                b.len()
            )))
        }
    }

    /// A float of any width, or an integer; as `f32` the way the JSON form
    /// reads a number (range is [`Telemetry::validate`]'s job).
    fn number(&mut self) -> Result<f32, TelemetryError> {
        let ty = self.d.datatype().map_err(|e| self.fail(e))?;
        let v = match ty {
            Type::F16 | Type::F32 | Type::F64 => self.d.f64().map_err(|e| self.fail(e))?,
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => self.u64()? as f64,
            Type::I8 | Type::I16 | Type::I32 | Type::I64 => {
                self.d.i64().map_err(|e| self.fail(e))? as f64
            }
            other => {
                return Err(malformed(format_args!(
                    "{}: {other} where a number is expected",
                    self.field
                )));
            }
        };
        Ok(v as f32)
    }
}

/// Decodes the CBOR form; the caller has checked the size. Validation by
/// [`Telemetry::validate`] is the caller's too.
pub(super) fn decode(bytes: &[u8]) -> Result<Telemetry, TelemetryError> {
    let mut r = Reader {
        d: Decoder::new(bytes),
        field: "message",
    };
    let entries = match r.d.map().map_err(|e| r.fail(e))? {
        Some(n) if n <= key::NAMES.len() as u64 => n,
        Some(n) => return Err(malformed(format_args!("a map of {n} entries"))),
        None => return Err(malformed("an indefinite-length map")),
    };
    r.field = "schema";
    if entries == 0 || r.u64()? != key::SCHEMA {
        return Err(malformed(
            "the first entry must be the schema version (key 0)",
        ));
    }
    let schema = r.d.u32().map_err(|e| r.fail(e))?;
    if schema != TELEMETRY_SCHEMA {
        return Err(TelemetryError::UnsupportedSchema {
            found: schema,
            expected: TELEMETRY_SCHEMA,
        });
    }
    let mut t = Telemetry {
        schema,
        ..Telemetry::default()
    };
    let mut seen: u16 = 1;
    let mut last = key::SCHEMA;
    for _ in 1..entries {
        r.field = "key";
        let k = r.u64()?;
        if k <= last {
            return Err(malformed(format_args!(
                "key {k} after key {last}: keys must ascend, each once"
            )));
        }
        let Some(&name) = key::NAMES.get(k as usize) else {
            return Err(malformed(format_args!("unknown key {k}")));
        };
        r.field = name;
        match k {
            key::TIME => t.time = r.u64()?,
            key::SEQ => t.seq = r.u64()?,
            key::LISTENING => {
                let n = r.list(MAX_LISTENING)?;
                t.listening.reserve_exact(n);
                for _ in 0..n {
                    r.tuple(3)?;
                    t.listening.push(ListeningPort {
                        proto: r.proto()?,
                        port: r.u16()?,
                        addr: r.addr()?,
                    });
                }
            }
            key::CONNECTIONS => {
                let n = r.list(MAX_CONNECTIONS)?;
                t.connections.reserve_exact(n);
                for _ in 0..n {
                    r.tuple(5)?;
                    t.connections.push(Connection {
                        proto: r.proto()?,
                        local_port: r.u16()?,
                        remote_addr: r.addr()?,
                        remote_port: r.u16()?,
                        state: r.state()?,
                    });
                }
            }
            key::NET => {
                r.tuple(4)?;
                t.net = NetCounters {
                    bytes_in: r.u64()?,
                    bytes_out: r.u64()?,
                    packets_in: r.u64()?,
                    packets_out: r.u64()?,
                };
            }
            key::CONNECTION_ATTEMPTS => t.connection_attempts = r.u64()?,
            key::FAILED_LOGINS => t.failed_logins = r.optional_u64()?,
            key::FAILED_ATTEMPTS => t.failed_attempts = r.optional_u64()?,
            key::PROCESS_COUNT => t.process_count = r.u64()?,
            key::CPU_PERCENT => t.cpu_percent = r.number()?,
            key::MEMORY_PERCENT => t.memory_percent = r.number()?,
            // NAMES has an entry for every key, and 0 came first.
            _ => return Err(malformed(format_args!("unknown key {k}"))),
        }
        seen |= 1 << k;
        last = k;
    }
    if let Some(missing) =
        (0..key::NAMES.len()).find(|&k| key::REQUIRED & (1 << k) != 0 && seen & (1 << k) == 0)
    {
        return Err(malformed(format_args!(
            "missing field `{}` (key {missing})",
            key::NAMES[missing]
        )));
    }
    if r.d.position() != bytes.len() {
        return Err(malformed(format_args!(
            "{} bytes after the message",
            bytes.len() - r.d.position()
        )));
    }
    Ok(t)
}
