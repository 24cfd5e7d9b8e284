//! Device gateway benchmarks (issue 6): MQTT ingest throughput with
//! detection on, side by side with Mosquitto on the same mutual TLS and the
//! same load generator; publish → alert latency; alert → quarantine
//! enforced; idle sessions and server memory per session.
//!
//! # Methodology
//!
//! - **Load generator** (the same for both brokers). One device per
//!   connection; each connection is TCP (`TCP_NODELAY`) + TLS 1.3
//!   (rustls, aws-lc-rs, client certificate ECDSA P-256 like the ones
//!   Bulwark issues), then a hand-encoded MQTT 3.1.1 CONNECT (clean
//!   session) and, once CONNACK says accepted, QoS 0 PUBLISHes to the
//!   device's own `bulwark/v1/devices/{id}/telemetry`. The payload is one
//!   encoded `bulwark_proto::telemetry::Telemetry` sample: by default the
//!   project's `typical` one (three listening ports, three connections;
//!   `--sample small`: one port, no connections, JSON 302 B / CBOR 62 B),
//!   each encoding of `--encodings` measured on both brokers with the same
//!   bytes, and the table names the sizes. The PUBLISH is encoded once
//!   and written as a 16 KiB buffer of back-to-back copies; TCP
//!   backpressure paces the writer. The generator runs in this process on
//!   its own 2-thread runtime (threads `bench-loadgen`).
//! - **Bulwark** runs in this process (`bulwark_server::Server::start`,
//!   SQLite, its own 2-thread runtime, the default detection shards) so that
//!   `Monitor::accepted()` (samples decoded and handed to the detection
//!   engine) can be read. The per-device rate limit is raised to
//!   1,000,000/s (burst 1,000,000) for every run of this suite. The
//!   devices enroll for real (`bulwark_agent::enroll`), and a profile is
//!   applied to their group through `POST /api/v1/profiles` before any
//!   telemetry (the built-in fleet profile's behaviours plus three rules
//!   the alert measurements trigger), so every sample goes through the
//!   detection engine and the telemetry history.
//! - **Mosquitto** (`/usr/sbin/mosquitto`, one thread), started before
//!   the Bulwark runs and kept running beside them, gets a listener on
//!   127.0.0.1 with a CA, server certificate and one client certificate per
//!   connection generated here (ECDSA P-256), `require_certificate true`,
//!   `use_identity_as_username true`, `tls_version tlsv1.3`, and an ACL
//!   file equivalent to the gateway's (`pattern write
//!   bulwark/v1/devices/%u/telemetry`, the certificate CN being the device
//!   id), `persistence false`, no subscribers during the run.
//! - **Throughput.** `--connections` (40) connections publish as fast as
//!   the broker reads; after a 3 s warm-up, the window (10 s; 4 s with
//!   `--quick`) is measured. This virtual machine's speed drifts by up to
//!   2× over minutes, so the brokers are measured in `--rounds` (3; 1 with
//!   `--quick`) rounds, each of Bulwark then Mosquitto for every encoding
//!   (the broker not measured is idle), and the result is the median of
//!   the rounds' ratios; every round's figures are printed. Bulwark's
//!   figure is the `accepted()` delta
//!   over the window; the generator's sent count and the gateway's
//!   rejection counts (per device, `Monitor::rejections`) are reported
//!   next to it. Mosquitto has no equivalent of `accepted()` at this
//!   resolution, so its figure is the generator's sent rate (publishes
//!   written into the TLS stream, which TCP backpressure bounds to what the
//!   broker reads); after the run, Mosquitto's own
//!   `$SYS/broker/publish/messages/received` (sys_interval 1 s) is compared
//!   with the generator's total over every round as a check, and the same
//!   is done with `accepted()` for Bulwark. CPU time of the broker and of the generator
//!   over the window is reported.
//! - **Publish → alert.** While the same devices publish (JSON) at half of
//!   the median throughput measured for Bulwark with the first encoding (paced per connection every 10 ms), a
//!   probe device publishes, every 100 ms, a sample listening on tcp/23
//!   (behaviour `telnet-open`, `in-set`, no action) and 50 ms later a clean
//!   one (which ends the episode, so the rule re-arms). Latency is from
//!   just before the PUBLISH is written to the moment the matching
//!   `detection` event is read from `GET /api/v1/alerts/stream` (SSE, admin
//!   token). Exact nearest-rank percentiles over all samples; a sample with
//!   no alert within 2 s counts as lost.
//! - **Alert → quarantine enforced.** Under the same background load, a
//!   fresh device at a time (a quarantined device is refused at connect)
//!   publishes a sample listening on tcp/4444 (behaviour `backdoor-open`,
//!   `action = "quarantine"`); measured is the time from writing the
//!   PUBLISH to the server closing the connection (the read side sees EOF
//!   or a reset). The device does not subscribe to its command topic and
//!   never sends an isolation report, so the server waits its whole
//!   isolation grace (`ISOLATION_GRACE`, 500 ms) before closing: the figure
//!   includes it, and the publish → alert part is shown next to it.
//! - **Idle sessions.** A separate `bulwark server` process (next to this
//!   executable, `--mqtt-listen`) so that its RSS is its own. `--sessions`
//!   devices enroll for real (16 at a time; the rate is reported), then
//!   `VmRSS` of the server is read (after 3 s of quiet), one MQTT session
//!   per device is opened (64 handshakes in flight, client sockets bound to
//!   127.0.0.2, 127.0.0.3, … to stay clear of one address's ephemeral
//!   ports), and `VmRSS` is read again after 3 s. Per session = the
//!   difference / sessions open. Every session is then checked with a
//!   PINGREQ. The count is bounded by the open-file limit of this
//!   container (`RLIMIT_NOFILE`, raised to its hard limit when possible):
//!   the number reached is printed, nothing is extrapolated.
//!
//! Progress goes to stderr, the table to stdout.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bulwark_agent::{EnrollOptions, StateDir, StateFile};
use bulwark_api::{ApplyProfile, CreateEnrollToken, StreamEvent};
use bulwark_client::Client;
use bulwark_proto::DeviceId;
use bulwark_proto::telemetry::{
    Encoding, ListeningPort, NetCounters, TELEMETRY_SCHEMA, Telemetry, TransportProto,
};
use bulwark_server::{RawConfig, Server, SystemClock};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::server;
use crate::stats;

/// Bulwark's ingest rate must reach this multiple of Mosquitto's.
const TARGET_RATIO: f64 = 1.0;
/// Publish → alert p99, milliseconds.
const TARGET_ALERT_P99_MS: f64 = 50.0;
/// Publish → session closed by quarantine, milliseconds.
const TARGET_QUARANTINE_MS: f64 = 1000.0;
/// Idle sessions the target is stated for.
const TARGET_SESSIONS: usize = 100_000;
/// Server memory per idle session, bytes.
const TARGET_BYTES_PER_SESSION: f64 = 20_000.0;
/// Per-device rate limit for every run of this suite.
const RATE: u32 = 1_000_000;
/// The group every benchmark device joins.
const GROUP: &str = "bench";
/// Warm-up before each throughput window.
const WARMUP: Duration = Duration::from_secs(3);
/// Size of one write of the unpaced generator.
const WRITE_BYTES: usize = 16 * 1024;
/// Pacing tick of the paced generator.
const TICK: Duration = Duration::from_millis(10);
/// Concurrent enrollments.
const ENROLL_PARALLEL: usize = 16;
/// Concurrent session handshakes in the sessions run.
const CONNECT_PARALLEL: usize = 64;
/// Client sockets per source address (one address has ~28k ports).
const PER_SOURCE_ADDR: usize = 20_000;
/// MQTT keep-alive asked for (the gateway caps it at 120 s).
const KEEP_ALIVE: u16 = 120;
/// Longest wait for one alert or one close.
const EVENT_TIMEOUT: Duration = Duration::from_secs(2);
/// File descriptors kept free for everything but the sessions: the
/// server keeps `FD_RESERVE` and its API connection cap out of the device
/// side's share (`bulwark_server::listen::caps`), and a few more are its
/// own files and sockets.
const FD_MARGIN: usize =
    bulwark_server::listen::FD_RESERVE + bulwark_server::listen::DEFAULT_MAX_API_CONNECTIONS + 64;

/// The profile applied to the benchmark devices' group: the built-in
/// fleet profile's behaviours (what every group runs by default: the
/// semantics over flows and the failed-logins rule, see [`profile`]) and
/// these rules, which the alert and quarantine measurements trigger.
const BENCH_RULES: &str = r#"

[[behaviour]]
name = "telnet-open"
severity = "high"
metric = "listening_ports"
operator = "in-set"
threshold = ["tcp/23"]

[[behaviour]]
name = "backdoor-open"
severity = "critical"
action = "quarantine"
metric = "listening_ports"
operator = "in-set"
threshold = ["tcp/4444"]

[[behaviour]]
name = "many-processes"
severity = "low"
metric = "process_count"
operator = ">"
threshold = 1000
"#;

/// The bench group's profile document: the built-in profile retargeted to
/// group `bench`, plus [`BENCH_RULES`].
fn profile() -> String {
    let builtin = bulwark_detect::BUILTIN_PROFILE
        .replace("group = \"*\"", "group = \"bench\"")
        .replace(
            &format!("version = \"{}\"", bulwark_detect::BUILTIN_VERSION),
            "version = \"bench-1\"",
        );
    format!("{builtin}\n{BENCH_RULES}")
}

/// Which telemetry sample the ingest rounds publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SampleKind {
    /// One listening port, no connections (JSON 302 B, CBOR 62 B): the
    /// sample of sessions 6–9.
    Small,
    /// The project's `typical` sample (fuzz/seeds/telemetry_decode): three
    /// listening ports, three connections (one unanswered), failed
    /// logins.
    Typical,
}

/// Arguments of `bulwark-bench gateway`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct GatewayArgs {
    /// Small run: 4 s windows, 60 alert samples, 10 quarantines, 2,000
    /// idle sessions (explicit flags still win).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Print only the markdown table on stdout.
    #[arg(long)]
    pub(crate) markdown: bool,
    /// Publishing connections, one device each.
    #[arg(long, default_value_t = 40)]
    pub(crate) connections: usize,
    /// Throughput window [default: 10s; with --quick: 4s].
    #[arg(long, value_parser = crate::parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Publish → alert samples [default: 300; with --quick: 60].
    #[arg(long)]
    pub(crate) samples: Option<usize>,
    /// Quarantined devices [default: 30; with --quick: 10].
    #[arg(long)]
    pub(crate) quarantines: Option<usize>,
    /// Idle sessions [default: as many as the open-file limit allows, at
    /// most 100000; with --quick: 2000].
    #[arg(long)]
    pub(crate) sessions: Option<usize>,
    /// Skip the idle-session run.
    #[arg(long)]
    pub(crate) no_sessions: bool,
    /// Throughput rounds; each round measures Bulwark then Mosquitto, once
    /// per encoding, and the result is the median of the rounds' ratios
    /// [default: 3; with --quick: 1].
    #[arg(long)]
    pub(crate) rounds: Option<usize>,
    /// Telemetry encodings to measure ingest with (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "json,cbor")]
    pub(crate) encodings: Vec<Encoding>,
    /// The telemetry sample the ingest rounds publish.
    #[arg(long, value_enum, default_value = "typical")]
    pub(crate) sample: SampleKind,
    /// The `bulwark` binary for the sessions run [default: next to this
    /// executable].
    #[arg(long)]
    pub(crate) bulwark: Option<PathBuf>,
    /// The Mosquitto broker to compare with.
    #[arg(long, default_value = "/usr/sbin/mosquitto")]
    pub(crate) mosquitto: PathBuf,
    /// Keep the temporary directory (printed) instead of deleting it.
    #[arg(long)]
    pub(crate) keep: bool,
}

/// One row of the table.
#[derive(Debug)]
struct Row {
    benchmark: String,
    bulwark: String,
    peer: String,
    target: String,
    result: String,
}

fn met(ok: bool) -> String {
    if ok { "met".into() } else { "NOT met".into() }
}

// ---------------------------------------------------------------------------
// Entry point

/// Runs the suite (blocking: it owns the runtimes) and prints the table.
pub(crate) fn run(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    ensure!(args.connections >= 1, "--connections must be at least 1");
    let quick = args.quick;
    let window = args.duration.unwrap_or(if quick {
        Duration::from_secs(4)
    } else {
        Duration::from_secs(10)
    });
    let samples = args.samples.unwrap_or(if quick { 60 } else { 300 });
    let rounds = args.rounds.unwrap_or(if quick { 1 } else { 3 });
    ensure!(rounds >= 1, "--rounds must be at least 1");
    // Each encoding once, in the order given (`dedup` alone would keep
    // `json,cbor,json` as three).
    let mut encodings: Vec<Encoding> = Vec::new();
    for e in &args.encodings {
        if !encodings.contains(e) {
            encodings.push(*e);
        }
    }
    ensure!(!encodings.is_empty(), "--encodings names none");
    let quarantines = args.quarantines.unwrap_or(if quick { 10 } else { 30 });
    ensure!(samples >= 1 && quarantines >= 1, "nothing to measure");
    raise_nofile();

    let work = tempfile::Builder::new().prefix("bulwark-gw-").tempdir()?;
    let work_path = work.path().to_path_buf();
    if args.keep {
        eprintln!("gateway: keeping {}", work.keep().display());
    }
    let loadgen = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-loadgen")
        .enable_all()
        .build()?;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(stats::cpus())
        .thread_name("bulwark-server")
        .enable_all()
        .build()?;

    let mut rows = Vec::new();

    // 1–3. Bulwark in process: throughput (in rounds with Mosquitto, which
    // runs beside it, idle while Bulwark is measured), alert latency,
    // quarantine.
    let mosquitto = loadgen.block_on(Mosquitto::start(
        &args.mosquitto,
        &work_path.join("mosquitto"),
        args.connections,
    ))?;
    let plan = Plan {
        connections: args.connections,
        window,
        rounds,
        encodings,
        sample: args.sample,
        samples,
        quarantines,
    };
    let bulwark = bulwark_runs(
        &server_rt,
        &loadgen,
        &work_path.join("bulwark"),
        &plan,
        &mosquitto,
    )?;
    let mosquitto_counted = loadgen.block_on(mosquitto.finish())?;
    for rounds in &bulwark.throughput {
        rows.push(throughput_row(rounds, &bulwark, mosquitto_counted, &plan));
    }
    rows.push(alert_row(&bulwark));
    rows.push(quarantine_row(&bulwark));
    drop(server_rt);

    // 4. Idle sessions on a separate server process.
    if !args.no_sessions {
        let wanted = args
            .sessions
            .unwrap_or(if quick { 2_000 } else { TARGET_SESSIONS });
        let limit = nofile_limit().unwrap_or(1024);
        let count = wanted.min(limit.saturating_sub(FD_MARGIN));
        if count < wanted {
            eprintln!(
                "gateway: {wanted} sessions asked, the open-file limit ({limit}) allows {count}"
            );
        }
        ensure!(count >= 1, "the open-file limit ({limit}) leaves no room");
        let binary = match &args.bulwark {
            Some(p) => p.clone(),
            None => server::default_binary()?,
        };
        let s = loadgen.block_on(sessions_run(&binary, &work_path.join("sessions"), count))?;
        rows.push(sessions_row(&s, wanted, limit));
    }
    drop(loadgen);

    let header = "| benchmark | bulwark | peer | target | result |\n|---|---|---|---|---|";
    let body: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "| {} | {} | {} | {} | {} |",
                r.benchmark, r.bulwark, r.peer, r.target, r.result
            )
        })
        .collect();
    if !args.markdown {
        let mem = stats::mem_gib().map_or_else(String::new, |g| format!(", {g:.1} GiB RAM"));
        println!(
            "machine: {} CPUs ({}){mem}; brokers and the load generator share it",
            stats::cpus(),
            stats::cpu_model()
        );
    }
    println!("{header}\n{}", body.join("\n"));
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// Rows

/// `123456.7` → `123,457`.
fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The median of `v` (the mean of the middle two for an even count).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn list(v: &[f64], f: impl Fn(f64) -> String) -> String {
    v.iter().map(|&x| f(x)).collect::<Vec<_>>().join(", ")
}

/// One side of a round: Bulwark's figures or Mosquitto's.
type Side = fn(&(Throughput, Throughput)) -> &Throughput;

/// Median cores of one side over the rounds.
fn median_cores(
    pairs: &[(Throughput, Throughput)],
    side: Side,
    cpu: fn(&Throughput) -> Option<Duration>,
) -> String {
    let v: Vec<f64> = pairs
        .iter()
        .map(side)
        .filter_map(|t| cpu(t).map(|c| c.as_secs_f64() / t.window.as_secs_f64()))
        .collect();
    if v.is_empty() {
        "n/a".to_owned()
    } else {
        format!("{:.2}", median(&v))
    }
}

fn throughput_row(
    r: &Rounds,
    outcome: &BulwarkOutcome,
    mosquitto_counted: Option<u64>,
    plan: &Plan,
) -> Row {
    let Some((b0, _)) = r.pairs.first() else {
        return Row {
            benchmark: format!("gateway: ingest ({})", r.encoding),
            bulwark: "no rounds".into(),
            peer: String::new(),
            target: String::new(),
            result: "n/a".into(),
        };
    };
    let b_rates: Vec<f64> = r
        .pairs
        .iter()
        .map(|(b, _)| b.accepted.unwrap_or(0) as f64 / b.window.as_secs_f64())
        .collect();
    let m_rates: Vec<f64> = r
        .pairs
        .iter()
        .map(|(_, m)| m.sent as f64 / m.window.as_secs_f64())
        .collect();
    let ratios: Vec<f64> = b_rates.iter().zip(&m_rates).map(|(b, m)| b / m).collect();
    let ratio = median(&ratios);
    let rejected = if outcome.rejections.is_empty() {
        "0 rejected".to_owned()
    } else {
        let parts: Vec<String> = outcome
            .rejections
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        format!("rejected (whole suite): {}", parts.join(", "))
    };
    let check = |counted: Option<u64>, sent: u64, what: &str| match counted {
        Some(c) if sent > 0 => format!(
            "{what} over every round of every encoding {} of {} sent ({:.2} %)",
            thousands(c as f64),
            thousands(sent as f64),
            c as f64 * 100.0 / sent as f64
        ),
        _ => format!("{what} n/a"),
    };
    let rate = |v: f64| format!("{}/s", thousands(v));
    let (ours, theirs): (Side, Side) = (|p| &p.0, |p| &p.1);
    Row {
        benchmark: format!(
            "gateway: ingest, {} telemetry of {} B ({} B PUBLISH), {} mTLS connections (TLS 1.3, {}), QoS 0, no subscribers; publishes/s over {:.0} s after {:.0} s warm-up, {} round(s) of Bulwark then Mosquitto (both running, the other idle), median of the rounds. Bulwark: samples handed to detection (`Monitor::accepted`, the built-in profile plus 3 rules on the group, rate limit raised to {}/s); Mosquitto 2.0.11: publishes the generator wrote (TCP backpressure bounds it to what the broker reads), ACL pattern per device, persistence off",
            r.encoding.as_str().to_uppercase(),
            b0.payload_bytes,
            b0.packet_bytes,
            plan.connections,
            b0.cipher,
            plan.window.as_secs_f64(),
            WARMUP.as_secs_f64(),
            r.pairs.len(),
            thousands(f64::from(RATE)),
        ),
        bulwark: format!(
            "{} (rounds: {}; {rejected}; {}; server {} cores, generator {} cores)",
            rate(median(&b_rates)),
            list(&b_rates, rate),
            check(outcome.accepted_total, outcome.sent_total, "accepted"),
            median_cores(&r.pairs, ours, |t| t.broker_cpu),
            median_cores(&r.pairs, ours, |t| t.loadgen_cpu),
        ),
        peer: format!(
            "{} (rounds: {}; {}; mosquitto {} cores, generator {} cores)",
            rate(median(&m_rates)),
            list(&m_rates, rate),
            check(
                mosquitto_counted,
                outcome.mosquitto_sent_total,
                "`$SYS/broker/publish/messages/received`"
            ),
            median_cores(&r.pairs, theirs, |t| t.broker_cpu),
            median_cores(&r.pairs, theirs, |t| t.loadgen_cpu),
        ),
        target: format!("≥ {TARGET_RATIO:.1}× Mosquitto"),
        result: format!(
            "{ratio:.2}× (rounds: {}): {}",
            list(&ratios, |x| format!("{x:.2}×")),
            met(ratio >= TARGET_RATIO)
        ),
    }
}

fn pct(sorted_us: &[u32], p: f64) -> f64 {
    stats::percentile(sorted_us, p).map_or(f64::NAN, |v| f64::from(v) / 1e3)
}

fn alert_row(b: &BulwarkOutcome) -> Row {
    let a = &b.alerts;
    let p50 = pct(&a.latencies_us, 50.0);
    let p99 = pct(&a.latencies_us, 99.0);
    let max = pct(&a.latencies_us, 100.0);
    Row {
        benchmark: format!(
            "gateway: publish → alert on the SSE stream, p50 / p99 (max), while {} connections publish {}/s in the background (JSON, half the median ingest rate of the first encoding measured; {} accepted/s over the run); {} firing samples, one every 100 ms, each followed by a clean one",
            b.connections,
            thousands(a.background_target),
            thousands(a.background_accepted),
            a.sent,
        ),
        bulwark: format!(
            "{p50:.1} ms / {p99:.1} ms ({max:.1} ms); {} lost",
            a.sent - a.latencies_us.len()
        ),
        peer: "—".into(),
        target: format!("p99 < {TARGET_ALERT_P99_MS:.0} ms"),
        result: met(a.latencies_us.len() == a.sent && p99 < TARGET_ALERT_P99_MS),
    }
}

fn quarantine_row(b: &BulwarkOutcome) -> Row {
    let q = &b.quarantine;
    let p50 = pct(&q.close_us, 50.0);
    let max = pct(&q.close_us, 100.0);
    let alert50 = pct(&q.alert_us, 50.0);
    Row {
        benchmark: format!(
            "gateway: publish of a firing sample → session closed by quarantine (`action = \"quarantine\"`), {} fresh devices under the same background load; MQTT 3.1.1 client that neither subscribes nor sends an isolation report, so the server waits its whole isolation grace ({} ms) before closing",
            q.sent, ISOLATION_GRACE_MS,
        ),
        bulwark: format!(
            "p50 {p50:.0} ms, max {max:.0} ms (publish → alert p50 {alert50:.1} ms); {} not closed within 2 s",
            q.sent - q.close_us.len()
        ),
        peer: "—".into(),
        target: format!("< {:.0} s", TARGET_QUARANTINE_MS / 1e3),
        result: met(q.close_us.len() == q.sent && max < TARGET_QUARANTINE_MS),
    }
}

/// `bulwark_server::monitor::ISOLATION_GRACE`, for the caption.
const ISOLATION_GRACE_MS: u128 = bulwark_server::monitor::ISOLATION_GRACE.as_millis();

fn sessions_row(s: &SessionsOutcome, wanted: usize, limit: usize) -> Row {
    let per = s.rss_delta_bytes as f64 / s.open.max(1) as f64;
    let capped = if s.open < wanted.min(TARGET_SESSIONS) {
        format!(
            "; {} sessions reached, not {}: this machine's open-file limit is {limit} per process (hard limit; raising it needs CAP_SYS_RESOURCE), nothing extrapolated",
            thousands(s.open as f64),
            thousands(wanted as f64)
        )
    } else {
        String::new()
    };
    Row {
        benchmark: format!(
            "gateway: idle mTLS MQTT sessions on a `bulwark server` process, one per enrolled device; server RSS (`VmRSS`) before and after opening them{capped}",
        ),
        bulwark: format!(
            "{} open ({} answered PINGREQ), RSS {:.1} → {:.1} MB: {:.1} KB/session; {} enrollments at {:.0}/s, {} handshakes at {:.0}/s",
            thousands(s.open as f64),
            thousands(s.pinged as f64),
            s.rss_before as f64 / 1e6,
            s.rss_after as f64 / 1e6,
            per / 1e3,
            thousands(s.enrolled as f64),
            s.enrolled as f64 / s.enroll_time.as_secs_f64(),
            thousands(s.open as f64),
            s.open as f64 / s.connect_time.as_secs_f64(),
        ),
        peer: "—".into(),
        target: format!(
            "{} sessions, ≤ {:.0} KB each",
            thousands(TARGET_SESSIONS as f64),
            TARGET_BYTES_PER_SESSION / 1e3
        ),
        result: if s.open >= TARGET_SESSIONS {
            met(per <= TARGET_BYTES_PER_SESSION)
        } else {
            format!(
                "{} KB/session: {} at {}; 100k not reached",
                format_args!("{:.1}", per / 1e3),
                if per <= TARGET_BYTES_PER_SESSION {
                    "met"
                } else {
                    "NOT met"
                },
                thousands(s.open as f64)
            )
        },
    }
}

// ---------------------------------------------------------------------------
// Resource limits and process accounting

/// Raises this process's soft open-file limit to its hard limit with
/// util-linux `prlimit` (this crate has no unsafe code for setrlimit);
/// child processes inherit it.
pub(crate) fn raise_nofile() {
    let Some((soft, hard)) = nofile_limits() else {
        return;
    };
    if soft >= hard {
        return;
    }
    let status = Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={hard}:{hard}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("gateway: could not raise the open-file limit from {soft} to {hard}");
    }
}

/// (soft, hard) `Max open files` of this process.
fn nofile_limits() -> Option<(usize, usize)> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut it = line["Max open files".len()..].split_whitespace();
    let soft = it.next()?.parse().unwrap_or(usize::MAX);
    let hard = it.next()?.parse().unwrap_or(usize::MAX);
    Some((soft, hard))
}

pub(crate) fn nofile_limit() -> Option<usize> {
    nofile_limits().map(|(s, _)| s)
}

/// CPU time of this process's threads whose name starts with `prefix`.
fn threads_cpu(prefix: &str) -> Option<Duration> {
    let mut ticks = 0.0;
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) else {
            continue;
        };
        if !text[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
        let u: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let s: f64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        ticks += u + s;
    }
    Duration::try_from_secs_f64(ticks / 100.0).ok()
}

/// `VmRSS` of a process, bytes.
pub(crate) fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")?;
    Ok(kb * 1024)
}

/// A free port on 127.0.0.1 right now.
fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

// ---------------------------------------------------------------------------
// MQTT 3.1.1, hand-encoded (only what the generator needs)

fn put_len(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn put_str(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![first];
    put_len(body.len(), &mut p);
    p.extend_from_slice(body);
    p
}

fn connect_packet(client_id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(b"MQTT", &mut body);
    body.push(4); // 3.1.1
    body.push(0x02); // clean session
    body.extend_from_slice(&KEEP_ALIVE.to_be_bytes());
    put_str(client_id.as_bytes(), &mut body);
    packet(0x10, &body)
}

fn publish_packet(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(topic.as_bytes(), &mut body);
    body.extend_from_slice(payload);
    packet(0x30, &body)
}

fn subscribe_packet(filter: &str) -> Vec<u8> {
    let mut body = 1u16.to_be_bytes().to_vec();
    put_str(filter.as_bytes(), &mut body);
    body.push(0);
    packet(0x82, &body)
}

const PINGREQ: [u8; 2] = [0xC0, 0x00];
const DISCONNECT: [u8; 2] = [0xE0, 0x00];

/// Reads one packet: (first byte, body).
async fn read_packet<S: AsyncRead + Unpin>(s: &mut S) -> anyhow::Result<(u8, Vec<u8>)> {
    let first = s.read_u8().await?;
    let mut len = 0usize;
    for shift in 0..4 {
        let b = s.read_u8().await?;
        len |= usize::from(b & 0x7f) << (7 * shift);
        if b & 0x80 == 0 {
            let mut body = vec![0; len];
            s.read_exact(&mut body).await?;
            return Ok((first, body));
        }
    }
    bail!("malformed remaining length")
}

fn telemetry_topic(id: &str) -> String {
    format!("bulwark/v1/devices/{id}/telemetry")
}

/// The project's `typical` sample (as in fuzz/seeds/telemetry_decode,
/// plus the failed connection attempts agents report since issue 17),
/// encoded.
fn typical_telemetry(encoding: Encoding) -> anyhow::Result<Vec<u8>> {
    use bulwark_proto::telemetry::{Connection, ConnectionState};
    #[expect(
        clippy::disallowed_methods,
        reason = "benchmark harness: samples carry the wall-clock time"
    )]
    let t = Telemetry {
        schema: TELEMETRY_SCHEMA,
        time: time::OffsetDateTime::now_utc().unix_timestamp() as u64 * 1000,
        seq: 42,
        listening: vec![
            ListeningPort {
                proto: TransportProto::Tcp,
                port: 22,
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            },
            ListeningPort {
                proto: TransportProto::Tcp,
                port: 8080,
                addr: "::".parse()?,
            },
            ListeningPort {
                proto: TransportProto::Udp,
                port: 5353,
                addr: "192.168.1.20".parse()?,
            },
        ],
        connections: vec![
            Connection {
                proto: TransportProto::Tcp,
                local_port: 41000,
                remote_addr: "198.51.100.7".parse()?,
                remote_port: 443,
                state: ConnectionState::Established,
            },
            Connection {
                proto: TransportProto::Udp,
                local_port: 40001,
                remote_addr: "2001:db8::1".parse()?,
                remote_port: 53,
                state: ConnectionState::Established,
            },
            Connection {
                proto: TransportProto::Tcp,
                local_port: 41002,
                remote_addr: "203.0.113.9".parse()?,
                remote_port: 8883,
                state: ConnectionState::SynSent,
            },
        ],
        net: NetCounters {
            bytes_in: 123_456_789,
            bytes_out: 98_765_432,
            packets_in: 100_000,
            packets_out: 90_000,
        },
        connection_attempts: 3,
        failed_logins: Some(2),
        process_count: 117,
        cpu_percent: 12.5,
        memory_percent: 43.25,
        failed_attempts: Some(1),
    };
    Ok(t.encode_as(encoding)?)
}

/// One encoded telemetry sample listening on `ports`.
fn telemetry(ports: &[u16], encoding: Encoding) -> anyhow::Result<Vec<u8>> {
    #[expect(
        clippy::disallowed_methods,
        reason = "benchmark harness: samples carry the wall-clock time"
    )]
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() as u64 * 1000;
    let t = Telemetry {
        schema: TELEMETRY_SCHEMA,
        time: now_ms,
        seq: 1,
        listening: ports
            .iter()
            .map(|&port| ListeningPort {
                proto: TransportProto::Tcp,
                port,
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            })
            .collect(),
        connections: Vec::new(),
        net: NetCounters {
            bytes_in: 1_234_567,
            bytes_out: 765_432,
            packets_in: 4_321,
            packets_out: 3_210,
        },
        connection_attempts: 0,
        failed_logins: None,
        process_count: 87,
        cpu_percent: 3.5,
        memory_percent: 41.0,
        failed_attempts: None,
    };
    Ok(t.encode_as(encoding)?)
}

// ---------------------------------------------------------------------------
// TLS and sessions

/// A client identity: TLS configuration (TLS 1.3 only) and MQTT names.
#[derive(Debug, Clone)]
struct Identity {
    id: String,
    tls: Arc<rustls::ClientConfig>,
}

fn client_tls(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])?
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)?;
    Ok(Arc::new(cfg))
}

impl Identity {
    fn of_device(s: &StateFile) -> anyhow::Result<Identity> {
        Ok(Identity {
            id: s.device_id.to_string(),
            tls: client_tls(&s.ca_pem, &s.cert_pem, s.key_pem.expose())?,
        })
    }
}

type Session = TlsStream<TcpStream>;

/// TCP (optionally from `source`), TLS, CONNECT; returns once CONNACK
/// accepted the session.
async fn open_session(
    addr: SocketAddr,
    source: Option<IpAddr>,
    who: &Identity,
) -> anyhow::Result<Session> {
    let sock = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        sock.bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("binding a client socket to {ip}"))?;
    }
    let tcp = sock.connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut tls = TlsConnector::from(Arc::clone(&who.tls))
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .context("TLS handshake")?;
    tls.write_all(&connect_packet(&who.id)).await?;
    tls.flush().await?;
    let (first, body) = tokio::time::timeout(Duration::from_secs(30), read_packet(&mut tls))
        .await
        .context("no CONNACK within 30 s")??;
    ensure!(
        first == 0x20 && body.len() == 2 && body.get(1) == Some(&0),
        "CONNACK refused: {first:#04x} {body:?}"
    );
    Ok(tls)
}

fn cipher_of(s: &Session) -> String {
    s.get_ref()
        .1
        .negotiated_cipher_suite()
        .map_or_else(|| "?".into(), |c| format!("{:?}", c.suite()))
}

// ---------------------------------------------------------------------------
// Load generator

/// A running generator: one task per connection.
#[derive(Debug)]
struct Load {
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Load {
    /// `per_conn_rate`: None = as fast as the broker reads.
    fn start(sessions: Vec<(Session, Vec<u8>)>, per_conn_rate: Option<f64>) -> Load {
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        let n = sessions.len();
        for (i, (mut s, pkt)) in sessions.into_iter().enumerate() {
            let (sent, stop) = (Arc::clone(&sent), Arc::clone(&stop));
            let per_batch = WRITE_BYTES.div_ceil(pkt.len()).max(1);
            let batch = pkt.repeat(per_batch);
            tasks.spawn(async move {
                match per_conn_rate {
                    None => {
                        while !stop.load(Ordering::Relaxed) {
                            s.write_all(&batch).await?;
                            s.flush().await?;
                            sent.fetch_add(per_batch as u64, Ordering::Relaxed);
                        }
                    }
                    Some(rate) => {
                        // Staggered ticks, so the connections do not all
                        // write at once.
                        let offset = TICK.mul_f64(i as f64 / n as f64);
                        let start = tokio::time::Instant::now() + offset;
                        let mut tick = tokio::time::interval_at(start, TICK);
                        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        let mut done = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            tick.tick().await;
                            let due = (start.elapsed().as_secs_f64() * rate) as u64;
                            let mut left = due.saturating_sub(done) as usize;
                            while left > 0 {
                                let k = left.min(per_batch);
                                s.write_all(&batch[..k * pkt.len()]).await?;
                                left -= k;
                                done += k as u64;
                                sent.fetch_add(k as u64, Ordering::Relaxed);
                            }
                            s.flush().await?;
                        }
                    }
                }
                let _ = s.write_all(&DISCONNECT).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), s.shutdown()).await;
                anyhow::Ok(())
            });
        }
        Load { sent, stop, tasks }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stops every connection (DISCONNECT); fails if one broke earlier.
    async fn stop(mut self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let mut first_err = None;
        while let Some(r) = self.tasks.join_next().await {
            if let Err(e) = r.context("generator task panicked").and_then(|r| r)
                && first_err.is_none()
            {
                first_err = Some(e);
            }
        }
        match first_err {
            Some(e) => Err(e.context("a publishing connection failed")),
            None => Ok(self.sent()),
        }
    }
}

/// What one throughput run measured.
#[derive(Debug, Default)]
struct Throughput {
    window: Duration,
    sent: u64,
    /// Bulwark only: `accepted()` delta over the window.
    accepted: Option<u64>,
    /// Everything the generator wrote, warm-up included.
    sent_total: u64,
    broker_cpu: Option<Duration>,
    loadgen_cpu: Option<Duration>,
    cipher: String,
    payload_bytes: usize,
    packet_bytes: usize,
}

/// Connects every identity and returns the sessions with their PUBLISH.
async fn connect_all(
    addr: SocketAddr,
    who: &[Identity],
    payload: &[u8],
) -> anyhow::Result<Vec<(Session, Vec<u8>)>> {
    let mut set = JoinSet::new();
    for (i, w) in who.iter().enumerate() {
        let w = w.clone();
        let pkt = publish_packet(&telemetry_topic(&w.id), payload);
        set.spawn(async move {
            let s = open_session(addr, None, &w)
                .await
                .with_context(|| format!("connecting {}", w.id))?;
            anyhow::Ok((i, s, pkt))
        });
    }
    let mut out: Vec<Option<(Session, Vec<u8>)>> = (0..who.len()).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        let (i, s, pkt) = r??;
        out[i] = Some((s, pkt));
    }
    out.into_iter()
        .map(|o| o.context("a connection went missing"))
        .collect()
}

/// Unpaced run: warm-up, then the window. `accepted` reads the broker's
/// accepted counter (Bulwark), `broker_pid` its CPU (None: this process
/// minus the generator's threads).
async fn throughput(
    addr: SocketAddr,
    who: &[Identity],
    window: Duration,
    encoding: Encoding,
    sample: SampleKind,
    accepted: Option<&(dyn Fn() -> u64 + Sync)>,
    broker_pid: Option<u32>,
) -> anyhow::Result<(Throughput, Load)> {
    let payload = match sample {
        SampleKind::Small => telemetry(&[22], encoding)?,
        SampleKind::Typical => typical_telemetry(encoding)?,
    };
    let sessions = connect_all(addr, who, &payload).await?;
    let cipher = sessions
        .first()
        .map(|(s, _)| cipher_of(s))
        .unwrap_or_default();
    let packet_bytes = sessions.first().map_or(0, |(_, p)| p.len());
    let broker_cpu = || match broker_pid {
        Some(p) => stats::cpu_time(Some(p)),
        None => stats::cpu_time(None)
            .zip(threads_cpu("bench-loadgen"))
            .map(|(a, b)| a.saturating_sub(b)),
    };
    let load = Load::start(sessions, None);
    tokio::time::sleep(WARMUP).await;
    let (s0, a0, b0, l0) = (
        load.sent(),
        accepted.map(|f| f()),
        broker_cpu(),
        threads_cpu("bench-loadgen"),
    );
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let (s1, a1, b1, l1) = (
        load.sent(),
        accepted.map(|f| f()),
        broker_cpu(),
        threads_cpu("bench-loadgen"),
    );
    let elapsed = t0.elapsed();
    let delta =
        |a: Option<Duration>, b: Option<Duration>| b.zip(a).map(|(b, a)| b.saturating_sub(a));
    Ok((
        Throughput {
            window: elapsed,
            sent: s1 - s0,
            accepted: a0.zip(a1).map(|(a, b)| b - a),
            broker_cpu: delta(b0, b1),
            loadgen_cpu: delta(l0, l1),
            cipher,
            payload_bytes: payload.len(),
            packet_bytes,
            ..Throughput::default()
        },
        load,
    ))
}

// ---------------------------------------------------------------------------
// Enrollment

#[derive(Debug, Clone)]
struct Endpoints {
    /// The admin API, as the admin.
    api: Client,
    device_url: String,
    ca_pem: String,
}

impl Endpoints {
    fn new(api: SocketAddr, device: SocketAddr, data_dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            let p = data_dir.join(name);
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
        };
        Ok(Endpoints {
            api: Client::new(&format!("http://{api}"), &read("admin.token")?)?,
            device_url: format!("https://{device}"),
            ca_pem: read("ca.pem")?,
        })
    }
}

/// Enrolls `count` devices for real, `ENROLL_PARALLEL` at a time.
async fn enroll(
    ep: &Endpoints,
    dir: &Path,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<StateFile>> {
    let permits = Arc::new(Semaphore::new(ENROLL_PARALLEL));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..count {
        let (ep, permits, done) = (ep.clone(), permits.clone(), done.clone());
        let state_dir = dir.join(format!("{prefix}-{i:06}"));
        set.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let token = ep
                .api
                .create_enroll_token(&CreateEnrollToken {
                    group: GROUP.into(),
                    environment: "staging".into(),
                    ttl_secs: Some(3600),
                    uses: None,
                })
                .await
                .context("creating an enrollment token")?
                .value
                .token;
            bulwark_agent::enroll(&EnrollOptions {
                server: ep.device_url.clone(),
                ca_pem: ep.ca_pem.clone(),
                token,
                state_dir: state_dir.clone(),
                hostname: None,
            })
            .await
            .with_context(|| format!("enrolling device {i}"))?;
            let state = StateDir::new(&state_dir).load()?;
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n % 2_000 == 0 {
                eprintln!(
                    "gateway: {n} devices enrolled ({:.0}/s)",
                    n as f64 / started.elapsed().as_secs_f64()
                );
            }
            anyhow::Ok((i, state))
        });
    }
    let mut out: Vec<Option<StateFile>> = (0..count).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        let (i, s) = r??;
        out[i] = Some(s);
    }
    out.into_iter()
        .map(|s| s.context("an enrollment went missing"))
        .collect()
}

// ---------------------------------------------------------------------------
// Bulwark, in process: throughput, alert latency, quarantine

#[derive(Debug, Default)]
struct Alerts {
    sent: usize,
    latencies_us: Vec<u32>,
    background_target: f64,
    background_accepted: f64,
}

#[derive(Debug, Default)]
struct Quarantines {
    sent: usize,
    close_us: Vec<u32>,
    alert_us: Vec<u32>,
}

#[derive(Debug)]
struct BulwarkOutcome {
    connections: usize,
    /// One entry per encoding.
    throughput: Vec<Rounds>,
    /// Samples the generator wrote to Bulwark over every round.
    sent_total: u64,
    /// `Monitor::accepted()` after the rounds.
    accepted_total: Option<u64>,
    /// Per-device rejections over every round, summed.
    rejections: BTreeMap<String, u64>,
    /// Publishes the generator wrote to Mosquitto over every round.
    mosquitto_sent_total: u64,
    alerts: Alerts,
    quarantine: Quarantines,
}

/// What the suite measures, from the arguments.
#[derive(Debug)]
struct Plan {
    connections: usize,
    window: Duration,
    rounds: usize,
    encodings: Vec<Encoding>,
    sample: SampleKind,
    samples: usize,
    quarantines: usize,
}

/// The throughput rounds of one encoding: (Bulwark, Mosquitto) per round.
#[derive(Debug)]
struct Rounds {
    encoding: Encoding,
    pairs: Vec<(Throughput, Throughput)>,
}

/// A detection event from the SSE stream: (device, behaviour, read at).
type AlertEvent = (String, String, Instant);

/// Reads `GET /api/v1/alerts/stream` and forwards every detection event.
async fn sse_alerts(
    ep: Endpoints,
    tx: mpsc::UnboundedSender<AlertEvent>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<()> {
    let mut stream = ep.api.alert_stream().await.context("alert stream")?;
    let _ = ready.send(());
    while let Some(event) = stream.next().await? {
        let at = Instant::now();
        if let Ok(Some(StreamEvent::Detection(a))) = event.alert()
            && tx.send((a.device.to_string(), a.behaviour, at)).is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}

/// Waits for `device`'s `behaviour` alert (others are dropped).
async fn wait_alert(
    rx: &mut mpsc::UnboundedReceiver<AlertEvent>,
    device: &str,
    behaviour: &str,
    deadline: tokio::time::Instant,
) -> Option<Instant> {
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((d, b, at))) if d == device && b == behaviour => return Some(at),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn bulwark_runs(
    server_rt: &tokio::runtime::Runtime,
    loadgen: &tokio::runtime::Runtime,
    dir: &Path,
    plan: &Plan,
    mosquitto: &Mosquitto,
) -> anyhow::Result<BulwarkOutcome> {
    let config = RawConfig {
        data_dir: Some(dir.join("data")),
        listen: Some("127.0.0.1:0".into()),
        device_listen: Some("127.0.0.1:0".into()),
        mqtt_listen: Some("127.0.0.1:0".into()),
        mqtt_rate_per_second: Some(RATE),
        mqtt_rate_burst: Some(RATE),
        ..Default::default()
    }
    .validate()
    .map_err(|e| anyhow::anyhow!("server configuration: {e:?}"))?;
    let server = server_rt.block_on(Server::start(config, Arc::new(SystemClock)))?;
    let result = loadgen.block_on(bulwark_measure(&server, dir, plan, mosquitto));
    server_rt.block_on(server.shutdown())?;
    result
}

async fn bulwark_measure(
    server: &Server,
    dir: &Path,
    plan: &Plan,
    mosquitto: &Mosquitto,
) -> anyhow::Result<BulwarkOutcome> {
    let (connections, window) = (plan.connections, plan.window);
    let (samples, quarantines) = (plan.samples, plan.quarantines);
    let monitor = server.state().monitor().clone();
    let mqtt = server.mqtt_addr().context("no gateway listener")?;
    let ep = Endpoints::new(server.api_addr(), server.device_addr(), server.data_dir())?;
    let applied = ep
        .api
        .apply_profile(&ApplyProfile { toml: profile() })
        .await
        .context("applying the profile")?;
    eprintln!("gateway: profile applied: {}", applied.json);

    let agents = dir.join("agents");
    let t = Instant::now();
    let states = enroll(&ep, &agents, "dev", connections + 1 + quarantines).await?;
    eprintln!(
        "gateway: {} devices enrolled in {:.1} s",
        states.len(),
        t.elapsed().as_secs_f64()
    );
    let ids: Vec<Identity> = states
        .iter()
        .map(Identity::of_device)
        .collect::<anyhow::Result<_>>()?;
    let (load_ids, rest) = ids.split_at(connections);
    let (probe, q_ids) = rest.split_first().context("no probe device")?;
    let device_ids: Vec<DeviceId> = states[..connections].iter().map(|s| s.device_id).collect();

    // 1. Throughput: rounds of Bulwark then Mosquitto, per encoding, so
    // that both see the same stretches of this machine's noise.
    let accepted = || monitor.accepted();
    let mut throughput_rounds: Vec<Rounds> = plan
        .encodings
        .iter()
        .map(|&encoding| Rounds {
            encoding,
            pairs: Vec::new(),
        })
        .collect();
    let (mut sent_total, mut mosquitto_sent_total) = (0, 0);
    for round in 1..=plan.rounds {
        for r in &mut throughput_rounds {
            eprintln!(
                "gateway: round {round}/{}, {} telemetry, {connections} connections: bulwark",
                plan.rounds, r.encoding
            );
            let (mut b, load) = throughput(
                mqtt,
                load_ids,
                window,
                r.encoding,
                plan.sample,
                Some(&accepted),
                None,
            )
            .await?;
            b.sent_total = load.stop().await?;
            sent_total += b.sent_total;
            let m = mosquitto
                .throughput(window, r.encoding, plan.sample)
                .await?;
            mosquitto_sent_total += m.sent_total;
            let (b_rate, m_rate) = (
                b.accepted.unwrap_or(0) as f64 / b.window.as_secs_f64(),
                m.sent as f64 / m.window.as_secs_f64(),
            );
            eprintln!(
                "gateway: bulwark {}/s, mosquitto {}/s: {:.2}×",
                thousands(b_rate),
                thousands(m_rate),
                b_rate / m_rate
            );
            r.pairs.push((b, m));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let accepted_total = Some(monitor.accepted());
    let mut rejections = BTreeMap::new();
    for id in &device_ids {
        for (k, v) in monitor.rejections(id) {
            *rejections.entry(k.to_owned()).or_default() += v;
        }
    }
    // The background load of the latency runs: half the median rate of
    // the first encoding measured.
    let max_rate = median(
        &throughput_rounds[0]
            .pairs
            .iter()
            .map(|(b, _)| b.accepted.unwrap_or(0) as f64 / b.window.as_secs_f64())
            .collect::<Vec<_>>(),
    );

    // 2. Alert latency at half the maximum.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let sse = tokio::spawn(sse_alerts(ep.clone(), tx, ready_tx));
    ready_rx.await.context("the alert stream did not open")?;
    let half = max_rate / 2.0;
    let payload = telemetry(&[22], Encoding::Json)?;
    let sessions = connect_all(mqtt, load_ids, &payload).await?;
    let load = Load::start(sessions, Some(half / connections as f64));
    let a0 = (monitor.accepted(), Instant::now());
    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!(
        "gateway: alert latency, {samples} samples, background {}/s",
        thousands(half)
    );
    let mut alerts = Alerts {
        sent: samples,
        background_target: half,
        ..Alerts::default()
    };
    let firing = publish_packet(
        &telemetry_topic(&probe.id),
        &telemetry(&[22, 23], Encoding::Json)?,
    );
    let clean = publish_packet(
        &telemetry_topic(&probe.id),
        &telemetry(&[22], Encoding::Json)?,
    );
    let mut p = open_session(mqtt, None, probe).await?;
    for _ in 0..samples {
        while rx.try_recv().is_ok() {}
        let t0 = Instant::now();
        let start = tokio::time::Instant::now();
        p.write_all(&firing).await?;
        p.flush().await?;
        if let Some(at) = wait_alert(&mut rx, &probe.id, "telnet-open", start + EVENT_TIMEOUT).await
        {
            alerts.latencies_us.push(micros(at.duration_since(t0)));
        }
        tokio::time::sleep_until(start + Duration::from_millis(50)).await;
        p.write_all(&clean).await?;
        p.flush().await?;
        tokio::time::sleep_until(start + Duration::from_millis(100)).await;
    }
    let _ = p.write_all(&DISCONNECT).await;
    drop(p);
    alerts.latencies_us.sort_unstable();

    // 3. Quarantine, same background load.
    eprintln!("gateway: quarantine, {quarantines} devices");
    let mut q = Quarantines {
        sent: quarantines,
        ..Quarantines::default()
    };
    let backdoor = telemetry(&[22, 4444], Encoding::Json)?;
    for who in q_ids {
        let mut s = open_session(mqtt, None, who).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        while rx.try_recv().is_ok() {}
        let pkt = publish_packet(&telemetry_topic(&who.id), &backdoor);
        let t0 = Instant::now();
        s.write_all(&pkt).await?;
        s.flush().await?;
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        let (alert, closed) = tokio::join!(
            wait_alert(&mut rx, &who.id, "backdoor-open", deadline),
            async {
                let mut buf = [0u8; 512];
                loop {
                    match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                        Ok(Ok(0) | Err(_)) => return Some(Instant::now()),
                        Ok(Ok(_)) => {}
                        Err(_) => return None,
                    }
                }
            }
        );
        if let Some(at) = alert {
            q.alert_us.push(micros(at.duration_since(t0)));
        }
        if let Some(at) = closed {
            q.close_us.push(micros(at.duration_since(t0)));
        }
    }
    q.close_us.sort_unstable();
    q.alert_us.sort_unstable();
    let a1 = monitor.accepted();
    alerts.background_accepted = (a1 - a0.0) as f64 / a0.1.elapsed().as_secs_f64();
    load.stop().await?;
    sse.abort();
    Ok(BulwarkOutcome {
        connections,
        throughput: throughput_rounds,
        sent_total,
        accepted_total,
        rejections,
        mosquitto_sent_total,
        alerts,
        quarantine: q,
    })
}

// ---------------------------------------------------------------------------
// Mosquitto

/// A certificate authority for the Mosquitto run.
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa")
    }
}

impl TestCa {
    fn new() -> anyhow::Result<TestCa> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bulwark-bench mosquitto CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key)?;
        let pem = cert.pem();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&pem, key)?;
        Ok(TestCa { issuer, pem })
    }

    /// (certificate PEM, key PEM) for `cn`, server or client.
    fn issue(&self, cn: &str, server: bool) -> anyhow::Result<(String, String)> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let sans = if server {
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()]
        } else {
            Vec::new()
        };
        let mut params = rcgen::CertificateParams::new(sans)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if server {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// The Mosquitto child; killed on drop.
#[derive(Debug)]
struct Broker {
    child: Child,
    log: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Mosquitto, started for the suite, with one certificate per connection.
struct Mosquitto {
    broker: Broker,
    addr: SocketAddr,
    who: Vec<Identity>,
    monitor_id: Identity,
}

impl Mosquitto {
    async fn start(binary: &Path, dir: &Path, connections: usize) -> anyhow::Result<Mosquitto> {
        ensure!(
            binary.is_file(),
            "{} does not exist (Debian package mosquitto) or pass --mosquitto PATH",
            binary.display()
        );
        std::fs::create_dir_all(dir)?;
        let ca = TestCa::new()?;
        let write = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
            let p = dir.join(name);
            std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
            Ok(p)
        };
        let ca_path = write("ca.pem", &ca.pem)?;
        let (cert, key) = ca.issue("127.0.0.1", true)?;
        let cert_path = write("server.crt", &cert)?;
        let key_path = write("server.key", &key)?;
        let acl = write(
            "acl",
            // `pattern` lines apply to every client (`topic` lines before any
            // `user` line only to anonymous ones).
            "pattern read $SYS/#\npattern read bulwark/v1/devices/+/telemetry\npattern write bulwark/v1/devices/%u/telemetry\n",
        )?;
        let addr = free_addr()?;
        let log = dir.join("mosquitto.log");
        let conf = write(
            "mosquitto.conf",
            &format!(
                "user root\npersistence false\nsys_interval 1\nlog_dest file {}\nlog_type error\nlog_type warning\nper_listener_settings false\nacl_file {}\nmax_queued_messages 1000\n\nlistener {} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\nuse_identity_as_username true\ntls_version tlsv1.3\n",
                log.display(),
                acl.display(),
                addr.port(),
                ca_path.display(),
                cert_path.display(),
                key_path.display(),
            ),
        )?;
        let ident = |cn: &str| -> anyhow::Result<Identity> {
            let (c, k) = ca.issue(cn, false)?;
            Ok(Identity {
                id: cn.to_owned(),
                tls: client_tls(&ca.pem, &c, &k)?,
            })
        };
        #[expect(
            clippy::disallowed_methods,
            reason = "benchmark harness: random device names"
        )]
        let who: Vec<Identity> = (0..connections)
            .map(|_| ident(&uuid::Uuid::new_v4().to_string()))
            .collect::<anyhow::Result<_>>()?;
        let monitor_id = ident("bench-monitor")?;

        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut broker = Broker { child, log };
        let started = Instant::now();
        while TcpStream::connect(addr).await.is_err() {
            if let Some(st) = broker.child.try_wait()? {
                bail!(
                    "mosquitto exited ({st}):\n{}",
                    server::tail(&broker.log, 20)
                );
            }
            ensure!(
                started.elapsed() < Duration::from_secs(10),
                "mosquitto did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The ACL lets the generator's publishes through: one publish of the
        // first device reaches a subscriber (which then leaves).
        acl_check(addr, &monitor_id, &who[0]).await?;
        Ok(Mosquitto {
            broker,
            addr,
            who,
            monitor_id,
        })
    }

    /// One throughput window with `encoding`'s payload.
    async fn throughput(
        &self,
        window: Duration,
        encoding: Encoding,
        sample: SampleKind,
    ) -> anyhow::Result<Throughput> {
        let pid = self.broker.child.id();
        let (mut tp, load) = throughput(
            self.addr,
            &self.who,
            window,
            encoding,
            sample,
            None,
            Some(pid),
        )
        .await?;
        tp.sent_total = load.stop().await?;
        Ok(tp)
    }

    /// Mosquitto's own count of publishes received over every round (None
    /// when `$SYS` could not be read), then stops it.
    async fn finish(mut self) -> anyhow::Result<Option<u64>> {
        // $SYS is refreshed every sys_interval (1 s): wait for the last value.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let counted = match mosquitto_received(self.addr, &self.monitor_id).await {
            Ok(n) => Some(n),
            Err(e) => {
                eprintln!(
                    "gateway: could not read mosquitto's $SYS counter: {e:#}; log:\n{}",
                    server::tail(&self.broker.log, 20)
                );
                None
            }
        };
        if let Some(st) = self.broker.child.try_wait()? {
            bail!("mosquitto exited during the run ({st})");
        }
        Ok(counted)
    }
}

/// Subscribes as `monitor` to `device`'s telemetry topic, publishes one
/// sample as `device`, and expects to receive it.
async fn acl_check(addr: SocketAddr, monitor: &Identity, device: &Identity) -> anyhow::Result<()> {
    let topic = telemetry_topic(&device.id);
    let mut m = open_session(addr, None, monitor).await?;
    m.write_all(&subscribe_packet(&topic)).await?;
    m.flush().await?;
    let (first, body) = tokio::time::timeout(Duration::from_secs(5), read_packet(&mut m)).await??;
    ensure!(
        first == 0x90 && body.get(2) == Some(&0),
        "mosquitto refused the check subscription: {first:#04x} {body:?}"
    );
    let mut d = open_session(addr, None, device).await?;
    d.write_all(&publish_packet(&topic, &telemetry(&[22], Encoding::Json)?))
        .await?;
    d.write_all(&DISCONNECT).await?;
    d.flush().await?;
    let (first, _) = tokio::time::timeout(Duration::from_secs(5), read_packet(&mut m))
        .await
        .context("mosquitto's ACL dropped the device's publish to its own topic")??;
    ensure!(first >> 4 == 3, "expected a PUBLISH, got {first:#04x}");
    m.write_all(&DISCONNECT).await?;
    m.flush().await?;
    Ok(())
}

/// Mosquitto's `$SYS/broker/publish/messages/received` (retained).
async fn mosquitto_received(addr: SocketAddr, who: &Identity) -> anyhow::Result<u64> {
    let topic = "$SYS/broker/publish/messages/received";
    let mut s = open_session(addr, None, who).await?;
    s.write_all(&subscribe_packet(topic)).await?;
    s.flush().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (first, body) = tokio::time::timeout_at(deadline, read_packet(&mut s)).await??;
        if first >> 4 != 3 {
            continue;
        }
        let tlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let qos = (first >> 1) & 3;
        let at = 2 + tlen + if qos > 0 { 2 } else { 0 };
        if &body[2..2 + tlen] == topic.as_bytes() {
            let text = String::from_utf8_lossy(&body[at..]);
            return Ok(text.trim().parse()?);
        }
    }
}

// ---------------------------------------------------------------------------
// Idle sessions on a separate server process

#[derive(Debug)]
struct SessionsOutcome {
    enrolled: usize,
    enroll_time: Duration,
    open: usize,
    connect_time: Duration,
    pinged: usize,
    rss_before: u64,
    rss_after: u64,
    rss_delta_bytes: u64,
}

/// `bulwark server` with the gateway on; killed on drop.
#[derive(Debug)]
struct ServerChild {
    child: Child,
    log: PathBuf,
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn sessions_run(binary: &Path, dir: &Path, count: usize) -> anyhow::Result<SessionsOutcome> {
    ensure!(
        binary.is_file(),
        "{} does not exist; build it with `cargo build --profile dist -p bulwark-cli` (as `cargo xtask bench` does) or pass --bulwark PATH",
        binary.display()
    );
    std::fs::create_dir_all(dir)?;
    let (api, device, mqtt) = (free_addr()?, free_addr()?, free_addr()?);
    ensure!(
        api != device && device != mqtt && api != mqtt,
        "port clash, run again"
    );
    let data_dir = dir.join("data");
    let log = dir.join("server.log");
    let log_file = std::fs::File::create(&log)?;
    let child = Command::new(binary)
        .arg("server")
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen")
        .arg(api.to_string())
        .arg("--device-listen")
        .arg(device.to_string())
        .arg("--mqtt-listen")
        .arg(mqtt.to_string())
        .env("BULWARK_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut srv = ServerChild { child, log };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let started = Instant::now();
    loop {
        if let Some(st) = srv.child.try_wait()? {
            bail!("the server exited ({st}):\n{}", server::tail(&srv.log, 30));
        }
        if http
            .get(format!("http://{api}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start:\n{}",
            server::tail(&srv.log, 30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = srv.child.id();
    let ep = Endpoints::new(api, device, &data_dir)?;

    eprintln!("gateway: enrolling {count} devices for the sessions run");
    let t = Instant::now();
    let states = enroll(&ep, &dir.join("agents"), "idle", count).await?;
    let enroll_time = t.elapsed();
    let ids: Vec<Identity> = states
        .iter()
        .map(Identity::of_device)
        .collect::<anyhow::Result<_>>()?;
    drop(states);
    eprintln!(
        "gateway: {count} enrolled in {:.1} s; server RSS {:.1} MB",
        enroll_time.as_secs_f64(),
        rss_bytes(pid)? as f64 / 1e6
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_before = rss_bytes(pid)?;

    eprintln!("gateway: opening {count} sessions");
    let t = Instant::now();
    let permits = Arc::new(Semaphore::new(CONNECT_PARALLEL));
    let mut set = JoinSet::new();
    for (i, who) in ids.into_iter().enumerate() {
        let permits = permits.clone();
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i / PER_SOURCE_ADDR) as u8));
        set.spawn(async move {
            let _p = permits.acquire_owned().await?;
            open_session(mqtt, Some(source), &who)
                .await
                .with_context(|| format!("session {i}"))
        });
    }
    let mut open = Vec::with_capacity(count);
    let mut first_err = None;
    while let Some(r) = set.join_next().await {
        match r? {
            Ok(s) => {
                open.push(s);
                if open.len() % 5_000 == 0 {
                    eprintln!("gateway: {} sessions open", open.len());
                }
            }
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    let connect_time = t.elapsed();
    if let Some(e) = &first_err {
        eprintln!(
            "gateway: {} sessions failed to open; first: {e:#}",
            count - open.len()
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = rss_bytes(pid)?;
    if let Some(st) = srv.child.try_wait()? {
        bail!("the server exited ({st}):\n{}", server::tail(&srv.log, 30));
    }

    // Every session still there: PINGREQ → PINGRESP.
    let n_open = open.len();
    let permits = Arc::new(Semaphore::new(256));
    let mut set = JoinSet::new();
    for mut s in open {
        let permits = permits.clone();
        set.spawn(async move {
            let ok = {
                let _p = permits.acquire_owned().await;
                async {
                    s.write_all(&PINGREQ).await?;
                    s.flush().await?;
                    let (first, _) =
                        tokio::time::timeout(Duration::from_secs(10), read_packet(&mut s))
                            .await??;
                    anyhow::Ok(first == 0xD0)
                }
                .await
                .unwrap_or(false)
            };
            (ok, s)
        });
    }
    let mut pinged = 0;
    let mut keep = Vec::with_capacity(n_open);
    while let Some(r) = set.join_next().await {
        let (ok, s) = r?;
        pinged += usize::from(ok);
        keep.push(s);
    }
    eprintln!(
        "gateway: {n_open} sessions, {pinged} answered PINGREQ; server RSS {:.1} → {:.1} MB",
        rss_before as f64 / 1e6,
        rss_after as f64 / 1e6
    );
    // Stop the server first (SIGKILL via drop): closing 20k client
    // sessions one by one is slower and measures nothing.
    drop(srv);
    drop(keep);
    Ok(SessionsOutcome {
        enrolled: count,
        enroll_time,
        open: n_open,
        connect_time,
        pinged,
        rss_before,
        rss_after,
        rss_delta_bytes: rss_after.saturating_sub(rss_before),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_encoding() {
        let mut v = Vec::new();
        put_len(127, &mut v);
        assert_eq!(v, [0x7f]);
        v.clear();
        put_len(128, &mut v);
        assert_eq!(v, [0x80, 0x01]);
        v.clear();
        put_len(16_383, &mut v);
        assert_eq!(v, [0xff, 0x7f]);
    }

    #[tokio::test]
    async fn packets_round_trip() {
        let p = publish_packet("a/b", b"xyz");
        assert_eq!(p, [0x30, 8, 0, 3, b'a', b'/', b'b', b'x', b'y', b'z']);
        let (first, body) = read_packet(&mut &p[..]).await.unwrap_or_default();
        assert_eq!((first, body.len()), (0x30, 8));
        let c = connect_packet("id");
        assert_eq!(c[0], 0x10);
        assert_eq!(usize::from(c[1]), c.len() - 2);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
    }

    #[test]
    fn telemetry_decodes_in_both_encodings() {
        for encoding in [Encoding::Json, Encoding::Cbor] {
            let t = telemetry(&[22, 23], encoding).unwrap_or_default();
            assert_eq!(Encoding::of(&t), encoding);
            assert!(bulwark_proto::telemetry::decode(&t).is_ok());
        }
    }

    #[test]
    fn median_of_odd_even_and_no_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
