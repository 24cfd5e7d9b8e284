//! Server configuration: raw (as written) → validated (as used).
//!
//! [`RawConfig`] is what a TOML file or the command line says;
//! [`RawConfig::validate`] is pure (no filesystem, network or clock) and
//! reports every problem at once, so an operator fixes a config in one pass.
//! `RawConfig` is also the flags of `bulwark server` (clap), and
//! `reference` renders it as the commented reference configuration.

mod reference;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bulwark_pki::Secret;
use serde::{Deserialize, Serialize};

/// The server's configuration as written: the keys of the TOML file
/// (`bulwark server --config`) and, from the same definition, the flags of
/// `bulwark server` (`poll_interval_secs` is `--poll-interval-secs`).
/// Every field is optional; the defaults are the embedded single-node
/// setup. Each field's doc comment is its `--help` text and its
/// description in the reference configuration ([`RawConfig::reference_toml`]).
#[derive(Debug, Clone, Default, Deserialize, Serialize, clap::Args)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Settings (each also a key of the --config file)")]
pub struct RawConfig {
    /// Directory for the database, keys and certificates (created 0700);
    /// required.
    #[arg(long, env = "BULWARK_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Admin API listen address, IP:PORT (default 127.0.0.1:8080). Plain
    /// HTTP: keep it on loopback or behind a TLS proxy.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Device listener, IP:PORT (default 127.0.0.1:8443): HTTPS, mutual
    /// TLS with device certificates; enrollment and check-ins.
    #[arg(long, value_name = "ADDR")]
    pub device_listen: Option<String>,
    /// `sqlite://…` or `postgres://…` (default: a SQLite file in the data
    /// directory). It may carry a password: never shown by `Debug` or
    /// `--help`.
    #[arg(
        long,
        env = "BULWARK_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<RawSecret>,
    /// Extra DNS names or IPs for the device listener's certificate
    /// (`localhost`, `127.0.0.1` and `::1` are always included); the flag
    /// is repeatable.
    #[serde(default)]
    #[arg(
        long = "device-hostname",
        visible_alias = "device-hostnames",
        value_name = "NAME"
    )]
    pub device_hostnames: Vec<String>,
    /// How often agents check in, seconds (5–86400; default 60).
    #[arg(long, visible_alias = "poll-interval", value_name = "SECS")]
    pub poll_interval_secs: Option<u32>,
    /// Largest accepted request body, bytes (default 4 MiB: a full
    /// inventory of `bulwark_proto::MAX_PACKAGES` packages is about 2 MB).
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Per-request time limit, seconds (default 30).
    #[arg(long, value_name = "SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Most concurrent device TLS connections (default 100000).
    #[arg(long, value_name = "N")]
    pub max_device_connections: Option<usize>,
    /// Most concurrent API connections (default 512).
    #[arg(long, value_name = "N")]
    pub max_api_connections: Option<usize>,
    /// How often buffered check-ins are written to the store, ms (default
    /// 1000).
    #[arg(long, value_name = "MS")]
    pub checkin_flush_ms: Option<u64>,
    /// Validity of device certificates, days (default 365).
    #[arg(long, value_name = "DAYS")]
    pub device_cert_days: Option<u32>,
    /// How often a new journal checkpoint is signed while entries arrive,
    /// ms (default 1000).
    #[arg(long, value_name = "MS")]
    pub checkpoint_interval_ms: Option<u64>,
    /// The journal's origin line, set once on first start (default: a
    /// random `bulwark.invalid/journal/<id>`).
    #[arg(long, value_name = "ORIGIN")]
    pub journal_origin: Option<String>,
    /// Largest release artifact, bytes (default 4 GiB).
    #[arg(long, value_name = "BYTES")]
    pub max_blob_bytes: Option<u64>,
    /// The promotion ladder, in order (default dev, staging, production);
    /// the flag takes them comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "ENV,...")]
    pub environments: Option<Vec<String>>,
    /// Directory of YARA rule files (`*.yar`, `*.yara`) the release gate
    /// scans every artifact with (default: `<data_dir>/rules` when it
    /// exists; otherwise no malware rules).
    #[arg(long, value_name = "DIR")]
    pub yara_rules_dir: Option<PathBuf>,
    /// Device gateway (MQTT 3.1.1/5 over mutual TLS) listen address,
    /// IP:PORT; no gateway when unset.
    #[arg(long, value_name = "ADDR")]
    pub mqtt_listen: Option<String>,
    /// Largest MQTT packet a device may send, bytes (default 1 MiB).
    #[arg(long, value_name = "BYTES")]
    pub mqtt_max_packet_bytes: Option<usize>,
    /// Publishes per second each device may sustain (default 20).
    #[arg(long, value_name = "N")]
    pub mqtt_rate_per_second: Option<u32>,
    /// Publishes a device may burst above its rate (default 100).
    #[arg(long, value_name = "N")]
    pub mqtt_rate_burst: Option<u32>,
    /// Detection worker threads (default: half the number of CPUs, at
    /// least one).
    ///
    /// The gateway's own work per sample (TLS, MQTT, JSON) runs on the
    /// async workers, one per CPU, and is several times the detection
    /// work: one detection thread per CPU on top of them oversubscribed a
    /// 2-core machine (0.74–0.82× Mosquitto ingest against 0.88–0.94× with
    /// one; BENCHMARKS.md).
    #[arg(long, value_name = "N")]
    pub detect_shards: Option<usize>,
    /// How long per-minute telemetry history is kept, days (1–3650;
    /// default 7).
    #[arg(long, value_name = "DAYS")]
    pub telemetry_retention_days: Option<u32>,
    /// External broker mode: consume telemetry from this MQTT 5 broker,
    /// HOST:PORT, as well as or instead of the built-in gateway. Plain TCP
    /// unless `mqtt_broker_ca` is set.
    #[arg(long, value_name = "HOST:PORT")]
    pub mqtt_broker: Option<String>,
    /// PEM CA certificate(s) the external broker's certificate must chain
    /// to: connect over TLS (1.2 or 1.3), the host of `mqtt_broker` being
    /// the name checked.
    #[arg(long, value_name = "PEM")]
    pub mqtt_broker_ca: Option<PathBuf>,
    /// PEM certificate chain the server presents to the external broker
    /// (mutual TLS); with `mqtt_broker_key`.
    #[arg(long, value_name = "PEM")]
    pub mqtt_broker_cert: Option<PathBuf>,
    /// PEM private key of `mqtt_broker_cert`; must not be readable by
    /// group or others.
    #[arg(long, value_name = "PEM")]
    pub mqtt_broker_key: Option<PathBuf>,
    /// Destinations webhooks may reach although they are not public:
    /// networks (`10.1.2.0/24`), addresses (`127.0.0.1`) or host names
    /// (`siem.internal`); the flag is repeatable.
    ///
    /// By default deliveries go to public addresses only (no loopback,
    /// private, link-local or cloud metadata address).
    #[serde(default)]
    #[arg(long, value_name = "NET|HOST")]
    pub webhook_allow: Vec<String>,
}

/// A setting's text that may hold a password (a database URL): read as a
/// plain string, never shown by `Debug`. `Serialize` writes the text, for
/// the reference configuration an operator asks for
/// ([`RawConfig::reference_toml`]); nothing logs a serialized config.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct RawSecret(pub String);

impl std::fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for RawSecret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for RawSecret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Data directory.
    pub data_dir: PathBuf,
    /// API listen address.
    pub listen: SocketAddr,
    /// Device listen address.
    pub device_listen: SocketAddr,
    /// Database URL (may hold a password, hence [`Secret`]).
    pub database_url: Secret,
    /// Names for the device listener certificate.
    pub device_hostnames: Vec<String>,
    /// Agent poll interval.
    pub poll_interval: Duration,
    /// Body size limit.
    pub max_body_bytes: usize,
    /// Request timeout.
    pub request_timeout: Duration,
    /// Device connection cap.
    pub max_device_connections: usize,
    /// API connection cap.
    pub max_api_connections: usize,
    /// Check-in flush period.
    pub checkin_flush: Duration,
    /// Device certificate validity.
    pub device_cert_validity: time::Duration,
    /// Checkpoint period.
    pub checkpoint_interval: Duration,
    /// Journal origin for first start.
    pub journal_origin: Option<String>,
    /// Largest release artifact.
    pub max_blob_bytes: u64,
    /// The promotion ladder.
    pub environments: Vec<String>,
    /// YARA rules directory, if any.
    pub yara_rules_dir: Option<PathBuf>,
    /// Device gateway listen address, if any.
    pub mqtt_listen: Option<SocketAddr>,
    /// Largest MQTT packet.
    pub mqtt_max_packet_bytes: usize,
    /// Sustained publishes per second per device.
    pub mqtt_rate_per_second: u32,
    /// Burst above the rate.
    pub mqtt_rate_burst: u32,
    /// Detection worker threads.
    pub detect_shards: usize,
    /// How long per-minute telemetry history is kept.
    pub telemetry_retention: time::Duration,
    /// External MQTT broker to consume telemetry from, if any.
    pub mqtt_broker: Option<String>,
    /// TLS to the external broker, if configured.
    pub mqtt_broker_tls: Option<BrokerTls>,
    /// Where webhook deliveries may go.
    pub webhook_policy: crate::webhooks::DestinationPolicy,
}

/// Where the TLS material for the external broker connection is (read
/// when the server starts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerTls {
    /// PEM CA certificate(s) to verify the broker with.
    pub ca: PathBuf,
    /// Client certificate chain and key, for mutual TLS.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ConfigError {
    /// The offending setting.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

/// Default API listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default device listen address.
pub const DEFAULT_DEVICE_LISTEN: &str = "127.0.0.1:8443";

impl RawConfig {
    /// Parses a TOML configuration file's text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError {
            field: "config file",
            problem: e.to_string(),
        })
    }

    /// Overlays `other`'s set fields onto `self` (command line over file);
    /// lists (`device_hostnames`, `webhook_allow`) are joined. `other` is
    /// taken apart field by field, so a new setting cannot be forgotten.
    pub fn overlay(mut self, other: RawConfig) -> Self {
        let RawConfig {
            data_dir,
            listen,
            device_listen,
            database_url,
            device_hostnames,
            poll_interval_secs,
            max_body_bytes,
            request_timeout_secs,
            max_device_connections,
            max_api_connections,
            checkin_flush_ms,
            device_cert_days,
            checkpoint_interval_ms,
            journal_origin,
            max_blob_bytes,
            environments,
            yara_rules_dir,
            mqtt_listen,
            mqtt_max_packet_bytes,
            mqtt_rate_per_second,
            mqtt_rate_burst,
            detect_shards,
            telemetry_retention_days,
            mqtt_broker,
            mqtt_broker_ca,
            mqtt_broker_cert,
            mqtt_broker_key,
            webhook_allow,
        } = other;
        macro_rules! take {
            ($($f:ident),*) => { $( if $f.is_some() { self.$f = $f; } )* };
        }
        take!(
            data_dir,
            listen,
            device_listen,
            database_url,
            poll_interval_secs,
            max_body_bytes,
            request_timeout_secs,
            max_device_connections,
            max_api_connections,
            checkin_flush_ms,
            device_cert_days,
            checkpoint_interval_ms,
            journal_origin,
            max_blob_bytes,
            environments,
            yara_rules_dir,
            mqtt_listen,
            mqtt_max_packet_bytes,
            mqtt_rate_per_second,
            mqtt_rate_burst,
            detect_shards,
            telemetry_retention_days,
            mqtt_broker,
            mqtt_broker_ca,
            mqtt_broker_cert,
            mqtt_broker_key
        );
        self.device_hostnames.extend(device_hostnames);
        self.webhook_allow.extend(webhook_allow);
        self
    }

    /// Checks everything; returns all problems found.
    pub fn validate(self) -> Result<ServerConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut err = |field, problem: String| errors.push(ConfigError { field, problem });

        let data_dir = match self.data_dir {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => {
                err("data_dir", "is required (--data-dir DIR)".into());
                PathBuf::new()
            }
        };
        let mut addr = |field, value: Option<String>, default: &str| -> Option<SocketAddr> {
            let text = value.unwrap_or_else(|| default.to_owned());
            match text.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    err(field, format!("{text:?} is not an IP:port address"));
                    None
                }
            }
        };
        let listen = addr("listen", self.listen, DEFAULT_LISTEN);
        let device_listen = addr("device_listen", self.device_listen, DEFAULT_DEVICE_LISTEN);
        if let (Some(a), Some(b)) = (listen, device_listen)
            && a == b
            && a.port() != 0
        {
            err(
                "device_listen",
                format!("{b} is also the API listen address"),
            );
        }
        let database_url = match self.database_url.map(|s| s.0) {
            None => format!("sqlite://{}", data_dir.join("bulwark.db").display()),
            Some(u)
                if u.starts_with("sqlite:")
                    || u.starts_with("postgres://")
                    || u.starts_with("postgresql://") =>
            {
                u
            }
            Some(_) => {
                err(
                    "database_url",
                    "must start with sqlite: or postgres://".into(),
                );
                String::new()
            }
        };
        let mut names: BTreeSet<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        for n in self.device_hostnames {
            let ok = !n.is_empty()
                && n.len() <= 253
                && (n.parse::<std::net::IpAddr>().is_ok()
                    || n.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    }));
            if ok {
                names.insert(n.to_ascii_lowercase());
            } else {
                err(
                    "device_hostnames",
                    format!("{n:?} is not a DNS name or IP address"),
                );
            }
        }
        let mut range = |field, v: Option<u64>, default: u64, lo: u64, hi: u64| -> u64 {
            let v = v.unwrap_or(default);
            if !(lo..=hi).contains(&v) {
                err(field, format!("{v} is outside {lo}..={hi}"));
            }
            v
        };
        let poll = range(
            "poll_interval_secs",
            self.poll_interval_secs.map(u64::from),
            60,
            5,
            86_400,
        );
        let body = range(
            "max_body_bytes",
            self.max_body_bytes.map(|v| v as u64),
            4 << 20,
            1024,
            64 << 20,
        );
        let timeout = range(
            "request_timeout_secs",
            self.request_timeout_secs,
            30,
            1,
            3_600,
        );
        let conns = range(
            "max_device_connections",
            self.max_device_connections.map(|v| v as u64),
            100_000,
            1,
            10_000_000,
        );
        let api_conns = range(
            "max_api_connections",
            self.max_api_connections.map(|v| v as u64),
            crate::listen::DEFAULT_MAX_API_CONNECTIONS as u64,
            1,
            1_000_000,
        );
        let flush = range("checkin_flush_ms", self.checkin_flush_ms, 1_000, 10, 60_000);
        let checkpoint = range(
            "checkpoint_interval_ms",
            self.checkpoint_interval_ms,
            1_000,
            50,
            60_000,
        );
        let days = range(
            "device_cert_days",
            self.device_cert_days.map(u64::from),
            365,
            1,
            3_650,
        );
        let max_blob = range("max_blob_bytes", self.max_blob_bytes, 4 << 30, 1, 1 << 40);
        let mqtt_packet = range(
            "mqtt_max_packet_bytes",
            self.mqtt_max_packet_bytes.map(|v| v as u64),
            1 << 20,
            1024,
            16 << 20,
        );
        let mqtt_rate = range(
            "mqtt_rate_per_second",
            self.mqtt_rate_per_second.map(u64::from),
            20,
            1,
            1_000_000,
        );
        let mqtt_burst = range(
            "mqtt_rate_burst",
            self.mqtt_rate_burst.map(u64::from),
            100,
            1,
            10_000_000,
        );
        let cpus = std::thread::available_parallelism().map_or(2, usize::from) as u64;
        let shards = range(
            "detect_shards",
            self.detect_shards.map(|v| v as u64),
            (cpus / 2).max(1),
            1,
            256,
        );
        let retention = range(
            "telemetry_retention_days",
            self.telemetry_retention_days.map(u64::from),
            7,
            1,
            3_650,
        );
        if let Some(b) = &self.mqtt_broker
            && (b
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()))
        {
            err("mqtt_broker", format!("{b:?} is not host:port"));
        }
        let mqtt_broker_tls = match (
            self.mqtt_broker_ca,
            self.mqtt_broker_cert,
            self.mqtt_broker_key,
        ) {
            (None, None, None) => None,
            (Some(ca), None, None) => Some(BrokerTls { ca, client: None }),
            (Some(ca), Some(cert), Some(key)) => Some(BrokerTls {
                ca,
                client: Some((cert, key)),
            }),
            (None, _, _) => {
                err(
                    "mqtt_broker_ca",
                    "a client certificate for the broker needs the broker's CA too".into(),
                );
                None
            }
            (Some(_), _, _) => {
                err(
                    "mqtt_broker_cert",
                    "mqtt_broker_cert and mqtt_broker_key go together".into(),
                );
                None
            }
        };
        if mqtt_broker_tls.is_some() && self.mqtt_broker.is_none() {
            err(
                "mqtt_broker_ca",
                "TLS settings for the broker need mqtt_broker".into(),
            );
        }
        let mqtt_listen = match self.mqtt_listen {
            None => None,
            Some(text) => match text.parse::<SocketAddr>() {
                Ok(a) => {
                    if a.port() != 0 && (Some(a) == listen || Some(a) == device_listen) {
                        err(
                            "mqtt_listen",
                            format!("{a} is already used by another listener"),
                        );
                    }
                    Some(a)
                }
                Err(_) => {
                    err("mqtt_listen", format!("{text:?} is not an IP:port address"));
                    None
                }
            },
        };
        if let Some(o) = &self.journal_origin
            && (o.is_empty()
                || o.len() > 128
                || o.chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '+'))
        {
            err(
                "journal_origin",
                format!("{o:?} must be 1-128 printable characters without spaces or '+'"),
            );
        }

        let environments = self.environments.unwrap_or_else(|| {
            ["dev", "staging", "production"]
                .into_iter()
                .map(str::to_owned)
                .collect()
        });
        let mut seen = BTreeSet::new();
        let mut env_errors = Vec::new();
        if environments.is_empty() {
            env_errors.push("needs at least one environment".to_owned());
        }
        for e in &environments {
            if !crate::api::valid_name(e) || !seen.insert(e.clone()) {
                env_errors.push(format!("{e:?} is not a unique name of a-z 0-9 - _ ."));
            }
        }
        for problem in env_errors {
            err("environments", problem);
        }
        let webhook_policy = crate::webhooks::DestinationPolicy::new(&self.webhook_allow)
            .unwrap_or_else(|problems| {
                for p in problems {
                    err("webhook_allow", p);
                }
                crate::webhooks::DestinationPolicy::default()
            });
        let (Some(listen), Some(device_listen), true) = (listen, device_listen, errors.is_empty())
        else {
            return Err(errors);
        };
        Ok(ServerConfig {
            data_dir,
            listen,
            device_listen,
            database_url: Secret::new(database_url),
            device_hostnames: names.into_iter().collect(),
            poll_interval: Duration::from_secs(poll),
            max_body_bytes: body as usize,
            request_timeout: Duration::from_secs(timeout),
            max_device_connections: conns as usize,
            max_api_connections: api_conns as usize,
            checkin_flush: Duration::from_millis(flush),
            device_cert_validity: time::Duration::days(days as i64),
            checkpoint_interval: Duration::from_millis(checkpoint),
            journal_origin: self.journal_origin,
            max_blob_bytes: max_blob,
            environments,
            yara_rules_dir: self.yara_rules_dir,
            mqtt_listen,
            mqtt_max_packet_bytes: mqtt_packet as usize,
            mqtt_rate_per_second: mqtt_rate as u32,
            mqtt_rate_burst: mqtt_burst as u32,
            detect_shards: shards as usize,
            telemetry_retention: time::Duration::days(retention as i64),
            mqtt_broker: self.mqtt_broker,
            mqtt_broker_tls,
            webhook_policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_setup() {
        let cfg = RawConfig {
            data_dir: Some("/tmp/d".into()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(cfg.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(cfg.database_url.expose(), "sqlite:///tmp/d/bulwark.db");
        assert_eq!(cfg.poll_interval, Duration::from_secs(60));
        assert_eq!(cfg.max_body_bytes, 4 << 20);
        assert!(
            format!("{cfg:?}").contains("[redacted]"),
            "database URL may hold a password"
        );
    }

    #[test]
    fn the_raw_database_url_is_never_shown() {
        let raw = RawConfig::from_toml(
            "database_url = \"postgres://bulwark:hunter2@db.example/bulwark\"\n",
        )
        .unwrap();
        let shown = format!("{raw:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("[redacted]"),
            "{shown}"
        );
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let raw = RawConfig {
            data_dir: None,
            listen: Some("127.0.0.1:9000".into()),
            device_listen: Some("127.0.0.1:9000".into()),
            database_url: Some("mysql://x".into()),
            device_hostnames: vec!["bad host".into(), "gw.example.com".into()],
            poll_interval_secs: Some(1),
            webhook_allow: vec!["10.0.0.0/8".into(), "10.0.0.0/40".into()],
            ..Default::default()
        };
        let errs: Vec<String> = raw
            .validate()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "data_dir: is required (--data-dir DIR)",
                "device_listen: 127.0.0.1:9000 is also the API listen address",
                "database_url: must start with sqlite: or postgres://",
                "device_hostnames: \"bad host\" is not a DNS name or IP address",
                "poll_interval_secs: 1 is outside 5..=86400",
                "webhook_allow: \"10.0.0.0/40\": the prefix length must be 0..=32",
            ]
        );
    }

    #[test]
    fn broker_tls_settings_go_together() {
        let base = || RawConfig {
            data_dir: Some("d".into()),
            mqtt_broker: Some("broker.example:8883".into()),
            ..Default::default()
        };
        let first_error = |raw: RawConfig| raw.validate().unwrap_err()[0].to_string();
        assert_eq!(base().validate().unwrap().mqtt_broker_tls, None);
        let ca_only = RawConfig {
            mqtt_broker_ca: Some("ca.pem".into()),
            ..base()
        };
        assert_eq!(
            ca_only.clone().validate().unwrap().mqtt_broker_tls,
            Some(BrokerTls {
                ca: "ca.pem".into(),
                client: None
            })
        );
        let mutual = RawConfig {
            mqtt_broker_cert: Some("c.pem".into()),
            mqtt_broker_key: Some("k.pem".into()),
            ..ca_only.clone()
        };
        assert_eq!(
            mutual.validate().unwrap().mqtt_broker_tls,
            Some(BrokerTls {
                ca: "ca.pem".into(),
                client: Some(("c.pem".into(), "k.pem".into()))
            })
        );
        assert_eq!(
            first_error(RawConfig {
                mqtt_broker_cert: Some("c.pem".into()),
                ..ca_only.clone()
            }),
            "mqtt_broker_cert: mqtt_broker_cert and mqtt_broker_key go together"
        );
        assert_eq!(
            first_error(RawConfig {
                mqtt_broker_cert: Some("c.pem".into()),
                mqtt_broker_key: Some("k.pem".into()),
                ..base()
            }),
            "mqtt_broker_ca: a client certificate for the broker needs the broker's CA too"
        );
        assert_eq!(
            first_error(RawConfig {
                mqtt_broker: None,
                ..ca_only
            }),
            "mqtt_broker_ca: TLS settings for the broker need mqtt_broker"
        );
    }

    #[test]
    fn toml_unknown_fields_are_refused_and_overlay_prefers_command_line() {
        assert!(RawConfig::from_toml("listen = \"x\"\nlisten_typo = 1\n").is_err());
        let file =
            RawConfig::from_toml("listen = \"127.0.0.1:1\"\npoll_interval_secs = 30\n").unwrap();
        let cli = RawConfig {
            listen: Some("127.0.0.1:2".into()),
            data_dir: Some("d".into()),
            ..Default::default()
        };
        let cfg = file.overlay(cli).validate().unwrap();
        assert_eq!(cfg.listen.port(), 2);
        assert_eq!(cfg.poll_interval, Duration::from_secs(30));
    }
}
