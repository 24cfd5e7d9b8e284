//! Compiles a rules directory once and scans every regular file directly in
//! a target directory, printing `namespace:rule path` per hit (the format of
//! `yara -e`) and timings on stderr. For side-by-side runs against the C
//! CLI: `yara -e -w -p <threads> ns:rule.yar… <dir>`.
//!
//! Usage: `cargo run --release -p bulwark-yara --example scan_dir -- <rules-dir> <target-dir> [threads]`

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(rules_dir), Some(target)) = (args.next(), args.next()) else {
        return Err("usage: scan_dir <rules-dir> <target-dir> [threads]".into());
    };
    let threads = match args.next() {
        Some(n) => n.to_string_lossy().parse()?,
        None => std::thread::available_parallelism()?,
    };
    let threads = NonZeroUsize::new(threads.get()).ok_or("threads must be > 0")?;
    let started = Instant::now();
    let rules = bulwark_yara::Rules::compile_dir(PathBuf::from(rules_dir).as_path())?;
    let compiled = started.elapsed();
    let mut files: Vec<PathBuf> = std::fs::read_dir(PathBuf::from(target))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let started = Instant::now();
    let scans = bulwark_yara::scan_paths(&rules, &files, threads, Duration::from_secs(30));
    let scanned = started.elapsed();
    let mut bytes = 0u64;
    for scan in &scans {
        bytes += std::fs::metadata(&scan.path).map(|m| m.len()).unwrap_or(0);
        match &scan.result {
            Ok(hits) => {
                for hit in hits {
                    println!("{}:{} {}", hit.namespace, hit.rule, scan.path.display());
                }
            }
            Err(err) => eprintln!("error: {err}"),
        }
    }
    eprintln!(
        "rules: {} in {compiled:?}; files: {} ({} MiB) in {scanned:?} on {threads} threads",
        rules.rule_count(),
        scans.len(),
        bytes / (1024 * 1024)
    );
    Ok(())
}
