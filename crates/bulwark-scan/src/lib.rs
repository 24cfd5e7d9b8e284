//! The release scan pipeline, shared by `bulwark scan` (local, for CI) and
//! the server's gate (on every published release).
//!
//! [`scan_artifact`] takes an artifact apart with `bulwark-extract`,
//! handing every file's bytes to the YARA rules (`bulwark-yara`) and the
//! secret detectors (`bulwark-secrets`), and inventories its components.
//! The result, an [`ArtifactScan`], is stored as is. Vulnerabilities are
//! not part of it: [`vulnerabilities`] matches the components against the
//! advisories known *now*, so a stored scan is re-judged whenever the
//! advisories, the policy or the waivers change, without re-reading the
//! artifact. [`findings`] assembles the gate's input; `bulwark-gate`
//! judges it.

mod inventory;
mod pipeline;
mod sarif;

pub use inventory::inventory_components;
pub use pipeline::{
    ArtifactScan, ScanError, findings, merge_sbom, scan_artifact, scan_bytes, scan_path,
    vulnerabilities,
};
pub use sarif::sarif;
