//! House rules, checked by `cargo test -p xtask` (so CI needs nothing else).
//!
//! - every `.rs` file opens with a `//!` doc comment;
//! - no should-panic or ignored tests (assert the current behaviour
//!   and leave a FIXME instead);
//! - pure-logic crates have no I/O dependencies;
//! - every crate inherits the workspace lints;
//! - no second TLS crypto backend (`ring`, OpenSSL) in the build graph.

use std::path::{Path, PathBuf};

/// Crates that must stay free of I/O, async runtimes and databases.
const PURE_CRATES: &[&str] = &[
    "bulwark-proto",
    "bulwark-pkgdb",
    "bulwark-pki",
    "bulwark-tlog",
    "bulwark-audit",
    "bulwark-tuf",
    "bulwark-sbom",
    "bulwark-gate",
    "bulwark-secrets",
    "bulwark-osv",
    "bulwark-extract",
    "bulwark-detect",
    "bulwark-pcap",
    "bulwark-versions",
];
/// Dependencies a pure crate may not have.
const IO_DEPS: &[&str] = &[
    "tokio",
    "sqlx",
    "reqwest",
    "hyper",
    "hyper-util",
    "axum",
    "tower",
    "tower-http",
    "rustls",
    "tokio-rustls",
];

/// Packages that must never enter the build.
const BANNED_PACKAGES: &[&str] = &["ring", "openssl-sys", "native-tls"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() {
            if name != "target" && name != ".git" && name != "corpus" && name != "artifacts" {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn dependencies_section(toml: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in toml.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_deps = t == "[dependencies]";
            continue;
        }
        if in_deps
            && let Some(name) = t
                .split(['=', '.', ' '])
                .next()
                .filter(|n| !n.is_empty() && !n.starts_with('#'))
        {
            deps.push(name.to_owned());
        }
    }
    deps
}

/// Runs every check; returns all problems.
pub(crate) fn check(root: &Path) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    let should_panic = ["#[should", "_panic"].concat();
    let ignore_attr = ["#[ig", "nore"].concat();
    for f in &files {
        let rel = f.strip_prefix(root).unwrap_or(f).display().to_string();
        let Ok(text) = std::fs::read_to_string(f) else {
            problems.push(format!("{rel}: not UTF-8"));
            continue;
        };
        if !text.starts_with("//!") {
            problems.push(format!("{rel}: must start with a `//!` doc comment"));
        }
        for (i, line) in text.lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with(&should_panic) || t.starts_with(&ignore_attr) {
                problems.push(format!(
                    "{rel}:{}: no should_panic/ignore; assert the current behaviour with a FIXME",
                    i + 1
                ));
            }
        }
    }
    let Ok(crates) = std::fs::read_dir(root.join("crates")) else {
        return Err(vec!["crates/ is missing".into()]);
    };
    for c in crates.flatten() {
        let name = c.file_name().to_string_lossy().into_owned();
        let Ok(toml) = std::fs::read_to_string(c.path().join("Cargo.toml")) else {
            continue;
        };
        if !toml.contains("[lints]\nworkspace = true") {
            problems.push(format!(
                "crates/{name}/Cargo.toml: must have `[lints] workspace = true`"
            ));
        }
        // Each integration-test file is its own binary linking the whole
        // dependency tree; one per crate (`tests/it/main.rs`) keeps the
        // CI build inside its disk (session 3 ran out with eight per crate).
        let top_level_tests = std::fs::read_dir(c.path().join("tests"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
                    .count()
            })
            .unwrap_or(0);
        if top_level_tests > 1 {
            problems.push(format!(
                "crates/{name}/tests: {top_level_tests} test binaries; put them in one (tests/it/main.rs with modules)"
            ));
        }
        if PURE_CRATES.contains(&name.as_str()) {
            for dep in dependencies_section(&toml) {
                if IO_DEPS.contains(&dep.as_str()) {
                    problems.push(format!("crates/{name}: pure crate depends on {dep}"));
                }
            }
        }
    }
    // One rustls crypto backend: two linked together panic at the first
    // TLS connect (../shared/DEPENDENCIES.md). Cargo.lock also lists
    // optional dependencies that are never built, so ask cargo for the
    // real build graph on every target.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    match std::process::Command::new(cargo)
        .current_dir(root)
        .args([
            "tree",
            "--workspace",
            "--target",
            "all",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
    {
        Ok(out) if out.status.success() => {
            let tree = String::from_utf8_lossy(&out.stdout);
            for banned in BANNED_PACKAGES {
                if tree.lines().any(|l| l.split(' ').next() == Some(banned)) {
                    problems.push(format!(
                        "dependency graph: {banned} is banned (aws-lc-rs and rustls only)"
                    ));
                }
            }
        }
        Ok(out) => problems.push(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => problems.push(format!("cannot run cargo tree: {e}")),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tidy() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        if let Err(problems) = super::check(root) {
            panic!(
                "tidy found {} problem(s):\n{}",
                problems.len(),
                problems.join("\n")
            );
        }
    }

    #[test]
    fn dependency_scan_reads_only_the_dependencies_table() {
        let toml = "[package]\nname = \"x\"\n[dependencies]\ntokio.workspace = true\nserde = \"1\"\n[dev-dependencies]\nsqlx = \"1\"\n";
        assert_eq!(super::dependencies_section(toml), vec!["tokio", "serde"]);
    }
}
