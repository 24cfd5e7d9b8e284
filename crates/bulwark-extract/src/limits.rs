//! [`Limits`]: every bound the extractor enforces, with safe defaults.

/// Bounds on the work one extraction may do.
///
/// Hitting an *artifact-wide* bound (total bytes, entries, layers, ratio,
/// index depth) aborts the extraction with an [`crate::ExtractError`]: a
/// partial view could hide exactly what a security gate is looking for.
/// Hitting a *per-file* bound (file size, path length, package-database
/// size) skips that one file and records it in
/// [`crate::Extraction::skipped`] or [`crate::Extraction::warnings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of uncompressed data read from archive streams in total,
    /// across all layers and passes (tar headers included).
    pub max_total_bytes: u64,
    /// Largest regular file handed to the [`crate::FileVisitor`]; larger
    /// files are still hashed, then reported in
    /// [`crate::Extraction::skipped`].
    pub max_file_bytes: u64,
    /// Most archive entries (all layers together, outer archive included).
    pub max_entries: u64,
    /// Most layers in an image manifest.
    pub max_layers: usize,
    /// Longest accepted entry path, in bytes; longer entries are skipped
    /// with a warning.
    pub max_path_len: usize,
    /// Largest accepted ratio of uncompressed to compressed bytes for one
    /// decompression stream (checked once a stream has produced more than
    /// [`RATIO_GRACE_BYTES`]).
    pub max_ratio: u64,
    /// Deepest nesting of image indexes (an index inside `index.json`
    /// counts as depth 1).
    pub max_index_depth: usize,
    /// Largest package database or lockfile kept in memory for component
    /// detection; larger ones are ignored with a warning.
    pub max_pkgdb_bytes: u64,
    /// Most bytes of package databases and lockfiles kept in memory at once.
    pub max_retained_bytes: u64,
}

/// Output a decompression stream may produce before
/// [`Limits::max_ratio`] is enforced, so that small, highly compressible
/// files are not rejected.
pub const RATIO_GRACE_BYTES: u64 = 1024 * 1024;

/// Longest JSON document (image index, manifest) read into memory.
pub const MAX_JSON_BYTES: u64 = 4 * 1024 * 1024;

/// At most this many warnings are kept; one final warning counts the rest.
pub const MAX_WARNINGS: usize = 1_000;

/// Most symlinks followed while resolving one path in the image.
pub const MAX_SYMLINK_HOPS: usize = 40;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_total_bytes: 8 * 1024 * 1024 * 1024,
            max_file_bytes: 256 * 1024 * 1024,
            max_entries: 1_000_000,
            max_layers: 128,
            max_path_len: 4096,
            max_ratio: 200,
            max_index_depth: 8,
            max_pkgdb_bytes: 64 * 1024 * 1024,
            max_retained_bytes: 256 * 1024 * 1024,
        }
    }
}
