//! The crate's error type and its input limits.

use std::path::PathBuf;

/// Largest single advisory accepted, in bytes (JSON or YAML).
pub const MAX_ADVISORY_BYTES: usize = 4 * 1024 * 1024;
/// Most entries (files, directories, links) read from one archive or directory tree.
pub const MAX_ARCHIVE_ENTRIES: usize = 500_000;
/// Most bytes decompressed from one archive, or read from one directory tree.
pub const MAX_ARCHIVE_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Largest persisted database file accepted by [`crate::AdvisoryDb::load`].
pub const MAX_DB_FILE_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Largest CISA KEV catalog accepted, in bytes.
pub const MAX_KEV_BYTES: usize = 64 * 1024 * 1024;

/// Longest advisory id, alias or related id, in bytes.
pub(crate) const MAX_ID_LEN: usize = 256;
/// Most `aliases` (and, separately, `related`) entries per advisory.
pub(crate) const MAX_ALIASES: usize = 1_000;
/// Most `affected` entries per advisory.
pub(crate) const MAX_AFFECTED: usize = 10_000;
/// Most ranges per `affected` entry.
pub(crate) const MAX_RANGES: usize = 1_000;
/// Most events per range.
pub(crate) const MAX_EVENTS: usize = 10_000;
/// Most entries in one `affected[].versions` list.
pub(crate) const MAX_VERSIONS: usize = 100_000;
/// Longest package name, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 1_024;
/// Longest event or `versions` entry, in bytes (a GIT commit hash fits easily).
pub(crate) const MAX_EVENT_LEN: usize = 1_024;

/// An advisory that could not be read or is not valid OSV.
///
/// Every message names the advisory (its `id`, or `?` when even that could
/// not be read) and the field at fault, e.g. `affected[0].ranges[1].events`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdvisoryError {
    /// More than [`MAX_ADVISORY_BYTES`] bytes.
    #[error("advisory is {len} bytes, more than the limit of {MAX_ADVISORY_BYTES}")]
    TooLarge {
        /// Size of the input.
        len: usize,
    },
    /// Not well-formed JSON or YAML, or a field of the wrong type.
    #[error("advisory {id}: not a valid OSV document: {message}")]
    Syntax {
        /// The advisory id when it could be read, else `?`.
        id: String,
        /// What the JSON or YAML parser reported.
        message: String,
    },
    /// Well-formed, but a field breaks the OSV schema or a limit.
    #[error("advisory {id}: field {field}: {message}")]
    Invalid {
        /// The advisory id, or `?` when the id itself is invalid.
        id: String,
        /// Path of the offending field, e.g. `affected[0].ranges[1].events[2]`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Failure of a database operation as a whole (per-advisory problems during
/// an import are reported in [`crate::ImportReport::errors`] instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading an archive, file or directory failed (truncated gzip, I/O error).
    #[error("reading {source_name}: {source}")]
    Read {
        /// The source being imported or the file being read.
        source_name: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An archive or tree broke a limit (entry count, total size).
    #[error("{source_name}: {message}")]
    Limit {
        /// The source being imported.
        source_name: String,
        /// Which limit, and its value.
        message: String,
    },
    /// A zip archive that cannot be read safely: truncated, an entry name
    /// that escapes the archive or appears twice, entries sharing data, an
    /// entry that inflates past its declared size or fails its checksum, an
    /// unsupported compression method or encryption; or a `.zip` file that
    /// is not a zip archive at all. Nothing was imported.
    #[error("{source_name}: not a usable zip archive: {message}")]
    Archive {
        /// The source being imported.
        source_name: String,
        /// What is wrong, naming the entry when one is at fault.
        message: String,
    },
    /// An archive format this crate does not read.
    #[error("{source_name}: unsupported archive format: {format}")]
    UnsupportedFormat {
        /// The source being imported.
        source_name: String,
        /// The detected format.
        format: &'static str,
    },
    /// The CISA KEV catalog is not valid.
    #[error("known exploited vulnerabilities catalog: {message}")]
    Kev {
        /// What is wrong.
        message: String,
    },
    /// Reading or writing the persisted database failed.
    #[error("advisory database {path}: {source}")]
    DbIo {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The persisted database file is corrupt or of an unknown version.
    #[error("advisory database {path}, line {line}: {message}")]
    DbCorrupt {
        /// The database file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}
