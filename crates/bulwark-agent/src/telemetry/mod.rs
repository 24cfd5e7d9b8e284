//! Runtime telemetry: sockets, traffic, connection attempts, failed logins
//! and load, read from `/proc` and the auth log under a root directory.
//!
//! # Brief overview
//!
//! - [`Collector`] — reads the system under a root (`/` on a device, a
//!   fixture tree in tests; no root privileges needed) and returns a
//!   [`Telemetry`] sample per [`Collector::collect`]. It keeps the previous
//!   CPU times, `ActiveOpens` counter and auth-log position, so rates are
//!   deltas between two samples (0 in the first).
//! - The pure parsers, one per file format: [`parse_socket_table`],
//!   [`parse_net_dev`], [`parse_snmp_active_opens`], [`parse_snmp_tcp`], [`parse_proc_stat`] /
//!   [`cpu_percent`], [`parse_meminfo`], [`count_failed_logins`].
//!
//! # Example
//!
//! ```
//! use bulwark_agent::telemetry::Collector;
//!
//! let mut collector = Collector::new("/");
//! let sample = collector.collect(1_795_000_000_000);
//! assert!(sample.validate().is_ok());
//! for warning in collector.warnings() {
//!     eprintln!("telemetry: {warning}");
//! }
//! let wire: Vec<u8> = sample.encode().unwrap();
//! assert_eq!(bulwark_proto::telemetry::decode(&wire).unwrap(), sample);
//! ```
//!
//! # Design
//!
//! Collection never fails and never panics: an unreadable or malformed file
//! yields empty or zero values and a [`Warning`] (see
//! [`Collector::warnings`]), and every list is capped at the limits of
//! [`bulwark_proto::telemetry`], so a sample always passes
//! [`Telemetry::validate`]. Files are read with a size cap.
//!
//! # Current limitations
//!
//! Addresses in `/proc/net/*` are decoded as little-endian words (every
//! target Bulwark ships for); a big-endian device would report byte-swapped
//! addresses. Failed logins are read from `/var/log/auth.log` only (not
//! journald, not `/var/log/secure`).

mod net;
mod system;

pub use net::{
    SocketTable, parse_hex_endpoint, parse_net_dev, parse_snmp_active_opens, parse_snmp_tcp,
    parse_socket_table,
};
pub use system::{CpuTimes, count_failed_logins, cpu_percent, parse_meminfo, parse_proc_stat};

use std::fmt;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use bulwark_proto::telemetry::{
    Connection, ListeningPort, MAX_CONNECTIONS, MAX_LISTENING, TELEMETRY_SCHEMA, Telemetry,
    TransportProto,
};

/// Largest `/proc/net` socket table read; a longer one is cut (and warned
/// about) rather than ignored.
pub const MAX_SOCKET_TABLE_BYTES: u64 = 16 << 20;
/// Largest other `/proc` file read.
pub const MAX_PROC_FILE_BYTES: u64 = 1 << 20;
/// Most auth-log bytes read per collection; the rest waits for the next.
pub const MAX_AUTH_LOG_READ: u64 = 16 << 20;

/// Paths read, relative to the root.
const SOCKET_TABLES: [(&str, TransportProto); 4] = [
    ("proc/net/tcp", TransportProto::Tcp),
    ("proc/net/tcp6", TransportProto::Tcp),
    ("proc/net/udp", TransportProto::Udp),
    ("proc/net/udp6", TransportProto::Udp),
];
const NET_DEV: &str = "proc/net/dev";
const NET_SNMP: &str = "proc/net/snmp";
const PROC_STAT: &str = "proc/stat";
const MEMINFO: &str = "proc/meminfo";
const PROC: &str = "proc";
/// The auth log, relative to the root.
pub const AUTH_LOG: &str = "var/log/auth.log";

/// A file that could not be read or understood during a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file, relative to the collector's root.
    pub file: &'static str,
    /// What went wrong.
    pub problem: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.problem)
    }
}

/// Opens `path` only if it is a regular file (procfs files are), so a FIFO
/// or device planted under the root cannot block or feed the collector.
fn open_regular(path: &Path) -> std::io::Result<File> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    File::open(path)
}

/// Where the previous collection stopped reading the auth log.
#[derive(Debug, Clone, Copy)]
struct LogPosition {
    inode: u64,
    offset: u64,
}

/// Collects [`Telemetry`] samples from the system under a root directory.
#[derive(Debug)]
pub struct Collector {
    root: PathBuf,
    seq: u64,
    prev_cpu: Option<CpuTimes>,
    prev_active_opens: Option<u64>,
    prev_attempt_fails: Option<u64>,
    auth_log: Option<LogPosition>,
    warnings: Vec<Warning>,
}

impl Collector {
    /// Reads the system under `root` (`/` on a device).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            seq: 0,
            prev_cpu: None,
            prev_active_opens: None,
            prev_attempt_fails: None,
            auth_log: None,
            warnings: Vec::new(),
        }
    }

    /// The root directory read.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What went wrong during the last [`collect`](Self::collect).
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Takes one sample stamped `now_ms` (unix milliseconds). Never fails:
    /// problems become zero values and [`warnings`](Self::warnings).
    pub fn collect(&mut self, now_ms: u64) -> Telemetry {
        self.warnings.clear();
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let (listening, connections) = self.sockets();
        let net = match self.read(NET_DEV, MAX_PROC_FILE_BYTES) {
            Some(text) => {
                let (c, bad) = parse_net_dev(&text);
                self.bad_lines(NET_DEV, bad);
                c
            }
            None => Default::default(),
        };
        let (connection_attempts, failed_attempts) = self.connection_attempts();
        Telemetry {
            schema: TELEMETRY_SCHEMA,
            time: now_ms,
            seq,
            listening,
            connections,
            net,
            connection_attempts,
            failed_attempts,
            failed_logins: self.failed_logins(),
            process_count: self.process_count(),
            cpu_percent: self.cpu_percent(),
            memory_percent: self.memory_percent(),
        }
    }

    fn warn(&mut self, file: &'static str, problem: impl Into<String>) {
        self.warnings.push(Warning {
            file,
            problem: problem.into(),
        });
    }

    fn bad_lines(&mut self, file: &'static str, bad: usize) {
        if bad > 0 {
            self.warn(file, format!("{bad} malformed lines skipped"));
        }
    }

    /// Reads a file with a cap; a longer file is cut at the cap (warned).
    fn read(&mut self, rel: &'static str, cap: u64) -> Option<String> {
        let path = self.root.join(rel);
        let result = open_regular(&path).and_then(|f| {
            let mut buf = Vec::new();
            f.take(cap + 1).read_to_end(&mut buf)?;
            Ok(buf)
        });
        match result {
            Ok(mut buf) => {
                if buf.len() as u64 > cap {
                    buf.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
                    self.warn(rel, format!("longer than {cap} bytes; the rest is ignored"));
                }
                Some(String::from_utf8_lossy(&buf).into_owned())
            }
            Err(e) => {
                self.warn(rel, format!("cannot read: {e}"));
                None
            }
        }
    }

    fn sockets(&mut self) -> (Vec<ListeningPort>, Vec<Connection>) {
        let mut listening = Vec::new();
        let mut connections = Vec::new();
        for (rel, proto) in SOCKET_TABLES {
            let Some(text) = self.read(rel, MAX_SOCKET_TABLE_BYTES) else {
                continue;
            };
            let table = parse_socket_table(&text, proto);
            self.bad_lines(rel, table.bad_lines);
            listening.extend(table.listening);
            connections.extend(table.connections);
        }
        listening.sort();
        listening.dedup();
        connections.sort();
        connections.dedup();
        if listening.len() > MAX_LISTENING {
            self.warn(
                SOCKET_TABLES[0].0,
                format!(
                    "{} listening sockets; only the first {MAX_LISTENING} are reported",
                    listening.len()
                ),
            );
            listening.truncate(MAX_LISTENING);
        }
        if connections.len() > MAX_CONNECTIONS {
            self.warn(
                SOCKET_TABLES[0].0,
                format!(
                    "{} connections; only the first {MAX_CONNECTIONS} are reported",
                    connections.len()
                ),
            );
            connections.truncate(MAX_CONNECTIONS);
        }
        (listening, connections)
    }

    /// Outgoing TCP attempts and failed attempts since the previous
    /// sample (`Tcp ActiveOpens`, `AttemptFails`); the failures are `None`
    /// when the counter cannot be read.
    fn connection_attempts(&mut self) -> (u64, Option<u64>) {
        let Some(text) = self.read(NET_SNMP, MAX_PROC_FILE_BYTES) else {
            self.prev_active_opens = None;
            self.prev_attempt_fails = None;
            return (0, None);
        };
        // A counter that went backwards (reboot, namespace change) restarts
        // the baseline.
        let delta = |prev: &mut Option<u64>, cur: u64| {
            let d = prev.and_then(|p| cur.checked_sub(p)).unwrap_or(0);
            *prev = Some(cur);
            d
        };
        let mut missing = Vec::new();
        let attempts = match parse_snmp_active_opens(&text) {
            Some(cur) => delta(&mut self.prev_active_opens, cur),
            None => {
                missing.push("ActiveOpens");
                self.prev_active_opens = None;
                0
            }
        };
        let fails = match parse_snmp_tcp(&text, "AttemptFails") {
            Some(cur) => Some(delta(&mut self.prev_attempt_fails, cur)),
            None => {
                missing.push("AttemptFails");
                self.prev_attempt_fails = None;
                None
            }
        };
        if !missing.is_empty() {
            self.warn(NET_SNMP, format!("no Tcp {} counter", missing.join(" or ")));
        }
        (attempts, fails)
    }

    fn cpu_percent(&mut self) -> f32 {
        let Some(text) = self.read(PROC_STAT, MAX_PROC_FILE_BYTES) else {
            self.prev_cpu = None;
            return 0.0;
        };
        let Some(cur) = parse_proc_stat(&text) else {
            self.warn(PROC_STAT, "no usable cpu line");
            self.prev_cpu = None;
            return 0.0;
        };
        let pct = self.prev_cpu.map_or(0.0, |prev| cpu_percent(prev, cur));
        self.prev_cpu = Some(cur);
        pct
    }

    fn memory_percent(&mut self) -> f32 {
        let Some(text) = self.read(MEMINFO, MAX_PROC_FILE_BYTES) else {
            return 0.0;
        };
        parse_meminfo(&text).unwrap_or_else(|| {
            self.warn(MEMINFO, "no usable MemTotal / MemAvailable");
            0.0
        })
    }

    fn process_count(&mut self) -> u64 {
        match std::fs::read_dir(self.root.join(PROC)) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.as_encoded_bytes();
                    !name.is_empty() && name.iter().all(u8::is_ascii_digit)
                })
                .count() as u64,
            Err(e) => {
                self.warn(PROC, format!("cannot list: {e}"));
                0
            }
        }
    }

    /// Failed logins appended to the auth log since the previous
    /// collection. The first collection only records where the log ends
    /// (reports 0). A log that shrank or was replaced (rotation) is read
    /// from its start. Only complete lines are counted.
    fn failed_logins(&mut self) -> Option<u64> {
        let path = self.root.join(AUTH_LOG);
        let opened = open_regular(&path).and_then(|f| {
            let meta = f.metadata()?;
            Ok((f, meta))
        });
        let (mut file, meta) = match opened {
            Ok(x) => x,
            Err(e) => {
                // Many devices log to journald only: absence is normal.
                if e.kind() != std::io::ErrorKind::NotFound {
                    self.warn(AUTH_LOG, format!("cannot read: {e}"));
                }
                self.auth_log = None;
                return None;
            }
        };
        let (inode, len) = (meta.ino(), meta.len());
        let start = match self.auth_log {
            None => {
                self.auth_log = Some(LogPosition { inode, offset: len });
                return Some(0);
            }
            Some(p) if p.inode != inode || len < p.offset => 0,
            Some(p) => p.offset,
        };
        let mut buf = Vec::new();
        let read = file
            .seek(SeekFrom::Start(start))
            .and_then(|_| (&mut file).take(MAX_AUTH_LOG_READ).read_to_end(&mut buf));
        if let Err(e) = read {
            self.warn(AUTH_LOG, format!("cannot read: {e}"));
            self.auth_log = None;
            return None;
        }
        let complete = match buf.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            // One line longer than the whole read budget: skip it.
            None if buf.len() as u64 >= MAX_AUTH_LOG_READ => buf.len(),
            None => 0,
        };
        let count = count_failed_logins(&String::from_utf8_lossy(&buf[..complete]));
        self.auth_log = Some(LogPosition {
            inode,
            offset: start.saturating_add(complete as u64),
        });
        Some(count)
    }
}
