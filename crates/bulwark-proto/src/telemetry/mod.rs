//! Runtime telemetry a device reports: sockets, traffic counters, load.
//!
//! One versioned schema ([`TELEMETRY_SCHEMA`]) shared by the agent, which
//! fills a [`Telemetry`] from `/proc`, and the server, which must accept
//! bytes from the network only through [`decode`]: size cap first, then
//! strict parsing of one of two [`Encoding`]s, told apart by the first
//! byte, then the schema version (a message of another version is reported
//! as such, not as malformed), then [`Telemetry::validate`]. `decode` never
//! panics on any input.
//!
//! - **JSON** (the default): field names as in [`Telemetry`], unknown
//!   fields refused (`deny_unknown_fields`), parsed once.
//! - **CBOR** (RFC 8949), for links where bytes cost: the same fields under
//!   small integer keys, addresses as raw bytes, about a third of the JSON
//!   size and much cheaper to decode. The layout and its rules are in the
//!   `cbor` module's documentation. A
//!   message whose first byte is a CBOR map header (`0xa0`–`0xbf`) is CBOR;
//!   no JSON text can start with such a byte.
//!
//! ```
//! use bulwark_proto::telemetry::{Encoding, Telemetry, TelemetryError, decode};
//!
//! let sample = Telemetry { time: 1_795_000_000_000, cpu_percent: 12.5, ..Telemetry::default() };
//! let bytes = sample.encode().unwrap();
//! assert_eq!(decode(&bytes).unwrap(), sample);
//! assert!(matches!(
//!     decode(br#"{"schema": 2}"#),
//!     Err(TelemetryError::UnsupportedSchema { found: 2, .. })
//! ));
//! let compact = sample.encode_as(Encoding::Cbor).unwrap();
//! assert!(compact.len() < bytes.len());
//! assert_eq!(decode(&compact).unwrap(), sample);
//! ```

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::LimitError;

mod cbor;
mod json;

#[doc(hidden)]
pub use json::decode_fast as decode_json_fast;

/// The schema version this crate speaks; `Telemetry::schema` must equal it.
pub const TELEMETRY_SCHEMA: u32 = 1;
/// Largest encoded telemetry message accepted, in bytes. Sized so that a
/// message at every count limit, with the longest addresses, still fits
/// (about 620 KiB; checked by a test): a valid sample always encodes.
pub const MAX_TELEMETRY_BYTES: usize = 768 * 1024;
/// Most connections one message may list.
pub const MAX_CONNECTIONS: usize = 4096;
/// Most listening sockets one message may list.
pub const MAX_LISTENING: usize = 1024;
/// Latest accepted `time`: 9999-12-31T23:59:59.999Z in unix milliseconds.
pub const MAX_TIME_MS: u64 = 253_402_300_799_999;
/// Most problems [`Telemetry::validate`] reports.
const MAX_REPORTED: usize = 20;

/// Transport protocol of a socket.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TransportProto {
    /// TCP (`/proc/net/tcp`, `tcp6`).
    Tcp,
    /// UDP (`/proc/net/udp`, `udp6`).
    Udp,
}

/// Connection state, named after the kernel's TCP states. A connected UDP
/// socket is reported as `established`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Data can flow both ways (kernel state `01`).
    Established,
    /// An outgoing connection attempt is in flight (kernel state `02`).
    SynSent,
    /// An incoming connection attempt is half open (kernel state `03`).
    SynRecv,
    /// A connection that was answered and is closing or has just closed
    /// (kernel states FIN-WAIT-1/2, TIME-WAIT, CLOSE-WAIT, LAST-ACK,
    /// CLOSING): how short connections made between two samples (a
    /// beacon, a login attempt) are still seen; TIME-WAIT lasts 60 s.
    Closing,
}

/// A socket waiting for peers: TCP in LISTEN, or UDP bound with no peer.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ListeningPort {
    /// `tcp` or `udp`.
    pub proto: TransportProto,
    /// Local port.
    pub port: u16,
    /// Local address it is bound to (`0.0.0.0` / `::` for all).
    #[schema(value_type = String, example = "0.0.0.0")]
    pub addr: IpAddr,
}

/// A socket with a peer.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// `tcp` or `udp`.
    pub proto: TransportProto,
    /// Local port.
    pub local_port: u16,
    /// The peer's address.
    #[schema(value_type = String, example = "192.0.2.10")]
    pub remote_addr: IpAddr,
    /// The peer's port.
    pub remote_port: u16,
    /// Where the connection stands.
    pub state: ConnectionState,
}

/// Interface counters summed over every interface except loopback, since
/// boot (monotonic until a counter wraps or the device reboots).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetCounters {
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Packets received.
    pub packets_in: u64,
    /// Packets sent.
    pub packets_out: u64,
}

/// One telemetry sample of one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// Schema version; [`TELEMETRY_SCHEMA`].
    pub schema: u32,
    /// When the sample was taken, unix milliseconds (device clock).
    pub time: u64,
    /// Sample number since the agent started; lets the server spot gaps.
    pub seq: u64,
    /// Listening sockets, sorted, at most [`MAX_LISTENING`].
    pub listening: Vec<ListeningPort>,
    /// Connections with a peer, sorted, at most [`MAX_CONNECTIONS`].
    pub connections: Vec<Connection>,
    /// Traffic counters, loopback excluded.
    pub net: NetCounters,
    /// Outgoing TCP connection attempts (`Tcp ActiveOpens` of
    /// `/proc/net/snmp`) since the previous sample; 0 in the first.
    pub connection_attempts: u64,
    /// Failed logins seen in the auth log since the previous sample; absent
    /// when the log cannot be read.
    #[serde(default)]
    pub failed_logins: Option<u64>,
    /// Number of processes.
    pub process_count: u64,
    /// CPU busy time since the previous sample, 0–100; 0 in the first.
    pub cpu_percent: f32,
    /// Memory in use (total minus available), 0–100.
    pub memory_percent: f32,
    /// Outgoing TCP connection attempts that failed (`Tcp AttemptFails`
    /// of `/proc/net/snmp`: refused, reset or timed out) since the
    /// previous sample; 0 in the first, absent when not readable. A
    /// refused attempt leaves no socket for the next sample to list: this
    /// is how a scan of closed ports shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_attempts: Option<u64>,
}

impl Default for Telemetry {
    /// An empty sample of the current schema at time 0.
    fn default() -> Self {
        Self {
            schema: TELEMETRY_SCHEMA,
            time: 0,
            seq: 0,
            listening: Vec::new(),
            connections: Vec::new(),
            net: NetCounters::default(),
            connection_attempts: 0,
            failed_logins: None,
            failed_attempts: None,
            process_count: 0,
            cpu_percent: 0.0,
            memory_percent: 0.0,
        }
    }
}

/// Why telemetry bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The message is larger than [`MAX_TELEMETRY_BYTES`].
    #[error("telemetry of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message speaks another schema version.
    #[error("telemetry schema {found} is not supported (expected {expected})")]
    UnsupportedSchema {
        /// Version in the message.
        found: u32,
        /// Version this side speaks.
        expected: u32,
    },
    /// The bytes are not a telemetry message of this schema.
    #[error("malformed telemetry: {0}")]
    Malformed(String),
    /// The message parsed but breaks a limit.
    #[error("invalid telemetry: {}", join(.0))]
    Invalid(Vec<LimitError>),
}

fn join(errors: &[LimitError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn check_percent(field: &str, value: f32, errors: &mut Vec<LimitError>) {
    if !value.is_finite() || !(0.0..=100.0).contains(&value) {
        errors.push(LimitError {
            field: field.to_owned(),
            problem: "must be a finite number from 0 to 100".to_owned(),
        });
    }
}

impl Telemetry {
    /// Checks the schema version and every limit; reports every problem (at
    /// most 20).
    pub fn validate(&self) -> Result<(), Vec<LimitError>> {
        let mut errors = Vec::new();
        if self.schema != TELEMETRY_SCHEMA {
            errors.push(LimitError {
                field: "schema".into(),
                problem: format!("must be {TELEMETRY_SCHEMA}"),
            });
        }
        if self.time > MAX_TIME_MS {
            errors.push(LimitError {
                field: "time".into(),
                problem: format!("later than {MAX_TIME_MS} ms"),
            });
        }
        if self.listening.len() > MAX_LISTENING {
            errors.push(LimitError {
                field: "listening".into(),
                problem: format!("more than {MAX_LISTENING} entries"),
            });
        } else {
            for (i, l) in self.listening.iter().enumerate() {
                if l.port == 0 {
                    errors.push(LimitError {
                        field: format!("listening[{i}].port"),
                        problem: "must not be 0".into(),
                    });
                }
                if errors.len() >= MAX_REPORTED {
                    break;
                }
            }
        }
        if self.connections.len() > MAX_CONNECTIONS {
            errors.push(LimitError {
                field: "connections".into(),
                problem: format!("more than {MAX_CONNECTIONS} entries"),
            });
        }
        check_percent("cpu_percent", self.cpu_percent, &mut errors);
        check_percent("memory_percent", self.memory_percent, &mut errors);
        errors.truncate(MAX_REPORTED);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Validates, then encodes as JSON (the default [`Encoding`]).
    pub fn encode(&self) -> Result<Vec<u8>, TelemetryError> {
        self.encode_as(Encoding::Json)
    }

    /// Validates, then encodes in `encoding`.
    pub fn encode_as(&self, encoding: Encoding) -> Result<Vec<u8>, TelemetryError> {
        self.validate().map_err(TelemetryError::Invalid)?;
        let bytes = match encoding {
            Encoding::Json => {
                serde_json::to_vec(self).map_err(|e| TelemetryError::Malformed(e.to_string()))?
            }
            Encoding::Cbor => cbor::encode(self)?,
        };
        if bytes.len() > MAX_TELEMETRY_BYTES {
            return Err(TelemetryError::TooLarge {
                len: bytes.len(),
                max: MAX_TELEMETRY_BYTES,
            });
        }
        Ok(bytes)
    }
}

/// How a telemetry message is encoded on the wire. [`decode`] accepts
/// both; the agent picks one (`--telemetry-encoding`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// JSON text, field names as in [`Telemetry`].
    #[default]
    Json,
    /// CBOR with integer keys (see the module documentation).
    Cbor,
}

impl Encoding {
    /// The encoding of a message, from its first byte: a CBOR map header
    /// (major type 5, `0xa0`–`0xbf`) means CBOR, anything else is read as
    /// JSON (which cannot start with those bytes).
    pub fn of(bytes: &[u8]) -> Encoding {
        match bytes.first() {
            Some(0xa0..=0xbf) => Encoding::Cbor,
            _ => Encoding::Json,
        }
    }

    /// `json` or `cbor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Cbor => "cbor",
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Encoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Encoding::Json),
            "cbor" => Ok(Encoding::Cbor),
            other => Err(format!(
                "unknown telemetry encoding {other:?} (json or cbor)"
            )),
        }
    }
}

/// Just the version, read leniently so that a message of another schema is
/// reported as such rather than as unknown fields.
#[derive(Deserialize)]
struct SchemaOnly {
    schema: u32,
}

/// Decodes telemetry bytes from the network: size, then strict JSON or
/// CBOR ([`Encoding::of`]), then the schema version, then
/// [`Telemetry::validate`]. A message that is not strict JSON of this
/// schema but names another version is reported as
/// [`TelemetryError::UnsupportedSchema`], and so is a CBOR message whose
/// first entry does. Never panics.
pub fn decode(bytes: &[u8]) -> Result<Telemetry, TelemetryError> {
    if bytes.len() > MAX_TELEMETRY_BYTES {
        return Err(TelemetryError::TooLarge {
            len: bytes.len(),
            max: MAX_TELEMETRY_BYTES,
        });
    }
    if Encoding::of(bytes) == Encoding::Cbor {
        let t = cbor::decode(bytes)?;
        t.validate().map_err(TelemetryError::Invalid)?;
        return Ok(t);
    }
    // JSON text is UTF-8 (RFC 8259 §8.1). Checking the whole message once
    // lets serde_json read from a `&str`, where it no longer checks each
    // string it meets (a fifth of the parse for telemetry's short keys).
    let text = std::str::from_utf8(bytes)
        .map_err(|e| TelemetryError::Malformed(format!("not UTF-8: {e}")))?;
    // The plain shape agents send is read without serde (see `json.rs`);
    // anything else, valid or not, is left to serde_json below.
    if let Some(t) = json::decode_fast(text) {
        if t.schema != TELEMETRY_SCHEMA {
            return Err(TelemetryError::UnsupportedSchema {
                found: t.schema,
                expected: TELEMETRY_SCHEMA,
            });
        }
        t.validate().map_err(TelemetryError::Invalid)?;
        return Ok(t);
    }
    // One strict parse on the hot path; only a message that fails it is
    // read a second time, leniently, to tell another schema version from
    // a malformed message.
    let t: Telemetry = match serde_json::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            return Err(match serde_json::from_str::<SchemaOnly>(text) {
                Ok(v) if v.schema != TELEMETRY_SCHEMA => TelemetryError::UnsupportedSchema {
                    found: v.schema,
                    expected: TELEMETRY_SCHEMA,
                },
                _ => TelemetryError::Malformed(e.to_string()),
            });
        }
    };
    if t.schema != TELEMETRY_SCHEMA {
        return Err(TelemetryError::UnsupportedSchema {
            found: t.schema,
            expected: TELEMETRY_SCHEMA,
        });
    }
    t.validate().map_err(TelemetryError::Invalid)?;
    Ok(t)
}

/// Longest command message accepted by the agent.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;

/// A command the server sends to a device on its command topic
/// (`bulwark/v1/devices/{id}/commands`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeviceCommand {
    /// Cut the device off from everything but the control plane.
    Isolate {
        /// Why (the quarantine reason).
        reason: String,
    },
}

impl DeviceCommand {
    /// The command's JSON.
    pub fn encode(&self) -> Vec<u8> {
        // A derived Serialize of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a command, size-capped.
    pub fn decode(bytes: &[u8]) -> Result<DeviceCommand, TelemetryError> {
        if bytes.len() > MAX_COMMAND_BYTES {
            return Err(TelemetryError::TooLarge {
                len: bytes.len(),
                max: MAX_COMMAND_BYTES,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| TelemetryError::Malformed(e.to_string()))
    }
}

/// What the agent reports after an isolate command, on
/// `bulwark/v1/devices/{id}/isolation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsolationReport {
    /// Whether the firewall rules are in place.
    pub isolated: bool,
    /// What was done, or why it could not be (no privilege, no nft).
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Telemetry {
        Telemetry {
            time: 1_700_000_000_000,
            seq: 7,
            listening: vec![ListeningPort {
                proto: TransportProto::Tcp,
                port: 22,
                addr: "0.0.0.0".parse().unwrap(),
            }],
            connections: vec![Connection {
                proto: TransportProto::Tcp,
                local_port: 22,
                remote_addr: "2001:db8::1".parse().unwrap(),
                remote_port: 50_000,
                state: ConnectionState::Established,
            }],
            net: NetCounters {
                bytes_in: 1,
                bytes_out: 2,
                packets_in: 3,
                packets_out: 4,
            },
            connection_attempts: 5,
            failed_logins: Some(6),
            process_count: 100,
            cpu_percent: 12.5,
            memory_percent: 40.0,
            ..Telemetry::default()
        }
    }

    fn json_with(field: &str, value: &str) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().encode().unwrap()).unwrap();
        v[field] = serde_json::from_str(value).unwrap();
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn round_trip() {
        let t = sample();
        let bytes = t.encode().unwrap();
        assert_eq!(decode(&bytes).unwrap(), t);
    }

    #[test]
    fn failed_attempts_are_optional_in_both_encodings() {
        let mut t = sample();
        for f in [None, Some(0), Some(u64::MAX)] {
            t.failed_attempts = f;
            for enc in [Encoding::Json, Encoding::Cbor] {
                let bytes = t.encode_as(enc).unwrap();
                assert_eq!(decode(&bytes).unwrap(), t, "{enc:?} {f:?}");
            }
        }
        // Absent when unknown: a server that predates the field still
        // reads an agent that cannot read the counter.
        t.failed_attempts = None;
        let text = String::from_utf8(t.encode().unwrap()).unwrap();
        assert!(!text.contains("failed_attempts"), "{text}");
        assert_eq!(
            decode(&json_with("failed_attempts", "null"))
                .unwrap()
                .failed_attempts,
            None
        );
        assert!(decode(&json_with("failed_attempts", "-1")).is_err());
    }

    #[test]
    fn wire_names() {
        let text = String::from_utf8(sample().encode().unwrap()).unwrap();
        assert!(text.contains(r#""proto":"tcp""#), "{text}");
        assert!(text.contains(r#""state":"established""#), "{text}");
        assert!(text.contains(r#""remote_addr":"2001:db8::1""#), "{text}");
    }

    #[test]
    fn unknown_field_is_refused() {
        let bytes = json_with("extra", "1");
        assert!(matches!(decode(&bytes), Err(TelemetryError::Malformed(_))));
    }

    #[test]
    fn other_schema_is_named() {
        // A v2 message with a field v1 does not know: the version is reported,
        // not the unknown field.
        let mut v: serde_json::Value = serde_json::from_slice(&json_with("schema", "2")).unwrap();
        v["new_field"] = serde_json::json!(true);
        let bytes = serde_json::to_vec(&v).unwrap();
        assert_eq!(
            decode(&bytes),
            Err(TelemetryError::UnsupportedSchema {
                found: 2,
                expected: 1
            })
        );
    }

    #[test]
    fn other_schema_is_named_even_when_its_fields_are_ours() {
        // Parses strictly as v1 in every field but the version: the one
        // parse on the hot path must still refuse it by version.
        let bytes = json_with("schema", "2");
        assert_eq!(
            decode(&bytes),
            Err(TelemetryError::UnsupportedSchema {
                found: 2,
                expected: 1
            })
        );
        // Malformed and of our version: malformed, not "unsupported".
        let bytes = json_with("seq", r#""x""#);
        assert!(matches!(decode(&bytes), Err(TelemetryError::Malformed(_))));
    }

    #[test]
    fn oversized_is_refused_before_parsing() {
        let bytes = vec![b' '; MAX_TELEMETRY_BYTES + 1];
        assert!(matches!(
            decode(&bytes),
            Err(TelemetryError::TooLarge { .. })
        ));
    }

    #[test]
    fn non_finite_and_out_of_range_numbers_are_refused() {
        for bad in [r#""NaN""#, "null", "1e39", "-1", "100.5", r#""inf""#] {
            let bytes = json_with("cpu_percent", bad);
            assert!(decode(&bytes).is_err(), "{bad} accepted");
        }
        let mut t = sample();
        t.memory_percent = f32::NAN;
        assert!(t.validate().is_err());
        assert!(t.encode().is_err());
    }

    #[test]
    fn a_sample_at_every_limit_fits_the_byte_limit() {
        let widest: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
        let t = Telemetry {
            time: MAX_TIME_MS,
            seq: u64::MAX,
            listening: vec![
                ListeningPort {
                    proto: TransportProto::Tcp,
                    port: u16::MAX,
                    addr: widest,
                };
                MAX_LISTENING
            ],
            connections: vec![
                Connection {
                    proto: TransportProto::Tcp,
                    local_port: u16::MAX,
                    remote_addr: widest,
                    remote_port: u16::MAX,
                    state: ConnectionState::Established,
                };
                MAX_CONNECTIONS
            ],
            net: NetCounters {
                bytes_in: u64::MAX,
                bytes_out: u64::MAX,
                packets_in: u64::MAX,
                packets_out: u64::MAX,
            },
            connection_attempts: u64::MAX,
            failed_logins: Some(u64::MAX),
            process_count: u64::MAX,
            cpu_percent: 99.999_99,
            memory_percent: 99.999_99,
            ..Telemetry::default()
        };
        let bytes = t.encode().unwrap();
        assert_eq!(decode(&bytes).unwrap(), t);
    }

    #[test]
    fn too_many_connections() {
        let mut t = sample();
        t.connections = vec![t.connections[0].clone(); MAX_CONNECTIONS + 1];
        let errors = t.validate().unwrap_err();
        assert_eq!(errors[0].field, "connections");
    }

    #[test]
    fn bad_addresses_and_ports() {
        for (field, value) in [
            (
                "listening",
                r#"[{"proto":"tcp","port":22,"addr":"not-an-ip"}]"#,
            ),
            ("listening", r#"[{"proto":"sctp","port":22,"addr":"::"}]"#),
            ("listening", r#"[{"proto":"tcp","port":70000,"addr":"::"}]"#),
            ("listening", r#"[{"proto":"tcp","port":0,"addr":"::"}]"#),
            ("seq", "-1"),
            ("time", "253402300800000"),
        ] {
            assert!(
                decode(&json_with(field, value)).is_err(),
                "{value} accepted"
            );
        }
    }

    #[test]
    fn garbage_never_panics() {
        for bytes in [
            &b""[..],
            b"{",
            b"[]",
            b"null",
            b"{\"schema\":1}",
            b"{\"schema\":\"1\"}",
            b"\xff\xfe",
        ] {
            assert!(decode(bytes).is_err());
        }
    }
}
