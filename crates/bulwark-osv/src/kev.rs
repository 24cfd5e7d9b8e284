//! CISA's Known Exploited Vulnerabilities (KEV) catalog.
//!
//! The public JSON format is `{"catalogVersion": "...", "vulnerabilities":
//! [{"cveID": "CVE-2021-44228", ...}, ...]}`; only `cveID` is used. A
//! finding any of whose ids is in the catalog is `known_exploited`.

use std::collections::HashSet;

use serde::Deserialize;

use crate::db::AdvisoryDb;
use crate::error::{Error, MAX_KEV_BYTES};

/// What importing a KEV catalog changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KevReport {
    /// The catalog's `catalogVersion`.
    pub catalog_version: Option<String>,
    /// CVE ids in the catalog.
    pub cves: usize,
    /// Advisories (ids, sorted) with an id or alias that entered or left the
    /// catalog: their findings' `known_exploited` may have changed.
    pub changed_ids: Vec<String>,
}

#[derive(Deserialize)]
struct Catalog {
    #[serde(rename = "catalogVersion")]
    catalog_version: Option<String>,
    vulnerabilities: Vec<Vulnerability>,
}

#[derive(Deserialize)]
struct Vulnerability {
    #[serde(rename = "cveID")]
    cve_id: String,
}

/// `CVE-YYYY-NNNN…` with at least four digits in the sequence number.
fn valid_cve(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, seq)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && (4..=19).contains(&seq.len())
        && year.bytes().chain(seq.bytes()).all(|b| b.is_ascii_digit())
}

/// Whether `bytes` look like a CISA KEV catalog (a JSON object naming its
/// `catalogVersion` near the top) rather than OSV, so one import command
/// can take either.
pub fn is_kev_catalog(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    bytes.first() == Some(&b'{') && head.windows(16).any(|w| w == b"\"catalogVersion\"")
}

impl AdvisoryDb {
    /// Replaces the known-exploited set with the catalog in `bytes` (the
    /// whole catalog: CVEs absent from it are no longer known exploited).
    pub fn import_kev(&mut self, bytes: &[u8]) -> Result<KevReport, Error> {
        if bytes.len() > MAX_KEV_BYTES {
            return Err(Error::Kev {
                message: format!("{} bytes, more than {MAX_KEV_BYTES}", bytes.len()),
            });
        }
        let catalog: Catalog = serde_json::from_slice(bytes).map_err(|e| Error::Kev {
            message: e.to_string(),
        })?;
        let mut cves = HashSet::with_capacity(catalog.vulnerabilities.len());
        for (i, v) in catalog.vulnerabilities.into_iter().enumerate() {
            if !valid_cve(&v.cve_id) {
                return Err(Error::Kev {
                    message: format!(
                        "vulnerabilities[{i}].cveID: {:?} is not a CVE id",
                        crate::model::shorten(&v.cve_id)
                    ),
                });
            }
            cves.insert(v.cve_id);
        }
        let changed: HashSet<&String> = cves.symmetric_difference(&self.kev).collect();
        // Whole alias groups: a PYSEC advisory whose GHSA alias names the CVE
        // is affected too.
        let groups: HashSet<u32> = self
            .entries
            .iter()
            .zip(&self.group)
            .filter(|(e, _)| {
                changed.contains(&e.advisory.id)
                    || e.advisory.aliases.iter().any(|a| changed.contains(a))
            })
            .map(|(_, &g)| g)
            .collect();
        let mut changed_ids: Vec<String> = self
            .entries
            .iter()
            .zip(&self.group)
            .filter(|(_, g)| groups.contains(g))
            .map(|(e, _)| e.advisory.id.clone())
            .collect();
        changed_ids.sort_unstable();
        let report = KevReport {
            catalog_version: catalog.catalog_version.clone(),
            cves: cves.len(),
            changed_ids,
        };
        self.kev = cves;
        self.kev_catalog_version = catalog.catalog_version;
        Ok(report)
    }
}
