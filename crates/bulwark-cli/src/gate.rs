//! The release gate from the command line: `scan` (local, no server),
//! advisories, waivers, the gate policy, SBOM export and alerts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use bulwark_api::{CreateWaiver, GateState, GateView, WaiverView};
use bulwark_client::{Client, Raw};
use bulwark_gate::{
    AdvisoryInput, AdvisoryState, Policy, Stage, Status, Subject, Verdict, Waiver, evaluate,
};
use bulwark_osv::AdvisoryDb;
use clap::{Args, Subcommand};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::args::Conn;
use crate::output::print_json;

/// Exit code of `scan`, `release publish` and `release gate` when the gate
/// blocks.
pub(crate) const EXIT_BLOCKED: u8 = crate::exit::REFUSED;

/// `bulwark scan`.
#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// An artifact (tar, tar.gz, tar.zst, OCI layout or archive, a lockfile,
    /// a binary) or a directory holding an unpacked root filesystem.
    target: PathBuf,
    /// Advisory database directory [default: the user's cache dir].
    #[arg(long)]
    db: Option<PathBuf>,
    /// Directory of YARA rules (`*.yar`, `*.yara`).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// The builder's SBOM (CycloneDX 1.5/1.6 or SPDX 2.3 JSON), judged with
    /// what is extracted.
    #[arg(long)]
    sbom: Option<PathBuf>,
    /// Gate policy (JSON) [default: the built-in policy].
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Waivers (JSON list of {finding, release, reason, expires_at}).
    #[arg(long)]
    waivers: Option<PathBuf>,
    /// Name the artifact `name@version` (for waivers) [default: the file name @local].
    #[arg(long)]
    name: Option<String>,
    /// Also write the SBOM as CycloneDX 1.6 JSON to this file.
    #[arg(long)]
    sbom_out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long, conflicts_with = "sarif")]
    json: bool,
    /// Print SARIF 2.1.0.
    #[arg(long)]
    sarif: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdvisoriesCmd {
    /// Import OSV archives (OSV's all.zip, tar.gz, tar, one JSON/YAML
    /// advisory) or a CISA KEV catalog into the local database, or with
    /// --server into the server.
    Import {
        /// Files to import.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Local database directory [default: the user's cache dir].
        #[arg(long, conflicts_with = "server")]
        db: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Releases and devices an advisory (id or alias) hits now (server).
    Affected {
        /// Advisory id or alias, e.g. GHSA-…, CVE-…, PYSEC-…
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// How many advisories the server holds, and when they were imported.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum WaiversCmd {
    /// Waive one finding for a release (or every version: name@*) until a date.
    Add {
        /// Advisory id or alias, `malware:<namespace>.<rule>` or `secret:<fingerprint>`.
        finding: String,
        /// `name@version` or `name@*`.
        #[arg(long)]
        release: String,
        /// Expiry: a date (YYYY-MM-DD, end of that day UTC) or an RFC 3339 time.
        #[arg(long)]
        expires: String,
        /// Why (recorded in the journal).
        #[arg(long)]
        reason: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List waivers.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Revoke a waiver.
    Revoke {
        /// Waiver id.
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum GateCmd {
    /// Show the gate policy in force.
    Policy {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Replace the gate policy with a JSON document (a new, journaled version).
    SetPolicy {
        /// The policy file.
        file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
}

/// The user's advisory cache: `$XDG_CACHE_HOME/bulwark/advisories`, else
/// `~/.cache/bulwark/advisories`.
fn default_db() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("bulwark/advisories"));
    }
    let home = std::env::var_os("HOME")
        .context("no --db given and neither XDG_CACHE_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/bulwark/advisories"))
}

/// Parses `YYYY-MM-DD` (end of that day, UTC) or RFC 3339.
pub(crate) fn parse_expiry(s: &str) -> Result<OffsetDateTime> {
    let rfc = time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(s, &rfc) {
        return Ok(t);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &fmt)
        .with_context(|| format!("--expires {s:?}: expected YYYY-MM-DD or an RFC 3339 time"))?;
    Ok(d.with_hms(23, 59, 59).context("time of day")?.assume_utc())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverFileEntry {
    finding: String,
    release: String,
    reason: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > max {
        bail!("{} is {len} bytes; at most {max} are read", path.display());
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An age in words: `just now`, `5 minutes ago`, `3 hours ago`, `2 days ago`.
fn ago(seconds: u64) -> String {
    let (n, unit) = match seconds {
        s if s < 60 => return "just now".into(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// RFC 3339 to the second.
fn whole_seconds(t: OffsetDateTime) -> String {
    crate::output::ts(Some(t.replace_nanosecond(0).unwrap_or(t)))
}

/// `advisories: 1,234, updated 2 days ago (2026-11-21T10:00:00Z)`.
fn advisories_line(a: &AdvisoryState) -> String {
    if a.count == 0 {
        return "advisories: none loaded".into();
    }
    let when = match (a.updated_at, a.age_seconds) {
        (Some(t), Some(age)) => format!("updated {} ({})", ago(age), whole_seconds(t)),
        _ => "import time unknown".into(),
    };
    format!("advisories: {}, {when}", thousands(a.count))
}

fn verdict_text(v: &Verdict) -> String {
    let mut o = match v.status {
        Status::Pass => format!("gate: PASS (policy version {})\n", v.policy_version),
        Status::Block => format!("gate: BLOCKED (policy version {})\n", v.policy_version),
    };
    if let Some(a) = &v.advisories {
        o.push_str(&format!("  {}\n", advisories_line(a)));
    }
    for w in &v.warnings {
        o.push_str(&format!("  warning [{}] {}\n", w.code, w.message));
    }
    for r in &v.reasons {
        o.push_str(&format!("  blocks  [{}] {}\n", r.code, r.message));
        if !r.finding.is_empty() {
            o.push_str(&format!(
                "          waive with: bulwark waivers add {} --release … --expires … --reason …\n",
                r.finding
            ));
        }
    }
    for w in &v.waived {
        o.push_str(&format!(
            "  waived  [{}] {} — waiver {} until {}: {}\n",
            w.reason.code,
            w.reason.message,
            w.waiver,
            w.expires_at.date(),
            w.why
        ));
    }
    o
}

/// `bulwark scan`: the whole gate, locally.
pub(crate) fn scan(a: ScanArgs) -> Result<ExitCode> {
    let db_dir = match a.db {
        Some(d) => d,
        None => default_db()?,
    };
    // An empty or stale database is the verdict's warning (or, by policy,
    // its blocking reason).
    let db = AdvisoryDb::load_or_new(&db_dir)
        .with_context(|| format!("loading advisories from {}", db_dir.display()))?;
    let rules = match &a.rules {
        Some(d) => Some(
            bulwark_yara::Rules::compile_dir(d)
                .with_context(|| format!("YARA rules in {}", d.display()))?,
        ),
        None => None,
    };
    let policy = match &a.policy {
        Some(p) => Policy::from_json(&read_limited(p, 1 << 20)?)?,
        None => Policy::default(),
    };
    #[expect(
        clippy::disallowed_methods,
        reason = "the CLI is an edge: it passes the time to the pure gate (`evaluate`)"
    )]
    let now = OffsetDateTime::now_utc();
    let waivers: Vec<Waiver> = match &a.waivers {
        Some(p) => {
            let entries: Vec<WaiverFileEntry> = serde_json::from_slice(&read_limited(p, 4 << 20)?)
                .with_context(|| format!("{}: expected a JSON list of waivers", p.display()))?;
            entries
                .into_iter()
                .enumerate()
                .map(|(i, e)| Waiver {
                    id: format!("{}#{}", p.display(), i + 1),
                    finding: e.finding,
                    release: e.release,
                    reason: e.reason,
                    expires_at: e.expires_at,
                    created_by: String::new(),
                })
                .collect()
        }
        None => Vec::new(),
    };
    let reference = a.name.clone().unwrap_or_else(|| {
        let file = a
            .target
            .file_name()
            .map_or_else(|| "artifact".into(), |n| n.to_string_lossy().into_owned());
        format!("{file}@local")
    });
    let mut scan = bulwark_scan::scan_path(
        &a.target,
        &reference,
        rules.as_ref(),
        &bulwark_extract::Limits::default(),
    )
    .with_context(|| format!("scanning {}", a.target.display()))?;
    if let Some(p) = &a.sbom {
        let sbom = bulwark_sbom::Sbom::from_json(
            &read_limited(p, 64 << 20)?,
            &bulwark_sbom::Limits::default(),
        )
        .with_context(|| format!("{}", p.display()))?;
        bulwark_scan::merge_sbom(&mut scan, sbom);
    }
    let (findings, notices) = bulwark_scan::findings(&scan, &db);
    let subject = Subject {
        release: &reference,
        components: scan.sbom.components.len() as u64,
        findings: &findings,
        stage: Stage::Sign,
        unreadable: None,
        advisories: AdvisoryInput {
            count: db.len() as u64,
            updated_at: db.updated_at(),
        },
    };
    let verdict = evaluate(&policy, 0, subject, &waivers, now);
    if let Some(out) = &a.sbom_out {
        #[expect(
            clippy::disallowed_methods,
            reason = "SBOM serial number: unique, not a secret"
        )]
        let doc = scan.sbom.to_cyclonedx_1_6(uuid::Uuid::new_v4(), now)?;
        std::fs::write(out, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if a.sarif {
        print_json(&bulwark_scan::sarif(&scan, &findings, &verdict))?;
    } else if a.json {
        print_json(&serde_json::json!({
            "target": a.target, "reference": reference, "scan": scan, "findings": findings,
            "notices": notices, "verdict": verdict,
        }))?;
    } else {
        println!(
            "{}: {} ({} files, {} components from {})",
            a.target.display(),
            scan.format,
            scan.files_scanned,
            scan.sbom.components.len(),
            scan.sbom_source
        );
        for v in &findings.vulnerabilities {
            let kev = if v.known_exploited {
                " KNOWN-EXPLOITED"
            } else {
                ""
            };
            let fix = if v.fixed.is_empty() {
                String::new()
            } else {
                format!(" (fixed in {})", v.fixed.join(", "))
            };
            println!(
                "vuln     {:<20} {:<8}{kev} {}{fix}",
                v.id,
                v.severity.as_str(),
                v.purl
            );
        }
        for m in &findings.malware {
            println!(
                "malware  {}.{} {}{}",
                m.namespace,
                m.rule,
                m.path,
                if m.removed {
                    " (deleted by a later layer)"
                } else {
                    ""
                }
            );
        }
        for s in &findings.secrets {
            let line = s.line.map(|l| format!(":{l}")).unwrap_or_default();
            println!(
                "secret   {:<20} {:<8} {}{line} {}",
                s.kind,
                s.severity.as_str(),
                s.path,
                s.description
            );
        }
        for n in &notices {
            println!("notice   {n}");
        }
        for w in scan
            .warnings
            .iter()
            .chain(&scan.skipped)
            .chain(&scan.scan_errors)
        {
            eprintln!("warning: {w}");
        }
    }
    eprint!("{}", verdict_text(&verdict));
    Ok(if verdict.status == Status::Block {
        ExitCode::from(EXIT_BLOCKED)
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) async fn advisories(cmd: AdvisoriesCmd) -> Result<()> {
    match cmd {
        AdvisoriesCmd::Import {
            files,
            db,
            json,
            conn,
        } => {
            if conn.server.is_some() {
                let api = crate::client::from_env(conn.server, conn.token)?;
                for f in files {
                    let name = f
                        .file_name()
                        .map_or_else(|| "upload".into(), |n| n.to_string_lossy().into_owned());
                    let (r, raw) = api
                        .import_advisories(&name, &f)
                        .await
                        .with_context(|| format!("importing {}", f.display()))?
                        .into_parts();
                    if json {
                        print_json(&raw)?;
                        continue;
                    }
                    println!("{}: {}", f.display(), r.summary);
                    for e in &r.errors {
                        eprintln!("  error: {e}");
                    }
                    println!(
                        "  {} releases changed verdict; {} new alerts",
                        r.verdicts_changed,
                        r.alerts.len()
                    );
                    for a in &r.alerts {
                        println!("  alert {} {}: {}", a.advisory, a.subject, a.message);
                    }
                }
                return Ok(());
            }
            let dir = match db {
                Some(d) => d,
                None => default_db()?,
            };
            let mut adb = AdvisoryDb::load_or_new(&dir)
                .with_context(|| format!("loading {}", dir.display()))?;
            let mut reports = Vec::new();
            for f in &files {
                let bytes_head = {
                    use std::io::Read as _;
                    let mut h = Vec::new();
                    std::fs::File::open(f)
                        .with_context(|| format!("opening {}", f.display()))?
                        .take(4096)
                        .read_to_end(&mut h)?;
                    h
                };
                let summary = if bulwark_osv::is_kev_catalog(&bytes_head) {
                    let k = adb
                        .import_kev(&read_limited(f, 64 << 20)?)
                        .with_context(|| format!("importing {}", f.display()))?;
                    format!(
                        "known-exploited catalog {}: {} CVEs",
                        k.catalog_version.as_deref().unwrap_or("(unversioned)"),
                        k.cves
                    )
                } else {
                    let r = adb
                        .import_path(f)
                        .with_context(|| format!("importing {}", f.display()))?;
                    if r.contains_no_osv() {
                        eprintln!("warning: {} contains no OSV advisories", f.display());
                    } else {
                        #[expect(
                            clippy::disallowed_methods,
                            reason = "the CLI is an edge: it dates the local advisory database"
                        )]
                        let now = OffsetDateTime::now_utc();
                        adb.set_updated_at(now);
                    }
                    for e in &r.errors {
                        eprintln!("  error: {e}");
                    }
                    r.to_string()
                };
                reports.push(serde_json::json!({"file": f, "summary": summary}));
                if !json {
                    println!("{}: {summary}", f.display());
                }
            }
            adb.save(&dir)
                .with_context(|| format!("saving {}", dir.display()))?;
            if json {
                print_json(
                    &serde_json::json!({"db": dir, "advisories": adb.len(), "imports": reports}),
                )?;
            } else {
                eprintln!("{} advisories in {}", adb.len(), dir.display());
            }
        }
        AdvisoriesCmd::Affected { id, json, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (a, raw) = api.advisory_affected(&id).await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                if a.releases.is_empty() && a.devices.is_empty() {
                    println!("{id}: no release or device is affected");
                }
                for (r, purls) in &a.releases {
                    println!("release {r}: {}", purls.join(", "));
                }
                for (d, purls) in &a.devices {
                    println!("device  {d}: {}", purls.join(", "));
                }
            }
        }
        AdvisoriesCmd::Status { json, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (a, raw) = api.advisories().await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                println!(
                    "{} advisories, last imported {}; known-exploited catalog: {}",
                    a.count,
                    a.updated_at.map_or_else(|| "never".into(), whole_seconds),
                    a.kev_catalog.as_deref().unwrap_or("none")
                );
            }
        }
    }
    Ok(())
}

fn print_waiver(w: &WaiverView) {
    println!(
        "{}  {}  {}  until {}{}  by {}: {}",
        w.id,
        w.finding,
        w.release,
        w.expires_at.date(),
        if w.expired { " (EXPIRED)" } else { "" },
        w.created_by,
        w.reason
    );
}

pub(crate) async fn waivers(cmd: WaiversCmd) -> Result<()> {
    match cmd {
        WaiversCmd::Add {
            finding,
            release,
            expires,
            reason,
            json,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let body = CreateWaiver {
                finding,
                release,
                reason,
                expires_at: parse_expiry(&expires)?,
            };
            let (w, raw) = api.add_waiver(&body).await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                print_waiver(&w);
            }
        }
        WaiversCmd::List { json, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (l, raw) = api.list_waivers().await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                for w in &l.waivers {
                    print_waiver(w);
                }
            }
        }
        WaiversCmd::Revoke { id, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            api.revoke_waiver(&id).await?;
            eprintln!("waiver {id} revoked");
        }
    }
    Ok(())
}

pub(crate) async fn gate(cmd: GateCmd) -> Result<()> {
    match cmd {
        GateCmd::Policy { json, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (p, raw) = api.gate_policy().await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                println!(
                    "policy version {}{}",
                    p.version,
                    if p.version == 0 {
                        " (built-in default)"
                    } else {
                        ""
                    }
                );
                println!("{}", serde_json::to_string_pretty(&p.policy)?);
            }
        }
        GateCmd::SetPolicy { file, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let bytes = read_limited(&file, 1 << 20)?;
            // Checked here first, for a message that names the file.
            Policy::from_json(&bytes).with_context(|| format!("{}", file.display()))?;
            let body: serde_json::Value = serde_json::from_slice(&bytes)?;
            let p = api.put_gate_policy(&body).await?.value;
            eprintln!("gate policy version {} in force", p.version);
        }
    }
    Ok(())
}

/// A release's gate view as text (verdict lines included).
pub(crate) fn gate_text(g: &GateView) -> Result<String> {
    use std::fmt::Write as _;
    let mut o = String::new();
    if g.state == GateState::Scanning {
        writeln!(o, "{}: still being scanned", g.release)?;
        return Ok(o);
    }
    writeln!(
        o,
        "{}: {} — {} files, {} components ({})",
        g.release,
        g.format.as_deref().unwrap_or("?"),
        g.files_scanned,
        g.components,
        g.sbom_source.map_or("?", |s| s.as_str())
    )?;
    if let Some(f) = &g.findings {
        let findings: bulwark_gate::Findings = serde_json::from_value(f.clone())?;
        for v in &findings.vulnerabilities {
            writeln!(
                o,
                "vuln     {:<20} {:<8}{} {}",
                v.id,
                v.severity.as_str(),
                if v.known_exploited {
                    " KNOWN-EXPLOITED"
                } else {
                    ""
                },
                v.purl
            )?;
        }
        for m in &findings.malware {
            writeln!(o, "malware  {}.{} {}", m.namespace, m.rule, m.path)?;
        }
        for s in &findings.secrets {
            writeln!(
                o,
                "secret   {:<20} {:<8} {} {}",
                s.kind,
                s.severity.as_str(),
                s.path,
                s.description
            )?;
        }
    }
    for n in &g.notices {
        writeln!(o, "notice   {n}")?;
    }
    for w in &g.warnings {
        writeln!(o, "warning  {w}")?;
    }
    if let Some(v) = &g.verdict {
        let v: Verdict = serde_json::from_value(v.clone())?;
        o.push_str(&verdict_text(&v));
    }
    Ok(o)
}

/// Polls a release's gate until the scan is done (at most `wait`).
pub(crate) async fn wait_gate(
    api: &Client,
    reference: &str,
    wait: std::time::Duration,
) -> Result<Raw<GateView>> {
    let start = std::time::Instant::now();
    loop {
        let g = api.release_gate(reference).await?;
        if g.value.state != GateState::Scanning || start.elapsed() > wait {
            return Ok(g);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

pub(crate) async fn sbom(
    reference: String,
    format: String,
    out: Option<PathBuf>,
    conn: Conn,
) -> Result<()> {
    let api = crate::client::from_env(conn.server, conn.token)?;
    if format != "cyclonedx" && format != "spdx" {
        bail!("--format {format:?}: expected cyclonedx or spdx");
    }
    let v = api.release_sbom(&reference, &format).await?;
    let pretty = serde_json::to_vec_pretty(&v)?;
    match out {
        Some(p) => {
            std::fs::write(&p, pretty).with_context(|| format!("writing {}", p.display()))?
        }
        None => print_json(&v)?,
    }
    Ok(())
}
