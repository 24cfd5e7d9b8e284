//! Parsing one advisory from bytes: pure, bounded, never panics.

use serde::Deserialize;

use crate::error::{AdvisoryError, MAX_ADVISORY_BYTES};
use crate::model::{Advisory, valid_id};

/// The serialization of one advisory file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// OSV JSON (`.json`).
    Json,
    /// OSV YAML (`.yaml`, `.yml`), as the PyPA advisory database uses.
    Yaml,
}

impl Format {
    /// The format a file name's extension implies, `None` for any other file.
    pub fn from_path(path: &str) -> Option<Format> {
        let ext = path.rsplit_once('.')?.1;
        if ext.eq_ignore_ascii_case("json") {
            Some(Format::Json)
        } else if ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml") {
            Some(Format::Yaml)
        } else {
            None
        }
    }
}

/// Parses and validates one OSV advisory.
///
/// This is the crate's fuzzing entry point: pure over `bytes`, at most
/// [`MAX_ADVISORY_BYTES`] are accepted, YAML is read with
/// `serde-saphyr`'s default budget (depth, node, alias limits), and every
/// failure is an [`AdvisoryError`] naming the advisory and the field.
pub fn parse_advisory(bytes: &[u8], format: Format) -> Result<Advisory, AdvisoryError> {
    if bytes.len() > MAX_ADVISORY_BYTES {
        return Err(AdvisoryError::TooLarge { len: bytes.len() });
    }
    if format == Format::Json && bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        // serde would read a struct from an array too; an advisory is an object.
        return Err(syntax(bytes, format, "the document is not a JSON object"));
    }
    let advisory: Advisory = match format {
        Format::Json => serde_json::from_slice(bytes).map_err(|e| syntax(bytes, format, e))?,
        Format::Yaml => serde_saphyr::from_slice(bytes).map_err(|e| syntax(bytes, format, e))?,
    };
    advisory.validate()?;
    Ok(advisory)
}

/// What a file that failed to parse is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A document with an `id`: an OSV advisory, broken.
    Osv,
    /// Well-formed, but not an object with an `id` (e.g. a `package.json`).
    NotOsv,
    /// Not even well-formed: counted as a broken advisory.
    Malformed,
}

/// Classifies a document that [`parse_advisory`] rejected.
pub(crate) fn shape(bytes: &[u8], format: Format) -> Shape {
    if bytes.len() > MAX_ADVISORY_BYTES {
        return Shape::Osv;
    }
    let value: Result<serde_json::Value, ()> = match format {
        Format::Json => serde_json::from_slice(bytes).map_err(drop),
        Format::Yaml => serde_saphyr::from_slice(bytes).map_err(drop),
    };
    match value {
        Err(()) => Shape::Malformed,
        Ok(serde_json::Value::Object(map)) if map.contains_key("id") => Shape::Osv,
        Ok(_) => Shape::NotOsv,
    }
}

/// A syntax error, with the id when a lenient second read can find it.
fn syntax(bytes: &[u8], format: Format, error: impl std::fmt::Display) -> AdvisoryError {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    let id = match format {
        Format::Json => serde_json::from_slice::<IdOnly>(bytes).ok(),
        Format::Yaml => serde_saphyr::from_slice::<IdOnly>(bytes).ok(),
    }
    .and_then(|i| i.id)
    .filter(|id| valid_id(id))
    .unwrap_or_else(|| "?".to_owned());
    let mut message = error.to_string();
    // serde-saphyr renders a source snippet over several lines; keep the
    // first line and a bounded length so reports stay one line per error.
    if let Some(first) = message.lines().next() {
        message = first.to_owned();
    }
    if message.len() > 300 {
        message = crate::model::shorten(&message);
    }
    AdvisoryError::Syntax { id, message }
}
