//! The update benchmark: one real device downloads, verifies and installs
//! a large release from a real `bulwark server` over mutual TLS on
//! loopback, measured side by side with `openssl dgst -sha256` of the same
//! file.
//!
//! # Methodology
//!
//! Everything is driven through the real binaries, the way an operator and
//! a device do it (the sequence of `crates/bulwark-cli/tests/it/updates.rs`):
//!
//! 1. **Server.** `bulwark server` (next to this executable) on free
//!    loopback ports with a fresh data directory in a temporary directory.
//! 2. **Keys and repository.** `bulwark keys generate` (a root key and one
//!    release key), `bulwark repo init` with a targets threshold of 1.
//! 3. **Release.** A file of pseudo-random bytes (`--size-mib`, default
//!    1024; 256 with `--quick`) is published with the `file` installer,
//!    signed, promoted to staging and deployed to the `bench` group.
//! 4. **Device.** A one-time token from `bulwark enroll-token create`, then
//!    `bulwark-agent enroll` pinning the image root.
//! 5. **Update.** `bulwark-agent run --once` installs the release. While it
//!    runs, `/proc/<pid>/status` is sampled every 5 ms; the peak RSS is the
//!    largest `VmHWM` (the kernel's own high-water mark) seen, so a peak
//!    between samples is not missed. Wall time of the whole run is kept.
//! 6. **Phases.** The device's update history on the server (`bulwark
//!    devices show ID --json`) holds the server's time of arrival of each
//!    phase report, at millisecond resolution. The agent reports
//!    `downloading` before its first request for the artifact, `verifying`
//!    once the file is complete and fsynced (it hashes while it downloads),
//!    and `staging` once the digest is checked and the file renamed into
//!    place, so download + verify = `staging` − `downloading`. The whole
//!    update is `downloading` → `installed` (staging copies the file to its
//!    install path and checks the copy's digest again).
//! 7. **References.** The file is read once to warm the page cache, then
//!    `openssl dgst -sha256 FILE` and `sha256sum FILE` each run three
//!    times; the median is reported, and both must print the digest the
//!    server computed on publication. The agent's source (the server's blob)
//!    is in the page cache too: the server wrote it moments before. A
//!    third reference copies the file the way the agent writes a download
//!    (4 MiB writes, each followed by `fdatasync`): the time this disk needs
//!    to make that many bytes durable, the floor for any download that is
//!    durable before it is verified. `sync` and a 2 s pause precede the
//!    agent's run and this copy, so earlier writes do not slow them.
//!
//! The server process and the temporary directory are removed on every
//! path, unless `--keep` is given.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bulwark_api::UpdatePhase;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::server::{self, ServerProcess};
use crate::stats;

/// Download + verify throughput must reach this fraction of openssl's.
const TARGET_RATIO: f64 = 0.8;
/// Largest peak RSS of the agent during an update, in bytes (16 MB).
const TARGET_RSS_BYTES: u64 = 16_000_000;
/// How often the agent's memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);
/// How long the agent may take to install the release.
const AGENT_TIMEOUT: Duration = Duration::from_secs(600);
/// Runs of each reference command; the median is reported.
const REFERENCE_RUNS: usize = 3;
/// The passphrase of the throw-away signing keys.
const PASSPHRASE: &str = "bulwark-bench throw-away key";
/// Release name, version, group and environment.
const RELEASE: &str = "bench@1.0.0";
/// See [`RELEASE`].
const GROUP: &str = "bench";
/// See [`RELEASE`].
const ENVIRONMENT: &str = "staging";

/// Arguments of `bulwark-bench update`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct UpdateArgs {
    /// Size of the release artifact in MiB [default: 1024; with --quick: 256].
    #[arg(long)]
    pub(crate) size_mib: Option<u64>,
    /// The `bulwark` binary [default: next to this executable].
    #[arg(long)]
    pub(crate) bulwark: Option<PathBuf>,
    /// The `bulwark-agent` binary [default: next to this executable].
    #[arg(long)]
    pub(crate) agent: Option<PathBuf>,
    /// Small run: a 256 MiB artifact (an explicit --size-mib still wins).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Print only the markdown tables on stdout.
    #[arg(long)]
    pub(crate) markdown: bool,
    /// Keep the temporary directory (printed) instead of deleting it.
    #[arg(long)]
    pub(crate) keep: bool,
}

/// Where everything is, for the blocking part of the run.
#[derive(Debug, Clone)]
struct Setup {
    bulwark: PathBuf,
    agent: PathBuf,
    work: PathBuf,
    data: PathBuf,
    api: String,
    device: String,
    server_pid: Option<u32>,
    size: u64,
}

/// One timed command of the reference hashers.
#[derive(Debug)]
struct Reference {
    name: &'static str,
    secs: f64,
}

/// Everything measured in one run.
#[derive(Debug)]
struct Outcome {
    size: u64,
    /// `downloading` → `staging` on the server's clock.
    download_verify: Duration,
    /// `downloading` → `verifying`.
    download: Duration,
    /// `downloading` → `installed`.
    whole_update: Duration,
    /// `bulwark-agent run --once`, spawn to exit.
    agent_wall: Duration,
    agent_cpu: Option<Duration>,
    server_cpu: Option<Duration>,
    peak_rss_bytes: u64,
    rss_samples: u64,
    publish: Duration,
    references: Vec<Reference>,
    /// [`time_durable_write`] of the artifact.
    durable_write: f64,
}

impl Outcome {
    fn openssl_secs(&self) -> f64 {
        self.references
            .iter()
            .find(|r| r.name == "openssl")
            .map_or(f64::NAN, |r| r.secs)
    }

    fn ratio(&self, secs: f64) -> f64 {
        self.openssl_secs() / secs
    }

    fn gbps(&self, secs: f64) -> f64 {
        self.size as f64 / secs / 1e9
    }

    fn throughput_met(&self) -> bool {
        self.ratio(self.download_verify.as_secs_f64()) >= TARGET_RATIO
    }

    fn rss_met(&self) -> bool {
        self.peak_rss_bytes <= TARGET_RSS_BYTES
    }

    fn tables(&self) -> String {
        let mib = self.size >> 20;
        let row = |name: &str, secs: f64, target: &str| {
            format!(
                "| {name} | {mib} MiB | {secs:.2} | {:.2} | {:.2}× | {target} |",
                self.gbps(secs),
                self.ratio(secs)
            )
        };
        let met = |ok: bool| if ok { "met" } else { "NOT met" };
        let mut rows = vec![
            "| benchmark | size | seconds | GB/s | vs openssl | target |".to_owned(),
            "|---|---|---|---|---|---|".to_owned(),
            row(
                "update: agent download + verify over mTLS, loopback (server's record: downloading → staging)",
                self.download_verify.as_secs_f64(),
                &format!("≥ {TARGET_RATIO}× openssl: {}", met(self.throughput_met())),
            ),
            row(
                "update: agent whole update (downloading → installed; includes the copy to the install path)",
                self.whole_update.as_secs_f64(),
                "-",
            ),
            row(
                "update: `bulwark-agent run --once` wall time (check-in, TUF refresh, update)",
                self.agent_wall.as_secs_f64(),
                "-",
            ),
        ];
        for r in &self.references {
            let name = match r.name {
                "openssl" => "reference: `openssl dgst -sha256` of the same file (page cache warm)",
                _ => "reference: `sha256sum` of the same file (page cache warm)",
            };
            rows.push(row(name, r.secs, "-"));
        }
        rows.push(row(
            "reference: durable write of the same size, no network or hashing (4 MiB writes + fdatasync, as the agent)",
            self.durable_write,
            "-",
        ));
        format!(
            "{}\n\n| benchmark | result | target |\n|---|---|---|\n| update: agent peak RSS during the update (VmHWM, {} samples) | {:.1} MB | ≤ {} MB: {} |",
            rows.join("\n"),
            self.rss_samples,
            self.peak_rss_bytes as f64 / 1e6,
            TARGET_RSS_BYTES / 1_000_000,
            met(self.rss_met()),
        )
    }
}

/// A binary next to this executable, or `explicit`.
fn sibling(explicit: Option<&PathBuf>, name: &str) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(p) => p.clone(),
        None => server::default_binary()?
            .with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX)),
    };
    anyhow::ensure!(
        path.is_file(),
        "{} does not exist; build it with `cargo build --profile dist -p bulwark-cli -p bulwark-agent` (as `cargo xtask bench` does)",
        path.display()
    );
    Ok(path)
}

/// Runs the benchmark and prints the result; the exit code is a failure
/// when the update did not install.
pub(crate) async fn run(args: UpdateArgs) -> anyhow::Result<ExitCode> {
    let size_mib = args.size_mib.unwrap_or(if args.quick { 256 } else { 1024 });
    anyhow::ensure!(size_mib >= 1, "--size-mib must be at least 1");
    let bulwark = sibling(args.bulwark.as_ref(), "bulwark")?;
    let agent = sibling(args.agent.as_ref(), "bulwark-agent")?;
    let work = tempfile::Builder::new()
        .prefix("bulwark-bench-update-")
        .tempdir()
        .context("creating the temporary directory")?;
    eprintln!(
        "bulwark-bench: starting {} (data in {})",
        bulwark.display(),
        work.path().display()
    );
    // Declared after `work`, so on every path it is dropped (killed) first.
    let server = ServerProcess::start(&bulwark, work.path()).await?;
    let setup = Setup {
        bulwark,
        agent,
        work: work.path().to_owned(),
        data: server.data_dir.clone(),
        api: format!("http://{}", server.api_addr),
        device: format!("https://{}", server.device_addr),
        server_pid: server.pid(),
        size: size_mib << 20,
    };
    let measured = tokio::task::spawn_blocking(move || measure(&setup))
        .await
        .context("the measuring thread panicked")?;
    let outcome = match measured {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "bulwark-bench: last server log lines:\n{}",
                server::tail(&server.log_path, 20)
            );
            return Err(e);
        }
    };
    if let Err(e) = server.stop().await {
        eprintln!("bulwark-bench: warning: {e:#}");
    }
    if args.keep {
        let kept = work.keep();
        eprintln!("bulwark-bench: kept {}", kept.display());
    }
    report(&args, &outcome);
    Ok(ExitCode::SUCCESS)
}

/// `bulwark ARGS` as an operator runs it; returns stdout.
fn bulwark(s: &Setup, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(&s.bulwark)
        .args(args)
        .env("BULWARK_SERVER", &s.api)
        .env("BULWARK_TOKEN", admin_token(s)?)
        .env("BULWARK_KEY_PASSPHRASE", PASSPHRASE)
        .env_remove("BULWARK_DATA_DIR")
        .env_remove("BULWARK_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", s.bulwark.display()))?;
    if !out.status.success() {
        bail!(
            "`bulwark {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn admin_token(s: &Setup) -> anyhow::Result<String> {
    let path = s.data.join("admin.token");
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_owned())
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))
}

/// Writes `size` pseudo-random bytes (xorshift64*; incompressible enough
/// for a transfer, and cheap to make).
fn write_artifact(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    Ok(())
}

/// Reads the whole file once (page cache warm-up).
fn read_through(path: &Path) -> anyhow::Result<()> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

/// `VmRSS` and `VmHWM` of a live process, in bytes.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let kib: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Copies `from` to `to` the way the agent writes a download (4 MiB, then
/// `fdatasync`; `fsync` at the end) and returns the seconds: what this
/// disk needs to make the artifact durable, with no network or hashing.
fn time_durable_write(from: &Path, to: &Path) -> anyhow::Result<f64> {
    let mut src = File::open(from)?;
    let t = Instant::now();
    let mut dst = File::create(to).with_context(|| format!("creating {}", to.display()))?;
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n])?;
        dst.sync_data()?;
    }
    dst.sync_all()?;
    let secs = t.elapsed().as_secs_f64();
    drop(dst);
    std::fs::remove_file(to)?;
    Ok(secs)
}

/// Flushes every file system and gives the disk a moment, so that the
/// writes of the previous step do not slow the next one down.
fn settle() {
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_secs(2));
}

/// Times `program FILE`, which must print `digest`.
fn time_hasher(program: &str, args: &[&str], file: &Path, digest: &str) -> anyhow::Result<f64> {
    let t = Instant::now();
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program} (is it installed?)"))?;
    let secs = t.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "{program} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    anyhow::ensure!(
        stdout.contains(digest),
        "{program} printed {:?}, not the published digest {digest}",
        stdout.trim()
    );
    Ok(secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The device id in `STATE/agent.toml`.
fn device_id(state: &Path) -> anyhow::Result<String> {
    let path = state.join("agent.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .find(|l| l.trim_start().starts_with("device_id"))
        .and_then(|l| l.split('"').nth(1))
        .map(str::to_owned)
        .with_context(|| format!("no device_id in {}", path.display()))
}

/// Server time of the newest report of `phase` for [`RELEASE`].
fn phase_at(history: &[serde_json::Value], phase: UpdatePhase) -> anyhow::Result<OffsetDateTime> {
    let at = history
        .iter()
        .find(|e| e["release"] == RELEASE && e["phase"] == phase.as_str())
        .and_then(|e| e["at"].as_str())
        .with_context(|| {
            format!(
                "the device's update history has no {:?} report",
                phase.as_str()
            )
        })?;
    OffsetDateTime::parse(at, &Rfc3339).with_context(|| format!("parsing {at:?}"))
}

fn between(from: OffsetDateTime, to: OffsetDateTime) -> anyhow::Result<Duration> {
    Duration::try_from(to - from).with_context(|| format!("{to} is before {from}"))
}

fn measure(s: &Setup) -> anyhow::Result<Outcome> {
    let w = &s.work;
    let (root_key, rel_key) = (w.join("root.key"), w.join("rel.key"));
    let (rel_pub, root_json) = (w.join("rel.pub"), w.join("root.json"));
    let artifact = w.join("bench.img");
    let installed = w.join("installed.img");
    let state = w.join("agent-state");
    let install_root = w.join("agent-install");

    // 1. Keys and the image repository.
    eprintln!("update: generating keys, initialising the image repository…");
    bulwark(
        s,
        &[
            "keys",
            "generate",
            "--role",
            "root",
            "--out",
            path_str(&root_key)?,
        ],
    )?;
    bulwark(
        s,
        &[
            "keys",
            "generate",
            "--role",
            "targets",
            "--out",
            path_str(&rel_key)?,
        ],
    )?;
    bulwark(
        s,
        &[
            "repo",
            "init",
            "--root-key",
            path_str(&root_key)?,
            "--targets-pub",
            path_str(&rel_pub)?,
            "--targets-threshold",
            "1",
            "--out",
            path_str(&root_json)?,
        ],
    )?;

    // 2. The release.
    eprintln!("update: writing a {} MiB artifact…", s.size >> 20);
    write_artifact(&artifact, s.size)?;
    eprintln!("update: publishing, signing, promoting, deploying…");
    // The builder's SBOM: an opaque image has nothing for the gate to
    // inventory, and the default policy requires components.
    let sbom = artifact.with_extension("cdx.json");
    std::fs::write(
        &sbom,
        serde_json::json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
            "components": [{"type": "firmware", "name": "bench", "version": "1.0.0",
                "purl": "pkg:generic/bench@1.0.0"}]})
        .to_string(),
    )?;
    let t = Instant::now();
    let published = bulwark(
        s,
        &[
            "release",
            "publish",
            "--sbom",
            path_str(&sbom)?,
            path_str(&artifact)?,
            "--name",
            "bench",
            "--version",
            "1.0.0",
            "--installer",
            "file",
            "--install-path",
            path_str(&installed)?,
        ],
    )?;
    let publish = t.elapsed();
    let digest = published.trim().to_owned();
    anyhow::ensure!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "`bulwark release publish` printed {digest:?}, not a sha256"
    );
    bulwark(
        s,
        &[
            "release",
            "sign",
            RELEASE,
            "--key",
            path_str(&rel_key)?,
            "--root",
            path_str(&root_json)?,
        ],
    )?;
    bulwark(s, &["release", "promote", RELEASE, "--env", ENVIRONMENT])?;
    bulwark(
        s,
        &["deploy", RELEASE, "--group", GROUP, "--env", ENVIRONMENT],
    )?;

    // 3. The device.
    let token = bulwark(
        s,
        &[
            "enroll-token",
            "create",
            "--group",
            GROUP,
            "--env",
            ENVIRONMENT,
        ],
    )?;
    let out = Command::new(&s.agent)
        .args(["enroll", "--server", &s.device])
        .arg("--ca")
        .arg(s.data.join("ca.pem"))
        .arg("--state-dir")
        .arg(&state)
        .arg("--image-root")
        .arg(&root_json)
        .env("BULWARK_ENROLL_TOKEN", token.trim())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", s.agent.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "`bulwark-agent enroll` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );

    // 4. The update, with the agent's memory sampled.
    settle();
    eprintln!("update: running `bulwark-agent run --once`…");
    let agent_log = w.join("agent.log");
    let agent_out = w.join("agent.out");
    let server_cpu0 = stats::cpu_time(s.server_pid);
    let t = Instant::now();
    let mut child = Command::new(&s.agent)
        .args(["run", "--once", "--root", "/nonexistent"])
        .arg("--state-dir")
        .arg(&state)
        .arg("--install-root")
        .arg(&install_root)
        .arg("--hooks-dir")
        .arg(install_root.join("hooks"))
        .env(
            "BULWARK_LOG",
            std::env::var("BULWARK_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(File::create(&agent_out)?)
        .stderr(File::create(&agent_log)?)
        .spawn()
        .with_context(|| format!("starting {}", s.agent.display()))?;
    let pid = child.id();
    let (mut peak, mut samples, mut agent_cpu) = (0u64, 0u64, None);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some((rss, hwm)) = memory(pid) {
            peak = peak.max(rss).max(hwm);
            samples += 1;
            agent_cpu = stats::cpu_time(Some(pid)).or(agent_cpu);
        }
        if t.elapsed() > AGENT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the agent did not finish within {AGENT_TIMEOUT:?}");
        }
        std::thread::sleep(SAMPLE_EVERY);
    };
    let agent_wall = t.elapsed();
    let server_cpu = server_cpu0
        .zip(stats::cpu_time(s.server_pid))
        .map(|(a, b)| b.saturating_sub(a));
    let stdout = std::fs::read_to_string(&agent_out).unwrap_or_default();
    anyhow::ensure!(
        status.success() && stdout.contains(&format!("installed {RELEASE}")),
        "the agent did not install {RELEASE} ({status}):\n{stdout}{}",
        server::tail(&agent_log, 20)
    );
    let got = std::fs::metadata(&installed)
        .with_context(|| format!("{} was not installed", installed.display()))?
        .len();
    anyhow::ensure!(got == s.size, "installed {got} bytes, expected {}", s.size);

    // 5. Phase times from the server's record.
    let id = device_id(&state)?;
    let shown: serde_json::Value =
        serde_json::from_str(&bulwark(s, &["devices", "show", &id, "--json"])?)
            .context("parsing `bulwark devices show --json`")?;
    let history = shown["update_history"]
        .as_array()
        .context("`devices show --json` has no update_history")?;
    let downloading = phase_at(history, UpdatePhase::Downloading)?;
    let verifying = phase_at(history, UpdatePhase::Verifying)?;
    let staging = phase_at(history, UpdatePhase::Staging)?;
    let done = phase_at(history, UpdatePhase::Installed)?;

    // 6. The references, on the same file.
    eprintln!("update: timing openssl and sha256sum on the same file…");
    read_through(&artifact)?;
    let mut references = Vec::new();
    for (name, program, args) in [
        ("openssl", "openssl", &["dgst", "-sha256"][..]),
        ("sha256sum", "sha256sum", &[][..]),
    ] {
        let runs = (0..REFERENCE_RUNS)
            .map(|_| time_hasher(program, args, &artifact, &digest))
            .collect::<anyhow::Result<Vec<f64>>>()?;
        references.push(Reference {
            name,
            secs: median(runs),
        });
    }
    settle();
    eprintln!("update: timing a durable write of the same size…");
    let durable_write = time_durable_write(&artifact, &w.join("durable-write.img"))?;

    Ok(Outcome {
        size: s.size,
        download_verify: between(downloading, staging)?,
        download: between(downloading, verifying)?,
        whole_update: between(downloading, done)?,
        agent_wall,
        agent_cpu,
        server_cpu,
        peak_rss_bytes: peak,
        rss_samples: samples,
        publish,
        references,
        durable_write,
    })
}

fn report(args: &UpdateArgs, o: &Outcome) {
    if args.markdown {
        println!("{}", o.tables());
        return;
    }
    println!("{}", o.tables());
    println!();
    let mem = stats::mem_gib().map_or_else(String::new, |g| format!(", {g:.1} GiB RAM"));
    println!(
        "machine: {} CPUs ({}){mem}; agent, server and references share the machine",
        stats::cpus(),
        stats::cpu_model()
    );
    let secs = |d: Option<Duration>| {
        d.map_or_else(|| "n/a".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
    };
    println!(
        "phases (server clock, ms resolution): download {:.2} s, verify + rename {:.2} s, staging → installed {:.2} s",
        o.download.as_secs_f64(),
        o.download_verify.saturating_sub(o.download).as_secs_f64(),
        o.whole_update
            .saturating_sub(o.download_verify)
            .as_secs_f64(),
    );
    println!(
        "CPU during `run --once` ({:.2} s wall): agent {}, server {}",
        o.agent_wall.as_secs_f64(),
        secs(o.agent_cpu),
        secs(o.server_cpu),
    );
    println!(
        "publish (upload {} MiB to the server, which hashes and stores it): {:.2} s",
        o.size >> 20,
        o.publish.as_secs_f64()
    );
    println!(
        "target (download + verify ≥ {TARGET_RATIO}× openssl): {}",
        if o.throughput_met() { "met" } else { "NOT met" }
    );
    println!(
        "target (agent peak RSS ≤ {} MB): {}",
        TARGET_RSS_BYTES / 1_000_000,
        if o.rss_met() { "met" } else { "NOT met" }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_come_from_the_newest_matching_report() {
        let history: Vec<serde_json::Value> = serde_json::from_str(
            r#"[
                {"release": "bench@1.0.0", "phase": "staging", "at": "2026-01-01T00:00:02.5Z"},
                {"release": "bench@1.0.0", "phase": "downloading", "at": "2026-01-01T00:00:00.25Z"},
                {"release": "other@2", "phase": "downloading", "at": "2025-01-01T00:00:00Z"}
            ]"#,
        )
        .unwrap_or_default();
        let from = phase_at(&history, UpdatePhase::Downloading).ok();
        let to = phase_at(&history, UpdatePhase::Staging).ok();
        let took = from.zip(to).and_then(|(a, b)| between(a, b).ok());
        assert_eq!(took, Some(Duration::from_millis(2250)));
        assert!(phase_at(&history, UpdatePhase::Installed).is_err());
    }

    #[test]
    fn median_of_three() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn own_memory_is_readable() {
        let (rss, hwm) = memory(std::process::id()).unwrap_or_default();
        assert!(rss > 0 && hwm >= rss);
    }
}
