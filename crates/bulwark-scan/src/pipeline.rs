//! Extract, scan every file, inventory.

use std::collections::HashSet;
use std::path::Path;

use bulwark_extract::{Extraction, Limits};
use bulwark_gate::{Findings, MalwareFinding, SecretFinding, Severity, VulnerabilityFinding};
use bulwark_osv::{AdvisoryDb, FindingStatus, SeverityLevel};
use bulwark_sbom::{Component, Sbom};
use bulwark_yara::{Rules, Scanner};
use serde::{Deserialize, Serialize};

/// The scan could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The artifact could not be taken apart (format, limits, integrity).
    #[error("{0}")]
    Extract(#[from] bulwark_extract::ExtractError),
    /// A directory could not be read.
    #[error("reading {0}: {1}")]
    Pack(String, std::io::Error),
}

/// What scanning an artifact found, apart from vulnerabilities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArtifactScan {
    /// How the artifact was recognised (`tar+gzip`, `oci-archive`, …).
    pub format: String,
    /// Regular files handed to the scanners.
    pub files_scanned: u64,
    /// Their bytes.
    pub bytes_scanned: u64,
    /// The components found.
    pub sbom: Sbom,
    /// `extracted`, `uploaded` or `uploaded+extracted`.
    pub sbom_source: String,
    /// YARA hits.
    pub malware: Vec<MalwareFinding>,
    /// Secrets and default credentials.
    pub secrets: Vec<SecretFinding>,
    /// Files that were not scanned (too large, special), with why.
    pub skipped: Vec<String>,
    /// Files a YARA scan failed on (timeout), with why.
    pub scan_errors: Vec<String>,
    /// Extraction warnings.
    pub warnings: Vec<String>,
    /// Why the artifact could not be taken apart (then nothing else here
    /// comes from its bytes); the gate blocks such an artifact.
    #[serde(default)]
    pub unreadable: Option<String>,
}

impl ArtifactScan {
    /// The scan of an artifact that could not be taken apart (hostile,
    /// truncated, over a limit): kept, with the reason, so the release is
    /// blocked rather than lost.
    pub fn failed(error: &ScanError) -> ArtifactScan {
        ArtifactScan {
            warnings: vec![format!("extraction failed: {error}")],
            unreadable: Some(error.to_string()),
            ..ArtifactScan::default()
        }
    }
}

fn gate_severity(s: bulwark_secrets::Severity) -> Severity {
    match s {
        bulwark_secrets::Severity::Low => Severity::Low,
        bulwark_secrets::Severity::Medium => Severity::Medium,
        bulwark_secrets::Severity::High => Severity::High,
        bulwark_secrets::Severity::Critical => Severity::Critical,
    }
}

/// Where each finding came from (path and layer), parallel to the
/// scan's `malware` and `secrets`, to mark those a later layer removed.
#[derive(Default)]
struct Origins {
    malware: Vec<(String, usize)>,
    secrets: Vec<(String, usize)>,
}

/// Scans one file's bytes with the rules and the secret detectors.
fn scan_file(
    yara: Option<&mut Scanner<'_>>,
    path: &str,
    layer: usize,
    data: &[u8],
    out: &mut ArtifactScan,
    origins: &mut Origins,
) {
    out.files_scanned += 1;
    out.bytes_scanned += data.len() as u64;
    if let Some(scanner) = yara {
        match scanner.scan(path, data) {
            Ok(hits) => {
                for h in hits {
                    origins.malware.push((path.to_owned(), layer));
                    out.malware.push(MalwareFinding {
                        namespace: h.namespace,
                        rule: h.rule,
                        path: path.to_owned(),
                        removed: false,
                    });
                }
            }
            Err(e) => out.scan_errors.push(format!("{path}: {e}")),
        }
    }
    for s in bulwark_secrets::scan(path, data) {
        origins.secrets.push((path.to_owned(), layer));
        out.secrets.push(SecretFinding {
            kind: s.kind.code().to_owned(),
            path: path.to_owned(),
            line: s.line.map(|l| l as u64),
            severity: gate_severity(s.severity),
            description: s.description.clone(),
            fingerprint: s.fingerprint.to_hex(),
            removed: false,
        });
    }
}

fn finish(mut out: ArtifactScan, x: Extraction, origins: &Origins) -> ArtifactScan {
    let removed: HashSet<(&str, usize)> = x
        .removed
        .iter()
        .map(|r| (r.path.as_str(), r.layer))
        .collect();
    let gone = |(p, l): &(String, usize)| removed.contains(&(p.as_str(), *l));
    for (m, o) in out.malware.iter_mut().zip(&origins.malware) {
        m.removed = gone(o);
    }
    for (s, o) in out.secrets.iter_mut().zip(&origins.secrets) {
        s.removed = gone(o);
    }
    out.format = x.format.to_string();
    out.skipped = x
        .skipped
        .iter()
        .map(|s| format!("{} ({} bytes): {}", s.path, s.size, s.reason))
        .collect();
    out.warnings = x.warnings;
    out.sbom.components = x.components;
    out.sbom.normalize();
    out.sbom_source = "extracted".into();
    out
}

/// Runs `extract` with a visitor that feeds every file to the rules and
/// the secret detectors, then assembles the scan.
fn scan_with(
    subject: &str,
    rules: Option<&Rules>,
    extract: impl FnOnce(
        &mut dyn bulwark_extract::FileVisitor,
    ) -> Result<Extraction, bulwark_extract::ExtractError>,
) -> Result<ArtifactScan, ScanError> {
    let mut out = ArtifactScan {
        sbom: Sbom {
            subject: subject.to_owned(),
            ..Sbom::default()
        },
        ..ArtifactScan::default()
    };
    let mut origins = Origins::default();
    let mut scanner = rules.map(Scanner::new);
    let x = extract(&mut |p: &str, layer: usize, data: &[u8]| {
        scan_file(scanner.as_mut(), p, layer, data, &mut out, &mut origins);
        Ok(())
    })?;
    Ok(finish(out, x, &origins))
}

/// Scans the artifact at `path` (a file, archive or OCI layout directory):
/// every file's bytes go through `rules` (when given) and the secret
/// detectors; the components found become the SBOM, named `subject`.
pub fn scan_artifact(
    path: &Path,
    subject: &str,
    rules: Option<&Rules>,
    limits: &Limits,
) -> Result<ArtifactScan, ScanError> {
    scan_with(subject, rules, |v| {
        bulwark_extract::extract(path, limits, v)
    })
}

/// [`scan_artifact`] for a path that may be a plain directory (an
/// unpacked root filesystem): the directory is first packed into a
/// temporary tar (symlinks kept as links, never followed), so every
/// artifact goes through the same extractor and limits. Files and OCI
/// layout directories go straight to [`scan_artifact`].
pub fn scan_path(
    path: &Path,
    subject: &str,
    rules: Option<&Rules>,
    limits: &Limits,
) -> Result<ArtifactScan, ScanError> {
    if !path.is_dir() || path.join("oci-layout").is_file() {
        return scan_artifact(path, subject, rules, limits);
    }
    let pack = |path: &Path| -> std::io::Result<tempfile::NamedTempFile> {
        let tmp = tempfile::NamedTempFile::new()?;
        let mut b = tar::Builder::new(std::io::BufWriter::new(tmp.reopen()?));
        b.follow_symlinks(false);
        b.mode(tar::HeaderMode::Deterministic);
        b.append_dir_all(".", path)?;
        b.into_inner()?
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        Ok(tmp)
    };
    let tmp = pack(path).map_err(|e| ScanError::Pack(path.display().to_string(), e))?;
    scan_artifact(tmp.path(), subject, rules, limits)
}

/// [`scan_artifact`] over bytes in memory.
pub fn scan_bytes(
    data: &[u8],
    subject: &str,
    rules: Option<&Rules>,
    limits: &Limits,
) -> Result<ArtifactScan, ScanError> {
    scan_with(subject, rules, |v| {
        bulwark_extract::extract_reader(std::io::Cursor::new(data), subject, limits, v)
    })
}

/// Adds an uploaded SBOM's components to a scan (the union: what the
/// builder declared and what the bytes show).
pub fn merge_sbom(scan: &mut ArtifactScan, uploaded: Sbom) {
    let extracted = !scan.sbom.components.is_empty();
    scan.sbom.components.extend(uploaded.components);
    scan.sbom.normalize();
    scan.sbom_source = if extracted {
        "uploaded+extracted"
    } else {
        "uploaded"
    }
    .into();
}

fn level(s: SeverityLevel) -> Severity {
    match s {
        SeverityLevel::Unknown | SeverityLevel::None => Severity::None,
        SeverityLevel::Low => Severity::Low,
        SeverityLevel::Medium => Severity::Medium,
        SeverityLevel::High => Severity::High,
        SeverityLevel::Critical => Severity::Critical,
    }
}

/// Matches components against the advisories. Findings whose version
/// could not be compared are kept (failing closed) with the reason in the
/// summary; RustSec's informational notices (unmaintained, unsound) are not
/// vulnerabilities and are returned apart, as `id: purl (kind)` lines.
pub fn vulnerabilities(
    db: &AdvisoryDb,
    components: &[Component],
) -> (Vec<VulnerabilityFinding>, Vec<String>) {
    let mut vulns = Vec::new();
    let mut notices = Vec::new();
    for f in db.scan(components) {
        if let Some(kind) = &f.informational {
            notices.push(format!("{}: {} ({kind})", f.primary_id, f.purl));
            continue;
        }
        let summary = match &f.status {
            FindingStatus::Affected => f.summary.clone(),
            FindingStatus::Unknown(why) => format!(
                "{} [version not comparable: {why}; treated as affected]",
                f.summary
            ),
        };
        vulns.push(VulnerabilityFinding {
            aliases: f
                .ids
                .iter()
                .filter(|i| **i != f.primary_id)
                .cloned()
                .collect(),
            id: f.primary_id,
            summary,
            severity: level(f.severity.level),
            score: f.severity.score,
            known_exploited: f.known_exploited,
            purl: f.purl,
            fixed: f.fixed_versions,
        });
    }
    (vulns, notices)
}

/// The gate's input: the stored scan's malware and secrets plus the
/// vulnerabilities of its components under today's advisories.
pub fn findings(scan: &ArtifactScan, db: &AdvisoryDb) -> (Findings, Vec<String>) {
    let (vulnerabilities, notices) = vulnerabilities(db, &scan.sbom.components);
    (
        Findings {
            vulnerabilities,
            malware: scan.malware.clone(),
            secrets: scan.secrets.clone(),
        },
        notices,
    )
}
