//! `bulwark-agent`: the device agent's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Bulwark device agent.
#[derive(Debug, Parser)]
#[command(name = "bulwark-agent", version)]
struct Cli {
    #[command(flatten)]
    log: bulwark_agent::logging::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll this device with a one-time token.
    Enroll {
        /// Device listener URL, e.g. https://127.0.0.1:8443.
        #[arg(long)]
        server: String,
        /// The server's device CA certificate (PEM).
        #[arg(long)]
        ca: PathBuf,
        /// One-time enrollment token.
        #[arg(long, env = "BULWARK_ENROLL_TOKEN", hide_env_values = true)]
        token: String,
        /// Where to keep the device identity.
        #[arg(long, default_value = "/var/lib/bulwark-agent")]
        state_dir: PathBuf,
        /// Hostname to report (default: the system's).
        #[arg(long)]
        hostname: Option<String>,
        /// Pin the image repository's root (the `root.json` written by
        /// `bulwark repo init`); without it, root version 1 is trusted on
        /// first use.
        #[arg(long)]
        image_root: Option<PathBuf>,
    },
    /// Check in periodically (or once).
    Run {
        /// Where the device identity is kept.
        #[arg(long, default_value = "/var/lib/bulwark-agent")]
        state_dir: PathBuf,
        /// Check in once and exit.
        #[arg(long)]
        once: bool,
        /// Read the inventory under this root instead of `/`.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Where A/B slots live (`ab/slot-a`, `ab/slot-b`, `ab/current`).
        #[arg(long, default_value = "/var/lib/bulwark-agent/install")]
        install_root: PathBuf,
        /// Hooks of the script installer (install, smoke, commit, rollback).
        #[arg(long, default_value = "/etc/bulwark/hooks")]
        hooks_dir: PathBuf,
        /// Do not check for or install updates.
        #[arg(long)]
        no_updates: bool,
        /// The server's device gateway (MQTT over mTLS), HOST:PORT: publish
        /// security telemetry there and obey its commands. No telemetry
        /// when unset.
        #[arg(long, env = "BULWARK_GATEWAY")]
        gateway: Option<String>,
        /// Time between telemetry samples: 500ms, 10s, 1m, or seconds.
        #[arg(long, default_value = "10s", value_parser = parse_interval)]
        telemetry_interval: std::time::Duration,
        /// How telemetry is encoded: `json`, or `cbor` (about a third of
        /// the bytes, and cheaper for the gateway to read).
        #[arg(long, default_value = "json")]
        telemetry_encoding: bulwark_proto::telemetry::Encoding,
        /// Never change the firewall when quarantined; only report that
        /// isolation was not applied.
        #[arg(long)]
        no_isolate: bool,
    },
    /// Print the inventory this agent would report, as JSON.
    Inventory {
        /// Read the inventory under this root instead of `/`.
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Print a shell completion script to standard output.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages into DIR (`cargo xtask dist` packages them).
    #[command(hide = true)]
    Manpages {
        /// Output directory.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let format = cli.log.log_format;
    bulwark_agent::logging::init(format, "info");
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            bulwark_agent::logging::exit_error("bulwark-agent", format, &e);
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Enroll {
            server,
            ca,
            token,
            state_dir,
            hostname,
            image_root,
        } => {
            let ca_pem = std::fs::read_to_string(&ca)
                .with_context(|| format!("reading CA file {}", ca.display()))?;
            let opts = bulwark_agent::EnrollOptions {
                server,
                ca_pem,
                token,
                state_dir: state_dir.clone(),
                hostname,
            };
            let resp = rt.block_on(bulwark_agent::enroll(&opts))?;
            if let Some(p) = image_root {
                let bytes = std::fs::read(&p)
                    .with_context(|| format!("reading image root {}", p.display()))?;
                bulwark_agent::Agent::pin_image_root(&state_dir, &bytes)?;
                println!("image repository root pinned from {}", p.display());
            }
            println!("enrolled as device {}", resp.device_id);
            println!("identity stored in {}", state_dir.display());
        }
        Command::Run {
            state_dir,
            once,
            root,
            install_root,
            hooks_dir,
            no_updates,
            gateway,
            telemetry_interval,
            telemetry_encoding,
            no_isolate,
        } => {
            let mut agent = bulwark_agent::Agent::load(&state_dir, &root)?;
            let isolation = bulwark_agent::monitor::Isolation::new(if no_isolate {
                bulwark_agent::monitor::IsolationMode::ReportOnly
            } else {
                bulwark_agent::monitor::IsolationMode::Enforce
            });
            agent.set_isolation(isolation.clone(), gateway.clone());
            let updates = if no_updates {
                None
            } else {
                Some(
                    agent.update_client(bulwark_agent::update::InstallConfig::new(
                        &state_dir,
                        install_root,
                        hooks_dir,
                    ))?,
                )
            };
            if once {
                let r = rt.block_on(agent.checkin())?;
                println!(
                    "checked in as {}; next check-in in {}s",
                    agent.device_id(),
                    r.poll_interval_secs
                );
                if let Some(mut u) = updates {
                    #[expect(
                        clippy::disallowed_methods,
                        reason = "the agent is an edge: it passes the time to the update cycle's expiry checks"
                    )]
                    let outcome = rt.block_on(u.cycle(time::OffsetDateTime::now_utc()))?;
                    println!("update: {}", describe(&outcome));
                    if matches!(outcome, bulwark_agent::CycleOutcome::Refused { .. }) {
                        return Ok(ExitCode::from(3));
                    }
                }
            } else {
                let checkins = agent.run(updates, bulwark_agent::shutdown_signal());
                match gateway {
                    None => rt.block_on(checkins)?,
                    Some(gateway) => {
                        let telemetry = agent.publish_telemetry(
                            bulwark_agent::monitor::TelemetryOptions {
                                gateway,
                                interval: telemetry_interval,
                                encoding: telemetry_encoding,
                            },
                            root,
                            isolation,
                            std::future::pending(),
                        );
                        rt.block_on(async {
                            tokio::select! {
                                r = checkins => r,
                                r = telemetry => r,
                            }
                        })?;
                    }
                }
            }
        }
        Command::Inventory { root } => {
            let inv = bulwark_agent::Collector::new(root).collect();
            println!("{}", serde_json::to_string_pretty(&inv)?);
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            use std::io::Write as _;
            // Rendered into memory first: `generate` panics on a write
            // error, such as a closed pipe.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "bulwark-agent", &mut script);
            std::io::stdout().lock().write_all(&script)?;
        }
        Command::Manpages { dir } => {
            use clap::CommandFactory as _;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), &dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `500ms`, `10s`, `2m`, or a number of seconds; 100 ms to 1 hour.
fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 10s"))?;
    let d = match unit {
        "ms" => std::time::Duration::from_millis(n),
        "s" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("{s:?}: unit must be ms, s or m")),
    };
    if d < std::time::Duration::from_millis(100) || d > std::time::Duration::from_secs(3600) {
        return Err(format!("{s:?}: must be between 100ms and 1h"));
    }
    Ok(d)
}

fn describe(o: &bulwark_agent::CycleOutcome) -> String {
    use bulwark_agent::CycleOutcome as C;
    use bulwark_agent::update::FinalState as F;
    match o {
        C::NothingAssigned => "nothing assigned".into(),
        C::UpToDate(r) => format!("{r} is installed"),
        C::KeptBack(r) => format!("{r} was rolled back here before; not retried"),
        C::Finished(F::Installed(i)) => format!("installed {}", i.release),
        C::Finished(F::RolledBack {
            release,
            code,
            reason,
        }) => format!("{release} rolled back ({code}): {reason}"),
        C::Finished(F::Failed {
            release,
            code,
            reason,
        }) => format!("{release} failed ({code}): {reason}"),
        C::Refused { code, reason } => format!("refused ({code}): {reason}"),
    }
}
