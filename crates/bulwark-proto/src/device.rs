//! Enrollment, check-in and inventory messages.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::DeviceId;

/// Longest accepted string field (hostnames, versions, names…), in bytes.
pub const MAX_STRING_LEN: usize = 256;
/// Most packages one inventory may list.
pub const MAX_PACKAGES: usize = 20_000;
/// Longest accepted PEM CSR, in bytes.
pub const MAX_CSR_LEN: usize = 8 * 1024;

/// A message field that breaks a limit; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct LimitError {
    /// JSON path of the field, e.g. `inventory.packages[3].name`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

fn check_str(field: &str, value: &str, errors: &mut Vec<LimitError>) {
    if value.len() > MAX_STRING_LEN {
        errors.push(LimitError {
            field: field.to_owned(),
            problem: format!("longer than {MAX_STRING_LEN} bytes"),
        });
    } else if value.chars().any(char::is_control) {
        errors.push(LimitError {
            field: field.to_owned(),
            problem: "contains control characters".to_owned(),
        });
    }
}

fn check_opt(field: &str, value: &Option<String>, errors: &mut Vec<LimitError>) {
    if let Some(v) = value {
        check_str(field, v, errors);
    }
}

/// Sent once, without a client certificate, to trade a one-time enrollment
/// token and a CSR for a device certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time enrollment token (`bwe_…`).
    pub token: String,
    /// PKCS#10 certificate signing request, PEM. Its subject is ignored: the
    /// server names the device.
    pub csr_pem: String,
    /// The device's hostname, informational.
    #[serde(default)]
    pub hostname: Option<String>,
}

impl EnrollRequest {
    /// Checks size limits; reports every problem.
    pub fn validate(&self) -> Result<(), Vec<LimitError>> {
        let mut errors = Vec::new();
        check_str("token", &self.token, &mut errors);
        if self.csr_pem.len() > MAX_CSR_LEN {
            errors.push(LimitError {
                field: "csr_pem".into(),
                problem: format!("longer than {MAX_CSR_LEN} bytes"),
            });
        }
        check_opt("hostname", &self.hostname, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The server's answer to a successful enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollResponse {
    /// The id the server assigned; also in the certificate's SAN.
    pub device_id: DeviceId,
    /// The device certificate, PEM, signed by the device CA.
    pub certificate_pem: String,
    /// The device CA certificate, PEM.
    pub ca_pem: String,
    /// How often to check in.
    pub poll_interval_secs: u32,
}

/// Operating system identity, from os-release(5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OsInfo {
    /// `ID`, e.g. `debian`.
    #[serde(default)]
    pub id: Option<String>,
    /// `VERSION_ID`, e.g. `12`.
    #[serde(default)]
    pub version_id: Option<String>,
    /// `PRETTY_NAME`.
    #[serde(default)]
    pub pretty_name: Option<String>,
}

/// One installed package as the device reports it.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct InstalledPackage {
    /// Package name.
    pub name: String,
    /// Version string in the package manager's own syntax.
    pub version: String,
    /// Architecture, when the database records one.
    #[serde(default)]
    pub arch: Option<String>,
    /// `dpkg`, `opkg` or `apk`.
    pub source: String,
}

/// What a device runs: OS, kernel, hardware architecture and packages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// From os-release.
    #[serde(default)]
    pub os: OsInfo,
    /// Kernel release (`uname -r`).
    #[serde(default)]
    pub kernel: Option<String>,
    /// Machine architecture, e.g. `x86_64`, `aarch64`.
    pub arch: String,
    /// Hostname.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Installed packages, sorted.
    #[serde(default)]
    pub packages: Vec<InstalledPackage>,
}

impl Inventory {
    /// SHA-256 (lowercase hex) of the canonical JSON encoding. Packages are
    /// sorted first, so the digest does not depend on database order.
    pub fn digest(&self) -> String {
        let mut canonical = self.clone();
        canonical.packages.sort();
        // Serializing a struct of strings cannot fail.
        let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    /// Checks size limits; reports every problem (at most 20).
    pub fn validate(&self) -> Result<(), Vec<LimitError>> {
        let mut errors = Vec::new();
        self.validate_into("inventory", &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn validate_into(&self, at: &str, errors: &mut Vec<LimitError>) {
        check_opt(&format!("{at}.os.id"), &self.os.id, errors);
        check_opt(&format!("{at}.os.version_id"), &self.os.version_id, errors);
        check_opt(
            &format!("{at}.os.pretty_name"),
            &self.os.pretty_name,
            errors,
        );
        check_opt(&format!("{at}.kernel"), &self.kernel, errors);
        check_str(&format!("{at}.arch"), &self.arch, errors);
        check_opt(&format!("{at}.hostname"), &self.hostname, errors);
        if self.packages.len() > MAX_PACKAGES {
            errors.push(LimitError {
                field: format!("{at}.packages"),
                problem: format!("more than {MAX_PACKAGES} packages"),
            });
            return;
        }
        for (i, p) in self.packages.iter().enumerate() {
            if errors.len() >= 20 {
                return;
            }
            check_str(&format!("{at}.packages[{i}].name"), &p.name, errors);
            check_str(&format!("{at}.packages[{i}].version"), &p.version, errors);
            check_opt(&format!("{at}.packages[{i}].arch"), &p.arch, errors);
            if !matches!(p.source.as_str(), "dpkg" | "opkg" | "apk") {
                errors.push(LimitError {
                    field: format!("{at}.packages[{i}].source"),
                    problem: "must be one of dpkg, opkg, apk".into(),
                });
            }
        }
    }
}

/// Periodic check-in, sent over mutual TLS: the device is the certificate's
/// subject, never a field of this message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckinRequest {
    /// The agent's version.
    pub agent_version: String,
    /// `/proc/sys/kernel/random/boot_id`: a change means the device rebooted.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// [`Inventory::digest`] of the device's current inventory.
    pub inventory_digest: String,
    /// The full inventory; sent when the server asked for it.
    #[serde(default)]
    pub inventory: Option<Inventory>,
}

impl CheckinRequest {
    /// Checks size limits and that an included inventory matches its digest.
    pub fn validate(&self) -> Result<(), Vec<LimitError>> {
        let mut errors = Vec::new();
        check_str("agent_version", &self.agent_version, &mut errors);
        check_opt("boot_id", &self.boot_id, &mut errors);
        if self.inventory_digest.len() != 64
            || !self
                .inventory_digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            errors.push(LimitError {
                field: "inventory_digest".into(),
                problem: "must be 64 lowercase hex characters (SHA-256)".into(),
            });
        }
        if let Some(inv) = &self.inventory {
            inv.validate_into("inventory", &mut errors);
            if errors.is_empty() && inv.digest() != self.inventory_digest {
                errors.push(LimitError {
                    field: "inventory_digest".into(),
                    problem: "does not match the inventory sent".into(),
                });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The server's instructions in answer to a check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckinResponse {
    /// Seconds until the next check-in.
    pub poll_interval_secs: u32,
    /// True when the server does not hold the inventory with this digest:
    /// the agent should check in again at once with the inventory.
    pub send_inventory: bool,
    /// The server's clock, RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub server_time: OffsetDateTime,
    /// Set while the device is quarantined, with the reason: the agent
    /// isolates itself (only the control plane stays reachable) until a
    /// check-in comes back without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<String>,
}

/// Longest free-text detail in an update report.
pub const MAX_DETAIL_LEN: usize = 2048;

/// What a device tells the server about an update: each phase as it
/// starts, and the final outcome (installed, rolled back, refused and why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateReport {
    /// `name@version` of the release (or the target path when unknown).
    pub release: String,
    /// `downloading`, `verifying`, `staging`, `switching`, `smoke_testing`,
    /// `committing`, `rolling_back`, `installed`, `rolled_back`, `failed` or
    /// `refused`.
    pub phase: String,
    /// Final outcome code, e.g. `installed`, `smoke-failed`, or the attack
    /// a refusal detected (`rollback`, `freeze`, `mix-and-match`,
    /// `arbitrary-software`, `endless-data`, `threshold`, `unlisted-target`).
    #[serde(default)]
    pub outcome: Option<String>,
    /// Why, in words.
    #[serde(default)]
    pub detail: Option<String>,
}

/// Phases a device may report.
pub const UPDATE_PHASES: &[&str] = &[
    "downloading",
    "verifying",
    "staging",
    "switching",
    "smoke_testing",
    "committing",
    "rolling_back",
    "installed",
    "rolled_back",
    "failed",
    "refused",
];

impl UpdateReport {
    /// Checks lengths and the phase name.
    pub fn validate(&self) -> Result<(), Vec<LimitError>> {
        let mut errors = Vec::new();
        check_str("release", &self.release, &mut errors);
        if !UPDATE_PHASES.contains(&self.phase.as_str()) {
            errors.push(LimitError {
                field: "phase".into(),
                problem: format!("must be one of {}", UPDATE_PHASES.join(", ")),
            });
        }
        check_opt("outcome", &self.outcome, &mut errors);
        if self
            .detail
            .as_ref()
            .is_some_and(|d| d.len() > MAX_DETAIL_LEN)
        {
            errors.push(LimitError {
                field: "detail".into(),
                problem: format!("longer than {MAX_DETAIL_LEN} bytes"),
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str) -> InstalledPackage {
        InstalledPackage {
            name: name.into(),
            version: "1.0".into(),
            arch: None,
            source: "dpkg".into(),
        }
    }

    #[test]
    fn digest_ignores_package_order() {
        let a = Inventory {
            arch: "x86_64".into(),
            packages: vec![pkg("a"), pkg("b")],
            ..Default::default()
        };
        let b = Inventory {
            arch: "x86_64".into(),
            packages: vec![pkg("b"), pkg("a")],
            ..Default::default()
        };
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn a_full_inventory_fits_the_default_body_limit() {
        let packages = (0..MAX_PACKAGES)
            .map(|i| InstalledPackage {
                name: format!("lib{i:05}-extra-long-package-name"),
                version: "1:2.38.1-5+deb12u3".into(),
                arch: Some("amd64".into()),
                source: "dpkg".into(),
            })
            .collect();
        let inv = Inventory {
            arch: "x86_64".into(),
            packages,
            ..Default::default()
        };
        let req = CheckinRequest {
            agent_version: "0.1.0".into(),
            boot_id: None,
            inventory_digest: inv.digest(),
            inventory: Some(inv),
        };
        assert!(req.validate().is_ok());
        // The server's default max_body_bytes is 4 MiB.
        assert!(serde_json::to_vec(&req).unwrap().len() < 4 << 20);
    }

    #[test]
    fn checkin_rejects_mismatched_digest_and_bad_fields() {
        let inv = Inventory {
            arch: "x86_64".into(),
            ..Default::default()
        };
        let mut req = CheckinRequest {
            agent_version: "0.1.0".into(),
            boot_id: None,
            inventory_digest: "0".repeat(64),
            inventory: Some(inv.clone()),
        };
        let errs = req.validate().unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "inventory_digest: does not match the inventory sent"
        );
        req.inventory_digest = inv.digest();
        assert!(req.validate().is_ok());
        req.agent_version = "x".repeat(MAX_STRING_LEN + 1);
        req.boot_id = Some("a\nb".into());
        let errs: Vec<String> = req
            .validate()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "agent_version: longer than 256 bytes".to_owned(),
                "boot_id: contains control characters".to_owned(),
            ]
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<CheckinRequest>(
            r#"{"agent_version":"1","inventory_digest":"x","device_id":"evil"}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown field `device_id`"),
            "{err}"
        );
    }
}
