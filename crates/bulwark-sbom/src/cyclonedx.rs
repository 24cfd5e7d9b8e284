//! CycloneDX 1.5 / 1.6 JSON: reading both, writing 1.6.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::json::{JsonPath, Obj, is_sha256_hex};
use crate::write::{checked_component, utc_timestamp};
use crate::{Component, ComponentEcosystem, Limits, Purl, Sbom, SbomError};

/// Component types of CycloneDX 1.5 (`component.type`).
const TYPES_1_5: &[&str] = &[
    "application",
    "framework",
    "library",
    "container",
    "platform",
    "operating-system",
    "device",
    "device-driver",
    "firmware",
    "file",
    "machine-learning-model",
    "data",
];

/// Added by CycloneDX 1.6.
const TYPES_1_6_ONLY: &[&str] = &["cryptographic-asset"];

/// Reads a document whose top level has `bomFormat`.
pub(crate) fn read(root: Obj<'_, '_>) -> Result<Sbom, SbomError> {
    let format = root.req_str("bomFormat")?;
    if format != "CycloneDX" {
        return Err(SbomError::WrongBomFormat {
            found: format.into(),
        });
    }
    let v1_6 = match root.req_str("specVersion")? {
        "1.5" => false,
        "1.6" => true,
        other => {
            return Err(SbomError::UnsupportedSpecVersion {
                format: "CycloneDX",
                path: "specVersion".into(),
                found: other.into(),
                supported: "1.5, 1.6",
            });
        }
    };
    let mut reader = Reader {
        limits: root.limits,
        v1_6,
        count: 0,
        components: Vec::new(),
    };

    let mut sbom = Sbom::default();
    if let Some(metadata) = root.map.get("metadata") {
        let path = root.path.key("metadata");
        let metadata = Obj::new(metadata, &path, root.limits)?;
        if let Some(subject) = metadata.map.get("component") {
            let path = path.key("component");
            let subject = Obj::new(subject, &path, root.limits)?;
            reader.check_type(subject)?;
            sbom.subject = full_name(subject)?;
            sbom.subject_version = subject.opt_str("version")?.map(str::to_owned);
        }
    }
    if let Some(items) = root.opt_array("components")? {
        reader.components(items, &root.path.key("components"), 1)?;
    }
    sbom.components = reader.components;
    Ok(sbom)
}

/// Walks `components`, recursively, within the limits.
struct Reader<'l> {
    limits: &'l Limits,
    v1_6: bool,
    /// Components seen so far, at every depth.
    count: usize,
    components: Vec<Component>,
}

impl Reader<'_> {
    fn components(
        &mut self,
        items: &[Value],
        path: &JsonPath<'_>,
        depth: usize,
    ) -> Result<(), SbomError> {
        for (i, item) in items.iter().enumerate() {
            let path = path.index(i);
            if depth > self.limits.max_depth {
                return Err(SbomError::TooDeep {
                    path: path.to_string(),
                    limit: self.limits.max_depth,
                });
            }
            self.count += 1;
            if self.count > self.limits.max_components {
                return Err(SbomError::TooManyComponents {
                    path: path.to_string(),
                    limit: self.limits.max_components,
                });
            }
            let obj = Obj::new(item, &path, self.limits)?;
            let component = self.component(obj)?;
            self.components.push(component);
            if let Some(children) = obj.opt_array("components")? {
                self.components(children, &path.key("components"), depth + 1)?;
            }
        }
        Ok(())
    }

    fn check_type(&self, obj: Obj<'_, '_>) -> Result<(), SbomError> {
        let ty = obj.req_str("type")?;
        if TYPES_1_5.contains(&ty) || (self.v1_6 && TYPES_1_6_ONLY.contains(&ty)) {
            Ok(())
        } else {
            Err(obj.invalid("type", format!("{ty:?} is not a component type")))
        }
    }

    fn component(&self, obj: Obj<'_, '_>) -> Result<Component, SbomError> {
        self.check_type(obj)?;
        let name = full_name(obj)?;
        let version = obj.opt_str("version")?;
        let purl = match obj.opt_str("purl")? {
            Some(s) => Some(Purl::parse(s).map_err(|error| SbomError::InvalidPurl {
                path: obj.path.key("purl").to_string(),
                error,
            })?),
            None => None,
        };
        let version = version
            .map(str::to_owned)
            .or_else(|| purl.as_ref().and_then(|p| p.version.clone()))
            .unwrap_or_default();
        let (ecosystem, purl) = match purl {
            Some(purl) => (purl.ecosystem(), purl),
            None => (
                ComponentEcosystem::Generic,
                Purl::for_component(ComponentEcosystem::Generic, &name, &version, &[]),
            ),
        };
        Ok(Component {
            ecosystem,
            name,
            version,
            purl: purl.to_string(),
            license: licenses(obj)?,
            sha256: sha256(obj)?,
            found_in: found_in(obj)?,
        })
    }
}

/// `name`, prefixed with `group/` when there is a group (an npm scope, a
/// Go module path prefix).
fn full_name(obj: Obj<'_, '_>) -> Result<String, SbomError> {
    let name = obj.req_str("name")?;
    if name.is_empty() {
        return Err(obj.invalid("name", "must not be empty"));
    }
    Ok(match obj.opt_str("group")? {
        Some(group) if !group.is_empty() => format!("{group}/{name}"),
        _ => name.to_owned(),
    })
}

/// The SPDX expression of `licenses`: the expression, or the licence ids
/// joined with `AND`. Licences given only by name are not SPDX
/// identifiers and are skipped.
fn licenses(obj: Obj<'_, '_>) -> Result<Option<String>, SbomError> {
    let Some(items) = obj.opt_array("licenses")? else {
        return Ok(None);
    };
    let path = obj.path.key("licenses");
    let mut parts: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = path.index(i);
        let item = Obj::new(item, &path, obj.limits)?;
        if let Some(expression) = item.opt_str("expression")? {
            parts.push(expression.to_owned());
        } else if let Some(license) = item.map.get("license") {
            let path = path.key("license");
            let license = Obj::new(license, &path, obj.limits)?;
            let id = license.opt_str("id")?;
            let name = license.opt_str("name")?;
            match (id, name) {
                (Some(id), _) => parts.push(id.to_owned()),
                (None, Some(_)) => {}
                (None, None) => return Err(license.invalid("id", "a licence needs `id` or `name`")),
            }
        } else {
            return Err(item.invalid(
                "license",
                "a licence choice needs `license` or `expression`",
            ));
        }
    }
    Ok(match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(
            parts
                .iter()
                .map(|p| {
                    if p.contains(' ') {
                        format!("({p})")
                    } else {
                        p.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" AND "),
        ),
    })
}

/// The lower-case SHA-256 from `hashes`, if any.
fn sha256(obj: Obj<'_, '_>) -> Result<Option<String>, SbomError> {
    let Some(items) = obj.opt_array("hashes")? else {
        return Ok(None);
    };
    let path = obj.path.key("hashes");
    let mut found = None;
    for (i, item) in items.iter().enumerate() {
        let path = path.index(i);
        let hash = Obj::new(item, &path, obj.limits)?;
        let alg = hash.req_str("alg")?;
        let content = hash.req_str("content")?;
        if alg == "SHA-256" {
            if !is_sha256_hex(content) {
                return Err(hash.invalid("content", "a SHA-256 is 64 hex digits"));
            }
            found.get_or_insert_with(|| content.to_ascii_lowercase());
        }
    }
    Ok(found)
}

/// The first `evidence.occurrences[].location`.
fn found_in(obj: Obj<'_, '_>) -> Result<Option<String>, SbomError> {
    let Some(evidence) = obj.map.get("evidence") else {
        return Ok(None);
    };
    let path = obj.path.key("evidence");
    let evidence = Obj::new(evidence, &path, obj.limits)?;
    let Some(occurrences) = evidence.opt_array("occurrences")? else {
        return Ok(None);
    };
    let path = path.key("occurrences");
    let mut first = None;
    for (i, item) in occurrences.iter().enumerate() {
        let path = path.index(i);
        let location = Obj::new(item, &path, obj.limits)?.req_str("location")?;
        first.get_or_insert_with(|| location.to_owned());
    }
    Ok(first)
}

impl Sbom {
    /// The CycloneDX 1.6 JSON document of this SBOM. Deterministic: the
    /// serial number and timestamp are the caller's. Every component is a
    /// `library`; the subject, when named, is the `application` in
    /// `metadata.component`; licences are written as expressions, the
    /// location as `evidence.occurrences`.
    ///
    /// Fails when a component's purl does not parse, its SHA-256 is not 64
    /// hex digits, or the timestamp is outside the years 0000–9999: the
    /// output would not be a valid document.
    pub fn to_cyclonedx_1_6(
        &self,
        serial: Uuid,
        timestamp: OffsetDateTime,
    ) -> Result<Value, SbomError> {
        let mut metadata = json!({
            "timestamp": utc_timestamp(timestamp)?,
            "tools": {
                "components": [{
                    "type": "application",
                    "name": env!("CARGO_PKG_NAME"),
                    "version": env!("CARGO_PKG_VERSION"),
                }],
            },
        });
        if !self.subject.is_empty() {
            let mut subject = Map::new();
            subject.insert("type".into(), "application".into());
            subject.insert("bom-ref".into(), "subject".into());
            subject.insert("name".into(), self.subject.clone().into());
            if let Some(version) = &self.subject_version {
                subject.insert("version".into(), version.clone().into());
            }
            metadata["component"] = subject.into();
        }

        let mut components = Vec::with_capacity(self.components.len());
        for (i, c) in self.components.iter().enumerate() {
            let (purl, sha256) = checked_component(c, i)?;
            let mut out = Map::new();
            out.insert("type".into(), "library".into());
            out.insert("bom-ref".into(), format!("component-{i}").into());
            out.insert("name".into(), c.name.clone().into());
            if !c.version.is_empty() {
                out.insert("version".into(), c.version.clone().into());
            }
            out.insert("purl".into(), purl.into());
            if let Some(license) = &c.license {
                out.insert("licenses".into(), json!([{ "expression": license }]));
            }
            if let Some(sha256) = sha256 {
                out.insert(
                    "hashes".into(),
                    json!([{ "alg": "SHA-256", "content": sha256 }]),
                );
            }
            if let Some(location) = &c.found_in {
                out.insert(
                    "evidence".into(),
                    json!({ "occurrences": [{ "location": location }] }),
                );
            }
            components.push(Value::Object(out));
        }

        Ok(json!({
            "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "serialNumber": serial.urn().to_string(),
            "version": 1,
            "metadata": metadata,
            "components": components,
        }))
    }
}
