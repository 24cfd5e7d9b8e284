//! Fleet simulator memory and load: how many virtual devices fit in one
//! process.
//!
//! A real `bulwark server` child (with its device gateway) is started; one
//! multi-use enrollment token enrolls `--devices` virtual devices through
//! `bulwark_sim` in this process. `VmRSS` of this process is read before
//! the fleet is built and again after it has run for `--steady` (every
//! device checking in, running its TUF update cycle, and — unless
//! `--no-telemetry` — holding an MQTT session and publishing telemetry).
//! Per device = the difference / devices. The target is issue 7's: 10,000
//! devices under 1 GB, i.e. ≤ 100 KB each; with fewer devices the table
//! also shows what 10,000 would take at the measured rate.
//!
//! Each device with telemetry holds two sockets (the HTTPS keep-alive
//! connection and the MQTT session), and so does the server for it: this
//! container's open-file limit (20,000) caps one run at about 6,500
//! devices with telemetry.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bulwark_api::CreateEnrollToken;
use bulwark_client::Client;
use bulwark_sim::{Fleet, FleetConfig};

use crate::gateway::{nofile_limit, raise_nofile, rss_bytes};
use crate::server::{ServerProcess, default_binary, free_port};

/// Arguments of `bulwark-bench sim`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SimArgs {
    /// Virtual devices [default: 6000; with --quick: 1000].
    #[arg(long)]
    pub(crate) devices: Option<usize>,
    /// How long the fleet runs before RSS is read [default: 40s; with --quick: 15s].
    #[arg(long, value_parser = crate::parse_duration)]
    pub(crate) steady: Option<Duration>,
    /// Check-ins and update cycles only, no MQTT sessions.
    #[arg(long)]
    pub(crate) no_telemetry: bool,
    /// Small run.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Print only the markdown table on stdout.
    #[arg(long)]
    pub(crate) markdown: bool,
}

pub(crate) async fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    raise_nofile();
    let devices = args.devices.unwrap_or(if args.quick { 1000 } else { 6000 });
    let steady = args
        .steady
        .unwrap_or(Duration::from_secs(if args.quick { 15 } else { 40 }));
    let per_device_fds = if args.no_telemetry { 2 } else { 3 };
    let limit = nofile_limit().unwrap_or(1024);
    anyhow::ensure!(
        devices * per_device_fds + 512 <= limit,
        "{devices} devices need about {} open files here and in the server; the limit is {limit}",
        devices * per_device_fds + 512
    );
    let work = tempfile::tempdir().context("creating a work directory")?;
    let gateway = free_port()?;
    let mut server = ServerProcess::start_with(
        &default_binary()?,
        work.path(),
        &["--mqtt-listen".into(), gateway.to_string()],
    )
    .await?;
    let token = std::fs::read_to_string(server.data_dir.join("admin.token"))?;
    let api = Client::new(&format!("http://{}", server.api_addr), &token)?;
    let enroll_token = api
        .create_enroll_token(&CreateEnrollToken {
            group: "sim".into(),
            environment: "dev".into(),
            ttl_secs: Some(3600),
            uses: Some(u32::try_from(devices).context("too many devices for one token")?),
        })
        .await
        .context("creating the enrollment token")?
        .value
        .token;
    let me = std::process::id();
    let rss_before = rss_bytes(me)?;
    eprintln!("sim: enrolling {devices} devices");
    let started = Instant::now();
    let fleet = Fleet::enroll(
        FleetConfig {
            server: format!("https://{}", server.device_addr),
            ca_pem: std::fs::read_to_string(server.data_dir.join("ca.pem"))?,
            enroll_token,
            devices,
            gateway: (!args.no_telemetry).then(|| gateway.to_string()),
            work_dir: work.path().join("fleet"),
            checkin_interval: Duration::from_secs(30),
            telemetry_interval: Duration::from_secs(10),
            telemetry_encoding: bulwark_proto::telemetry::Encoding::Json,
            seed: 7,
            image_root: None,
            faulty: 0,
            attack: None,
            enroll_concurrency: 32,
        },
        &|_| {},
    )
    .await?;
    let enroll_secs = started.elapsed().as_secs_f64();
    let fleet = fleet.start()?;
    eprintln!("sim: {devices} enrolled in {enroll_secs:.1}s; running {steady:?}");
    tokio::time::sleep(steady).await;
    server.check_alive()?;
    let rss_after = rss_bytes(me)?;
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
    eprintln!("sim: {fds} open files in the simulator");
    let snap = fleet.snapshot();
    let server_rss = server.pid().map(rss_bytes).transpose()?.unwrap_or(0);
    fleet.stop().await;
    server.stop().await?;
    let per_device = rss_after.saturating_sub(rss_before) as f64 / devices as f64;
    let at_10k = per_device * 10_000.0 / (1u64 << 20) as f64;
    let steady_s = steady.as_secs_f64();
    let what = if args.no_telemetry {
        "check-ins every 30 s with TUF update cycles"
    } else {
        "check-ins every 30 s with TUF update cycles, MQTT telemetry every 10 s"
    };
    let met = if at_10k < 1024.0 { "met" } else { "NOT met" };
    if !args.markdown {
        println!("Fleet simulator: {devices} devices in one process ({what})");
    }
    println!(
        "| devices | enroll/s | check-ins/s | samples/s | check-in failures | sim RSS per device | 10,000 devices would take | server RSS | target |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {devices} ({}) | {:.0} | {:.0} | {:.0} | {} | {:.1} KB | {:.0} MiB | {:.0} MiB | 10k devices < 1 GiB: {met} |",
        if args.no_telemetry {
            "no telemetry"
        } else {
            "with telemetry"
        },
        devices as f64 / enroll_secs,
        snap.checkins as f64 / steady_s,
        snap.samples as f64 / steady_s,
        snap.checkin_failures,
        per_device / 1000.0,
        at_10k,
        server_rss as f64 / (1u64 << 20) as f64,
    );
    Ok(ExitCode::SUCCESS)
}
