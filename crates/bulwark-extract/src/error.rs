//! [`ExtractError`]: why an extraction stopped.

use std::{io, path::PathBuf};

/// Why an extraction failed as a whole.
///
/// Problems confined to one file (an overlong path, a file too large for the
/// visitor, a package database that does not parse) are not errors; they
/// become [`crate::Extraction::warnings`] or
/// [`crate::Extraction::skipped`] entries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The artifact (or a file of an image layout directory) could not be
    /// opened or read.
    #[error("cannot read {path}")]
    Open {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Reading or decompressing the artifact failed (corrupt compressed
    /// data, I/O error).
    #[error("cannot read the artifact")]
    Read(#[source] io::Error),
    /// The artifact ends in the middle of an archive entry or header.
    #[error("the archive is truncated")]
    Truncated,
    /// A tar header is malformed.
    #[error("malformed tar header at byte {offset}: {reason}")]
    InvalidTar {
        /// Offset of the header in the (uncompressed) tar stream.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More than [`crate::Limits::max_total_bytes`] of uncompressed data.
    #[error("the artifact expands to more than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// A decompression stream exceeded [`crate::Limits::max_ratio`].
    #[error("compression ratio exceeds {limit}:1 (possible decompression bomb)")]
    RatioExceeded {
        /// The limit.
        limit: u64,
    },
    /// More than [`crate::Limits::max_entries`] archive entries.
    #[error("the artifact has more than {limit} archive entries")]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// An image has more than [`crate::Limits::max_layers`] layers.
    #[error("the image has {count} layers, more than the limit of {limit}")]
    TooManyLayers {
        /// Layers in the manifest.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Image indexes nest deeper than [`crate::Limits::max_index_depth`].
    #[error("image indexes nest deeper than {limit}")]
    IndexTooDeep {
        /// The limit.
        limit: usize,
    },
    /// The OCI image layout is unusable (missing or invalid `index.json`,
    /// no image manifest, malformed JSON or digest).
    #[error("invalid OCI image layout: {reason}")]
    InvalidLayout {
        /// What is wrong.
        reason: String,
    },
    /// A descriptor refers to a blob the layout does not contain.
    #[error("blob {digest} is missing from the image layout")]
    MissingBlob {
        /// The blob's digest.
        digest: String,
    },
    /// A blob's length differs from its descriptor's `size`.
    #[error("blob {digest} is not {expected} bytes long")]
    BlobSize {
        /// The blob's digest.
        digest: String,
        /// The size its descriptor declares.
        expected: u64,
    },
    /// A blob's content does not hash to its digest.
    #[error("blob {digest} does not match its digest")]
    DigestMismatch {
        /// The blob's declared digest.
        digest: String,
    },
    /// A manifest or layer has a media type the extractor does not handle.
    #[error("unsupported media type {media_type}")]
    UnsupportedMediaType {
        /// The media type.
        media_type: String,
    },
    /// The [`crate::FileVisitor`] rejected a file.
    #[error("scanning {path} (layer {layer}) failed: {message}")]
    Visitor {
        /// The file's normalised path.
        path: String,
        /// Its layer.
        layer: usize,
        /// The visitor's message.
        message: String,
    },
}
