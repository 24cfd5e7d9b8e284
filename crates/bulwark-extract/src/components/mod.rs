//! Component detection in the final view.
//!
//! Files that may hold component data (package databases, lockfiles,
//! Python metadata) are kept in memory while streaming ([`worth_keeping`])
//! and parsed at the end by [`collect`], so that only what survives in the
//! final view counts. Go binaries are scanned while streaming and only
//! their results are kept.

pub(crate) mod golang;
mod lockfiles;
mod python;

use std::collections::BTreeSet;

use bulwark_pkgdb::{Diagnostic, Package};
use bulwark_sbom::{Component, ComponentEcosystem};

use crate::{path::resolve, view::View};

/// Package databases at fixed locations, resolved through symlinks.
const PACKAGE_DATABASES: [(&str, ComponentEcosystem); 4] = [
    ("var/lib/dpkg/status", ComponentEcosystem::Debian),
    ("usr/lib/opkg/status", ComponentEcosystem::Openwrt),
    ("var/lib/opkg/status", ComponentEcosystem::Openwrt),
    ("lib/apk/db/installed", ComponentEcosystem::Alpine),
];

/// What a retained file is, judging by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    PythonMetadata,
    CargoLock,
    PackageLock,
    GoSum,
}

fn kind_of(path: &str) -> Option<Kind> {
    let (parent, name) = crate::path::split_last(path);
    let (_, parent_name) = crate::path::split_last(parent);
    match name {
        "METADATA" if parent_name.ends_with(".dist-info") => Some(Kind::PythonMetadata),
        "PKG-INFO" if parent_name.ends_with(".egg-info") => Some(Kind::PythonMetadata),
        // Old setuptools wrote `.egg-info` as a single PKG-INFO file.
        name if name.ends_with(".egg-info") => Some(Kind::PythonMetadata),
        "Cargo.lock" => Some(Kind::CargoLock),
        "package-lock.json" => Some(Kind::PackageLock),
        "go.sum" => Some(Kind::GoSum),
        _ => None,
    }
}

/// Whether a file's content should be kept for [`collect`]: a lockfile or
/// Python metadata, or anything named like a package database (which may
/// be reached through a symlinked directory).
pub(crate) fn worth_keeping(path: &str) -> bool {
    let (_, name) = crate::path::split_last(path);
    kind_of(path).is_some() || matches!(name, "status" | "installed")
}

/// Finds the components of the final view, each with `found_in`.
pub(crate) fn collect(view: &mut View) -> Vec<Component> {
    let mut out = Vec::new();
    let mut parsed_databases = BTreeSet::new();
    for (location, ecosystem) in PACKAGE_DATABASES {
        let resolved = match resolve(&view.files, location) {
            Ok(resolved) => resolved,
            Err(problem) => {
                view.warnings.push(problem);
                continue;
            }
        };
        let Some(data) = view.retained.get(&resolved) else {
            continue;
        };
        if !parsed_databases.insert(resolved.clone()) {
            continue;
        }
        let text = String::from_utf8_lossy(data);
        let (packages, diagnostics) = match ecosystem {
            ComponentEcosystem::Debian => bulwark_pkgdb::parse_dpkg_status(&text),
            ComponentEcosystem::Alpine => bulwark_pkgdb::parse_apk_installed(&text),
            _ => bulwark_pkgdb::parse_opkg_status(&text),
        };
        report(view, &resolved, diagnostics);
        out.extend(
            packages
                .into_iter()
                .map(|p| package(ecosystem, p, &resolved)),
        );
    }
    for (path, data) in &view.retained {
        let Some(kind) = kind_of(path) else {
            continue;
        };
        let text = String::from_utf8_lossy(data);
        let found = match kind {
            Kind::PythonMetadata => python::parse_metadata(&text).map(|c| vec![c]),
            Kind::CargoLock => lockfiles::parse_cargo_lock(&text),
            Kind::PackageLock => lockfiles::parse_package_lock(&text),
            Kind::GoSum => Ok(lockfiles::parse_go_sum(&text)),
        };
        match found {
            Ok(found) => out.extend(found.into_iter().map(|c| located(c, path))),
            Err(problem) => view.warnings.push(format!("{path}: {problem}")),
        }
    }
    for (path, found) in &view.go {
        out.extend(found.iter().cloned().map(|c| located(c, path)));
    }
    out.sort();
    out.dedup();
    out
}

fn report(view: &mut View, path: &str, diagnostics: Vec<Diagnostic>) {
    for d in diagnostics {
        view.warnings.push(format!("{path}: {d}"));
    }
}

fn package(ecosystem: ComponentEcosystem, p: Package, path: &str) -> Component {
    let arch = p.arch.unwrap_or_default();
    let c = Component::new(ecosystem, p.name, p.version, &[("arch", &arch)]);
    located(c, path)
}

fn located(mut c: Component, path: &str) -> Component {
    c.found_in = Some(path.to_owned());
    c
}
