//! `bulwark sim`: a fleet of virtual devices against a running server.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bulwark_sim::{Attack, AttackPlan, Fleet, FleetConfig};
use clap::Args;

use crate::progress::Progress;

/// `bulwark sim` arguments.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// The device listener, `https://host:port`.
    #[arg(long)]
    server: String,
    /// The device CA certificate (the server's `ca.pem`).
    #[arg(long)]
    ca: PathBuf,
    /// An enrollment token good for `--devices` enrollments
    /// (`bulwark enroll-token create … --uses N`).
    #[arg(long, env = "BULWARK_ENROLL_TOKEN", hide_env_values = true)]
    enroll_token: String,
    /// Number of virtual devices.
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// The device gateway `host:port` for telemetry [default: none].
    #[arg(long)]
    gateway: Option<String>,
    /// Where device state lives; rerunning with the same directory reuses
    /// the enrolled devices [default: a temporary directory].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Time between check-ins, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    checkin_interval: Duration,
    /// Time between telemetry samples.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    telemetry_interval: Duration,
    /// How the devices encode telemetry: json or cbor.
    #[arg(long, default_value = "json")]
    telemetry_encoding: bulwark_proto::telemetry::Encoding,
    /// Stage an attack: mirai-scan, bruteforce, exfil, c2-beacon or new-listener.
    #[arg(long)]
    attack: Option<Attack>,
    /// How many devices run the attack.
    #[arg(long, default_value_t = 3)]
    attack_devices: usize,
    /// When the attack starts, after the fleet starts.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    attack_at: Duration,
    /// Devices whose smoke tests fail (they carry the `faulty` marker).
    #[arg(long, default_value_t = 0)]
    faulty: usize,
    /// The image repository's root.json to pin on enrollment.
    #[arg(long)]
    image_root: Option<PathBuf>,
    /// Stop after this long [default: run until Ctrl-C].
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Seed of the devices' behaviour.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// `30s`, `5m`, `1h` (the CLI's usual durations), more than zero.
fn parse_duration(s: &str) -> Result<Duration, String> {
    match crate::args::parse_duration(s).map_err(|e| format!("{e:#}"))? {
        0 => Err(format!("{s:?}: must be more than zero")),
        secs => Ok(Duration::from_secs(secs)),
    }
}

pub(crate) async fn sim(args: SimArgs) -> Result<()> {
    if args.devices == 0 || args.devices > 100_000 {
        bail!("--devices must be 1..=100000 (got {})", args.devices);
    }
    if args.attack.is_some() && (args.attack_devices == 0 || args.attack_devices > args.devices) {
        bail!(
            "--attack-devices must be 1..={} (got {})",
            args.devices,
            args.attack_devices
        );
    }
    let ca_pem = std::fs::read_to_string(&args.ca)
        .with_context(|| format!("reading the CA certificate {}", args.ca.display()))?;
    let image_root = match &args.image_root {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let tmp;
    let work_dir = match args.work_dir {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir().context("creating a temporary directory")?;
            tmp.path().to_owned()
        }
    };
    let cfg = FleetConfig {
        server: args.server,
        ca_pem,
        enroll_token: args.enroll_token,
        devices: args.devices,
        gateway: args.gateway,
        work_dir,
        checkin_interval: args.checkin_interval,
        telemetry_interval: args.telemetry_interval,
        telemetry_encoding: args.telemetry_encoding,
        seed: args.seed,
        image_root,
        faulty: args.faulty,
        attack: args.attack.map(|attack| AttackPlan {
            attack,
            devices: args.attack_devices,
            at: Some(args.attack_at),
        }),
        enroll_concurrency: 16,
    };
    let started = Instant::now();
    let bar = Progress::new("enrolling", args.devices as u64);
    let fleet = Fleet::enroll(cfg, &|n| bar.set(n as u64)).await?;
    bar.finish();
    eprintln!(
        "{} devices enrolled in {:.1}s",
        args.devices,
        started.elapsed().as_secs_f64()
    );
    let fleet = fleet.start()?;
    if let Some(a) = args.attack {
        #[expect(
            clippy::disallowed_methods,
            reason = "the CLI is an edge: it passes the attack time to the simulator"
        )]
        let at = time::OffsetDateTime::now_utc()
            + time::Duration::try_from(args.attack_at).unwrap_or(time::Duration::ZERO);
        eprintln!(
            "attack {a} by {} device(s) in {:?} (at {}): {}",
            fleet.attackers().len(),
            args.attack_at,
            at.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            fleet
                .attackers()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let run_for = async {
        match args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => bulwark_agent::shutdown_signal().await,
        }
    };
    tokio::pin!(run_for);
    let line = |s: &bulwark_sim::Snapshot| {
        let releases: Vec<String> = s
            .releases
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        format!(
            "check-ins {} (failed {}), samples {}, installs {}, rollbacks {}, isolated {}{}",
            s.checkins,
            s.checkin_failures,
            s.samples,
            s.installs,
            s.rollbacks,
            s.isolated,
            if releases.is_empty() {
                String::new()
            } else {
                format!(", running: {}", releases.join(", "))
            }
        )
    };
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    loop {
        tokio::select! {
            () = &mut run_for => break,
            _ = tick.tick() => println!("{}", line(&fleet.snapshot())),
        }
    }
    println!("total: {}", line(&fleet.snapshot()));
    fleet.stop().await;
    Ok(())
}
