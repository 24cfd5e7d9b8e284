//! `bulwark-bench`: benchmark harness for the Bulwark control plane.
//!
//! It is a binary, not a test: it spawns a real `bulwark server` process on
//! a throw-away data directory, enrolls real devices, and drives load at it
//! over the network, the way a fleet would. See the `checkin` module for
//! the methodology of the check-in benchmark.
//!
//! ```text
//! bulwark-bench checkin [--devices 100000] [--clients 256] [--duration 20s] [--quick] [--markdown]
//! bulwark-bench journal [--quick] [--markdown]
//! bulwark-bench update [--size-mib 1024] [--quick] [--markdown]
//! bulwark-bench gate [--quick] [--markdown]
//! bulwark-bench gateway [--quick] [--markdown]
//! bulwark-bench sim [--devices 6000] [--no-telemetry] [--quick] [--markdown]
//! ```
//!
//! Progress goes to stderr, results to stdout.

mod checkin;
mod fleet;
mod gate;
mod gateway;
mod journal;
mod load;
mod server;
mod sim;
mod stats;
mod telemetry;
mod update;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The same allocator as the `bulwark` binary: suites that run the server
/// in this process must measure what `bulwark server` does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmarks for the Bulwark control plane.
#[derive(Debug, Parser)]
#[command(name = "bulwark-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Steady-state device check-ins over mutual TLS against a real server.
    Checkin(CheckinArgs),
    /// Audit journal: durable appends, proof generation, offline verification.
    Journal(journal::JournalArgs),
    /// Agent download + verify throughput against openssl, and agent RSS
    /// during an update, with the real `bulwark` and `bulwark-agent`.
    Update(update::UpdateArgs),
    /// Release gate: SBOM matching, the whole gate over a rootfs, and YARA
    /// throughput against the C `yara` CLI.
    Gate(gate::GateArgs),
    /// Device gateway: MQTT ingest with detection against Mosquitto,
    /// publish → alert and → quarantine latency, idle sessions and RSS.
    Gateway(gateway::GatewayArgs),
    /// Fleet simulator: virtual devices in one process, RSS per device.
    Sim(sim::SimArgs),
    /// Telemetry history: store write throughput and bytes per
    /// device-day of the per-minute aggregates.
    Telemetry(telemetry::TelemetryArgs),
}

/// Arguments of `bulwark-bench checkin`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CheckinArgs {
    /// Devices registered in the store (enrolled clients + bulk-inserted)
    /// [default: 100000; with --quick: 10000].
    #[arg(long)]
    pub(crate) devices: Option<u64>,
    /// Devices that really enroll and check in, each a closed loop
    /// [default: 256; with --quick: 64].
    #[arg(long)]
    pub(crate) clients: Option<u32>,
    /// Keep-alive connections per client device, each a closed loop.
    #[arg(long, default_value_t = 1)]
    pub(crate) connections_per_client: u32,
    /// Measurement window, e.g. 20s, 1m, 500ms [default: 20s; with --quick: 5s].
    #[arg(long, value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Warm-up before measuring (same load, not recorded).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub(crate) warmup: Duration,
    /// The `bulwark` binary [default: next to this executable].
    #[arg(long)]
    pub(crate) bulwark: Option<PathBuf>,
    /// Small run: 10000 devices, 64 clients, 5 s (explicit flags still win).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Print only the markdown result row(s) on stdout.
    #[arg(long)]
    pub(crate) markdown: bool,
    /// Worker threads of the load generator's runtime [default: CPUs].
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Keep the data directory (printed) instead of deleting it.
    #[arg(long)]
    pub(crate) keep: bool,
}

/// Parses `20s`, `1.5s`, `500ms`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 20s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

fn main() -> ExitCode {
    // The one crypto provider for every TLS connection in this process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Checkin(a) => a.threads,
        Command::Journal(_)
        | Command::Update(_)
        | Command::Gate(_)
        | Command::Gateway(_)
        | Command::Sim(_)
        | Command::Telemetry(_) => None,
    }
    .unwrap_or_else(stats::cpus);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bulwark-bench: error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Checkin(args) => {
                tokio::select! {
                    r = checkin::run(args) => r,
                    _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
                }
            }
            Command::Journal(args) => journal::run(args).await,
            Command::Sim(args) => sim::run(args).await,
            Command::Telemetry(args) => telemetry::run(args).await,
            // CPU-bound and blocking: off the runtime's workers.
            Command::Gate(args) => tokio::task::spawn_blocking(move || gate::run(args))
                .await
                .map_err(|e| anyhow::anyhow!("the gate suite panicked: {e}"))?,
            // Owns its runtimes (server and load generator): off the workers.
            Command::Gateway(args) => tokio::task::spawn_blocking(move || gateway::run(args))
                .await
                .map_err(|e| anyhow::anyhow!("the gateway suite panicked: {e}"))?,
            Command::Update(args) => {
                tokio::select! {
                    r = update::run(args) => r,
                    _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
                }
            }
        }
    });
    // Dropping the runtime ends the load tasks; the server process and the
    // temporary directory were already cleaned up by their guards' Drop.
    drop(rt);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bulwark-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3h").is_err());
    }
}
