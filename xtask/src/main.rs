//! `cargo xtask`: the project's automation, in Rust, needing only cargo.
//!
//! - `cargo xtask ci` — the whole test suite, exactly what CI runs: installs
//!   missing Debian packages (PostgreSQL for the store conformance suite),
//!   checks formatting, runs clippy with warnings denied, cargo-deny's
//!   bans/licences/sources policy, the tidy checks, every test (with `CI`
//!   set, so that a test missing its external program fails instead of
//!   skipping), and each fuzz target briefly.
//! - `cargo xtask tidy` — the house rules (also run by `cargo test -p xtask`).
//! - `cargo xtask bench [--quick] [--only SUITE,…]` — every benchmark (or
//!   the named suites: checkin, journal, update, gate), printed as tables and
//!   recorded in BENCHMARKS.md; `--only` keeps the other suites' results.
//! - `cargo xtask fuzz [--seconds N]` — each fuzz target for N seconds.
//! - `cargo xtask dist [--profile P] [--check]` — stripped binaries and the
//!   Debian packages `bulwark` and `bulwark-agent` (`dist.rs`); `--check`
//!   installs both here, runs them as their units say, enrolls and checks
//!   in, and purges them (`dist/check.rs`; CI runs it on the test build).
//!
//! See <https://github.com/matklad/cargo-xtask> for the pattern.

mod corpus;
mod dist;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Cargo for the CI steps: no incremental state, which a one-shot build
/// never reuses and which doubles the workspace crates' footprint on disk.
fn ci_cargo() -> Command {
    let mut c = cargo();
    c.env("CARGO_INCREMENTAL", "0");
    c
}

fn run(mut cmd: Command) -> Result<(), String> {
    eprintln!("$ {cmd:?}");
    let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn postgres_installed() -> bool {
    std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().any(|e| e.path().join("bin/initdb").exists()))
        .unwrap_or(false)
}

/// Installs the Debian packages the tests need, when missing.
fn ensure_packages() -> Result<(), String> {
    let mut missing = Vec::new();
    if !postgres_installed() {
        missing.push("postgresql");
    }
    let pip = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !pip {
        missing.push("python3-pip");
    }
    // npm's `semver` (the version-ordering reference) runs on Node; the
    // test installs the package itself.
    if !have("npm") {
        missing.push("npm");
    }
    if !have("dpkg") {
        missing.push("dpkg");
    }
    // `cargo xtask dist`: dpkg-shlibdeps, strip, the packages' adduser,
    // and systemd-analyze to verify the units (systemd need not run).
    for (tool, package) in [
        ("dpkg-shlibdeps", "dpkg-dev"),
        ("strip", "binutils"),
        ("adduser", "adduser"),
        ("systemd-analyze", "systemd"),
    ] {
        if !have(tool) && !std::path::Path::new("/usr/sbin").join(tool).exists() {
            missing.push(package);
        }
    }
    // The C YARA CLI: the reference the yara-x scanner is tested against.
    if !have("yara") {
        missing.push("yara");
    }
    // Mosquitto: the broker the external-broker mode and the MQTT interop
    // tests run against, and its `mosquitto_pub`/`mosquitto_sub` clients.
    if !have("mosquitto") && !std::path::Path::new("/usr/sbin/mosquitto").exists() {
        missing.push("mosquitto");
    }
    if !have("mosquitto_pub") {
        missing.push("mosquitto-clients");
    }
    // tshark: the reference the capture reader's flow assembly is tested
    // against (its conversation table).
    if !have("tshark") {
        missing.push("tshark");
    }
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing missing Debian packages: {}", missing.join(" "));
    let sudo = if Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
    {
        ""
    } else {
        "sudo "
    };
    let script = format!(
        "{sudo}apt-get update -q && DEBIAN_FRONTEND=noninteractive {sudo}apt-get install -y -q {}",
        missing.join(" ")
    );
    let mut c = Command::new("sh");
    c.args(["-c", &script]);
    run(c)
}

fn fuzz(seconds: u64) -> Result<(), String> {
    if !have("cargo-fuzz") {
        let mut c = cargo();
        c.args(["install", "cargo-fuzz", "--locked"]);
        run(c)?;
    }
    let targets = std::fs::read_dir(root().join("fuzz/fuzz_targets"))
        .map_err(|e| format!("fuzz/fuzz_targets: {e}"))?;
    let mut names: Vec<String> = targets
        .flatten()
        .filter_map(|e| {
            e.path()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    for t in names {
        // New inputs go to the first directory (the local corpus, not
        // committed); `fuzz/seeds/TARGET`, when there is one, holds
        // committed starting points, such as the CBOR telemetry that a
        // short run would not reach from nothing.
        let corpus = root().join("fuzz/corpus").join(&t);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        let seeds = root().join("fuzz/seeds").join(&t);
        let mut c = cargo();
        c.current_dir(root().join("fuzz"))
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", &t])
            .arg(&corpus);
        if seeds.is_dir() {
            c.arg(&seeds);
        }
        c.args(["--", &format!("-max_total_time={seconds}")]);
        run(c)?;
    }
    Ok(())
}

/// The dependency policy in deny.toml: bans (one TLS backend), licences,
/// sources. Offline: the advisory database cannot be fetched here.
fn deny() -> Result<(), String> {
    if !have("cargo-deny") {
        let mut c = cargo();
        c.args(["install", "cargo-deny", "--locked"]);
        run(c)?;
    }
    // `cargo deny --offline` reads `cargo metadata` for every platform, so
    // crates only other targets use (windows-sys …) must be in the local
    // registry: a fresh machine has only what its own builds fetched.
    let mut c = cargo();
    c.args(["fetch", "--locked"]);
    run(c)?;
    let mut c = cargo();
    c.args(["deny", "--offline", "check", "bans", "licenses", "sources"]);
    run(c)
}

/// python-tuf for the interop tests (PyPI), when missing.
fn ensure_python_references() -> Result<(), String> {
    let ok = |code: &str| {
        Command::new("python3")
            .args(["-c", code])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ok(
        "import tuf, cryptography, securesystemslib, packaging, cyclonedx.validation.json, spdx_tools.spdx.validation.document_validator, paho.mqtt.client, cbor2, schemathesis",
    ) {
        return Ok(());
    }
    eprintln!(
        "installing python-tuf, packaging, cyclonedx-python-lib, spdx-tools, paho-mqtt, cbor2 and schemathesis from PyPI (reference implementations, API fuzzing)"
    );
    let pkgs = [
        "tuf==7.0.0",
        "securesystemslib[crypto]==1.4.0",
        "packaging==26.3",
        "cyclonedx-python-lib[json-validation]==11.12.0",
        "spdx-tools==0.8.5",
        "paho-mqtt==2.2.0",
        "cbor2==5.6.5",
        "schemathesis==4.32.5",
    ];
    let mut c = Command::new("python3");
    c.args(["-m", "pip", "install", "-q"]).args(pkgs);
    if run(c).is_ok() {
        return Ok(());
    }
    // Debian's system Python refuses pip without this flag (PEP 668).
    let mut c = Command::new("python3");
    c.args(["-m", "pip", "install", "-q", "--break-system-packages"])
        .args(pkgs);
    run(c)
}

fn ci() -> Result<(), String> {
    ensure_packages()?;
    ensure_python_references()?;
    let mut c = ci_cargo();
    c.args(["fmt", "--all", "--check"]);
    run(c)?;
    let mut c = ci_cargo();
    c.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    run(c)?;
    deny()?;
    // Everything the tests run (PostgreSQL, Mosquitto, the reference
    // implementations) was installed above: a test that still misses one
    // fails rather than skips (`bulwark_testpg::require`), here as in CI,
    // which sets `CI` itself.
    let mut c = ci_cargo();
    c.args(["test", "--workspace", "--locked"])
        .env("CI", "true");
    run(c)?;
    dogfood()?;
    api_fuzz()?;
    // The Debian packages, made from the test build's binaries (no release
    // build in CI), installed, run and purged.
    dist::dist(
        &["--profile".into(), "dev".into(), "--check".into()],
        ci_cargo,
    )?;
    free_disk_for_fuzzing();
    fuzz(20)
}

/// Schemathesis against a live `bulwark server` (its own data directory,
/// free ports): examples generated from `docs/openapi.json` for every
/// admin route, checked for server errors and for answers the document
/// does not describe (status, content type, body schema). Device-listener
/// routes (mutual TLS) and the endless alert stream are left out.
fn api_fuzz() -> Result<(), String> {
    let mut c = ci_cargo();
    c.args([
        "build",
        "--quiet",
        "--locked",
        "-p",
        "bulwark-cli",
        "--bin",
        "bulwark",
    ]);
    run(c)?;
    let dir = root().join("target/api-fuzz");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let data = dir.join("data");
    let mut server = Command::new(root().join("target/debug/bulwark"))
        .arg("server")
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", "127.0.0.1:0", "--device-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("starting bulwark server: {e}"))?;
    let result = (|| {
        use std::io::BufRead as _;
        let out = server.stdout.take().ok_or("no server stdout")?;
        let mut base = None;
        let mut lines = std::io::BufReader::new(out).lines();
        for line in lines.by_ref() {
            let line = line.map_err(|e| e.to_string())?;
            if let Some(url) = line.strip_prefix("Bulwark API:") {
                base = Some(url.trim().to_owned());
                break;
            }
        }
        // Keep reading what the server prints after that line: a closed
        // pipe would make its next `println!` fail and the server stop.
        std::thread::spawn(move || lines.for_each(drop));
        let base = base.ok_or("the server ended before printing its API address")?;
        let token = std::fs::read_to_string(data.join("admin.token"))
            .map_err(|e| format!("admin.token: {e}"))?;
        let mut c = Command::new("schemathesis");
        c.current_dir(&dir)
            .arg("run")
            .arg(root().join("docs/openapi.json"))
            .args(["--url", &base])
            .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--max-examples",
                "10",
                "--phases",
                "coverage,fuzzing",
                // One worker: with two, hypothesis parsing its own source
                // on both threads hit a race in Python 3.11's parser ("AST
                // constructor recursion depth mismatch") in 4 of 8 runs;
                // one worker takes the same ~10 s.
                "--workers",
                "1",
                "--exclude-path-regex",
                "^/api/v1/(device/|enroll$|alerts/stream$)",
            ]);
        run(c)
    })();
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// Free space (KiB) on the filesystem holding `path`, from `df -Pk`.
fn free_kib(path: &Path) -> Option<u64> {
    let out = Command::new("df").arg("-Pk").arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()
}

/// The fuzz targets build into their own tree (sanitizers, release) of
/// about 1.3 GB. When the disk is tight, the test build (about 3.3 GB,
/// not needed any more in this run) goes first: CI once died of a full
/// disk.
fn free_disk_for_fuzzing() {
    const NEEDED_KIB: u64 = 4 << 20;
    let target = root().join("target");
    if free_kib(&target).is_some_and(|free| free < NEEDED_KIB) {
        let debug = target.join("debug");
        eprintln!(
            "less than 4 GiB free: removing {} before building the fuzz targets",
            debug.display()
        );
        let _ = std::fs::remove_dir_all(debug);
    }
}

/// Bulwark's own release gate: its SBOM from Cargo.lock, scanned against
/// the RustSec advisories in `data/advisories/`, judged by
/// `.bulwark/dogfood-policy.json` with `.bulwark/waivers.json`. An
/// unwaived hit fails CI.
fn dogfood() -> Result<(), String> {
    let out = root().join("target/dogfood");
    let db = out.join("advisories");
    let _ = std::fs::remove_dir_all(&db);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let bulwark = |args: &[&str]| {
        let mut c = ci_cargo();
        c.args([
            "run",
            "--quiet",
            "--locked",
            "-p",
            "bulwark-cli",
            "--bin",
            "bulwark",
            "--",
        ])
        .args(args);
        c
    };
    let archives = std::fs::read_dir(root().join("data/advisories/rustsec"))
        .map_err(|e| format!("data/advisories/rustsec: {e}"))?;
    let mut files: Vec<String> = archives
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err("data/advisories/rustsec holds no OSV archive".into());
    }
    let db_s = db.display().to_string();
    let mut args = vec!["advisories", "import", "--db", db_s.as_str()];
    args.extend(files.iter().map(String::as_str));
    run(bulwark(&args))?;
    let sbom = out.join("bulwark.cdx.json").display().to_string();
    let version = env!("CARGO_PKG_VERSION");
    let name = format!("bulwark@{version}");
    run(bulwark(&[
        "scan",
        "Cargo.lock",
        "--db",
        &db_s,
        "--policy",
        ".bulwark/dogfood-policy.json",
        "--waivers",
        ".bulwark/waivers.json",
        "--name",
        &name,
        "--sbom-out",
        &sbom,
    ]))
    .map_err(|e| format!("Bulwark's own release gate: {e} (see .bulwark/README.md)"))
}

/// The benchmark suites, in the order of BENCHMARKS.md: `bulwark-bench`
/// subcommand, heading of its part of the generated section, and the table
/// header the suite does not print itself.
const SUITES: &[(&str, &str, &str)] = &[
    (
        "checkin",
        "### Device check-ins (issue 2)",
        "| benchmark | devices in store | clients | check-ins/s | p50 ms | p99 ms | errors | target |\n|---|---|---|---|---|---|---|---|\n",
    ),
    ("journal", "### Audit journal (issue 3)", ""),
    ("update", "### Update download and agent memory", ""),
    ("gate", "### Release gate (issue 5)", ""),
    ("gateway", "### Device gateway (issue 6)", ""),
    ("sim", "### Fleet simulator (issue 7)", ""),
];

/// The `dist` profile's binaries (release with thin LTO, the ones to
/// deploy): `$CARGO_TARGET_DIR/dist`, else `target/dist` in the workspace.
fn dist_dir() -> PathBuf {
    dist::target_dir().join("dist")
}

/// Runs one `bulwark-bench` suite in markdown mode; returns its table.
fn bench_suite(suite: &str, quick: bool) -> Result<String, String> {
    let exe = dist_dir().join("bulwark-bench");
    let mut c = Command::new(&exe);
    c.current_dir(root()).arg(suite).arg("--markdown");
    if quick {
        c.arg("--quick");
    }
    eprintln!("$ {c:?}");
    let out = c.output().map_err(|e| format!("{}: {e}", exe.display()))?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!("bulwark-bench {suite} failed with {}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `cargo xtask bench [--quick] [--only SUITE[,SUITE]…]`: runs the suites
/// (all by default) and records them in BENCHMARKS.md; with `--only`, the
/// other suites' recorded results are kept as they are.
fn bench(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .map(|i| {
            args.get(i + 1)
                .map(|v| v.split(',').map(str::to_owned).collect())
                .ok_or_else(|| "--only needs a suite name".to_owned())
        })
        .transpose()?;
    if let Some(only) = &only
        && let Some(bad) = only
            .iter()
            .find(|o| !SUITES.iter().any(|(name, ..)| name == o))
    {
        let names: Vec<&str> = SUITES.iter().map(|(n, ..)| *n).collect();
        return Err(format!(
            "unknown suite {bad:?} (suites: {})",
            names.join(", ")
        ));
    }
    let mut c = cargo();
    c.args([
        "build",
        "--profile",
        "dist",
        "--locked",
        "-p",
        "bulwark-cli",
        "-p",
        "bulwark-agent",
        "-p",
        "bulwark-bench",
    ]);
    run(c)?;
    let mut command = String::from("cargo xtask bench");
    if quick {
        command.push_str(" --quick");
    }
    if let Some(only) = &only {
        command.push_str(&format!(" --only {}", only.join(",")));
    }
    let last_run = last_run_line(&command);
    let mut fresh = Vec::new();
    for (name, heading, header) in SUITES {
        if only.as_ref().is_some_and(|o| !o.iter().any(|s| s == name)) {
            continue;
        }
        let table = bench_suite(name, quick)?;
        let part = format!("{heading}\n\n{last_run}\n\n{header}{table}");
        println!("{part}\n");
        fresh.push((*heading, part));
    }
    record(&fresh)
}

/// `Last run: DATE, `COMMAND` on N cores (CPU).`
fn last_run_line(command: &str) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("Last run: {date}, `{command}` on {cores} cores ({cpu}).")
}

const BEGIN: &str = "<!-- xtask bench: begin -->";
const END: &str = "<!-- xtask bench: end -->";

/// The `### ` parts of a generated section, by heading (text before the
/// first heading is dropped).
fn parts(section: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in section.lines() {
        if line.starts_with("### ") {
            out.push((line.trim().to_owned(), String::new()));
        }
        if let Some((_, text)) = out.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    for (_, text) in &mut out {
        *text = text.trim().to_owned();
    }
    out
}

/// The generated section with the `fresh` parts replacing (or joining)
/// those of `old`, in the order of [`SUITES`]; parts of unknown headings
/// are kept at the end.
fn merge(old: &str, fresh: &[(&str, String)]) -> String {
    let old = parts(old);
    let mut out: Vec<String> = Vec::new();
    for (_, heading, _) in SUITES {
        let part = fresh
            .iter()
            .find(|(h, _)| h == heading)
            .map(|(_, p)| p.clone())
            .or_else(|| {
                old.iter()
                    .find(|(h, _)| h == heading)
                    .map(|(_, p)| p.clone())
            });
        out.extend(part);
    }
    out.extend(
        old.into_iter()
            .filter(|(h, _)| !SUITES.iter().any(|(_, heading, _)| h == heading))
            .map(|(_, p)| p),
    );
    out.join("\n\n")
}

/// Replaces the suites' parts of the generated section of BENCHMARKS.md.
fn record(fresh: &[(&str, String)]) -> Result<(), String> {
    let path = root().join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let span = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => Some((b, e)),
        _ => None,
    };
    let old = span.map_or("", |(b, e)| &text[b + BEGIN.len()..e]);
    let section = format!("{BEGIN}\n{}\n{END}", merge(old, fresh));
    let new = match span {
        Some((b, e)) => format!("{}{section}{}", &text[..b], &text[e + END.len()..]),
        None => format!("{}\n\n{section}\n", text.trim_end()),
    };
    std::fs::write(&path, new).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("tidy") => tidy::check(&root()).map_err(|problems| problems.join("\n")),
        Some("bench") => bench(&args[1..]),
        Some("dogfood") => dogfood(),
        Some("api-fuzz") => api_fuzz(),
        Some("corpus") => corpus::corpus(&args[1..]),
        Some("dist") => dist::dist(&args[1..], cargo),
        Some("fuzz") => {
            let secs = args
                .iter()
                .position(|a| a == "--seconds")
                .and_then(|i| args.get(i + 1))
                .and_then(|s| s.parse().ok());
            fuzz(secs.unwrap_or(60))
        }
        _ => Err(
            "usage: cargo xtask <ci | tidy | dogfood | api-fuzz | corpus [OUT_DIR] | dist [--profile dist|release|dev] [--check] | bench [--quick] [--only checkin,journal,update,gate,gateway,sim] | fuzz [--seconds N]>"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_suite_replaces_only_its_part() {
        let old = "\nLast run: old.\n\n### Device check-ins (issue 2)\n\nLast run: a.\n\n| c |\n\n### Audit journal (issue 3)\n\nLast run: a.\n\n| j |\n";
        let fresh = [(
            "### Update download and agent memory",
            "### Update download and agent memory\n\nLast run: b.\n\n| u |".to_owned(),
        )];
        assert_eq!(
            merge(old, &fresh),
            "### Device check-ins (issue 2)\n\nLast run: a.\n\n| c |\n\n### Audit journal (issue 3)\n\nLast run: a.\n\n| j |\n\n### Update download and agent memory\n\nLast run: b.\n\n| u |"
        );
        let again = [(
            "### Audit journal (issue 3)",
            "### Audit journal (issue 3)\n\nLast run: c.\n\n| j2 |".to_owned(),
        )];
        let merged = merge(&merge(old, &fresh), &again);
        assert!(merged.contains("| c |") && merged.contains("| j2 |") && merged.contains("| u |"));
        assert!(!merged.contains("| j |"));
    }
}
