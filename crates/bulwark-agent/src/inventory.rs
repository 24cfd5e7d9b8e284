//! Collects the device's inventory from its filesystem.
//!
//! Everything is read relative to a root directory (`/` on a real device),
//! so tests and the simulator can point the agent at a fixture tree.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use bulwark_pkgdb::{
    Package, parse_apk_installed, parse_dpkg_status, parse_opkg_status, parse_os_release,
};
use bulwark_proto::{InstalledPackage, Inventory, OsInfo};

/// Largest package database the agent reads.
pub const MAX_DB_BYTES: u64 = 64 << 20;
/// Largest small file (os-release, hostname…) the agent reads.
pub(crate) const MAX_SMALL_FILE_BYTES: u64 = 64 << 10;

/// Where the package databases live, relative to the root.
const DPKG_STATUS: &str = "var/lib/dpkg/status";
const OPKG_STATUS: [&str; 2] = ["usr/lib/opkg/status", "var/lib/opkg/status"];
const APK_INSTALLED: &str = "lib/apk/db/installed";

fn read_capped(path: &Path, cap: u64) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.take(cap + 1).read_to_end(&mut buf).ok()?;
    if buf.len() as u64 > cap {
        tracing::warn!(path = %path.display(), cap, "file larger than the limit; ignored");
        return None;
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn first_line(root: &Path, rel: &str) -> Option<String> {
    let text = read_capped(&root.join(rel), MAX_SMALL_FILE_BYTES)?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.chars().take(bulwark_proto::MAX_STRING_LEN).collect())
}

fn convert(p: Package) -> InstalledPackage {
    InstalledPackage {
        name: p.name,
        version: p.version,
        arch: p.arch,
        source: p.source.as_str().to_owned(),
    }
}

/// The inventory of the system under `root`.
#[derive(Debug, Clone)]
pub struct Collector {
    root: PathBuf,
}

impl Collector {
    /// Reads the system under `root` (`/` on a device).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The boot id, if the kernel exposes one.
    pub fn boot_id(&self) -> Option<String> {
        first_line(&self.root, "proc/sys/kernel/random/boot_id")
    }

    /// Collects OS, kernel, arch, hostname and installed packages.
    pub fn collect(&self) -> Inventory {
        let root = &self.root;
        let os_text = read_capped(&root.join("etc/os-release"), MAX_SMALL_FILE_BYTES)
            .or_else(|| read_capped(&root.join("usr/lib/os-release"), MAX_SMALL_FILE_BYTES))
            .unwrap_or_default();
        let os = parse_os_release(&os_text);
        let cap = |s: Option<String>| {
            s.map(|v| {
                v.chars()
                    .take(bulwark_proto::MAX_STRING_LEN)
                    .collect::<String>()
            })
        };
        let mut packages = Vec::new();
        let mut add =
            |rel: &str, parse: fn(&str) -> (Vec<Package>, Vec<bulwark_pkgdb::Diagnostic>)| {
                if let Some(text) = read_capped(&root.join(rel), MAX_DB_BYTES) {
                    let (pkgs, diags) = parse(&text);
                    for d in diags.iter().take(5) {
                        tracing::debug!(db = rel, line = d.line, message = %d.message, "package database diagnostic");
                    }
                    packages.extend(pkgs.into_iter().map(convert));
                }
            };
        add(DPKG_STATUS, parse_dpkg_status);
        for rel in OPKG_STATUS {
            add(rel, parse_opkg_status);
        }
        add(APK_INSTALLED, parse_apk_installed);
        packages.sort();
        packages.dedup();
        packages.truncate(bulwark_proto::MAX_PACKAGES);
        Inventory {
            os: OsInfo {
                id: cap(os.id),
                version_id: cap(os.version_id),
                pretty_name: cap(os.pretty_name),
            },
            kernel: first_line(root, "proc/sys/kernel/osrelease"),
            arch: std::env::consts::ARCH.to_owned(),
            hostname: first_line(root, "proc/sys/kernel/hostname")
                .or_else(|| first_line(root, "etc/hostname")),
            packages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_from_a_fixture_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let w = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w(
            "etc/os-release",
            "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        );
        w("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
        w("proc/sys/kernel/hostname", "sensor-7\n");
        w(
            "proc/sys/kernel/random/boot_id",
            "0a1b2c3d-0000-4000-8000-000000000000\n",
        );
        w(
            "var/lib/dpkg/status",
            "Package: openssl\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n",
        );
        w("lib/apk/db/installed", "P:musl\nV:1.2.5-r0\nA:x86_64\n\n");
        let c = Collector::new(root);
        let inv = c.collect();
        assert_eq!(inv.os.id.as_deref(), Some("debian"));
        assert_eq!(inv.kernel.as_deref(), Some("6.1.0-18-amd64"));
        assert_eq!(inv.hostname.as_deref(), Some("sensor-7"));
        let names: Vec<_> = inv
            .packages
            .iter()
            .map(|p| format!("{} {} {}", p.source, p.name, p.version))
            .collect();
        assert_eq!(
            names,
            vec!["apk musl 1.2.5-r0", "dpkg openssl 3.0.11-1~deb12u2"]
        );
        assert_eq!(
            c.boot_id().as_deref(),
            Some("0a1b2c3d-0000-4000-8000-000000000000")
        );
        assert!(inv.validate().is_ok());
    }

    #[test]
    fn empty_root_gives_a_valid_minimal_inventory() {
        let dir = tempfile::tempdir().unwrap();
        let inv = Collector::new(dir.path()).collect();
        assert!(inv.packages.is_empty());
        assert!(inv.validate().is_ok());
    }

    #[test]
    fn oversized_database_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("proc/sys/kernel/hostname");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "x".repeat(MAX_SMALL_FILE_BYTES as usize + 1)).unwrap();
        assert_eq!(Collector::new(dir.path()).collect().hostname, None);
    }
}
