//! Package URLs (purl-spec): `pkg:type/namespace/name@version?qualifiers#subpath`.
//!
//! [`Purl::parse`] follows the purl-spec parsing rules (split `#`, `?`,
//! `:`, type, `@`, then namespace/name, percent-decoding every component)
//! and then applies the type-specific normalisation of the types Bulwark
//! matches on; [`fmt::Display`] writes the canonical form, so
//! `parse(s).to_string()` is the canonical spelling of `s` and
//! `parse(p.to_string()) == p` for every parsed `p`.

use std::fmt;

use crate::ComponentEcosystem;

/// Longest purl string [`Purl::parse`] accepts, in bytes.
pub const MAX_PURL_LEN: usize = 8 * 1024;

/// Why a string is not a package URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PurlError {
    /// Longer than [`MAX_PURL_LEN`].
    #[error("purl is {len} bytes long, over the limit of {MAX_PURL_LEN}")]
    TooLong {
        /// The input's length in bytes.
        len: usize,
    },
    /// A control character (including tab and newline) appears raw.
    #[error("purl contains a control character at byte {offset}")]
    ControlCharacter {
        /// Byte offset of the character.
        offset: usize,
    },
    /// The scheme is missing or is not `pkg`.
    #[error("purl must start with the scheme `pkg:`")]
    Scheme,
    /// The type is missing.
    #[error("purl has no type")]
    MissingType,
    /// The type has a character outside `[A-Za-z0-9.+-]` or starts with a
    /// digit.
    #[error(
        "purl type {ty:?} is invalid: only ASCII letters, digits, `.`, `+` and `-` are allowed, and it must not start with a digit"
    )]
    InvalidType {
        /// The type as written.
        ty: String,
    },
    /// The name is missing or empty.
    #[error("purl has no name")]
    MissingName,
    /// A `%` is not followed by two hex digits.
    #[error("purl {part} has an invalid percent-encoding")]
    BadPercentEncoding {
        /// Which part: `namespace`, `name`, `version`, `qualifier value`,
        /// `subpath`.
        part: &'static str,
    },
    /// Percent-decoding gave bytes that are not UTF-8.
    #[error("purl {part} is not UTF-8 once percent-decoded")]
    NotUtf8 {
        /// Which part, as in [`PurlError::BadPercentEncoding`].
        part: &'static str,
    },
    /// A qualifier is not `key=value`.
    #[error("purl qualifier {qualifier:?} has no `=`")]
    QualifierWithoutValue {
        /// The qualifier as written.
        qualifier: String,
    },
    /// A qualifier key is empty, has a character outside
    /// `[A-Za-z0-9._-]` or starts with a digit.
    #[error(
        "purl qualifier key {key:?} is invalid: only ASCII letters, digits, `.`, `_` and `-` are allowed, and it must not start with a digit"
    )]
    InvalidQualifierKey {
        /// The key as written.
        key: String,
    },
    /// The same qualifier key appears twice.
    #[error("purl qualifier key {key:?} appears more than once")]
    DuplicateQualifier {
        /// The (lower-cased) key.
        key: String,
    },
}

/// A package URL. [`fmt::Display`] gives the canonical string: lower-case
/// type, percent-encoded segments, qualifiers sorted by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purl {
    /// `deb`, `pypi`, `cargo`, …
    pub ty: String,
    /// Namespace segments (`debian`; an npm `@scope`; Go module path
    /// segments but the last).
    pub namespace: Vec<String>,
    /// The name.
    pub name: String,
    /// The version, when known.
    pub version: Option<String>,
    /// Qualifiers, sorted by key when displayed.
    pub qualifiers: Vec<(String, String)>,
    /// Subpath inside the package (`googleapis/api/annotations`): segments
    /// joined by `/`, without empty, `.` or `..` segments.
    pub subpath: Option<String>,
}

impl Purl {
    /// The purl of a component of `ecosystem`, following each type's rules:
    /// PyPI names are normalised (lower case, `_` → `-`); npm scopes and Go
    /// module paths become namespaces; Debian and Alpine packages get the
    /// distro namespace (and, their names being case-insensitive, a
    /// lower-case name, as [`Purl::parse`] gives).
    pub fn for_component(
        ecosystem: ComponentEcosystem,
        name: &str,
        version: &str,
        qualifiers: &[(&str, &str)],
    ) -> Purl {
        let (namespace, name): (Vec<String>, String) = match ecosystem {
            ComponentEcosystem::Debian => (vec!["debian".into()], name.into()),
            ComponentEcosystem::Alpine => (vec!["alpine".into()], name.into()),
            ComponentEcosystem::Openwrt => (vec!["openwrt".into()], name.into()),
            ComponentEcosystem::Pypi => (vec![], name.into()),
            ComponentEcosystem::Npm => match name.split_once('/') {
                Some((scope, rest)) if scope.starts_with('@') => (vec![scope.into()], rest.into()),
                _ => (vec![], name.into()),
            },
            ComponentEcosystem::Golang => match name.rsplit_once('/') {
                Some((ns, last)) => (ns.split('/').map(str::to_owned).collect(), last.into()),
                None => (vec![], name.into()),
            },
            ComponentEcosystem::Cargo | ComponentEcosystem::Generic => (vec![], name.into()),
        };
        let mut purl = Purl {
            ty: ecosystem.purl_type().into(),
            namespace,
            name,
            version: (!version.is_empty()).then(|| version.into()),
            qualifiers: qualifiers
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| ((*k).to_ascii_lowercase(), (*v).into()))
                .collect(),
            subpath: None,
        };
        purl.normalize();
        purl
    }

    /// Parses a purl string (see the module docs for the rules).
    ///
    /// Type-specific requirements beyond normalisation (a required Debian
    /// namespace, a prohibited PyPI one) are not enforced: real SBOMs break
    /// them (`pkg:golang/stdlib@1.22.1`) and matching does not need them.
    pub fn parse(input: &str) -> Result<Purl, PurlError> {
        if input.len() > MAX_PURL_LEN {
            return Err(PurlError::TooLong { len: input.len() });
        }
        if let Some(offset) = input.bytes().position(|b| b.is_ascii_control()) {
            return Err(PurlError::ControlCharacter { offset });
        }

        let (rest, subpath) = match input.rsplit_once('#') {
            Some((rest, sub)) => (rest, parse_subpath(sub)?),
            None => (input, None),
        };
        let (rest, qualifiers) = match rest.rsplit_once('?') {
            Some((rest, q)) => (rest, parse_qualifiers(q)?),
            None => (rest, Vec::new()),
        };
        let rest = match rest.split_once(':') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("pkg") => rest,
            _ => return Err(PurlError::Scheme),
        };
        // `pkg://type/…` is tolerated, as the spec asks.
        let rest = rest.trim_start_matches('/');
        let (ty, rest) = rest.split_once('/').ok_or(PurlError::MissingType)?;
        if ty.is_empty() {
            return Err(PurlError::MissingType);
        }
        if ty.starts_with(|c: char| c.is_ascii_digit())
            || !ty
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
        {
            return Err(PurlError::InvalidType { ty: ty.into() });
        }
        let ty = ty.to_ascii_lowercase();

        // The version separator is the last `@` of the last segment: an
        // unencoded npm scope (`pkg:npm/@babel/core`) is not a version.
        let rest = rest.trim_matches('/');
        let (path, last) = match rest.rsplit_once('/') {
            Some((path, last)) => (Some(path), last),
            None => (None, rest),
        };
        let (name, version) = match last.rsplit_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (last, None),
        };
        let name = decode(name, "name")?;
        if name.is_empty() {
            return Err(PurlError::MissingName);
        }
        let version = match version {
            Some(v) => Some(decode(v, "version")?).filter(|v| !v.is_empty()),
            None => None,
        };
        let namespace = match path {
            Some(path) => path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| decode(s, "namespace"))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };

        let mut purl = Purl {
            ty,
            namespace,
            name,
            version,
            qualifiers,
            subpath,
        };
        purl.normalize();
        Ok(purl)
    }

    /// The ecosystem this purl's type belongs to: `deb` → Debian, `apk` →
    /// Alpine, `opkg` → OpenWrt, `pypi`, `cargo`, `npm`, `golang`; every
    /// other type is [`ComponentEcosystem::Generic`].
    pub fn ecosystem(&self) -> ComponentEcosystem {
        match self.ty.as_str() {
            "deb" => ComponentEcosystem::Debian,
            "apk" => ComponentEcosystem::Alpine,
            "opkg" => ComponentEcosystem::Openwrt,
            "pypi" => ComponentEcosystem::Pypi,
            "cargo" => ComponentEcosystem::Cargo,
            "npm" => ComponentEcosystem::Npm,
            "golang" => ComponentEcosystem::Golang,
            _ => ComponentEcosystem::Generic,
        }
    }

    /// The name as the ecosystem spells it, the inverse of
    /// [`Purl::for_component`]: npm `@scope/name`, the full Go module path;
    /// the distro namespace of `deb`, `apk` and `opkg` is not part of the
    /// name; other types join namespace and name with `/`.
    pub fn component_name(&self) -> String {
        match self.ecosystem() {
            ComponentEcosystem::Debian
            | ComponentEcosystem::Alpine
            | ComponentEcosystem::Openwrt => self.name.clone(),
            _ => {
                let mut out = String::new();
                for ns in &self.namespace {
                    out.push_str(ns);
                    out.push('/');
                }
                out.push_str(&self.name);
                out
            }
        }
    }

    /// Applies the purl-spec normalisation of the types whose names are
    /// case-insensitive, and sorts the qualifiers.
    fn normalize(&mut self) {
        match self.ty.as_str() {
            "pypi" => self.name = self.name.to_ascii_lowercase().replace('_', "-"),
            "deb" | "apk" | "bitbucket" | "github" => {
                for ns in &mut self.namespace {
                    ns.make_ascii_lowercase();
                }
                self.name.make_ascii_lowercase();
            }
            _ => {}
        }
        self.qualifiers.sort();
    }
}

/// Parses the part after `#`.
fn parse_subpath(sub: &str) -> Result<Option<String>, PurlError> {
    let mut segments = Vec::new();
    for segment in sub.split('/') {
        let segment = decode(segment, "subpath")?;
        if !matches!(segment.as_str(), "" | "." | "..") {
            segments.push(segment);
        }
    }
    Ok((!segments.is_empty()).then(|| segments.join("/")))
}

/// Parses the part after `?`: keys are lower-cased, empty values dropped,
/// duplicate keys refused; the result is sorted by key.
fn parse_qualifiers(q: &str) -> Result<Vec<(String, String)>, PurlError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (key, value) =
            pair.split_once('=')
                .ok_or_else(|| PurlError::QualifierWithoutValue {
                    qualifier: pair.into(),
                })?;
        if key.is_empty()
            || key.starts_with(|c: char| c.is_ascii_digit())
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(PurlError::InvalidQualifierKey { key: key.into() });
        }
        out.push((key.to_ascii_lowercase(), decode(value, "qualifier value")?));
    }
    // Sorting first keeps the duplicate check linear on hostile input.
    out.sort();
    if let Some(pair) = out.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(PurlError::DuplicateQualifier {
            key: pair[0].0.clone(),
        });
    }
    out.retain(|(_, v)| !v.is_empty());
    Ok(out)
}

/// Percent-decodes one purl component.
fn decode(s: &str, part: &'static str) -> Result<String, PurlError> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(PurlError::BadPercentEncoding { part })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PurlError::NotUtf8 { part })
}

/// Percent-encodes everything but the purl-spec's unreserved characters
/// (and `:` which need not be encoded).
fn encode(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            write!(f, "{}", b as char)?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Purl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pkg:{}/", self.ty.to_ascii_lowercase())?;
        for ns in &self.namespace {
            encode(f, ns)?;
            f.write_str("/")?;
        }
        encode(f, &self.name)?;
        if let Some(v) = &self.version {
            f.write_str("@")?;
            encode(f, v)?;
        }
        let mut q: Vec<&(String, String)> = self.qualifiers.iter().collect();
        q.sort();
        for (i, (k, v)) in q.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            f.write_str(k)?;
            f.write_str("=")?;
            encode(f, v)?;
        }
        if let Some(sub) = &self.subpath {
            f.write_str("#")?;
            for (i, segment) in sub.split('/').enumerate() {
                if i > 0 {
                    f.write_str("/")?;
                }
                encode(f, segment)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        let p = |e, n, v, q: &[(&str, &str)]| Purl::for_component(e, n, v, q).to_string();
        assert_eq!(
            p(
                ComponentEcosystem::Debian,
                "libc6",
                "2.36-9+deb12u4",
                &[("arch", "amd64")]
            ),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"
        );
        assert_eq!(
            p(ComponentEcosystem::Pypi, "Django_Rest", "3.0", &[]),
            "pkg:pypi/django-rest@3.0"
        );
        assert_eq!(
            p(ComponentEcosystem::Npm, "@angular/core", "16.0.0", &[]),
            "pkg:npm/%40angular/core@16.0.0"
        );
        assert_eq!(
            p(
                ComponentEcosystem::Golang,
                "golang.org/x/net",
                "v0.17.0",
                &[]
            ),
            "pkg:golang/golang.org/x/net@v0.17.0"
        );
        assert_eq!(
            p(ComponentEcosystem::Cargo, "serde", "1.0.0", &[]),
            "pkg:cargo/serde@1.0.0"
        );
    }
}
