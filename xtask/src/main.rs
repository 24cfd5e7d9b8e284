//! `cargo xtask`: the project's automation, in Rust, needing only cargo.
//!
//! - `cargo xtask ci` — the whole test suite, exactly what CI runs: installs
//!   missing Debian packages (PostgreSQL for the store conformance suite),
//!   checks formatting, runs clippy with warnings denied, cargo-deny's
//!   bans/licences/sources policy, the tidy checks, every test, and each
//!   fuzz target briefly.
//! - `cargo xtask tidy` — the house rules (also run by `cargo test -p xtask`).
//! - `cargo xtask bench [--quick]` — every benchmark, printed as a table and
//!   recorded in BENCHMARKS.md.
//! - `cargo xtask fuzz [--seconds N]` — each fuzz target for N seconds.
//!
//! See <https://github.com/matklad/cargo-xtask> for the pattern.

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
        let mut c = cargo();
        c.current_dir(root().join("fuzz"))
            .env("RUSTC_BOOTSTRAP", "1")
            .args([
                "fuzz",
                "run",
                &t,
                "--",
                &format!("-max_total_time={seconds}"),
            ]);
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
    let mut c = cargo();
    c.args(["deny", "--offline", "check", "bans", "licenses", "sources"]);
    run(c)
}

fn ci() -> Result<(), String> {
    ensure_packages()?;
    let mut c = cargo();
    c.args(["fmt", "--all", "--check"]);
    run(c)?;
    let mut c = cargo();
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
    let mut c = cargo();
    c.args(["test", "--workspace", "--locked"]);
    run(c)?;
    fuzz(20)
}

/// Runs one `bulwark-bench` suite in markdown mode; returns its table.
fn bench_suite(suite: &str, quick: bool) -> Result<String, String> {
    let exe = root().join("target/release/bulwark-bench");
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

fn bench(quick: bool) -> Result<(), String> {
    let mut c = cargo();
    c.args([
        "build",
        "--release",
        "--locked",
        "-p",
        "bulwark-cli",
        "-p",
        "bulwark-bench",
    ]);
    run(c)?;
    let checkin = bench_suite("checkin", quick)?;
    let journal = bench_suite("journal", quick)?;
    let tables = format!(
        "### Device check-ins (issue 2)\n\n| benchmark | devices in store | clients | check-ins/s | p50 ms | p99 ms | errors | target |\n|---|---|---|---|---|---|---|---|\n{checkin}\n\n### Audit journal (issue 3)\n\n{journal}"
    );
    println!("{tables}");
    record(&tables, quick)
}

/// Replaces the generated section of BENCHMARKS.md with `rows`.
fn record(rows: &str, quick: bool) -> Result<(), String> {
    const BEGIN: &str = "<!-- xtask bench: begin -->";
    const END: &str = "<!-- xtask bench: end -->";
    let path = root().join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
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
    let section = format!(
        "{BEGIN}\nLast run: {date}, `cargo xtask bench{}` on {cores} cores ({cpu}).\n\n{}\n{END}",
        if quick { " --quick" } else { "" },
        rows.trim()
    );
    let new = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{section}{}", &text[..b], &text[e + END.len()..]),
        _ => format!("{}\n\n{section}\n", text.trim_end()),
    };
    std::fs::write(&path, new).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("tidy") => tidy::check(&root()).map_err(|problems| problems.join("\n")),
        Some("bench") => bench(args.iter().any(|a| a == "--quick")),
        Some("fuzz") => {
            let secs = args
                .iter()
                .position(|a| a == "--seconds")
                .and_then(|i| args.get(i + 1))
                .and_then(|s| s.parse().ok());
            fuzz(secs.unwrap_or(60))
        }
        _ => Err("usage: cargo xtask <ci | tidy | bench [--quick] | fuzz [--seconds N]>".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
