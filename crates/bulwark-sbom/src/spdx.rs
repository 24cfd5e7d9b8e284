//! SPDX 2.3 JSON: reading and writing.

use std::collections::HashSet;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;
use uuid::Uuid;

use crate::json::Obj;
use crate::write::{checked_component, utc_timestamp};
use crate::{Component, ComponentEcosystem, Purl, Sbom, SbomError};

/// How the writer records [`Component::found_in`] in `sourceInfo`, and
/// the reader recognises it.
const FOUND_IN_PREFIX: &str = "found in: ";

/// Reads a document whose top level has `spdxVersion`.
pub(crate) fn read(root: Obj<'_, '_>) -> Result<Sbom, SbomError> {
    let version = root.req_str("spdxVersion")?;
    if version != "SPDX-2.3" {
        return Err(SbomError::UnsupportedSpecVersion {
            format: "SPDX",
            path: "spdxVersion".into(),
            found: version.into(),
            supported: "SPDX-2.3",
        });
    }
    if root.req_str("dataLicense")? != "CC0-1.0" {
        return Err(root.invalid("dataLicense", "must be \"CC0-1.0\""));
    }
    if root.req_str("SPDXID")? != "SPDXRef-DOCUMENT" {
        return Err(root.invalid("SPDXID", "must be \"SPDXRef-DOCUMENT\""));
    }
    let name = root.req_str("name")?;
    let namespace = root.req_str("documentNamespace")?;
    if namespace.contains('#') || !namespace.contains(':') {
        return Err(root.invalid(
            "documentNamespace",
            "must be an absolute URI without a `#` part",
        ));
    }
    creation_info(root)?;

    let mut described: Vec<&str> = Vec::new();
    if let Some(ids) = root.opt_array("documentDescribes")? {
        let path = root.path.key("documentDescribes");
        for (i, id) in ids.iter().enumerate() {
            described.push(crate::json::string(id, &path.index(i), root.limits)?);
        }
    }
    if let Some(relationships) = root.opt_array("relationships")? {
        let path = root.path.key("relationships");
        for (i, item) in relationships.iter().enumerate() {
            let path = path.index(i);
            let rel = Obj::new(item, &path, root.limits)?;
            let from = rel.req_str("spdxElementId")?;
            let ty = rel.req_str("relationshipType")?;
            let to = rel.req_str("relatedSpdxElement")?;
            match ty {
                "DESCRIBES" if from == "SPDXRef-DOCUMENT" => described.push(to),
                "DESCRIBED_BY" if to == "SPDXRef-DOCUMENT" => described.push(from),
                _ => {}
            }
        }
    }

    let mut packages: Vec<(&str, Component)> = Vec::new();
    let mut ids = HashSet::new();
    if let Some(items) = root.opt_array("packages")? {
        let path = root.path.key("packages");
        for (i, item) in items.iter().enumerate() {
            let path = path.index(i);
            if i >= root.limits.max_components {
                return Err(SbomError::TooManyComponents {
                    path: path.to_string(),
                    limit: root.limits.max_components,
                });
            }
            let obj = Obj::new(item, &path, root.limits)?;
            let id = spdx_id(obj)?;
            if !ids.insert(id) {
                return Err(obj.invalid("SPDXID", format!("{id:?} is used more than once")));
            }
            packages.push((id, package(obj)?));
        }
    }

    // The first described element that is a package is the subject; the
    // other packages are its components.
    let subject = described
        .iter()
        .find_map(|d| packages.iter().position(|(id, _)| id == d));
    let mut sbom = Sbom {
        subject: name.to_owned(),
        subject_version: None,
        components: Vec::new(),
    };
    if let Some(index) = subject {
        let (_, subject) = packages.remove(index);
        sbom.subject = subject.name;
        sbom.subject_version = (!subject.version.is_empty()).then_some(subject.version);
    }
    sbom.components = packages.into_iter().map(|(_, c)| c).collect();
    Ok(sbom)
}

/// Checks `creationInfo`: `created` in `YYYY-MM-DDThh:mm:ssZ` and at least
/// one `Person:`, `Organization:` or `Tool:` creator.
fn creation_info(root: Obj<'_, '_>) -> Result<(), SbomError> {
    let path = root.path.key("creationInfo");
    let info = Obj::new(root.req("creationInfo")?, &path, root.limits)?;
    let created = info.req_str("created")?;
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    if time::PrimitiveDateTime::parse(created, format).is_err() {
        return Err(info.invalid(
            "created",
            "must be a UTC date-time like 2024-05-01T12:00:00Z",
        ));
    }
    let Some(creators) = info.opt_array("creators")? else {
        return Err(SbomError::Missing {
            path: path.key("creators").to_string(),
        });
    };
    if creators.is_empty() {
        return Err(info.invalid("creators", "must name at least one creator"));
    }
    let creators_path = path.key("creators");
    for (i, creator) in creators.iter().enumerate() {
        let path = creators_path.index(i);
        let creator = crate::json::string(creator, &path, root.limits)?;
        if !["Person:", "Organization:", "Tool:"]
            .iter()
            .any(|p| creator.starts_with(p))
        {
            return Err(SbomError::Invalid {
                path: path.to_string(),
                reason: "a creator starts with `Person:`, `Organization:` or `Tool:`".into(),
            });
        }
    }
    Ok(())
}

/// `SPDXID`: `SPDXRef-` and then letters, digits, `.` and `-`.
fn spdx_id<'v>(obj: Obj<'v, '_>) -> Result<&'v str, SbomError> {
    let id = obj.req_str("SPDXID")?;
    match id.strip_prefix("SPDXRef-") {
        Some(rest)
            if !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')) =>
        {
            Ok(id)
        }
        _ => Err(obj.invalid(
            "SPDXID",
            "must be `SPDXRef-` followed by letters, digits, `.` and `-`",
        )),
    }
}

/// One element of `packages`.
fn package(obj: Obj<'_, '_>) -> Result<Component, SbomError> {
    let name = obj.req_str("name")?;
    if name.is_empty() {
        return Err(obj.invalid("name", "must not be empty"));
    }
    obj.req_str("downloadLocation")?;
    obj.opt_bool("filesAnalyzed")?;
    let version = obj.opt_str("versionInfo")?;

    let mut purl = None;
    if let Some(refs) = obj.opt_array("externalRefs")? {
        let path = obj.path.key("externalRefs");
        for (i, item) in refs.iter().enumerate() {
            let path = path.index(i);
            let r = Obj::new(item, &path, obj.limits)?;
            let category = r.req_str("referenceCategory")?;
            let ty = r.req_str("referenceType")?;
            let locator = r.req_str("referenceLocator")?;
            if matches!(category, "PACKAGE-MANAGER" | "PACKAGE_MANAGER") && ty == "purl" {
                let parsed = Purl::parse(locator).map_err(|error| SbomError::InvalidPurl {
                    path: path.key("referenceLocator").to_string(),
                    error,
                })?;
                purl.get_or_insert(parsed);
            }
        }
    }

    let mut sha256 = None;
    if let Some(checksums) = obj.opt_array("checksums")? {
        let path = obj.path.key("checksums");
        for (i, item) in checksums.iter().enumerate() {
            let path = path.index(i);
            let checksum = Obj::new(item, &path, obj.limits)?;
            let algorithm = checksum.req_str("algorithm")?;
            let value = checksum.req_str("checksumValue")?;
            if algorithm == "SHA256" {
                if !(value.len() == 64
                    && value
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                {
                    return Err(checksum.invalid(
                        "checksumValue",
                        "a SHA256 checksum is 64 lower-case hex digits",
                    ));
                }
                sha256.get_or_insert_with(|| value.to_owned());
            }
        }
    }

    let asserted = |key: &str| -> Result<Option<String>, SbomError> {
        Ok(obj
            .opt_str(key)?
            .filter(|l| !matches!(*l, "NOASSERTION" | "NONE" | ""))
            .map(str::to_owned))
    };
    let concluded = asserted("licenseConcluded")?;
    let declared = asserted("licenseDeclared")?;
    let found_in = obj
        .opt_str("sourceInfo")?
        .and_then(|s| s.strip_prefix(FOUND_IN_PREFIX))
        .map(str::to_owned);

    let version = version
        .map(str::to_owned)
        .or_else(|| purl.as_ref().and_then(|p| p.version.clone()))
        .unwrap_or_default();
    let (ecosystem, purl) = match purl {
        Some(purl) => (purl.ecosystem(), purl),
        None => (
            ComponentEcosystem::Generic,
            Purl::for_component(ComponentEcosystem::Generic, name, &version, &[]),
        ),
    };
    Ok(Component {
        ecosystem,
        name: name.to_owned(),
        version,
        purl: purl.to_string(),
        license: concluded.or(declared),
        sha256,
        found_in,
    })
}

/// Whether `s` is an SPDX licence expression built from licence-list
/// style identifiers (`MIT`, `(Apache-2.0 OR MIT)`,
/// `GPL-2.0-or-later WITH Classpath-exception-2.0`). `LicenseRef-`s need
/// their text in the document, which a [`Component`] does not carry, so
/// they do not count. Identifiers are not checked against the SPDX licence
/// list.
fn is_writable_license(s: &str) -> bool {
    let spaced = s.replace('(', " ( ").replace(')', " ) ");
    let mut expect_operand = true;
    let mut depth = 0usize;
    for token in spaced.split_ascii_whitespace() {
        match token {
            "(" if expect_operand => depth += 1,
            ")" if !expect_operand && depth > 0 => depth -= 1,
            "AND" | "OR" | "WITH" if !expect_operand => {
                expect_operand = true;
            }
            id if expect_operand
                && !id.starts_with("LicenseRef-")
                && !id.starts_with("DocumentRef-")
                && !id.trim_end_matches('+').is_empty()
                && id
                    .trim_end_matches('+')
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')) =>
            {
                expect_operand = false;
            }
            _ => return false,
        }
    }
    !expect_operand && depth == 0
}

impl Sbom {
    /// The SPDX 2.3 JSON document of this SBOM. Deterministic: the
    /// namespace UUID and creation time are the caller's. The subject is a
    /// package the document `DESCRIBES` and which `CONTAINS` every
    /// component; an unnamed subject is written as `unnamed`. Licences go
    /// to `licenseDeclared` (`NOASSERTION` when not a plain SPDX
    /// expression, see [`Component::license`]), the location to
    /// `sourceInfo` as `found in: <path>`.
    ///
    /// The document namespace is `https://spdx.org/spdxdocs/bulwark-<uuid>`,
    /// the form the SPDX specification suggests for tools without their own
    /// domain.
    ///
    /// Fails as [`Sbom::to_cyclonedx_1_6`] does.
    pub fn to_spdx_2_3(
        &self,
        namespace: Uuid,
        created: OffsetDateTime,
    ) -> Result<Value, SbomError> {
        let subject_name = if self.subject.is_empty() {
            "unnamed"
        } else {
            &self.subject
        };
        let mut subject = package_json("SPDXRef-Subject", subject_name);
        if let Some(version) = &self.subject_version {
            subject.insert("versionInfo".into(), version.clone().into());
        }
        subject.insert("primaryPackagePurpose".into(), "APPLICATION".into());

        let mut packages = vec![Value::Object(subject)];
        let mut relationships = vec![json!({
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-Subject",
        })];
        for (i, c) in self.components.iter().enumerate() {
            let (purl, sha256) = checked_component(c, i)?;
            let id = format!("SPDXRef-Package-{i}");
            let mut out = package_json(&id, &c.name);
            if !c.version.is_empty() {
                out.insert("versionInfo".into(), c.version.clone().into());
            }
            if let Some(license) = c.license.as_deref().filter(|l| is_writable_license(l)) {
                out.insert("licenseDeclared".into(), license.into());
            }
            out.insert(
                "externalRefs".into(),
                json!([{
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": purl,
                }]),
            );
            if let Some(sha256) = sha256 {
                out.insert(
                    "checksums".into(),
                    json!([{ "algorithm": "SHA256", "checksumValue": sha256 }]),
                );
            }
            if let Some(location) = &c.found_in {
                out.insert(
                    "sourceInfo".into(),
                    format!("{FOUND_IN_PREFIX}{location}").into(),
                );
            }
            packages.push(Value::Object(out));
            relationships.push(json!({
                "spdxElementId": "SPDXRef-Subject",
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": id,
            }));
        }

        Ok(json!({
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": subject_name,
            "documentNamespace": format!("https://spdx.org/spdxdocs/bulwark-{namespace}"),
            "creationInfo": {
                "created": utc_timestamp(created)?,
                "creators": [format!("Tool: {}-{}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))],
            },
            "packages": packages,
            "relationships": relationships,
        }))
    }
}

/// A package with what every package this crate writes has.
fn package_json(id: &str, name: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("SPDXID".into(), id.into());
    out.insert("name".into(), name.into());
    out.insert("downloadLocation".into(), "NOASSERTION".into());
    out.insert("filesAnalyzed".into(), false.into());
    out.insert("licenseConcluded".into(), "NOASSERTION".into());
    out.insert("licenseDeclared".into(), "NOASSERTION".into());
    out.insert("copyrightText".into(), "NOASSERTION".into());
    out
}

#[cfg(test)]
mod tests {
    use super::is_writable_license;

    #[test]
    fn writable_licenses() {
        for ok in [
            "MIT",
            "(Apache-2.0 OR MIT)",
            "GPL-2.0+ WITH Classpath-exception-2.0",
            "MIT AND (BSD-3-Clause OR ISC)",
        ] {
            assert!(is_writable_license(ok), "{ok}");
        }
        for bad in [
            "",
            "GPLv2 or later",
            "MIT AND",
            "(MIT",
            "MIT)",
            "LicenseRef-acme",
            "MIT OR OR ISC",
            "Public Domain",
        ] {
            assert!(!is_writable_license(bad), "{bad}");
        }
    }
}
