//! Command-line definitions and what each command does.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use bulwark_api::{
    CreateAccount, CreateEnrollToken, CreateToken, DeviceQuery, DeviceState, DeviceView,
    QuarantineDevice, RevokeDevice, TagDevice, TelemetryQuery,
};
use clap::{Args, CommandFactory as _, Parser, Subcommand};

use crate::args::{Conn, parse_duration};
use crate::client::device_ref;
use crate::output::{print_json, print_table, ts};

/// Bulwark: DevSecOps control plane for IoT fleets.
#[derive(Debug, Parser)]
#[command(name = "bulwark", version, propagate_version = true, after_help = crate::exit::HELP)]
pub(crate) struct Cli {
    #[command(flatten)]
    log: bulwark_agent::logging::LogArgs,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// `--log-format`, or `BULWARK_LOG_FORMAT`.
    pub(crate) fn log_format(&self) -> bulwark_agent::logging::LogFormat {
        self.log.log_format
    }

    /// The log filter when `BULWARK_LOG` is not set: the demo and the
    /// simulator run a server and many agents in one process, whose
    /// routine logs would drown their own output.
    pub(crate) fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Demo(_) | Command::Sim(_) => "error",
            _ => "info",
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane server.
    Server(Box<ServerArgs>),
    /// Create or list device enrollment tokens (one-time or multi-use).
    #[command(name = "enroll-token", subcommand)]
    EnrollToken(EnrollTokenCmd),
    /// List, inspect, tag and revoke devices.
    #[command(subcommand)]
    Devices(DevicesCmd),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Tokens(TokensCmd),
    /// Create and list accounts (admin).
    #[command(subcommand)]
    Accounts(AccountsCmd),
    /// Show who the current token belongs to.
    Whoami {
        #[command(flatten)]
        conn: Conn,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read, prove and verify the audit journal.
    #[command(subcommand)]
    Audit(crate::audit::AuditCmd),
    /// Print the server's OpenAPI document (generated from the code; no server needed).
    Openapi,
    /// Generate and inspect offline signing keys (TUF root and targets).
    #[command(subcommand)]
    Keys(crate::release::KeysCmd),
    /// Initialize the image repository and rotate its root (offline keys).
    #[command(subcommand)]
    Repo(crate::release::RepoCmd),
    /// Publish, sign, promote and inspect releases.
    #[command(subcommand)]
    Release(crate::release::ReleaseCmd),
    /// Deploy a promoted release to a device group in an environment.
    Deploy {
        /// `name@version`.
        reference: String,
        /// Device group.
        #[arg(long)]
        group: String,
        /// Environment.
        #[arg(long = "env")]
        environment: String,
        /// A remediation: quarantined devices receive it too (every other
        /// update is withheld from them).
        #[arg(long)]
        remediation: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Scan an artifact or directory locally: SBOM, vulnerabilities (OSV),
    /// malware (YARA), secrets, judged by the gate policy. No server needed.
    /// Exits 4 when the gate blocks.
    Scan(crate::gate::ScanArgs),
    /// Import advisories; which releases and devices an advisory hits.
    #[command(subcommand)]
    Advisories(crate::gate::AdvisoriesCmd),
    /// Add, list and revoke gate waivers.
    #[command(subcommand)]
    Waivers(crate::gate::WaiversCmd),
    /// Show or replace the release gate's policy.
    #[command(subcommand)]
    Gate(crate::gate::GateCmd),
    /// Export a release's SBOM (CycloneDX 1.6 or SPDX 2.3 JSON).
    Sbom {
        /// `name@version`.
        reference: String,
        /// `cyclonedx` or `spdx`.
        #[arg(long, default_value = "cyclonedx")]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Run the detection engine offline (e.g. over a Zeek conn.log).
    #[command(subcommand)]
    Detect(crate::detect::DetectCmd),
    /// Detection profiles (per device group).
    #[command(subcommand)]
    Profiles(crate::detect::ProfilesCmd),
    /// Alerts: new advisory hits on releases or devices, and detections.
    #[command(subcommand)]
    Alerts(crate::detect::AlertsCmd),
    /// Alert webhooks: signed deliveries with retries.
    #[command(subcommand)]
    Webhooks(crate::detect::WebhooksCmd),
    /// The whole loop on a simulated fleet: gate, sign, stage, roll out,
    /// detect, quarantine, verify the journal. Exits 0 only if every step
    /// did what it should.
    Demo(crate::demo::DemoArgs),
    /// Run a fleet of virtual devices (the real agent library) against a
    /// server, optionally staging an attack.
    Sim(crate::sim::SimArgs),
    /// List deployments.
    Deployments {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print a shell completion script (bash, zsh, fish, …) to standard output.
    ///
    /// The Debian package installs them for bash, zsh and fish; otherwise,
    /// e.g. `bulwark completions bash >
    /// ~/.local/share/bash-completion/completions/bulwark`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (one per command) into DIR; `cargo xtask
    /// dist` packages them.
    #[command(hide = true)]
    Manpages {
        /// Output directory.
        dir: PathBuf,
    },
}

/// `bulwark server`: every setting of the configuration file is also a
/// flag (the same definition, `bulwark_server::RawConfig`).
#[derive(Debug, Args)]
struct ServerArgs {
    /// TOML configuration file; flags override it. `--print-config` writes
    /// one with every setting.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the reference configuration and exit: every setting,
    /// described, commented out at its default.
    ///
    /// Settings from --config and flags are printed set, so `bulwark server
    /// --data-dir DIR --print-config > server.toml` writes a configuration
    /// file (with a database_url given, password included).
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    settings: bulwark_server::RawConfig,
}

#[derive(Debug, Subcommand)]
enum EnrollTokenCmd {
    /// Create a token (one-time unless --uses); prints it once.
    Create {
        /// Group the device joins.
        #[arg(long)]
        group: String,
        /// Environment the device joins.
        #[arg(long = "env")]
        environment: String,
        /// Lifetime, e.g. 30m, 1h, 7d [default: 1h].
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// How many devices the token may enroll (1-100000).
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List enrollment tokens (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
enum DevicesCmd {
    /// List devices: name, state, release, group, environment, last seen.
    List {
        /// Only this group.
        #[arg(long)]
        group: Option<String>,
        /// Only this environment.
        #[arg(long = "env")]
        environment: Option<String>,
        /// Only devices in this state: online, offline, quarantined,
        /// updating, rolled-back, revoked.
        #[arg(long, value_parser = parse_device_state)]
        state: Option<DeviceState>,
        /// Only devices whose installed release is this (name@version, or a
        /// product name for any version).
        #[arg(long)]
        release: Option<String>,
        /// Only devices whose name, hostname or a tag (key=value) contains
        /// this text, or whose id starts with it.
        #[arg(long)]
        search: Option<String>,
        /// Show at most this many devices.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one device with its inventory.
    Show {
        /// Device id or name.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// A device's per-minute telemetry: CPU, memory, processes, traffic,
    /// connections, destinations, unanswered attempts, failed logins.
    Telemetry {
        /// Device id or name.
        id: String,
        /// How far back (90s, 15m, 1h, 7d) [default: 1h].
        #[arg(long)]
        since: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Set tags (key=value; key= removes).
    Tag {
        /// Device id or name.
        id: String,
        /// key=value pairs.
        #[arg(required = true)]
        tags: Vec<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Rename a device (names are unique; a device's name is accepted
    /// wherever its id is).
    Rename {
        /// Device id or name.
        id: String,
        /// The new name: 1-64 of a-z 0-9 - _ .
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Revoke a device: its certificate is refused from now on.
    Revoke {
        /// Device id or name.
        id: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Quarantine a device: refused on the gateway, updates withheld, told
    /// to isolate itself.
    Quarantine {
        /// Device id or name.
        id: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Release a device from quarantine.
    Release {
        /// Device id or name.
        id: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
enum TokensCmd {
    /// Create an API token; prints it once.
    Create {
        /// Label, e.g. ci.
        #[arg(long)]
        label: String,
        /// Account to issue it for (admins; default: yourself).
        #[arg(long)]
        account: Option<String>,
        /// Lifetime, e.g. 90d [default: no expiry].
        #[arg(long)]
        expires_in: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List API tokens.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Revoke an API token.
    Revoke {
        /// Token id.
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
enum AccountsCmd {
    /// Create an account.
    Create {
        /// Login name.
        name: String,
        /// admin, operator, release-manager, security or viewer.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List accounts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

/// A device state from the command line (`rolled-back` or `rolled_back`).
fn parse_device_state(s: &str) -> Result<DeviceState, String> {
    s.replace('-', "_").parse().map_err(|e| format!("{e}"))
}

/// The device listing's header and rows.
const DEVICE_HEADER: [&str; 7] = [
    "NAME",
    "STATE",
    "RELEASE",
    "GROUP",
    "ENV",
    "LAST SEEN",
    "ID",
];

fn device_row(d: &DeviceView) -> [String; 7] {
    [
        d.name.clone(),
        d.state.to_string().replace('_', "-"),
        d.release.clone().unwrap_or_else(|| "-".into()),
        d.group.clone(),
        d.environment.clone(),
        ts(d.last_seen),
        d.id.to_string(),
    ]
}

pub(crate) async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Server(args) => server(*args).await?,
        Command::Audit(cmd) => crate::audit::run(cmd).await?,
        Command::Openapi => println!("{}", bulwark_server::api::openapi().to_pretty_json()?),
        Command::Completions { shell } => crate::manual::completions(Cli::command(), shell)?,
        Command::Manpages { dir } => crate::manual::manpages(Cli::command(), &dir)?,
        Command::Keys(cmd) => crate::release::keys(cmd)?,
        Command::Repo(cmd) => crate::release::repo(cmd).await?,
        Command::Release(cmd) => return crate::release::release(cmd).await,
        Command::Scan(args) => return crate::gate::scan(args),
        Command::Advisories(cmd) => crate::gate::advisories(cmd).await?,
        Command::Waivers(cmd) => crate::gate::waivers(cmd).await?,
        Command::Gate(cmd) => crate::gate::gate(cmd).await?,
        Command::Sbom {
            reference,
            format,
            out,
            conn,
        } => crate::gate::sbom(reference, format, out, conn).await?,
        Command::Alerts(cmd) => crate::detect::alerts(cmd).await?,
        Command::Webhooks(cmd) => crate::detect::webhooks(cmd).await?,
        Command::Detect(cmd) => crate::detect::detect(cmd)?,
        Command::Profiles(cmd) => crate::detect::profiles(cmd).await?,
        Command::Deploy {
            reference,
            group,
            environment,
            remediation,
            json,
            conn,
        } => crate::release::deploy(reference, group, environment, remediation, json, conn).await?,
        Command::Demo(args) => return crate::demo::demo(args).await,
        Command::Sim(args) => crate::sim::sim(args).await?,
        Command::Deployments { json, conn } => crate::release::deployments(json, conn).await?,
        Command::Whoami { conn, json } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (w, raw) = api.whoami().await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                println!(
                    "{} ({}) via token {}",
                    w.account.name, w.account.role, w.token_id
                );
            }
        }
        Command::EnrollToken(EnrollTokenCmd::Create {
            group,
            environment,
            ttl,
            uses,
            json,
            conn,
        }) => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let body = CreateEnrollToken {
                group,
                environment,
                ttl_secs: Some(parse_duration(&ttl)?),
                uses: Some(uses),
            };
            let (t, raw) = api.create_enroll_token(&body).await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                let kind = if t.max_uses == 1 {
                    "one-time token".to_owned()
                } else {
                    format!("token for {} devices", t.max_uses)
                };
                eprintln!(
                    "{kind} for group {} in {} (expires {}); shown once:",
                    t.group,
                    t.environment,
                    ts(Some(t.expires_at))
                );
                println!("{}", t.token);
            }
        }
        Command::EnrollToken(EnrollTokenCmd::List { json, conn }) => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (list, raw) = api.list_enroll_tokens().await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                println!(
                    "{:<16}  {:<16}  {:<12}  {:<25}  {:<13}  LAST USED BY",
                    "ID", "GROUP", "ENV", "EXPIRES", "USES"
                );
                for t in list {
                    let used = t
                        .device_id
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "-".into());
                    let uses = format!("{}/{}", t.uses, t.max_uses);
                    println!(
                        "{:<16}  {:<16}  {:<12}  {:<25}  {:<13}  {}",
                        t.id,
                        t.group,
                        t.environment,
                        ts(Some(t.expires_at)),
                        uses,
                        used
                    );
                }
            }
        }
        Command::Devices(cmd) => devices(cmd).await?,
        Command::Tokens(cmd) => tokens(cmd).await?,
        Command::Accounts(AccountsCmd::Create { name, role, conn }) => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let role = role.parse::<bulwark_api::Role>()?;
            let a = api
                .create_account(&CreateAccount { name, role })
                .await?
                .value;
            println!("created account {} ({})", a.name, a.role);
        }
        Command::Accounts(AccountsCmd::List { json, conn }) => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (list, raw) = api.list_accounts().await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                println!("{:<24}  {:<16}  CREATED", "NAME", "ROLE");
                for a in list {
                    println!("{:<24}  {:<16}  {}", a.name, a.role, ts(Some(a.created_at)));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn server(args: ServerArgs) -> Result<()> {
    let file = match &args.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            bulwark_server::RawConfig::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => bulwark_server::RawConfig::default(),
    };
    let raw = file.overlay(args.settings);
    if args.print_config {
        use std::io::Write as _;
        return std::io::stdout()
            .lock()
            .write_all(raw.reference_toml().as_bytes())
            .context("writing the reference configuration");
    }
    let config = match raw.validate() {
        Ok(c) => c,
        Err(errors) => {
            let list: Vec<String> = errors.iter().map(|e| format!("  - {e}")).collect();
            bail!("invalid configuration:\n{}", list.join("\n"));
        }
    };
    bulwark_server::run(config, async {
        bulwark_agent::shutdown_signal().await;
        tracing::info!("shutdown signal received");
    })
    .await
}

async fn devices(cmd: DevicesCmd) -> Result<()> {
    match cmd {
        DevicesCmd::List {
            group,
            environment,
            state,
            release,
            search,
            limit,
            json,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let mut all = Vec::new();
            let mut raw_all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let left = limit.map_or(1000, |l| (l as usize - all.len()).min(1000));
                let query = DeviceQuery {
                    group: group.clone(),
                    environment: environment.clone(),
                    name: None,
                    state,
                    release: release.clone(),
                    search: search.clone(),
                    after: after.take(),
                    limit: Some(u32::try_from(left).unwrap_or(1000)),
                };
                let (page, raw) = api.list_devices(&query).await?.into_parts();
                if let Some(arr) = raw.get("devices").and_then(|d| d.as_array()) {
                    raw_all.extend(arr.iter().cloned());
                }
                all.extend(page.devices);
                match page.next_after {
                    Some(n) if limit.is_none_or(|l| all.len() < l as usize) => {
                        after = Some(n.to_string());
                    }
                    _ => break,
                }
            }
            if json {
                print_json(&serde_json::Value::Array(raw_all))?;
            } else {
                let rows: Vec<_> = all.iter().map(device_row).collect();
                print_table(DEVICE_HEADER, &rows);
                eprintln!("{} device(s)", all.len());
            }
        }
        DevicesCmd::Show { id, json, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let id = device_ref(&api, &id).await?;
            let (d, raw) = api.show_device(&id).await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                let v = &d.device;
                println!("id:             {}", v.id);
                println!("name:           {}", v.name);
                println!("hostname:       {}", v.hostname.as_deref().unwrap_or("-"));
                println!("environment:    {}", v.environment);
                println!("group:          {}", v.group);
                println!(
                    "status:         {}{}",
                    v.status,
                    v.revoked_reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                );
                println!("state:          {}", v.state.to_string().replace('_', "-"));
                println!("release:        {}", v.release.as_deref().unwrap_or("-"));
                println!("online:         {}", if v.online { "yes" } else { "no" });
                println!("last seen:      {}", ts(v.last_seen));
                println!("enrolled:       {}", ts(Some(v.enrolled_at)));
                println!(
                    "agent version:  {}",
                    v.agent_version.as_deref().unwrap_or("-")
                );
                println!("boot id:        {}", v.boot_id.as_deref().unwrap_or("-"));
                println!(
                    "certificate:    serial {} valid until {}",
                    v.cert_serial,
                    ts(Some(v.cert_not_after))
                );
                let tags: Vec<String> = v.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!(
                    "tags:           {}",
                    if tags.is_empty() {
                        "-".into()
                    } else {
                        tags.join(" ")
                    }
                );
                match &d.update {
                    Some(u) => println!(
                        "update:         {} {}{}{}",
                        u.release,
                        u.phase,
                        u.outcome
                            .as_deref()
                            .map(|o| format!(" [{o}]"))
                            .unwrap_or_default(),
                        u.detail
                            .as_deref()
                            .map(|x| format!(": {x}"))
                            .unwrap_or_default()
                    ),
                    None => println!("update:         -"),
                }
                if !d.update_history.is_empty() {
                    let steps: Vec<&str> = d
                        .update_history
                        .iter()
                        .rev()
                        .filter(|u| d.update.as_ref().is_some_and(|c| c.release == u.release))
                        .map(|u| u.phase.as_str())
                        .collect();
                    println!("update steps:   {}", steps.join(" → "));
                }
                if let Some(since) = v.quarantined_at {
                    println!(
                        "quarantined:    since {} ({})",
                        ts(Some(since)),
                        v.quarantine_reason.as_deref().unwrap_or("-")
                    );
                }
                if let Some(i) = &d.isolation {
                    println!(
                        "isolation:      {} ({})",
                        if i.isolated {
                            "in place"
                        } else {
                            "NOT in place"
                        },
                        i.detail
                    );
                }
                if !d.rejections.is_empty() {
                    let r: Vec<String> = d
                        .rejections
                        .iter()
                        .map(|(k, n)| format!("{k}={n}"))
                        .collect();
                    println!("rejected:       {}", r.join(" "));
                }
                for a in d.alerts.iter().take(5) {
                    println!(
                        "alert:          {} {} [{}] {}",
                        ts(Some(a.created_at)),
                        a.behaviour,
                        a.severity,
                        a.message
                    );
                }
                match &d.latest_telemetry {
                    Some(l) => print_latest_telemetry(l),
                    None => println!("telemetry:      none yet"),
                }
                match &d.inventory {
                    Some(inv) => {
                        println!(
                            "os:             {}",
                            inv.os
                                .pretty_name
                                .as_deref()
                                .or(inv.os.id.as_deref())
                                .unwrap_or("-")
                        );
                        println!("kernel:         {}", inv.kernel.as_deref().unwrap_or("-"));
                        println!("arch:           {}", inv.arch);
                        println!("packages:       {}", inv.packages.len());
                        for p in inv.packages.iter().take(20) {
                            println!("  {:<5} {} {}", p.source, p.name, p.version);
                        }
                        if inv.packages.len() > 20 {
                            println!("  … {} more (use --json)", inv.packages.len() - 20);
                        }
                    }
                    None => println!("inventory:      not reported yet"),
                }
            }
        }
        DevicesCmd::Telemetry {
            id,
            since,
            json,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let id = device_ref(&api, &id).await?;
            let query = TelemetryQuery { since, limit: None };
            let (h, raw) = api.device_telemetry(&id, &query).await?.into_parts();
            if json {
                print_json(&raw)?;
            } else if h.minutes.is_empty() {
                println!("no telemetry in that period");
            } else {
                println!(
                    "{:<17} {:>4} {:>6} {:>6} {:>5} {:>11} {:>11} {:>6} {:>5} {:>5} {:>5} {:>5} {:>6}",
                    "minute",
                    "smp",
                    "cpu%",
                    "mem%",
                    "procs",
                    "bytes in",
                    "bytes out",
                    "conns",
                    "dests",
                    "unans",
                    "tcp+",
                    "tcp!",
                    "logins"
                );
                for m in &h.minutes {
                    println!(
                        "{:<17} {:>4} {:>6.1} {:>6.1} {:>5} {:>11} {:>11} {:>6} {:>5} {:>5} {:>5} {:>5} {:>6}",
                        m.minute
                            .format(time::macros::format_description!(
                                "[year]-[month]-[day] [hour]:[minute]"
                            ))
                            .unwrap_or_default(),
                        m.samples,
                        m.cpu_avg,
                        m.memory_avg,
                        m.processes_max,
                        m.bytes_in,
                        m.bytes_out,
                        m.connections_max,
                        m.destinations_max,
                        m.unanswered_max,
                        m.connection_attempts,
                        m.failed_attempts,
                        m.failed_logins
                    );
                }
            }
        }
        DevicesCmd::Tag { id, tags, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let id = device_ref(&api, &id).await?;
            let mut map = BTreeMap::new();
            for t in tags {
                let (k, v) = t
                    .split_once('=')
                    .with_context(|| format!("{t:?} is not key=value"))?;
                map.insert(k.to_owned(), v.to_owned());
            }
            let d = api.tag_device(&id, &TagDevice { tags: map }).await?.value;
            let tags: Vec<String> = d.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "{}: {}",
                d.id,
                if tags.is_empty() {
                    "(no tags)".into()
                } else {
                    tags.join(" ")
                }
            );
        }
        DevicesCmd::Rename { id, name, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let id = device_ref(&api, &id).await?;
            let d = api
                .rename_device(&id, &bulwark_api::RenameDevice { name })
                .await?
                .value;
            println!("renamed {} to {}", d.id, d.name);
        }
        DevicesCmd::Revoke { id, reason, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let id = device_ref(&api, &id).await?;
            let d = api
                .revoke_device(&id, &RevokeDevice { reason })
                .await?
                .value;
            println!(
                "revoked {} ({})",
                d.id,
                d.revoked_reason.unwrap_or_default()
            );
        }
        DevicesCmd::Quarantine { id, reason, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let id = device_ref(&api, &id).await?;
            let d = api
                .quarantine_device(&id, &QuarantineDevice { reason })
                .await?
                .value;
            println!(
                "quarantined {} ({})",
                d.id,
                d.quarantine_reason.unwrap_or_default()
            );
        }
        DevicesCmd::Release { id, reason, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let id = device_ref(&api, &id).await?;
            let d = api
                .release_device(&id, &QuarantineDevice { reason })
                .await?
                .value;
            println!("released {}", d.id);
        }
    }
    Ok(())
}

async fn tokens(cmd: TokensCmd) -> Result<()> {
    match cmd {
        TokensCmd::Create {
            label,
            account,
            expires_in,
            json,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let expires_in_secs = expires_in.as_deref().map(parse_duration).transpose()?;
            let (t, raw) = api
                .create_token(&CreateToken {
                    label,
                    account,
                    expires_in_secs,
                })
                .await?
                .into_parts();
            if json {
                print_json(&raw)?;
            } else {
                eprintln!(
                    "API token {} for {} (expires {}); shown once:",
                    t.id,
                    t.account,
                    ts(t.expires_at)
                );
                println!("{}", t.token);
            }
        }
        TokensCmd::List { json, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (list, raw) = api.list_tokens().await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                println!(
                    "{:<16}  {:<28}  {:<25}  {:<25}  REVOKED",
                    "ID", "LABEL", "CREATED", "EXPIRES"
                );
                for t in list {
                    println!(
                        "{:<16}  {:<28}  {:<25}  {:<25}  {}",
                        t.id,
                        t.label,
                        ts(Some(t.created_at)),
                        ts(t.expires_at),
                        ts(t.revoked_at)
                    );
                }
            }
        }
        TokensCmd::Revoke { id, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            api.revoke_token(&id).await?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}

/// The latest telemetry sample, as `devices show` prints it.
fn print_latest_telemetry(l: &bulwark_api::LatestTelemetryView) {
    use bulwark_proto::telemetry::{ConnectionState, TransportProto};
    let t = &l.telemetry;
    let proto = |p: TransportProto| match p {
        TransportProto::Tcp => "tcp",
        TransportProto::Udp => "udp",
    };
    println!(
        "telemetry:      at {} (sample {}): cpu {:.1}%, memory {:.1}%, {} processes",
        l.received_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        t.seq,
        t.cpu_percent,
        t.memory_percent,
        t.process_count
    );
    println!(
        "traffic:        {} B in, {} B out, {} / {} packets (since boot); {} connection attempts since the previous sample{}{}",
        t.net.bytes_in,
        t.net.bytes_out,
        t.net.packets_in,
        t.net.packets_out,
        t.connection_attempts,
        t.failed_attempts
            .map(|f| format!(" ({f} failed)"))
            .unwrap_or_default(),
        t.failed_logins
            .map(|f| format!(", {f} failed logins"))
            .unwrap_or_default()
    );
    let listening: Vec<String> = t
        .listening
        .iter()
        .map(|p| format!("{}/{}@{}", proto(p.proto), p.port, p.addr))
        .collect();
    println!(
        "listening:      {}",
        if listening.is_empty() {
            "-".to_owned()
        } else {
            listening.join(" ")
        }
    );
    println!("connections:    {}", t.connections.len());
    for c in t.connections.iter().take(20) {
        let state = match c.state {
            ConnectionState::Established => "established",
            ConnectionState::SynSent => "syn-sent (unanswered)",
            ConnectionState::SynRecv => "syn-recv (incoming)",
            ConnectionState::Closing => "closing (answered, ended)",
        };
        let peer = match c.remote_addr {
            std::net::IpAddr::V4(a) => format!("{a}:{}", c.remote_port),
            std::net::IpAddr::V6(a) => format!("[{a}]:{}", c.remote_port),
        };
        println!("  {} :{} -> {peer} {state}", proto(c.proto), c.local_port);
    }
    if t.connections.len() > 20 {
        println!("  … {} more (use --json)", t.connections.len() - 20);
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
