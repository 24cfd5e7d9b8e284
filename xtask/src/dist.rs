//! `cargo xtask dist [--profile P] [--check]`: stripped release binaries and
//! the Debian packages `bulwark` (the `bulwark` binary: server and CLI) and
//! `bulwark-agent`, from `packaging/`.
//!
//! The packages are built with `dpkg-deb --build` from a staged tree, not
//! with cargo-deb: the maintainer scripts, units and conffiles are ours
//! either way (they are files in `packaging/`), and the staged tree needs
//! no tool beyond dpkg, which the install check needs anyway, and no
//! packaging metadata in the crates' manifests. Dependencies come from
//! `dpkg-shlibdeps`, Debian's own reading of the binaries' shared
//! libraries.
//!
//! The binaries come from the `dist` profile (release with thin LTO) and are
//! stripped here, as `dh_strip` does, rather than by `strip = true` in a
//! profile: the `dist` binaries are also the ones `cargo xtask bench`
//! measures and profiles (symbols wanted), and a stripping profile would be
//! a second full LTO build. `--profile dev` packages the test build's
//! binaries instead: that is what `cargo xtask ci` installs and runs
//! (`--check`, see `check.rs`), so CI builds no release profile.
//!
//! Output, in `<target>/packages/<profile>/`: `bulwark_<v>_<arch>.deb`,
//! `bulwark-agent_<v>_<arch>.deb`, the stripped `bin/bulwark` and
//! `bin/bulwark-agent`, and `SHA256SUMS`.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{have, root, run};

mod check;

/// The Debian revision of every package this builds.
const DEBIAN_REVISION: &str = "1";

/// One Debian package: a binary, its unit, its conffiles and scripts, all
/// from `packaging/<name>/`.
#[derive(Debug)]
pub(crate) struct Package {
    /// Package name, also the directory under `packaging/`.
    pub(crate) name: &'static str,
    /// The binary, installed as `/usr/bin/<binary>`.
    pub(crate) binary: &'static str,
    /// The systemd unit in `packaging/<name>/`, installed in
    /// `/lib/systemd/system/`.
    pub(crate) unit: &'static str,
    /// Conffiles: the file in `packaging/<name>/` and where it goes.
    pub(crate) conffiles: &'static [(&'static str, &'static str)],
    /// Dependencies beyond the shared libraries.
    depends: &'static [&'static str],
    section: &'static str,
    /// The synopsis, then the extended description (one line per
    /// paragraph).
    description: &'static [&'static str],
}

pub(crate) const SERVER: Package = Package {
    name: "bulwark",
    binary: "bulwark",
    unit: "bulwark.service",
    conffiles: &[("server.toml", "etc/bulwark/server.toml")],
    depends: &["adduser"],
    section: "admin",
    description: &[
        "DevSecOps control plane for IoT fleets: server and command line",
        "Bulwark enrolls devices with certificates from its own CA, takes their check-ins over mutual TLS and their telemetry over MQTT, gates releases (vulnerabilities, malware, secrets, policy), signs and rolls them out with TUF, detects and quarantines misbehaving devices, and journals every change in a verifiable Merkle log.",
        "This package holds the `bulwark` binary (`bulwark server` and the operator's CLI), the bulwark.service unit (not enabled on install) running as the `bulwark` system user with its data in /var/lib/bulwark, and /etc/bulwark/server.toml.",
    ],
};

pub(crate) const AGENT: Package = Package {
    name: "bulwark-agent",
    binary: "bulwark-agent",
    unit: "bulwark-agent.service",
    conffiles: &[("bulwark-agent.default", "etc/default/bulwark-agent")],
    depends: &[],
    section: "admin",
    description: &[
        "Bulwark device agent",
        "The agent of a device managed by a Bulwark server: it enrolls with a token (its key pair is made on the device), checks in over mutual TLS with its inventory, installs only updates both TUF repositories vouch for (with smoke test and rollback), publishes security telemetry and isolates the device with nftables when quarantined.",
        "The bulwark-agent.service unit (not enabled on install) is hardened: read-only system, capabilities limited to CAP_NET_ADMIN, state in /var/lib/bulwark-agent.",
    ],
};

/// What `cargo xtask dist` was asked for.
#[derive(Debug)]
struct Options {
    profile: String,
    check: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        profile: "dist".into(),
        check: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--profile" => {
                opts.profile = it
                    .next()
                    .ok_or("--profile needs a profile name (dist, release, dev)")?
                    .clone();
            }
            "--check" => opts.check = true,
            other => {
                return Err(format!(
                    "dist: unknown argument {other:?} (usage: cargo xtask dist [--profile dist|release|dev] [--check])"
                ));
            }
        }
    }
    Ok(opts)
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else `target/`.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root().join(d),
        _ => root().join("target"),
    }
}

/// Where cargo puts a profile's binaries (`dev` builds into `debug`).
fn profile_dir(profile: &str) -> PathBuf {
    target_dir().join(match profile {
        "dev" | "test" => "debug",
        "release" | "bench" => "release",
        other => other,
    })
}

/// `cargo xtask dist`: builds, strips and packages; with `--check`, also
/// installs both packages on this machine and runs them (`check`).
/// `cargo` makes the cargo command (CI's has no incremental state).
pub(crate) fn dist(args: &[String], cargo: fn() -> Command) -> Result<(), String> {
    let opts = parse(args)?;
    let mut missing: Vec<&str> = Vec::new();
    for (tool, package) in [
        ("dpkg-deb", "dpkg"),
        ("dpkg-shlibdeps", "dpkg-dev"),
        ("strip", "binutils"),
        ("gzip", "gzip"),
        ("md5sum", "coreutils"),
        ("sha256sum", "coreutils"),
    ] {
        if !have(tool) && !missing.contains(&package) {
            missing.push(package);
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "dist needs {}: apt-get install -y {}",
            missing.join(", "),
            missing.join(" ")
        ));
    }
    let mut c = cargo();
    c.args(["build", "--locked", "--profile", &opts.profile])
        .args(["-p", "bulwark-cli", "-p", "bulwark-agent"])
        .args(["--bin", "bulwark", "--bin", "bulwark-agent"]);
    run(c)?;
    let out = target_dir().join("packages").join(&opts.profile);
    let debs = package_all(&profile_dir(&opts.profile), &out, &opts.profile, cargo)?;
    if opts.check {
        check::check(&debs, &out.join("check"))?;
    }
    Ok(())
}

/// Strips the binaries in `bin_dir` and builds both packages into `out`;
/// returns the two `.deb` paths (server, agent).
fn package_all(
    bin_dir: &Path,
    out: &Path,
    profile: &str,
    cargo: fn() -> Command,
) -> Result<[PathBuf; 2], String> {
    let _ = std::fs::remove_dir_all(out);
    mkdir(&out.join("bin"))?;
    let version = format!("{}-{DEBIAN_REVISION}", env!("CARGO_PKG_VERSION"));
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    let epoch = output(
        Command::new("git")
            .current_dir(root())
            .args(["log", "-1", "--format=%ct"]),
    )
    .unwrap_or_else(|_| "0".into());
    let mut debs = Vec::new();
    for pkg in [&SERVER, &AGENT] {
        let stripped = out.join("bin").join(pkg.binary);
        let mut c = Command::new("strip");
        c.arg("--strip-all")
            .arg("-o")
            .arg(&stripped)
            .arg(bin_dir.join(pkg.binary));
        run(c)?;
        let deb = out.join(format!("{}_{version}_{arch}.deb", pkg.name));
        build_deb(pkg, &stripped, out, &deb, &version, &arch, cargo)?;
        // Reproducible archives: dpkg-deb clamps file times to this.
        let mut c = Command::new("dpkg-deb");
        c.env("SOURCE_DATE_EPOCH", &epoch)
            .arg("--root-owner-group")
            .arg(if profile == "dev" {
                // Only ever the install check's, thrown away after it:
                // even gzip spent 13 s on the unoptimised server binary.
                "-Znone"
            } else {
                "-Zxz"
            })
            .arg("--build")
            .arg(out.join("build/debian").join(pkg.name))
            .arg(&deb);
        run(c)?;
        debs.push(deb);
    }
    let mut c = Command::new("sh");
    c.current_dir(out)
        .args(["-c", "sha256sum *.deb bin/* > SHA256SUMS"]);
    run(c)?;
    for f in [
        out.join("bin/bulwark"),
        out.join("bin/bulwark-agent"),
        debs[0].clone(),
        debs[1].clone(),
    ] {
        let size = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "{:>10.1} MiB  {}",
            size as f64 / (1 << 20) as f64,
            f.display()
        );
    }
    let [server, agent] = <[PathBuf; 2]>::try_from(debs).map_err(|_| "two packages expected")?;
    Ok([server, agent])
}

/// Stages `pkg` under `<out>/build/debian/<name>` (the layout
/// `dpkg-shlibdeps` expects) with its control files.
fn build_deb(
    pkg: &Package,
    binary: &Path,
    out: &Path,
    deb: &Path,
    version: &str,
    arch: &str,
    cargo: fn() -> Command,
) -> Result<(), String> {
    let src = root().join("packaging").join(pkg.name);
    let build = out.join("build");
    let stage = build.join("debian").join(pkg.name);
    mkdir(&stage)?;
    // Files: (path in the package, mode).
    let put = |rel: &str, bytes: &[u8], mode: u32| -> Result<(), String> {
        let path = stage.join(rel);
        mkdir(
            path.parent()
                .expect("a file in the package has a directory"),
        )?;
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let read = |name: &str| {
        let p = src.join(name);
        std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let bin_rel = format!("usr/bin/{}", pkg.binary);
    put(&bin_rel, &read_path(binary)?, 0o755)?;
    put(
        &format!("lib/systemd/system/{}", pkg.unit),
        &read(pkg.unit)?,
        0o644,
    )?;
    for (file, dest) in pkg.conffiles {
        put(dest, &read(file)?, 0o644)?;
    }
    // Manual pages and completions, from the binary being packaged.
    let installed = stage.join(&bin_rel);
    let pages = build.join(format!("man-{}", pkg.name));
    let _ = std::fs::remove_dir_all(&pages);
    let mut c = Command::new(&installed);
    c.arg("manpages").arg(&pages);
    run(c)?;
    let mut names: Vec<PathBuf> = std::fs::read_dir(&pages)
        .map_err(|e| format!("{}: {e}", pages.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    for page in names {
        let name = page
            .file_name()
            .expect("a page has a name")
            .to_string_lossy();
        let gz = Command::new("gzip")
            .args(["-9", "-n", "-c"])
            .arg(&page)
            .output()
            .map_err(|e| format!("gzip: {e}"))?;
        if !gz.status.success() {
            return Err(format!("gzip {}: {}", page.display(), gz.status));
        }
        put(&format!("usr/share/man/man1/{name}.gz"), &gz.stdout, 0o644)?;
    }
    for (shell, dest) in [
        (
            "bash",
            format!("usr/share/bash-completion/completions/{}", pkg.binary),
        ),
        (
            "zsh",
            format!("usr/share/zsh/vendor-completions/_{}", pkg.binary),
        ),
        (
            "fish",
            format!("usr/share/fish/vendor_completions.d/{}.fish", pkg.binary),
        ),
    ] {
        let script = Command::new(&installed)
            .args(["completions", shell])
            .output()
            .map_err(|e| format!("{}: {e}", installed.display()))?;
        if !script.status.success() || script.stdout.is_empty() {
            return Err(format!("{} completions {shell} failed", pkg.binary));
        }
        put(&dest, &script.stdout, 0o644)?;
    }
    put(
        &format!("usr/share/doc/{}/copyright", pkg.name),
        copyright(pkg, cargo)?.as_bytes(),
        0o644,
    )?;
    // Control files.
    let shlibs = shlib_depends(&build, pkg)?;
    let mut depends: Vec<String> = shlibs
        .split(", ")
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect();
    depends.extend(pkg.depends.iter().map(|d| (*d).to_owned()));
    let installed_kib = tree_kib(&stage)?;
    let mut control = format!(
        "Package: {}\nVersion: {version}\nArchitecture: {arch}\n\
         Maintainer: The Bulwark developers <bulwark@example.invalid>\n\
         Installed-Size: {installed_kib}\nDepends: {}\nSection: {}\nPriority: optional\n\
         Homepage: {}\nDescription: {}\n",
        pkg.name,
        depends.join(", "),
        pkg.section,
        env!("CARGO_PKG_REPOSITORY"),
        pkg.description[0],
    );
    for (i, para) in pkg.description[1..].iter().enumerate() {
        if i > 0 {
            control.push_str(" .\n");
        }
        control.push_str(&wrap(para, 72, " "));
    }
    let md5sums = md5sums(&stage, pkg)?;
    put("DEBIAN/control", control.as_bytes(), 0o644)?;
    put("DEBIAN/md5sums", md5sums.as_bytes(), 0o644)?;
    let conffiles: String = pkg
        .conffiles
        .iter()
        .map(|(_, dest)| format!("/{dest}\n"))
        .collect();
    put("DEBIAN/conffiles", conffiles.as_bytes(), 0o644)?;
    for script in ["postinst", "prerm", "postrm"] {
        put(&format!("DEBIAN/{script}"), &read(script)?, 0o755)?;
    }
    // Directories 0755 whatever the umask.
    set_dir_modes(&stage)?;
    eprintln!("staged {} for {}", stage.display(), deb.display());
    Ok(())
}

/// `libc6 (>= 2.34), libgcc-s1 (>= 4.2)`: what `dpkg-shlibdeps` reads from
/// the staged binary's shared libraries.
fn shlib_depends(build: &Path, pkg: &Package) -> Result<String, String> {
    // dpkg-shlibdeps wants a debian/control naming the package.
    let control = build.join("debian/control");
    let text = format!(
        "Source: bulwark\n\nPackage: {}\nArchitecture: any\n",
        pkg.name
    );
    std::fs::write(&control, text).map_err(|e| format!("{}: {e}", control.display()))?;
    let out = output(
        Command::new("dpkg-shlibdeps")
            .current_dir(build)
            .arg("-O")
            .arg(format!("-edebian/{}/usr/bin/{}", pkg.name, pkg.binary)),
    )?;
    out.lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .map(str::to_owned)
        .ok_or_else(|| format!("dpkg-shlibdeps printed no shlibs:Depends: {out}"))
}

/// The DEP-5 copyright file: Bulwark's licence, then every crate linked
/// into the binary with the licence its manifest declares.
fn copyright(pkg: &Package, cargo: fn() -> Command) -> Result<String, String> {
    let crate_pkg = if pkg.name == "bulwark" {
        "bulwark-cli"
    } else {
        "bulwark-agent"
    };
    let tree = output(cargo().args([
        "tree",
        "--locked",
        "--offline",
        "-p",
        crate_pkg,
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p} {l}",
    ]))?;
    let mut crates: Vec<String> = tree
        .lines()
        .map(|l| l.trim_end_matches(" (*)").trim().to_owned())
        .filter(|l| {
            // Proc macros run at build time; they are not in the binary.
            !l.is_empty()
                && !l.starts_with("bulwark")
                && !l.starts_with("xtask")
                && !l.contains("(proc-macro)")
        })
        .collect();
    crates.sort();
    crates.dedup();
    let mit = std::fs::read_to_string(root().join("LICENSE-MIT"))
        .map_err(|e| format!("LICENSE-MIT: {e}"))?;
    let mut s = String::new();
    let _ = write!(
        s,
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: bulwark\n\
         Source: {}\n\
         Comment: The binary statically links these Rust crates, each under the\n \
         licence its Cargo manifest declares:\n .\n",
        env!("CARGO_PKG_REPOSITORY")
    );
    for c in &crates {
        let _ = writeln!(s, " {c}");
    }
    let _ = write!(
        s,
        "\nFiles: *\n\
         Copyright: 2026 The Bulwark developers\n\
         License: Apache-2.0 or MIT\n\n\
         License: Apache-2.0\n \
         On Debian systems, the full text of the Apache License, Version 2.0 is\n \
         in /usr/share/common-licenses/Apache-2.0.\n\n\
         License: MIT\n"
    );
    for line in mit.lines() {
        if line.trim().is_empty() {
            s.push_str(" .\n");
        } else {
            let _ = writeln!(s, " {line}");
        }
    }
    Ok(s)
}

/// `md5sums` for the package's files, conffiles excepted (dpkg keeps
/// their hashes itself).
fn md5sums(stage: &Path, pkg: &Package) -> Result<String, String> {
    let mut files = Vec::new();
    walk(stage, &mut |p| {
        if p.is_file() {
            let rel = p
                .strip_prefix(stage)
                .expect("walked under the stage")
                .to_string_lossy()
                .into_owned();
            if !rel.starts_with("DEBIAN/") && !pkg.conffiles.iter().any(|(_, d)| *d == rel) {
                files.push(rel);
            }
        }
    })?;
    files.sort();
    output(Command::new("md5sum").current_dir(stage).args(&files)).map(|s| format!("{s}\n"))
}

/// Installed-Size: KiB, each file rounded up, as dpkg-gencontrol counts.
fn tree_kib(dir: &Path) -> Result<u64, String> {
    let mut kib = 0;
    walk(dir, &mut |p| {
        if let Ok(m) = std::fs::symlink_metadata(p) {
            kib += if m.is_file() {
                m.len().div_ceil(1024)
            } else {
                1
            };
        }
    })?;
    Ok(kib)
}

fn set_dir_modes(dir: &Path) -> Result<(), String> {
    let mut dirs = vec![dir.to_path_buf()];
    walk(dir, &mut |p| {
        if p.is_dir() {
            dirs.push(p.to_path_buf());
        }
    })?;
    for d in dirs {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", d.display()))?;
    }
    Ok(())
}

/// Every path under `dir` (not `dir` itself), depth first.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        f(&path);
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&path, f)?;
        }
    }
    Ok(())
}

/// `text` wrapped at `width` columns, each line starting with `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        if line.len() > indent.len() && line.len() + 1 + word.len() > width {
            out.push_str(&line);
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.len() > indent.len() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn mkdir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

fn read_path(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// A command's standard output, trimmed; its failure with its stderr.
pub(crate) fn output(c: &mut Command) -> Result<String, String> {
    let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{c:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_wrap_as_control_files_want() {
        let w = wrap(
            "one two three four five six seven eight nine ten eleven twelve",
            20,
            " ",
        );
        assert_eq!(
            w,
            " one two three four\n five six seven\n eight nine ten\n eleven twelve\n"
        );
        assert!(w.lines().all(|l| l.len() <= 20 && l.starts_with(' ')));
    }

    #[test]
    fn every_packaged_file_exists() {
        for pkg in [&SERVER, &AGENT] {
            let dir = root().join("packaging").join(pkg.name);
            let mut files = vec![pkg.unit, "postinst", "prerm", "postrm"];
            files.extend(pkg.conffiles.iter().map(|(f, _)| *f));
            for f in files {
                assert!(
                    dir.join(f).is_file(),
                    "packaging/{}/{f} is missing",
                    pkg.name
                );
            }
        }
    }
}
