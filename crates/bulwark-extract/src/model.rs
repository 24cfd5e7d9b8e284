//! What an extraction returns ([`Extraction`]) and how it hands file bytes
//! out ([`FileVisitor`]).

use std::{collections::BTreeMap, fmt};

use bulwark_sbom::Component;

/// Receives the bytes of every regular file, in archive order, while the
/// artifact is streamed.
///
/// `path` is normalised (relative, `/`-separated, no `.` or `..`) and
/// `layer` is the 0-based image layer (always 0 outside OCI layouts). A
/// file may later be deleted or replaced by an upper layer; such files are
/// listed in [`Extraction::removed`]. Returning `Err` aborts the extraction
/// with [`crate::ExtractError::Visitor`].
///
/// Closures `FnMut(&str, usize, &[u8]) -> Result<(), String>` implement it.
pub trait FileVisitor {
    /// Called once per regular file no larger than
    /// [`crate::Limits::max_file_bytes`].
    fn file(&mut self, path: &str, layer: usize, data: &[u8]) -> Result<(), String>;
}

impl<F> FileVisitor for F
where
    F: FnMut(&str, usize, &[u8]) -> Result<(), String>,
{
    fn file(&mut self, path: &str, layer: usize, data: &[u8]) -> Result<(), String> {
        self(path, layer, data)
    }
}

/// The container format an artifact was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Not an archive: scanned as one file.
    File,
    /// A gzip- or zstd-compressed file that is not a tar: its decompressed
    /// content is scanned as one file.
    CompressedFile(Compression),
    /// A tar archive of a root filesystem.
    Tar(Compression),
    /// An OCI image layout packed in a tar archive.
    OciArchive(Compression),
    /// An OCI image layout directory.
    OciDirectory,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::File => f.write_str("file"),
            Format::CompressedFile(c) => write!(f, "{c} file"),
            Format::Tar(c) => write!(f, "tar{}", c.suffix()),
            Format::OciArchive(c) => write!(f, "OCI image layout (tar{})", c.suffix()),
            Format::OciDirectory => f.write_str("OCI image layout (directory)"),
        }
    }
}

/// A compression detected by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (RFC 1952, possibly multi-member).
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

/// The kind of a filesystem entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed when reading).
    Symlink,
    /// A hard link to an earlier entry.
    Hardlink,
    /// A device node, FIFO or other special file (no content).
    Other,
}

/// One entry of the final, merged filesystem view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// What kind of entry it is.
    pub kind: FileKind,
    /// Content size in bytes (0 for non-files; a hard link's target size).
    pub size: u64,
    /// Layer the entry comes from.
    pub layer: usize,
    /// Permission bits and file-type bits as recorded in the archive.
    pub mode: u32,
    /// Lower-case hex SHA-256 of the content (regular files, and hard links
    /// whose target is known).
    pub sha256: Option<String>,
    /// Where a symlink points (verbatim) or which path a hard link names
    /// (normalised).
    pub link_target: Option<String>,
}

/// Why a file visited during the stream is absent from the final view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RemovalReason {
    /// Deleted by a `.wh.<name>` whiteout in an upper layer.
    Whiteout,
    /// Hidden by a `.wh..wh..opq` opaque-directory marker.
    OpaqueDir,
    /// Replaced by a later entry with the same path (or a parent path).
    Replaced,
}

/// A path removed from the merged view after it was seen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Removed {
    /// The removed path.
    pub path: String,
    /// The layer that held it.
    pub layer: usize,
    /// The layer whose entry removed it.
    pub by_layer: usize,
    /// How it was removed.
    pub reason: RemovalReason,
}

/// A file whose bytes were not handed to the visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file's normalised path.
    pub path: String,
    /// Its layer.
    pub layer: usize,
    /// Its size in bytes.
    pub size: u64,
    /// Why it was skipped.
    pub reason: String,
}

/// The result of taking an artifact apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extraction {
    /// How the artifact was recognised.
    pub format: Format,
    /// The final filesystem view (upper layers applied), keyed by
    /// normalised path.
    pub files: BTreeMap<String, FileMeta>,
    /// Components found in the final view, sorted, each with `found_in`.
    pub components: Vec<Component>,
    /// Files that were visited but are not in the final view.
    pub removed: Vec<Removed>,
    /// Files that were not visited (too large, unsupported entry type).
    pub skipped: Vec<Skipped>,
    /// Non-fatal problems, in the order found (at most
    /// [`crate::MAX_WARNINGS`] plus one summary line).
    pub warnings: Vec<String>,
}
