//! `bulwark-agent`: the device agent's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Bulwark device agent.
#[derive(Debug, Parser)]
#[command(name = "bulwark-agent", version)]
struct Cli {
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
    },
    /// Print the inventory this agent would report, as JSON.
    Inventory {
        /// Read the inventory under this root instead of `/`.
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bulwark-agent: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BULWARK_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
            println!("enrolled as device {}", resp.device_id);
            println!("identity stored in {}", state_dir.display());
        }
        Command::Run {
            state_dir,
            once,
            root,
        } => {
            let agent = bulwark_agent::Agent::load(&state_dir, root)?;
            if once {
                let r = rt.block_on(agent.checkin())?;
                println!(
                    "checked in as {}; next check-in in {}s",
                    agent.device_id(),
                    r.poll_interval_secs
                );
            } else {
                rt.block_on(agent.run(bulwark_agent::shutdown_signal()))?;
            }
        }
        Command::Inventory { root } => {
            let inv = bulwark_agent::Collector::new(root).collect();
            println!("{}", serde_json::to_string_pretty(&inv)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
