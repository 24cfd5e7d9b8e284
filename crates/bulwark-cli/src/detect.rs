//! `bulwark detect replay`: a Zeek conn.log through the detection engine,
//! and `bulwark profiles validate`: a profile checked locally.

use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use bulwark_api::{
    AlertView, ApplyProfile, CreateWebhook, DetectionAlertView, EffectiveProfileQuery, StreamEvent,
};
use bulwark_detect::Profile;
use clap::Subcommand;

use crate::args::Conn;
use crate::output::{print_json, print_table, ts};

#[derive(Debug, Subcommand)]
pub(crate) enum DetectCmd {
    /// Feed a Zeek conn.log (TSV with a #fields header, or JSON lines)
    /// through the detection engine; write one CSV line per record: ts,
    /// uid, score (1 = a behaviour's alert threshold), alert (1 when some
    /// behaviour's condition holds at that record), reason.
    #[command(group(clap::ArgGroup::new("input").required(true).args(["conn_log", "pcap"])))]
    Replay {
        /// A Zeek conn.log (TSV or JSON lines).
        #[arg(long)]
        conn_log: Option<PathBuf>,
        /// A packet capture (pcap or pcapng): its flows are assembled into
        /// connection records with Zeek's conn_state and history, then
        /// replayed like a conn.log.
        #[arg(long)]
        pcap: Option<PathBuf>,
        /// With --pcap: also write the assembled records as Zeek JSON
        /// lines (the uid column of the scores names them).
        #[arg(long, requires = "pcap")]
        conn_out: Option<PathBuf>,
        /// Detection profile (TOML) [default: the built-in fleet profile,
        /// the one a server installs at first start].
        #[arg(long)]
        profile: Option<PathBuf>,
        /// The monitored device's address (repeatable). Default: a record
        /// from an internet address to a local one is inbound to the local
        /// host, any other belongs to its originator.
        #[arg(long = "device-addr")]
        device_addrs: Vec<std::net::IpAddr>,
        /// Where to write the scores (CSV).
        #[arg(long)]
        out: PathBuf,
    },
    /// Score a replay against labels: TPR, FPR and precision at the alert
    /// threshold, ROC AUC, and tables per reason and per label category.
    Eval {
        /// Scores as `detect replay` writes them (uid, score, alert, reason).
        #[arg(long)]
        scores: PathBuf,
        /// Labels: CSV with uid and label (malicious/benign, 1/0, ...)
        /// columns, and optionally category (or detailed-label).
        #[arg(long)]
        labels: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProfilesCmd {
    /// Check a detection profile (TOML) and list every problem.
    Validate {
        /// The profile.
        file: PathBuf,
    },
    /// Apply a profile to its group (`group = "*"`: every group without
    /// its own); takes effect at once, versioned and journaled.
    Apply {
        /// The profile (TOML).
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// The profile a group's devices are judged by (its own, or else the
    /// one for every group), where it came from, its version and its
    /// behaviours.
    Show {
        /// The device group [default: `*`, every group without its own].
        #[arg(long)]
        group: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Stored profile versions (the last of each group is in force).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum WebhooksCmd {
    /// Deliver every new alert to URL (https://, or http:// to loopback),
    /// signed with HMAC-SHA256 under the secret in SECRET_FILE.
    Add {
        /// Where to POST.
        url: String,
        /// File holding the shared secret (16–1024 bytes; trailing
        /// whitespace ignored).
        #[arg(long)]
        secret_file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Registered webhooks.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove a webhook.
    Remove {
        /// Webhook id.
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// A webhook's delivery log.
    Deliveries {
        /// Webhook id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AlertsCmd {
    /// Stored alerts, newest first: detections and advisory hits (id,
    /// time, kind, severity, subject, what fired, message).
    List {
        /// Only detections of this severity: low, medium, high, critical.
        #[arg(long)]
        severity: Option<bulwark_api::Severity>,
        /// Only alerts about this device (id or name).
        #[arg(long)]
        device: Option<String>,
        /// Only alerts raised within this long (90s, 15m, 1h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// At most this many of each kind (1-500) [default: 500].
        #[arg(long)]
        limit: Option<u32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Follow new alerts live (Server-Sent Events) until interrupted.
    Watch {
        /// Print each alert as one JSON line.
        #[arg(long)]
        json: bool,
        /// Stop after this many alerts.
        #[arg(long)]
        count: Option<u64>,
        #[command(flatten)]
        conn: Conn,
    },
}

fn load_profile(path: Option<&Path>) -> Result<Profile> {
    let (name, text) = match path {
        Some(p) => {
            let len = std::fs::metadata(p)
                .with_context(|| format!("reading {}", p.display()))?
                .len();
            if len > 1 << 20 {
                bail!("{} is {len} bytes; a profile is at most 1 MiB", p.display());
            }
            (
                p.display().to_string(),
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            )
        }
        None => return Ok(bulwark_detect::builtin_profile()),
    };
    Profile::from_toml(&text).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

pub(crate) fn detect(cmd: DetectCmd) -> Result<()> {
    match cmd {
        DetectCmd::Eval { scores, labels } => {
            let open = |p: &Path| {
                std::fs::File::open(p)
                    .map(BufReader::new)
                    .with_context(|| format!("opening {}", p.display()))
            };
            let e =
                bulwark_detect::evaluate(open(&scores)?, open(&labels)?).with_context(|| {
                    format!(
                        "evaluating {} against {}",
                        scores.display(),
                        labels.display()
                    )
                })?;
            print!("{e}");
        }
        DetectCmd::Replay {
            conn_log,
            pcap,
            conn_out,
            profile,
            device_addrs,
            out,
        } => {
            let profile = load_profile(profile.as_deref())?;
            let source = conn_log
                .as_ref()
                .or(pcap.as_ref())
                .cloned()
                .unwrap_or_default();
            let input = std::fs::File::open(&source)
                .with_context(|| format!("opening {}", source.display()))?;
            let output = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let mut engine = bulwark_detect::Engine::new(profile);
            let opts = bulwark_detect::ReplayOptions { device_addrs };
            let summary = if pcap.is_some() {
                let mut conn_file = match &conn_out {
                    Some(p) => Some(BufWriter::new(
                        std::fs::File::create(p)
                            .with_context(|| format!("creating {}", p.display()))?,
                    )),
                    None => None,
                };
                let (summary, stats) = bulwark_detect::replay_pcap(
                    BufReader::new(input),
                    &mut engine,
                    &opts,
                    BufWriter::new(output),
                    conn_file.as_mut().map(|w| w as &mut dyn std::io::Write),
                )
                .with_context(|| format!("replaying {}", source.display()))?;
                let skipped: u64 = stats.skipped.values().sum();
                eprintln!(
                    "{} packets, {} connection records, {skipped} packets skipped{}{}",
                    stats.packets,
                    stats.records,
                    stats
                        .skipped
                        .iter()
                        .map(|(k, v)| format!(" ({}: {v})", k.name()))
                        .collect::<String>(),
                    if stats.evicted > 0 {
                        format!(", {} flows ended early (too many open)", stats.evicted)
                    } else {
                        String::new()
                    }
                );
                summary
            } else {
                bulwark_detect::replay_with(
                    BufReader::new(input),
                    &mut engine,
                    &opts,
                    BufWriter::new(output),
                )
                .with_context(|| format!("replaying {}", source.display()))?
            };
            for p in &summary.problems {
                eprintln!("warning: {}: {p}", source.display());
            }
            for (behaviour, n) in &summary.alerts_by_behaviour {
                eprintln!("alert: {behaviour} x{n}");
            }
            eprintln!(
                "{} records, {} flagged ({} alerts raised), {} malformed lines skipped, {} rejected → {}",
                summary.records,
                summary.alerted,
                summary.alerts,
                summary.malformed,
                summary.rejected,
                out.display()
            );
        }
    }
    Ok(())
}

pub(crate) async fn profiles(cmd: ProfilesCmd) -> Result<()> {
    match cmd {
        ProfilesCmd::Validate { file } => {
            let p = load_profile(Some(&file))?;
            println!(
                "{}: valid ({} behaviours)",
                file.display(),
                p.behaviours.len()
            );
        }
        ProfilesCmd::Apply { file, json, conn } => {
            // Checked here first, so a typo is reported with the file's name.
            load_profile(Some(&file))?;
            let toml = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (p, raw) = api
                .apply_profile(&ApplyProfile { toml })
                .await?
                .into_parts();
            if json {
                print_json(&raw)?;
            } else {
                println!(
                    "applied profile {} version {} (revision {}, {} behaviours)",
                    p.group,
                    p.version,
                    p.revision,
                    p.behaviours.len()
                );
            }
        }
        ProfilesCmd::Show { group, json, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (e, raw) = api
                .effective_profile(&EffectiveProfileQuery { group })
                .await?
                .into_parts();
            if json {
                print_json(&raw)?;
            } else {
                let p = &e.profile;
                let source = match (e.inherited, e.builtin) {
                    (true, true) => "inherited from \"*\", Bulwark's built-in profile",
                    (true, false) => "inherited from \"*\"",
                    (false, true) => "Bulwark's built-in profile",
                    (false, false) => "its own",
                };
                println!("group:     {}", e.group);
                println!(
                    "profile:   group {:?} version {} ({source})",
                    p.group, p.version
                );
                println!(
                    "applied:   revision {} by {} at {}",
                    p.revision,
                    p.created_by,
                    p.created_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                );
                match Profile::from_toml(&p.toml) {
                    Ok(parsed) => {
                        println!("behaviours:");
                        for b in &parsed.behaviours {
                            println!(
                                "  {:<24} {:<12} {:<8} {:<10} on {}",
                                b.name,
                                b.kind.name(),
                                b.severity.to_string(),
                                b.action.map_or("alert", |_| "quarantine"),
                                b.metric
                            );
                        }
                    }
                    Err(err) => println!("behaviours: (stored document no longer parses: {err})"),
                }
                println!("\n{}", p.toml.trim_end());
            }
        }
        ProfilesCmd::List { json, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (l, raw) = api.list_profiles().await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                for p in &l.profiles {
                    println!(
                        "{:<16} {:<12} rev {:<4} {}  by {}  {}",
                        p.group,
                        p.version,
                        p.revision,
                        p.created_at.date(),
                        p.created_by,
                        p.behaviours.join(",")
                    );
                }
            }
        }
    }
    Ok(())
}

pub(crate) async fn webhooks(cmd: WebhooksCmd) -> Result<()> {
    match cmd {
        WebhooksCmd::Add {
            url,
            secret_file,
            conn,
        } => {
            let len = std::fs::metadata(&secret_file)
                .with_context(|| format!("reading {}", secret_file.display()))?
                .len();
            if len > 4096 {
                bail!(
                    "{}: {len} bytes; a secret is at most 1024",
                    secret_file.display()
                );
            }
            let secret = zeroize::Zeroizing::new(
                std::fs::read_to_string(&secret_file)
                    .with_context(|| format!("reading {}", secret_file.display()))?,
            );
            let secret = secret.trim().to_owned();
            if secret.len() < 16 {
                bail!(
                    "{}: the secret must be at least 16 bytes",
                    secret_file.display()
                );
            }
            let api = crate::client::from_env(conn.server, conn.token)?;
            let w = api.add_webhook(&CreateWebhook { url, secret }).await?.value;
            println!("{}  {}", w.id, w.url);
        }
        WebhooksCmd::List { json, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (l, raw) = api.list_webhooks().await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                for w in &l.webhooks {
                    println!(
                        "{}  {}  by {}  {}",
                        w.id,
                        w.url,
                        w.created_by,
                        w.created_at.date()
                    );
                }
            }
        }
        WebhooksCmd::Remove { id, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            api.remove_webhook(&id).await?;
            println!("removed webhook {id}");
        }
        WebhooksCmd::Deliveries { id, json, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (l, raw) = api.webhook_deliveries(&id).await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                for d in &l.deliveries {
                    println!(
                        "{}  {:<9} {:<13} attempts {}  {}{}",
                        d.created_at
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                        d.state,
                        d.event,
                        d.attempts,
                        d.last_status
                            .map(|s| format!("HTTP {s}"))
                            .unwrap_or_default(),
                        d.last_error
                            .as_deref()
                            .filter(|_| d.state != bulwark_api::DeliveryState::Delivered)
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}

fn print_detection(a: &DetectionAlertView) {
    println!(
        "{}  {:<8}  {}  {}  {}{}",
        a.created_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        a.severity,
        a.device,
        a.behaviour,
        a.message,
        if a.action.is_some() {
            "  → quarantine"
        } else {
            ""
        }
    );
}

fn print_vulnerability(a: &AlertView) {
    println!(
        "{}  {}  {}  {}",
        a.created_at.date(),
        a.advisory,
        a.subject,
        a.message
    );
}

pub(crate) async fn alerts(cmd: AlertsCmd) -> Result<()> {
    match cmd {
        AlertsCmd::List {
            severity,
            device,
            since,
            limit,
            json,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let device = match device {
                Some(d) => Some(crate::client::device_ref(&api, &d).await?),
                None => None,
            };
            let query = bulwark_api::AlertQuery {
                severity,
                device,
                since,
                limit,
            };
            let (l, raw) = api.alerts(&query).await?.into_parts();
            if json {
                print_json(&raw)?;
                return Ok(());
            }
            let mut rows: Vec<(time::OffsetDateTime, [String; 7])> = Vec::new();
            for a in &l.detections {
                rows.push((
                    a.created_at,
                    [
                        a.id.clone(),
                        ts(Some(a.created_at)),
                        "detection".into(),
                        a.severity.to_string(),
                        format!("device:{}", a.device),
                        a.behaviour.clone(),
                        format!(
                            "{}{}",
                            a.message,
                            if a.action.is_some() {
                                " (quarantined)"
                            } else {
                                ""
                            }
                        ),
                    ],
                ));
            }
            for a in &l.alerts {
                rows.push((
                    a.created_at,
                    [
                        a.id.clone(),
                        ts(Some(a.created_at)),
                        "vulnerability".into(),
                        "-".into(),
                        a.subject.clone(),
                        a.advisory.clone(),
                        a.message.clone(),
                    ],
                ));
            }
            rows.sort_by_key(|r| std::cmp::Reverse(r.0));
            let rows: Vec<[String; 7]> = rows.into_iter().map(|(_, r)| r).collect();
            print_table(
                [
                    "ID", "TIME", "KIND", "SEVERITY", "SUBJECT", "WHAT", "MESSAGE",
                ],
                &rows,
            );
            eprintln!("{} alert(s)", rows.len());
        }
        AlertsCmd::Watch { json, count, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let mut seen = 0u64;
            let mut stream = api.alert_stream().await?;
            while count.is_none_or(|c| seen < c)
                && let Some(ev) = stream.next().await?
            {
                let (event, data) = (ev.event.as_str(), ev.data.as_str());
                match event {
                    "detection" | "vulnerability" => {
                        if json {
                            println!(
                                "{}",
                                serde_json::json!({"type": event, "alert": serde_json::from_str::<serde_json::Value>(data).unwrap_or(serde_json::Value::Null)})
                            );
                        } else {
                            match ev.alert() {
                                Ok(Some(StreamEvent::Detection(a))) => print_detection(&a),
                                Ok(Some(StreamEvent::Vulnerability(a))) => print_vulnerability(&a),
                                _ => println!("{event} {data}"),
                            }
                        }
                        seen += 1;
                    }
                    "lagged" => {
                        eprintln!("warning: {data} alerts were skipped (reading too slowly)")
                    }
                    _ => {}
                }
                use std::io::Write as _;
                let _ = std::io::stdout().flush();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_builtin_profile_is_valid() {
        assert!(super::load_profile(None).is_ok());
    }
}
