//! Python distribution metadata (`*.dist-info/METADATA`,
//! `*.egg-info/PKG-INFO`): RFC 822-style headers.

use bulwark_sbom::{Component, ComponentEcosystem};

/// The distribution described by a METADATA or PKG-INFO file; the licence
/// is taken from `License-Expression` (PEP 639, SPDX) only.
pub(super) fn parse_metadata(text: &str) -> Result<Component, String> {
    let (mut name, mut version, mut license) = (None, None, None);
    for line in text.lines() {
        if line.trim().is_empty() {
            break; // the body (long description) follows the headers
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let slot = match key.to_ascii_lowercase().as_str() {
            "name" => &mut name,
            "version" => &mut version,
            "license-expression" => &mut license,
            _ => continue,
        };
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value);
        }
    }
    let valid = |s: &str| !s.chars().any(|c| c.is_whitespace() || c.is_control());
    match (name, version) {
        (Some(name), Some(version)) if valid(name) && valid(version) => {
            let mut c = Component::new(ComponentEcosystem::Pypi, name, version, &[]);
            c.license = license.map(str::to_owned);
            Ok(c)
        }
        _ => Err("no valid Name and Version headers".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers_only() {
        let c = parse_metadata(
            "Metadata-Version: 2.4\nName: Requests_OAuth\nVersion: 2.0\nLicense-Expression: MIT\n\nName: not-me\n",
        )
        .unwrap();
        assert_eq!(
            (c.name.as_str(), c.version.as_str()),
            ("Requests_OAuth", "2.0")
        );
        assert_eq!(c.purl, "pkg:pypi/requests-oauth@2.0");
        assert_eq!(c.license.as_deref(), Some("MIT"));
        assert!(parse_metadata("Name: x\n\nVersion: 1\n").is_err());
    }
}
