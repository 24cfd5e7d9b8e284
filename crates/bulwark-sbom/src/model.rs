//! The component model.

use serde::{Deserialize, Serialize};

use crate::Purl;

/// Where a component's name and version come from, which decides its purl
/// type and its OSV ecosystem (and so its version ordering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentEcosystem {
    /// Debian/Ubuntu packages (dpkg status).
    Debian,
    /// Alpine packages (apk installed).
    Alpine,
    /// OpenWrt packages (opkg status).
    Openwrt,
    /// Python distributions (dist-info).
    Pypi,
    /// Rust crates (Cargo.lock).
    Cargo,
    /// npm packages (package-lock.json).
    Npm,
    /// Go modules (go.sum, Go binaries' build info).
    Golang,
    /// Anything else: only matched by exact purl.
    Generic,
}

impl ComponentEcosystem {
    /// The OSV `affected[].package.ecosystem` name this ecosystem's
    /// advisories use (without a release suffix such as `Debian:12`).
    pub fn osv_name(self) -> Option<&'static str> {
        match self {
            Self::Debian => Some("Debian"),
            Self::Alpine => Some("Alpine"),
            Self::Pypi => Some("PyPI"),
            Self::Cargo => Some("crates.io"),
            Self::Npm => Some("npm"),
            Self::Golang => Some("Go"),
            Self::Openwrt | Self::Generic => None,
        }
    }

    /// The purl type: `deb`, `apk`, `opkg`, `pypi`, `cargo`, `npm`, `golang`
    /// or `generic`.
    pub fn purl_type(self) -> &'static str {
        match self {
            Self::Debian => "deb",
            Self::Alpine => "apk",
            Self::Openwrt => "opkg",
            Self::Pypi => "pypi",
            Self::Cargo => "cargo",
            Self::Npm => "npm",
            Self::Golang => "golang",
            Self::Generic => "generic",
        }
    }
}

/// One piece of software in an artifact or on a device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Component {
    /// The ecosystem, which decides version ordering when matching.
    pub ecosystem: ComponentEcosystem,
    /// Name as the ecosystem spells it (`libc6`, `requests`,
    /// `golang.org/x/net`, `@scope/pkg`).
    pub name: String,
    /// Version exactly as recorded.
    pub version: String,
    /// The package URL, canonical form.
    pub purl: String,
    /// SPDX licence expression, when the source records one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Lower-case hex SHA-256 of the component's file, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Where in the artifact it was found (`var/lib/dpkg/status`,
    /// `usr/bin/app`), when extracted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_in: Option<String>,
}

impl Component {
    /// A component with its purl built from ecosystem, name and version;
    /// `namespace` is the purl namespace (`debian`, `alpine`, an npm scope
    /// is taken from the name instead) and `qualifiers` e.g. `arch`.
    pub fn new(
        ecosystem: ComponentEcosystem,
        name: impl Into<String>,
        version: impl Into<String>,
        qualifiers: &[(&str, &str)],
    ) -> Component {
        let name = name.into();
        let version = version.into();
        let purl = Purl::for_component(ecosystem, &name, &version, qualifiers).to_string();
        Component {
            ecosystem,
            name,
            version,
            purl,
            license: None,
            sha256: None,
            found_in: None,
        }
    }
}

/// A bill of materials: what an artifact contains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sbom {
    /// The described artifact's name (release name, file name).
    pub subject: String,
    /// The described artifact's version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_version: Option<String>,
    /// Components, sorted and deduplicated by [`Sbom::normalize`].
    pub components: Vec<Component>,
}

impl Sbom {
    /// Sorts components and removes exact duplicates (same purl and
    /// location).
    pub fn normalize(&mut self) {
        self.components.sort();
        self.components.dedup();
    }
}
