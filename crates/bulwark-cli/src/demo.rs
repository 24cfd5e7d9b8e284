//! `bulwark demo`: the whole loop on a simulated fleet, in one command.
//!
//! It starts a server on embedded defaults (SQLite, built-in gateway) in a
//! data directory of its own, and then does what an operator would, with
//! the real commands (each step runs this binary's own subcommands as a
//! child process) against a fleet of virtual devices that run the real
//! agent library ([`bulwark_sim`]):
//!
//! 1. release keys (two release signers, 2-of-2) and the image repository;
//! 2. the RustSec advisories shipped in `data/advisories/`;
//! 3. a detection profile for the fleet's group;
//! 4. the fleet enrolls into staging and production;
//! 5. a release whose SBOM carries smallvec 1.6.0 (RUSTSEC-2021-0003) is
//!    published: the gate blocks it and says why;
//! 6. the fixed release passes, is signed by both release keys, promoted
//!    and deployed to staging, then to production, where the devices with
//!    a faulty sensor fail the smoke test and roll back;
//! 7. a few devices start a Mirai-like telnet scan: alerts fire and they
//!    are quarantined (and isolate themselves);
//! 8. the audit journal is verified against the first checkpoint.
//!
//! Every step checks its outcome; the demo exits non-zero if any did not
//! do what it should.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bulwark_api::{DeviceQuery, UpdatePhase};
use bulwark_client::Client;
use bulwark_proto::telemetry::Encoding;
use bulwark_sim::{Attack, AttackPlan, Fleet, FleetConfig, RunningFleet};
use clap::Args;
use time::OffsetDateTime;

use crate::progress::Progress;

/// The RustSec advisory archive shipped with Bulwark (CC0-1.0; see
/// `data/advisories/PROVENANCE.md`).
const RUSTSEC: &[u8] =
    include_bytes!("../../../data/advisories/rustsec/rustsec-advisory-db-osv-7fa931cb.tar.gz");
/// What the demo's release carries that the advisories know about.
const VULNERABLE: (&str, &str) = ("smallvec", "1.6.0");
/// The advisory that blocks it.
const ADVISORY: &str = "RUSTSEC-2021-0003";
/// The fixed version.
const FIXED: (&str, &str) = ("smallvec", "1.13.2");
/// The fleet's group.
const GROUP: &str = "sensors";
/// The firmware's name.
const FIRMWARE: &str = "sensor-fw";

/// `bulwark demo` arguments.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Devices in the fleet (a tenth of them in staging).
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Keep the server and the fleet running afterwards (until Ctrl-C) and
    /// print the API URL and the admin token's path.
    #[arg(long)]
    serve: bool,
    /// Data directory [default: a new temporary directory, removed at the
    /// end unless --serve].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Devices that run the attack.
    #[arg(long, default_value_t = 3)]
    attackers: usize,
    /// Seed of the devices' behaviour.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// One line of the closing table.
struct Timing {
    what: &'static str,
    value: String,
}

/// Runs this binary's subcommands against the demo server.
struct Ctl {
    exe: PathBuf,
    api: String,
    token: String,
    passphrase: String,
}

impl Ctl {
    async fn run(&self, args: &[&str]) -> Result<(i32, String, String)> {
        let out = tokio::process::Command::new(&self.exe)
            .args(args)
            .env("BULWARK_SERVER", &self.api)
            .env("BULWARK_TOKEN", &self.token)
            .env("BULWARK_KEY_PASSPHRASE", &self.passphrase)
            .env("BULWARK_LOG", "error")
            .output()
            .await
            .with_context(|| format!("running bulwark {}", args.join(" ")))?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    async fn ok(&self, args: &[&str]) -> Result<String> {
        let (code, out, err) = self.run(args).await?;
        if code != 0 {
            bail!("`bulwark {}` failed ({code}):\n{err}", args.join(" "));
        }
        Ok(out)
    }
}

fn step(n: usize, text: &str) {
    eprintln!("\n[{n}/8] {text}");
}

fn done(text: impl AsRef<str>) {
    eprintln!("  ✔ {}", text.as_ref());
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// A firmware image and its builder's SBOM.
fn firmware(dir: &Path, version: &str, smallvec: (&str, &str)) -> Result<(PathBuf, PathBuf)> {
    let image: Vec<u8> = (0..256 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 ^ version.len() as u8)
        .chain(format!("{FIRMWARE} {version}\n").into_bytes())
        .collect();
    let file = dir.join(format!("{FIRMWARE}-{version}.img"));
    std::fs::write(&file, image)?;
    let purl = |n: &str, v: &str| format!("pkg:cargo/{n}@{v}");
    let sbom = serde_json::json!({
        "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
        "metadata": {"component": {"type": "firmware", "name": FIRMWARE, "version": version}},
        "components": [
            {"type": "firmware", "name": FIRMWARE, "version": version,
             "purl": format!("pkg:generic/{FIRMWARE}@{version}")},
            {"type": "library", "name": smallvec.0, "version": smallvec.1, "purl": purl(smallvec.0, smallvec.1)},
            {"type": "library", "name": "serde", "version": "1.0.228", "purl": purl("serde", "1.0.228")},
            {"type": "library", "name": "log", "version": "0.4.28", "purl": purl("log", "0.4.28")},
        ]
    });
    let sbom_file = dir.join(format!("{FIRMWARE}-{version}.cdx.json"));
    std::fs::write(&sbom_file, serde_json::to_vec_pretty(&sbom)?)?;
    Ok((file, sbom_file))
}

pub(crate) async fn demo(args: DemoArgs) -> Result<std::process::ExitCode> {
    ensure!(
        (10..=20_000).contains(&args.devices),
        "--devices must be 10..=20000 (got {})",
        args.devices
    );
    ensure!(
        args.attackers >= 1 && args.attackers <= args.devices / 10,
        "--attackers must be 1..={} (a tenth of the fleet)",
        args.devices / 10
    );
    let tmp;
    let data = match &args.data_dir {
        Some(d) => {
            let used = std::fs::read_dir(d)
                .map(|mut e| e.next().is_some())
                .unwrap_or(false);
            ensure!(
                !used,
                "--data-dir {} is not empty: the demo needs a new directory",
                d.display()
            );
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("bulwark-demo-")
                .tempdir()
                .context("creating a temporary data directory")?;
            tmp.path().to_owned()
        }
    };
    // Paths are passed to the subcommands as UTF-8 arguments.
    ensure!(
        data.to_str().is_some(),
        "the data directory {} is not valid UTF-8",
        data.display()
    );
    let work = data.join("demo");
    std::fs::create_dir_all(work.join("keys"))
        .with_context(|| format!("creating {}", work.display()))?;
    let total = Instant::now();
    let mut timings = Vec::new();

    step(1, "Starting the server (SQLite, built-in device gateway)");
    // Port 0: the kernel picks free ports; the server reports them.
    let any = || Some("127.0.0.1:0".to_owned());
    let raw = bulwark_server::RawConfig {
        data_dir: Some(data.clone()),
        listen: any(),
        device_listen: any(),
        mqtt_listen: any(),
        poll_interval_secs: Some(5),
        ..Default::default()
    };
    let config = raw.validate().map_err(|errors| {
        anyhow::anyhow!(
            "invalid configuration: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let server =
        bulwark_server::Server::start(config, Arc::new(bulwark_server::SystemClock)).await?;
    let api_url = format!("http://{}", server.api_addr());
    let device_url = format!("https://{}", server.device_addr());
    let gateway = server
        .mqtt_addr()
        .context("the server did not start its gateway")?
        .to_string();
    let token_file = data.join("admin.token");
    let token = std::fs::read_to_string(&token_file)
        .with_context(|| format!("reading {}", token_file.display()))?
        .trim()
        .to_owned();
    #[expect(
        clippy::disallowed_methods,
        reason = "the demo's throwaway key passphrase: 122 bits from the OS RNG, drawn at the edge"
    )]
    let passphrase = uuid::Uuid::new_v4().to_string();
    crate::release::write_file(&work.join("keys/passphrase"), passphrase.as_bytes(), 0o600)?;
    let ctl = Ctl {
        exe: std::env::current_exe().context("locating this executable")?,
        api: api_url.clone(),
        token: token.clone(),
        passphrase,
    };
    let api = crate::client::from_env(Some(api_url.clone()), Some(token.clone()))?;
    let first_checkpoint = work.join("first-checkpoint.txt");
    let cp = ctl.ok(&["audit", "checkpoint"]).await?;
    std::fs::write(&first_checkpoint, &cp)?;
    done(format!(
        "API {api_url}, devices {device_url}, gateway mqtts://{gateway}"
    ));
    done(format!(
        "first journal checkpoint saved to {}",
        first_checkpoint.display()
    ));

    step(
        2,
        "Release keys, image repository, advisories and detection profile",
    );
    let key = |n: &str| work.join("keys").join(format!("{n}.key"));
    let public = |n: &str| work.join("keys").join(format!("{n}.pub"));
    for (name, role) in [
        ("root", "root"),
        ("release-ana", "targets"),
        ("release-ben", "targets"),
    ] {
        ctl.ok(&["keys", "generate", "--role", role, "--out", s(&key(name))])
            .await?;
    }
    let root_json = work.join("root.json");
    ctl.ok(&[
        "repo",
        "init",
        "--root-key",
        s(&key("root")),
        "--root-threshold",
        "1",
        "--targets-pub",
        s(&public("release-ana")),
        "--targets-pub",
        s(&public("release-ben")),
        "--targets-threshold",
        "2",
        "--out",
        s(&root_json),
    ])
    .await?;
    done("root key and two release keys (2 of 2 must sign), encrypted, mode 0600");
    let archive = work.join("rustsec-advisory-db-osv.tar.gz");
    std::fs::write(&archive, RUSTSEC)?;
    let out = ctl
        .ok(&["advisories", "import", s(&archive), "--server"])
        .await?;
    done(format!(
        "RustSec advisories imported ({}; CC0-1.0, see data/advisories/PROVENANCE.md)",
        out.lines().next().unwrap_or("").trim()
    ));
    let profile = work.join("profile.toml");
    std::fs::write(&profile, bulwark_sim::profile(GROUP, "demo-1"))?;
    ctl.ok(&["profiles", "apply", s(&profile)]).await?;
    done(format!(
        "detection profile for group {GROUP:?} applied ({})",
        profile.display()
    ));

    step(3, "Enrolling the fleet (staging and production)");
    let staging_n = (args.devices / 10).max(1);
    let production_n = args.devices - staging_n;
    let faulty = (production_n / 200).clamp(2, 10);
    let ca_pem = std::fs::read_to_string(data.join("ca.pem"))?;
    let image_root = std::fs::read(&root_json)?;
    let enroll_started = Instant::now();
    let bar = Arc::new(Progress::new("enrolling devices", args.devices as u64));
    let mut fleets = Vec::new();
    for (env, n, faulty, attack) in [
        ("staging", staging_n, 0, None),
        (
            "production",
            production_n,
            faulty,
            Some(AttackPlan {
                attack: Attack::MiraiScan,
                devices: args.attackers,
                at: None,
            }),
        ),
    ] {
        let token = ctl
            .ok(&[
                "enroll-token",
                "create",
                "--group",
                GROUP,
                "--env",
                env,
                "--uses",
                &n.to_string(),
                "--ttl",
                "1h",
            ])
            .await?;
        let offset = if env == "staging" { 0 } else { staging_n };
        let bar = bar.clone();
        let fleet = Fleet::enroll(
            FleetConfig {
                server: device_url.clone(),
                ca_pem: ca_pem.clone(),
                enroll_token: token.trim().to_owned(),
                devices: n,
                gateway: Some(gateway.clone()),
                work_dir: work.join("fleet").join(env),
                checkin_interval: Duration::from_secs(2),
                telemetry_interval: Duration::from_secs(1),
                // Staging reports in CBOR, production in JSON: the gateway
                // reads both, and the demo shows it.
                telemetry_encoding: if env == "staging" {
                    Encoding::Cbor
                } else {
                    Encoding::Json
                },
                seed: args.seed.wrapping_add(offset as u64),
                image_root: Some(image_root.clone()),
                faulty,
                attack,
                enroll_concurrency: 16,
            },
            &move |k| bar.set((offset + k) as u64),
        )
        .await
        .with_context(|| format!("enrolling the {env} fleet"))?;
        fleets.push((env, fleet));
    }
    bar.finish();
    let enroll_time = enroll_started.elapsed();
    let mut running: Vec<(&str, RunningFleet, Vec<bulwark_proto::DeviceId>)> = Vec::new();
    for (env, fleet) in fleets {
        let faulty_ids = fleet.faulty_ids();
        running.push((env, fleet.start()?, faulty_ids));
    }
    done(format!(
        "{} devices enrolled in {} ({staging_n} staging, {production_n} production; each its own key and certificate)",
        args.devices,
        secs(enroll_time)
    ));
    timings.push(Timing {
        what: "enroll the fleet",
        value: secs(enroll_time),
    });

    step(
        4,
        "A release with a known vulnerability: the gate must block it",
    );
    let (img, sbom) = firmware(&work, "1.0.0", VULNERABLE)?;
    let t = Instant::now();
    let (code, err) = publish(&ctl, &img, &sbom, "1.0.0", &[]).await?;
    let blocked_in = t.elapsed();
    ensure!(
        code == 4,
        "the vulnerable release was not blocked (exit {code}):\n{err}"
    );
    ensure!(
        err.contains(ADVISORY),
        "the gate's reasons do not name {ADVISORY}:\n{err}"
    );
    for line in err
        .lines()
        .filter(|l| l.contains("BLOCKED") || l.contains(ADVISORY))
        .take(4)
    {
        eprintln!("    {}", line.trim());
    }
    done(format!(
        "{FIRMWARE}@1.0.0 blocked: {}@{} has {ADVISORY} (verdict in {})",
        VULNERABLE.0,
        VULNERABLE.1,
        secs(blocked_in)
    ));
    timings.push(Timing {
        what: "publish → gate verdict (blocked)",
        value: secs(blocked_in),
    });

    step(5, "The fixed release: gate, two signatures, staging");
    let (img, sbom) = firmware(&work, "1.0.1", FIXED)?;
    let reference = format!("{FIRMWARE}@1.0.1");
    let t = Instant::now();
    let smoke = [
        "--smoke-test",
        bulwark_sim::FAULTY_SMOKE_TEST,
        "--smoke-timeout",
        "10",
    ];
    let (code, err) = publish(&ctl, &img, &sbom, "1.0.1", &smoke).await?;
    let passed_in = t.elapsed();
    ensure!(
        code == 0,
        "the fixed release did not pass the gate (exit {code}):\n{err}"
    );
    done(format!(
        "{reference} passed the gate (verdict in {})",
        secs(passed_in)
    ));
    timings.push(Timing {
        what: "publish → gate verdict (pass)",
        value: secs(passed_in),
    });
    let one = ctl
        .ok(&[
            "release",
            "sign",
            &reference,
            "--key",
            s(&key("release-ana")),
            "--root",
            s(&root_json),
        ])
        .await?;
    ensure!(one.contains("1 of 2"), "after one signature: {one}");
    let two = ctl
        .ok(&[
            "release",
            "sign",
            &reference,
            "--key",
            s(&key("release-ben")),
            "--root",
            s(&root_json),
        ])
        .await?;
    ensure!(two.contains("threshold met"), "after two signatures: {two}");
    done("signed by release-ana and release-ben: threshold met");
    let staging_time = rollout(&ctl, &running[0], &reference, "staging", 0).await?;
    timings.push(Timing {
        what: "deploy → 100% installed (staging)",
        value: secs(staging_time),
    });

    step(
        6,
        "Production: faulty devices fail the smoke test and roll back",
    );
    let production_time = rollout(&ctl, &running[1], &reference, "production", faulty).await?;
    timings.push(Timing {
        what: "deploy → 100% settled (production)",
        value: format!("{} ({faulty} rolled back)", secs(production_time)),
    });
    verify_rollout(&api, &running, &reference).await?;
    done("the server's view agrees: every device installed or rolled back, as the sim saw");

    step(7, "A Mirai-like telnet scan from a few devices");
    let (_, prod, _) = &running[1];
    let attackers = prod.attackers().to_vec();
    #[expect(
        clippy::disallowed_methods,
        reason = "the CLI is an edge: the demo times quarantine from the wall clock"
    )]
    let attack_at = OffsetDateTime::now_utc();
    let t = Instant::now();
    prod.launch_attack();
    let bar = Progress::new("quarantined", attackers.len() as u64);
    let mut first_alert: Option<OffsetDateTime> = None;
    let mut last_quarantine: Option<OffsetDateTime> = None;
    let isolated = loop {
        ensure!(
            t.elapsed() < Duration::from_secs(60),
            "the attackers were not all quarantined within 60 s"
        );
        let mut q = 0;
        let mut isolated = 0;
        for id in &attackers {
            let d = api.show_device(&id.to_string()).await?.value;
            if let Some(a) = d.alerts.iter().map(|a| a.created_at).min() {
                first_alert = Some(first_alert.map_or(a, |f: OffsetDateTime| f.min(a)));
            }
            if let Some(at) = d.device.quarantined_at {
                q += 1;
                last_quarantine = Some(last_quarantine.map_or(at, |l: OffsetDateTime| l.max(at)));
            }
            if d.isolation.as_ref().is_some_and(|i| i.isolated) {
                isolated += 1;
            }
        }
        bar.set(q);
        if q == attackers.len() as u64 && isolated == attackers.len() {
            break isolated;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    bar.finish();
    let to_alert = first_alert
        .map(|a| (a - attack_at).unsigned_abs())
        .unwrap_or_default();
    let to_quarantine = last_quarantine
        .map(|a| (a - attack_at).unsigned_abs())
        .unwrap_or_default();
    done(format!(
        "{} attackers alerted, quarantined and isolated ({isolated} isolation reports)",
        attackers.len()
    ));
    // Nobody else: the normal fleet raised no quarantine.
    let quarantined = quarantined_devices(&api).await?;
    ensure!(
        quarantined.len() == attackers.len(),
        "{} devices are quarantined, but only {} attacked",
        quarantined.len(),
        attackers.len()
    );
    done("no other device was quarantined");
    // Staging reports in CBOR, production in JSON: the gateway read both.
    let metrics = api.metrics().await?;
    let sample = |series: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let accepted = sample("bulwark_gateway_telemetry_accepted_total");
    let invalid = sample("bulwark_gateway_rejections_total{reason=\"invalid_telemetry\"}");
    ensure!(
        accepted > 0.0 && invalid == 0.0,
        "telemetry: {accepted} samples accepted, {invalid} refused as invalid"
    );
    done(format!(
        "{accepted} telemetry samples accepted (staging in CBOR, production in JSON), none refused as invalid"
    ));
    timings.push(Timing {
        what: "attack → first alert",
        value: format!("{} (samples every 1 s)", secs(to_alert)),
    });
    timings.push(Timing {
        what: "attack → all attackers quarantined",
        value: secs(to_quarantine),
    });

    step(
        8,
        "Verifying the audit journal against the first checkpoint",
    );
    let t = Instant::now();
    let out = ctl
        .ok(&["audit", "verify", "--trusted", s(&first_checkpoint)])
        .await?;
    let verify_time = t.elapsed();
    for line in out.lines().take(3) {
        eprintln!("    {line}");
    }
    done(format!("journal verified in {}", secs(verify_time)));
    timings.push(Timing {
        what: "journal verify",
        value: secs(verify_time),
    });

    println!(
        "\nBulwark demo: every step did what it should ({} in all)\n",
        secs(total.elapsed())
    );
    println!("| step | time |\n|---|---|");
    for t in &timings {
        println!("| {} | {} |", t.what, t.value);
    }
    if args.serve {
        println!("\nServing until Ctrl-C:");
        println!("  API:         {api_url}");
        println!("  admin token: {}", token_file.display());
        println!(
            "  release keys and their passphrase: {}",
            work.join("keys").display()
        );
        println!(
            "  try: BULWARK_SERVER={api_url} BULWARK_TOKEN=$(cat {}) bulwark alerts list",
            token_file.display()
        );
        bulwark_agent::shutdown_signal().await;
    }
    for (_, f, _) in running {
        f.stop().await;
    }
    server.shutdown().await?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// `release publish` of the demo firmware (A/B installer, with its SBOM);
/// the exit code and stderr (the gate's verdict).
async fn publish(
    ctl: &Ctl,
    img: &Path,
    sbom: &Path,
    version: &str,
    extra: &[&str],
) -> Result<(i32, String)> {
    let mut args = vec![
        "release",
        "publish",
        s(img),
        "--name",
        FIRMWARE,
        "--version",
        version,
        "--installer",
        "ab",
        "--sbom",
        s(sbom),
    ];
    args.extend_from_slice(extra);
    let (code, _, err) = ctl.run(&args).await?;
    Ok((code, err))
}

/// Promotes and deploys `reference` to `env`, and waits until every device
/// of that fleet runs it or (the `faulty` ones) rolled it back.
async fn rollout(
    ctl: &Ctl,
    fleet: &(&str, RunningFleet, Vec<bulwark_proto::DeviceId>),
    reference: &str,
    env: &str,
    faulty: usize,
) -> Result<Duration> {
    let (_, f, _) = fleet;
    let n = f.ids().len();
    ctl.ok(&["release", "promote", reference, "--env", env])
        .await?;
    let before = f.snapshot();
    let t = Instant::now();
    ctl.ok(&["deploy", reference, "--group", GROUP, "--env", env])
        .await?;
    let bar = Progress::new(&format!("installing ({env})"), n as u64);
    loop {
        let now = f.snapshot();
        let installed = now.releases.get(reference).copied().unwrap_or(0);
        let rolled_back = (now.rollbacks - before.rollbacks) as usize;
        bar.set((installed + rolled_back) as u64);
        if installed + rolled_back >= n {
            bar.finish();
            ensure!(
                rolled_back == faulty,
                "{rolled_back} devices rolled back in {env}, expected the {faulty} faulty ones"
            );
            done(format!(
                "promoted to {env} and deployed: {installed} installed, {rolled_back} rolled back, in {}",
                secs(t.elapsed())
            ));
            return Ok(t.elapsed());
        }
        ensure!(
            t.elapsed() < Duration::from_secs(120 + n as u64 / 10),
            "the {env} rollout stalled at {installed} installed, {rolled_back} rolled back of {n}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asks the server what each device reported for `reference`.
async fn verify_rollout(
    api: &Client,
    fleets: &[(&str, RunningFleet, Vec<bulwark_proto::DeviceId>)],
    reference: &str,
) -> Result<()> {
    for (env, f, faulty) in fleets {
        for id in f.ids() {
            let d = api.show_device(&id.to_string()).await?.value;
            let u = d
                .update
                .with_context(|| format!("{env} device {id} reported no update"))?;
            let state = u.phase;
            let want = if faulty.contains(id) {
                UpdatePhase::RolledBack
            } else {
                UpdatePhase::Installed
            };
            ensure!(
                u.release == reference && state == want,
                "{env} device {id}: the server has {} {state}, expected {reference} {want}",
                u.release
            );
        }
    }
    Ok(())
}

async fn quarantined_devices(api: &Client) -> Result<Vec<bulwark_proto::DeviceId>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = DeviceQuery {
            after: after.take(),
            limit: Some(1000),
            ..Default::default()
        };
        let page = api.list_devices(&query).await?.value;
        out.extend(
            page.devices
                .iter()
                .filter(|d| d.quarantined_at.is_some())
                .map(|d| d.id),
        );
        match page.next_after {
            Some(n) => after = Some(n.to_string()),
            None => return Ok(out),
        }
    }
}
