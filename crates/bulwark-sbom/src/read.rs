//! Reading an SBOM of either format: size checks, JSON parsing, format
//! detection.

use serde_json::Value;

use crate::json::{JsonPath, Obj, check_nesting};
use crate::{Sbom, SbomError, cyclonedx, spdx};

/// Bounds on what [`Sbom::from_json`] accepts. Every bound fails the read
/// with an error; nothing is truncated silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input, in bytes. The parsed document takes several times
    /// this in memory.
    pub max_bytes: usize,
    /// Most components (CycloneDX components at every nesting level; SPDX
    /// packages).
    pub max_components: usize,
    /// Deepest nesting of CycloneDX `components` (top-level components are
    /// at depth 1). Arrays and objects in general may nest at most
    /// 128 levels, so values above about 60 have no effect.
    pub max_depth: usize,
    /// Longest string read from a field this crate uses, in bytes.
    pub max_string_len: usize,
}

impl Limits {
    /// 64 MiB of input.
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
    /// 200 000 components.
    pub const DEFAULT_MAX_COMPONENTS: usize = 200_000;
    /// 32 levels of nested components.
    pub const DEFAULT_MAX_DEPTH: usize = 32;
    /// 64 KiB per string.
    pub const DEFAULT_MAX_STRING_LEN: usize = 64 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_components: Self::DEFAULT_MAX_COMPONENTS,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_string_len: Self::DEFAULT_MAX_STRING_LEN,
        }
    }
}

impl Sbom {
    /// Reads a CycloneDX 1.5/1.6 or SPDX 2.3 JSON document, telling them
    /// apart by `bomFormat` / `spdxVersion`. Pure: bytes in, value out, and
    /// every failure, including any `limits` exceeded, is an error.
    ///
    /// The components come back in document order (call
    /// [`Sbom::normalize`] to sort them). Unknown and duplicate members are
    /// accepted, as both formats are extensible (for a duplicate, the last
    /// one counts); the members read must have the types the format
    /// requires.
    pub fn from_json(bytes: &[u8], limits: &Limits) -> Result<Sbom, SbomError> {
        if bytes.len() > limits.max_bytes {
            return Err(SbomError::TooLarge {
                size: bytes.len(),
                limit: limits.max_bytes,
            });
        }
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        check_nesting(bytes)?;
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| SbomError::NotJson {
            reason: e.to_string(),
        })?;
        let root = Obj::new(&doc, &JsonPath::Root, limits)?;
        if root.map.contains_key("bomFormat") {
            cyclonedx::read(root)
        } else if root.map.contains_key("spdxVersion") {
            spdx::read(root)
        } else {
            Err(SbomError::UnknownFormat)
        }
    }
}
