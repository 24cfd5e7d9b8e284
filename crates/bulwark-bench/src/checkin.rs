//! The check-in benchmark: steady-state device check-ins over mutual TLS
//! against a real `bulwark server` on embedded SQLite.
//!
//! # Methodology
//!
//! 1. **Server.** A fresh data directory in a temporary directory; `bulwark
//!    server` is spawned as a separate process on two free loopback ports
//!    (log in the temporary directory), and the harness waits for
//!    `GET /healthz`. The server runs with its defaults (SQLite in WAL mode,
//!    check-ins buffered in memory and flushed every second).
//! 2. **Fleet.** `--clients` devices enroll for real, 16 at a time: one
//!    one-time token each from `POST /api/v1/enroll-tokens`, then
//!    `bulwark_agent::enroll` (key generated locally, CSR signed by the
//!    server's device CA). The other `--devices − --clients` devices are
//!    bulk-inserted into the same SQLite file through `bulwark_store` (random
//!    ids and serials; they never connect), so the store holds `--devices`
//!    rows and every flush updates rows of a table of that size.
//! 3. **Handshake.** Each client device opens `--connections-per-client`
//!    keep-alive HTTP/1.1 connections (hyper client over tokio-rustls,
//!    aws-lc-rs, ALPN http/1.1, TCP_NODELAY, its own client certificate).
//!    On the first, it checks in with its inventory digest, uploads the
//!    inventory when asked and checks that the server no longer asks: from
//!    then on a check-in is the small digest-only request, which is what a
//!    fleet sends almost all the time and what is measured.
//! 4. **Load.** Every connection is a closed loop: the next check-in is sent
//!    when the previous answer has been read in full. There is no think
//!    time, so the loops measure the server's capacity, not a fleet's
//!    arrival rate (at 60 s polls, N check-ins/s serve 60·N devices).
//!    After `--warmup`, every check-in that starts and ends inside the
//!    `--duration` window is counted; its latency (send to last byte of the
//!    answer, microseconds) is kept, and percentiles are exact
//!    (nearest rank over all samples). A non-200 answer, an answer that asks
//!    for the inventory again, a transport error or no answer within 10 s
//!    counts as an error; the run fails when errors exceed 0.1 %.
//! 5. **Fairness.** The load generator runs on a multi-thread tokio
//!    runtime in this process; the server is another process on the same
//!    machine, so both compete for the same cores. The CPU time each
//!    process used during the window is reported next to the result, so a
//!    saturated load generator is visible. TLS handshakes happen before the
//!    window: the result is the keep-alive steady state.
//!
//! The server process and the temporary directory are removed on every
//! path (success, error, Ctrl-C), unless `--keep` is given.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bulwark_client::Client;

use crate::CheckinArgs;
use crate::fleet;
use crate::load::{self, Window};
use crate::server::{self, ServerProcess};
use crate::stats;

/// Name of the benchmark row.
const NAME: &str = "check-in over mTLS (SQLite, keep-alive)";
/// The targets this benchmark is held to.
const TARGET_RATE: f64 = 20_000.0;
/// See [`TARGET_RATE`].
const TARGET_P99_MS: f64 = 20.0;
/// Concurrent enrollments.
const ENROLL_PARALLEL: usize = 16;
/// Largest tolerated error rate.
const MAX_ERROR_RATE: f64 = 0.001;

/// Size of the run, after `--quick` and explicit flags.
#[derive(Debug, Clone, Copy)]
struct Plan {
    devices: u64,
    clients: u32,
    duration: Duration,
}

/// Everything measured in one run.
#[derive(Debug)]
struct Outcome {
    devices: u64,
    clients: u32,
    per_client: u32,
    loops: usize,
    ok: u64,
    errors: u64,
    errors_outside: u64,
    reconnects: u64,
    first_errors: Vec<String>,
    window: Duration,
    p50_us: u32,
    p90_us: u32,
    p99_us: u32,
    p999_us: u32,
    max_us: u32,
    server_cpu: Option<Duration>,
    loadgen_cpu: Option<Duration>,
    /// CPU used by everything else on the machine during the window.
    other_cpu: Option<Duration>,
    enroll_time: Duration,
    insert_time: Duration,
    steady_body_bytes: usize,
    threads: usize,
    warmup: Duration,
    /// Server-side counters over the window (from `/metrics`).
    server_checkins: Option<f64>,
    server_rows_flushed: Option<f64>,
    server_flush_failures: Option<f64>,
    /// The client devices, and the wall-clock start of the window: after
    /// the server stops, each must have a `last_seen` at least that recent.
    client_ids: Vec<bulwark_proto::DeviceId>,
    window_start_wall: time::OffsetDateTime,
    /// Client devices whose check-ins reached the store (set after stop).
    persisted: Option<usize>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    fn error_rate(&self) -> f64 {
        let total = self.ok + self.errors;
        if total == 0 {
            1.0
        } else {
            self.errors as f64 / total as f64
        }
    }

    fn clients_cell(&self) -> String {
        if self.per_client == 1 {
            self.clients.to_string()
        } else {
            format!("{} (×{} conns)", self.clients, self.per_client)
        }
    }

    fn row(&self) -> String {
        let errors = if self.errors == 0 {
            "0".to_owned()
        } else {
            format!("{} ({:.3} %)", self.errors, self.error_rate() * 100.0)
        };
        format!(
            "| {NAME} | {} | {} | {:.0} | {:.1} | {:.1} | {errors} | ≥ {TARGET_RATE:.0}/s, p99 < {TARGET_P99_MS:.0} ms |",
            self.devices,
            self.clients_cell(),
            self.rate(),
            ms(self.p50_us),
            ms(self.p99_us),
        )
    }

    fn target_met(&self) -> bool {
        self.rate() >= TARGET_RATE && ms(self.p99_us) < TARGET_P99_MS
    }
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

fn cores(cpu: Option<Duration>, window: Duration) -> String {
    cpu.map_or_else(
        || "n/a".to_owned(),
        |c| format!("{:.2} cores", c.as_secs_f64() / window.as_secs_f64()),
    )
}

/// Runs the benchmark and prints the result; the exit code is a failure
/// when too many check-ins failed.
pub(crate) async fn run(args: CheckinArgs) -> anyhow::Result<ExitCode> {
    let (devices, clients, duration) = if args.quick {
        (10_000, 64, Duration::from_secs(5))
    } else {
        (100_000, 256, Duration::from_secs(20))
    };
    let plan = Plan {
        devices: args.devices.unwrap_or(devices),
        clients: args.clients.unwrap_or(clients),
        duration: args.duration.unwrap_or(duration),
    };
    anyhow::ensure!(plan.clients >= 1, "--clients must be at least 1");
    anyhow::ensure!(
        args.connections_per_client >= 1,
        "--connections-per-client must be at least 1"
    );
    anyhow::ensure!(
        plan.devices >= u64::from(plan.clients),
        "--devices ({}) must be at least --clients ({})",
        plan.devices,
        plan.clients
    );
    anyhow::ensure!(!plan.duration.is_zero(), "--duration must be positive");
    let binary = match &args.bulwark {
        Some(p) => p.clone(),
        None => server::default_binary()?,
    };
    let work = tempfile::Builder::new()
        .prefix("bulwark-bench-")
        .tempdir()
        .context("creating the temporary directory")?;
    eprintln!(
        "bulwark-bench: starting {} (data in {})",
        binary.display(),
        work.path().display()
    );
    // Declared after `work`, so on every path it is dropped (killed) first.
    let server = ServerProcess::start(&binary, work.path()).await?;
    let result = measure(&args, &plan, &server, work.path()).await;
    let mut outcome = match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "bulwark-bench: last server log lines:\n{}",
                server::tail(&server.log_path, 20)
            );
            return Err(e);
        }
    };
    let db = server.data_dir.join("bulwark.db");
    if let Err(e) = server.stop().await {
        eprintln!("bulwark-bench: warning: {e:#}");
    }
    outcome.persisted = Some(
        persisted(&db, &outcome.client_ids, outcome.window_start_wall)
            .await
            .context("checking that check-ins reached the store")?,
    );
    if args.keep {
        let kept = work.keep();
        eprintln!("bulwark-bench: kept {}", kept.display());
    }
    report(&args, &outcome);
    if let Some(p) = outcome.persisted.filter(|p| *p < outcome.client_ids.len()) {
        eprintln!(
            "bulwark-bench: FAILED: only {p} of {} client devices' check-ins reached the store",
            outcome.client_ids.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    if outcome.error_rate() > MAX_ERROR_RATE {
        eprintln!(
            "bulwark-bench: FAILED: {} errors out of {} check-ins (over {:.1} %)",
            outcome.errors,
            outcome.ok + outcome.errors,
            MAX_ERROR_RATE * 100.0
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(
    args: &CheckinArgs,
    plan: &Plan,
    server: &ServerProcess,
    work: &std::path::Path,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    eprintln!(
        "bulwark-bench: server up (API {}, devices {}); enrolling {} clients…",
        server.api_addr, server.device_addr, plan.clients
    );
    let states =
        fleet::enroll_clients(server, &work.join("agents"), plan.clients, ENROLL_PARALLEL).await?;
    let enroll_time = started.elapsed();

    let silent = plan.devices - u64::from(plan.clients);
    eprintln!(
        "bulwark-bench: enrolled {} in {:.1} s; bulk-inserting {silent} devices…",
        plan.clients,
        enroll_time.as_secs_f64()
    );
    let insert_time =
        fleet::bulk_insert(&server.data_dir.join("bulwark.db"), silent, plan.devices).await?;

    let devices = load::prepare(&states)?;
    let steady_body_bytes = devices.first().map_or(0, |d| d.steady_len());
    eprintln!(
        "bulwark-bench: inserted in {:.1} s; opening {} connection(s) and uploading inventories…",
        insert_time.as_secs_f64(),
        devices.len() * args.connections_per_client as usize
    );
    let prepared =
        load::connect_all(server.device_addr, &devices, args.connections_per_client).await?;
    let loops = prepared.len();

    let begin = Instant::now() + Duration::from_millis(100);
    let window = Window {
        measure_from: begin + args.warmup,
        measure_until: begin + args.warmup + plan.duration,
    };
    eprintln!(
        "bulwark-bench: {loops} closed loops: warm-up {:.1} s, then measuring {:.1} s…",
        args.warmup.as_secs_f64(),
        plan.duration.as_secs_f64()
    );
    let pid = server.pid();
    let admin_token = std::fs::read_to_string(server.data_dir.join("admin.token"))?;
    let api = Client::builder(format!("http://{}", server.api_addr), admin_token)
        .timeout(Duration::from_secs(5))
        .build()?;
    tokio::time::sleep_until(begin.into()).await;
    let mut set = load::start(prepared, window);
    tokio::time::sleep_until(window.measure_from.into()).await;
    #[expect(
        clippy::disallowed_methods,
        reason = "benchmark harness: the measured window in wall-clock time"
    )]
    let window_start_wall = time::OffsetDateTime::now_utc();
    let cpu0 = (stats::cpu_time(pid), stats::cpu_time(None));
    let busy0 = stats::machine_busy();
    let m0 = scrape_metrics(&api).await;
    tokio::time::sleep_until(window.measure_until.into()).await;
    let cpu1 = (stats::cpu_time(pid), stats::cpu_time(None));
    let busy1 = stats::machine_busy();
    let m1 = scrape_metrics(&api).await;
    let diff = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
    let counter = |name: &str| Some(m1.as_ref()?.get(name)? - m0.as_ref()?.get(name)?);

    let mut latencies = Vec::new();
    let (mut errors, mut errors_outside, mut reconnects) = (0, 0, 0);
    let mut first_errors: Vec<String> = Vec::new();
    while let Some(r) = set.join_next().await {
        let s = r.context("load task panicked")?;
        latencies.extend_from_slice(&s.latencies_us);
        errors += s.errors;
        errors_outside += s.errors_outside;
        reconnects += s.reconnects;
        if let Some(e) = s.first_error
            && first_errors.len() < 3
        {
            first_errors.push(e);
        }
    }
    latencies.sort_unstable();
    let pct = |p| stats::percentile(&latencies, p).unwrap_or(0);
    Ok(Outcome {
        devices: plan.devices,
        clients: plan.clients,
        per_client: args.connections_per_client,
        loops,
        ok: latencies.len() as u64,
        errors,
        errors_outside,
        reconnects,
        first_errors,
        window: plan.duration,
        p50_us: pct(50.0),
        p90_us: pct(90.0),
        p99_us: pct(99.0),
        p999_us: pct(99.9),
        max_us: latencies.last().copied().unwrap_or(0),
        server_cpu: diff(cpu0.0, cpu1.0),
        loadgen_cpu: diff(cpu0.1, cpu1.1),
        other_cpu: (|| {
            let all = diff(busy0, busy1)?;
            Some(all.saturating_sub(diff(cpu0.0, cpu1.0)? + diff(cpu0.1, cpu1.1)?))
        })(),
        enroll_time,
        insert_time,
        steady_body_bytes,
        threads: args.threads.unwrap_or_else(stats::cpus),
        warmup: args.warmup,
        server_checkins: counter("bulwark_device_checkins_total"),
        server_rows_flushed: counter("bulwark_checkin_rows_flushed_total"),
        server_flush_failures: counter("bulwark_checkin_flush_failures_total"),
        client_ids: states.iter().map(|s| s.device_id).collect(),
        window_start_wall,
        persisted: None,
    })
}

/// The server's unlabelled metrics (`name value` lines of `/metrics`).
async fn scrape_metrics(api: &Client) -> Option<HashMap<String, f64>> {
    let text = api.metrics().await.ok()?;
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.split_once(' ')?;
                Some((name.to_owned(), value.trim().parse().ok()?))
            })
            .collect(),
    )
}

/// How many of `ids` have a `last_seen` no older than `since` (less a
/// second: the store keeps milliseconds) once the server has stopped and
/// flushed.
async fn persisted(
    db: &std::path::Path,
    ids: &[bulwark_proto::DeviceId],
    since: time::OffsetDateTime,
) -> anyhow::Result<usize> {
    let store = bulwark_store::open(&format!("sqlite://{}", db.display())).await?;
    let mut n = 0;
    for id in ids {
        let seen = store.device(*id).await?.and_then(|d| d.last_seen);
        if seen.is_some_and(|t| t >= since - time::Duration::seconds(1)) {
            n += 1;
        }
    }
    Ok(n)
}

fn report(args: &CheckinArgs, o: &Outcome) {
    let noisy = o
        .other_cpu
        .is_some_and(|c| c.as_secs_f64() / o.window.as_secs_f64() > 0.1);
    if args.markdown {
        println!("{}", o.row());
        if noisy {
            eprintln!(
                "bulwark-bench: WARNING: other processes used {} during the window; the result is noisy",
                cores(o.other_cpu, o.window)
            );
        }
        return;
    }
    println!(
        "| benchmark | devices in store | clients | check-ins/s | p50 ms | p99 ms | errors | target |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    println!("{}", o.row());
    println!();
    let mem = stats::mem_gib().map_or_else(String::new, |g| format!(", {g:.1} GiB RAM"));
    println!(
        "machine: {} CPUs ({}){mem}; load generator and server share the machine",
        stats::cpus(),
        stats::cpu_model()
    );
    println!(
        "run: {} closed loops ({} clients × {} keep-alive connection(s)), load generator on {} tokio worker thread(s); warm-up {:.1} s, measured {:.1} s",
        o.loops,
        o.clients,
        o.per_client,
        o.threads,
        o.warmup.as_secs_f64(),
        o.window.as_secs_f64(),
    );
    println!(
        "check-ins: {} ok, {} errors ({} outside the window), {} reconnects; request body {} B",
        o.ok, o.errors, o.errors_outside, o.reconnects, o.steady_body_bytes
    );
    println!(
        "latency ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}",
        ms(o.p50_us),
        ms(o.p90_us),
        ms(o.p99_us),
        ms(o.p999_us),
        ms(o.max_us)
    );
    println!(
        "CPU during the window: server {}, load generator {}, other processes {} (of {} CPUs)",
        cores(o.server_cpu, o.window),
        cores(o.loadgen_cpu, o.window),
        cores(o.other_cpu, o.window),
        stats::cpus()
    );
    if noisy {
        println!(
            "WARNING: other processes were busy during the window; the result is noisy (re-run on a quiet machine)"
        );
    }
    println!(
        "setup: {} real enrollments in {:.1} s; {} bulk inserts in {:.1} s",
        o.clients,
        o.enroll_time.as_secs_f64(),
        o.devices - u64::from(o.clients),
        o.insert_time.as_secs_f64()
    );
    let count = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0}"));
    println!(
        "server counters over the window: {} check-ins accepted, {} rows flushed, {} flush failures",
        count(o.server_checkins),
        count(o.server_rows_flushed),
        count(o.server_flush_failures)
    );
    if let Some(p) = o.persisted {
        println!(
            "persisted: {p} of {} client devices have last_seen from this run in the store after shutdown",
            o.clients
        );
    }
    for e in &o.first_errors {
        println!("first error: {e}");
    }
    println!(
        "target (≥ {TARGET_RATE:.0}/s, p99 < {TARGET_P99_MS:.0} ms): {}",
        if o.target_met() { "met" } else { "NOT met" }
    );
}
