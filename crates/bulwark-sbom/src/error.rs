//! The crate's error type.

use crate::PurlError;

/// Why a document could not be read, or an [`crate::Sbom`] not written.
///
/// Paths (`components[3].purl`) point into the JSON document; for the
/// writers they point into the [`crate::Sbom`] (`components[3].sha256`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SbomError {
    /// The input is larger than [`crate::Limits::max_bytes`].
    #[error("input is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The input's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Arrays and objects nest deeper than the JSON parser allows.
    #[error("JSON nests arrays and objects deeper than {limit} levels")]
    JsonTooDeep {
        /// The limit.
        limit: usize,
    },
    /// The input is not JSON.
    #[error("input is not valid JSON: {reason}")]
    NotJson {
        /// The parser's message, with line and column.
        reason: String,
    },
    /// The top level has neither `bomFormat` nor `spdxVersion`.
    #[error(
        "not an SBOM: the top-level object has neither `bomFormat` (CycloneDX) nor `spdxVersion` (SPDX)"
    )]
    UnknownFormat,
    /// `bomFormat` is present but not `CycloneDX`.
    #[error("`bomFormat` is {found:?}, expected \"CycloneDX\"")]
    WrongBomFormat {
        /// The value found.
        found: String,
    },
    /// A spec version this crate does not read.
    #[error("unsupported {format} spec version {found:?} at `{path}` (supported: {supported})")]
    UnsupportedSpecVersion {
        /// `CycloneDX` or `SPDX`.
        format: &'static str,
        /// Where the version is.
        path: String,
        /// The version found.
        found: String,
        /// The versions this crate reads.
        supported: &'static str,
    },
    /// A required field is absent.
    #[error("`{path}` is missing")]
    Missing {
        /// The field's path.
        path: String,
    },
    /// A field has the wrong JSON type.
    #[error("`{path}` must be {expected}, found {found}")]
    WrongType {
        /// The field's path.
        path: String,
        /// What the format requires (`a string`).
        expected: &'static str,
        /// What the document has (`a number`).
        found: &'static str,
    },
    /// A field has the right type but a value the format forbids.
    #[error("`{path}` is invalid: {reason}")]
    Invalid {
        /// The field's path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A string is longer than [`crate::Limits::max_string_len`].
    #[error("`{path}` is {len} bytes long, over the limit of {limit}")]
    StringTooLong {
        /// The field's path.
        path: String,
        /// The string's length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// More components than [`crate::Limits::max_components`].
    #[error("`{path}` is one component more than the limit of {limit}")]
    TooManyComponents {
        /// The first component over the limit.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// Components nest deeper than [`crate::Limits::max_depth`].
    #[error("`{path}` nests components more than {limit} levels deep")]
    TooDeep {
        /// The first component over the limit.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// A purl does not parse.
    #[error("`{path}` is not a valid purl: {error}")]
    InvalidPurl {
        /// The purl's path.
        path: String,
        /// Why it does not parse.
        error: PurlError,
    },
    /// A timestamp outside the years 0000–9999 cannot be written in the
    /// formats' date-time syntax.
    #[error("timestamp {timestamp} is outside the years 0000-9999")]
    TimestampOutOfRange {
        /// The timestamp.
        timestamp: String,
    },
}
