//! Importing advisories from archives, single files and directory trees.
//!
//! An import is all-or-nothing at the archive level and per-file below it:
//! every entry is read and parsed first, and only when the whole archive
//! was read (no truncated gzip, no limit hit) are the parsed advisories
//! applied, as one generation. A file that is not a valid advisory is
//! reported in [`ImportReport::errors`] and the rest are still imported.
//!
//! Zip archives (OSV's per-ecosystem `all.zip`) are read through their
//! central directory with `rawzip`, inflated with `flate2`; nothing is
//! unpacked to disk. A hostile archive is refused whole (see
//! [`Error::Archive`]): entry names that escape (`..`, absolute) or repeat,
//! entries sharing compressed data, a declared size the data exceeds, a
//! checksum mismatch, more entries than the end record declares.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Seek as _};
use std::path::Path;
use std::rc::Rc;

use rawzip::{CompressionMethod, ReaderAt, ZipArchive};

use crate::db::{AdvisoryDb, Upsert};
use crate::error::{
    AdvisoryError, Error, MAX_ADVISORY_BYTES, MAX_ARCHIVE_BYTES, MAX_ARCHIVE_ENTRIES,
};
use crate::model::Advisory;
use crate::parse::{Format, Shape, parse_advisory, shape};

/// What an import did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportReport {
    /// The `source_name` given.
    pub source: String,
    /// The generation this import created (see
    /// [`AdvisoryDb::ids_changed_since`]).
    pub generation: u64,
    /// Files that were (or tried to be) OSV advisories: `.json`, `.yaml`,
    /// `.yml` files holding an object with an `id`, plus malformed ones.
    pub osv_files: usize,
    /// Advisories new to the database.
    pub imported: usize,
    /// Advisories that replaced a stored one with an older `modified`.
    pub updated: usize,
    /// Advisories whose `modified` was not newer than the stored one's.
    pub unchanged: usize,
    /// Advisories in this import that are withdrawn (also counted above).
    pub withdrawn: usize,
    /// Files skipped as not OSV (other extensions, or JSON/YAML that is
    /// not an object with an `id`).
    pub skipped: usize,
    /// Files that look like advisories but are invalid; the import went on.
    pub errors: Vec<FileError>,
    /// Ids added or replaced by this import, sorted.
    pub changed_ids: Vec<String>,
}

/// One file that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// Path inside the archive or tree (lossy UTF-8).
    pub path: String,
    /// What is wrong with it.
    pub error: AdvisoryError,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.error)
    }
}

impl ImportReport {
    /// Whether the source held no OSV file at all (e.g. the RustSec
    /// Markdown repository instead of its OSV export).
    pub fn contains_no_osv(&self) -> bool {
        self.osv_files == 0
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.contains_no_osv() {
            return write!(
                f,
                "{}: contains no OSV files ({} other files skipped); nothing imported",
                self.source, self.skipped
            );
        }
        write!(
            f,
            "{}: {} new, {} updated, {} unchanged, {} withdrawn, {} non-OSV files skipped, {} errors",
            self.source,
            self.imported,
            self.updated,
            self.unchanged,
            self.withdrawn,
            self.skipped,
            self.errors.len()
        )
    }
}

/// What reading one source produced, before it is applied.
#[derive(Debug, Default)]
struct Staged {
    osv_files: usize,
    skipped: usize,
    advisories: Vec<Advisory>,
    errors: Vec<FileError>,
}

impl Staged {
    fn file(&mut self, path: String, format: Format, bytes: &[u8]) {
        match parse_advisory(bytes, format) {
            Ok(advisory) => {
                self.osv_files += 1;
                self.advisories.push(advisory);
            }
            Err(error) => match shape(bytes, format) {
                Shape::NotOsv => self.skipped += 1,
                Shape::Osv | Shape::Malformed => {
                    self.osv_files += 1;
                    self.errors.push(FileError { path, error });
                }
            },
        }
    }
}

impl AdvisoryDb {
    /// Imports every advisory in `reader`: a `.zip` (OSV's `all.zip`), a
    /// `.tar.gz`/`.tgz`, a `.tar`, or one plain `.json`/`.yaml` document
    /// (optionally gzipped). The kind is recognised from the bytes (zip,
    /// gzip and tar magic), never the name; for a single document
    /// `source_name`'s extension picks JSON or YAML (else a leading `{`
    /// means JSON). `source_name` labels the advisories' origin.
    ///
    /// Limits: [`MAX_ARCHIVE_ENTRIES`] entries, [`MAX_ARCHIVE_BYTES`]
    /// decompressed bytes (and, for a zip, read into memory),
    /// [`MAX_ADVISORY_BYTES`] per advisory. Symlinks and other non-regular
    /// entries are ignored.
    pub fn import_archive<R: Read>(
        &mut self,
        reader: R,
        source_name: &str,
    ) -> Result<ImportReport, Error> {
        let staged = read_source(reader, source_name)?;
        Ok(self.apply(staged, source_name))
    }

    /// Imports a directory tree (every `.json`/`.yaml`/`.yml` file under
    /// it; symlinks are not followed) or, for a file, [`Self::import_archive`]
    /// on it (a zip file is read in place, not into memory). The source is
    /// named after the path's last component.
    pub fn import_path(&mut self, path: &Path) -> Result<ImportReport, Error> {
        let source_name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let read_err = |source| Error::Read {
            source_name: path.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.is_dir() {
            let staged = read_dir(path, &source_name)?;
            Ok(self.apply(staged, &source_name))
        } else {
            let mut file = std::fs::File::open(path).map_err(read_err)?;
            let mut head = Vec::with_capacity(4);
            (&mut file)
                .take(4)
                .read_to_end(&mut head)
                .map_err(read_err)?;
            if !is_zip(&head) {
                file.rewind().map_err(read_err)?;
                return self.import_archive(file, &source_name);
            }
            let total = Cell::new(0);
            let mut buf = vec![0u8; rawzip::RECOMMENDED_BUFFER_SIZE];
            let staged = ZipArchive::from_file(file, &mut buf)
                .map_err(unlocated)
                .and_then(|archive| read_zip(&archive, &total));
            let staged = finish(staged, &total, &source_name)?;
            Ok(self.apply(staged, &source_name))
        }
    }

    fn apply(&mut self, staged: Staged, source: &str) -> ImportReport {
        self.generation += 1;
        let mut report = ImportReport {
            source: source.to_owned(),
            generation: self.generation,
            osv_files: staged.osv_files,
            skipped: staged.skipped,
            errors: staged.errors,
            ..ImportReport::default()
        };
        for advisory in staged.advisories {
            if advisory.is_withdrawn() {
                report.withdrawn += 1;
            }
            let id = advisory.id.clone();
            match self.upsert(advisory, source) {
                Upsert::Inserted => {
                    report.imported += 1;
                    report.changed_ids.push(id);
                }
                Upsert::Updated => {
                    report.updated += 1;
                    report.changed_ids.push(id);
                }
                Upsert::Unchanged => report.unchanged += 1,
            }
        }
        report.changed_ids.sort_unstable();
        report.changed_ids.dedup();
        if report.changed_ids.is_empty() {
            // Nothing changed: do not spend a generation.
            self.generation -= 1;
            report.generation = self.generation;
        } else {
            self.rebuild();
        }
        report
    }
}

/// Counts decompressed bytes and fails past the limit.
struct Counted<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.count.get() + n as u64;
        self.count.set(total);
        if total > MAX_ARCHIVE_BYTES {
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        Ok(n)
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
/// A zip archive starts with its first entry's local header…
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// …or, when empty, with its end-of-central-directory record.
const ZIP_EMPTY_MAGIC: &[u8] = b"PK\x05\x06";

fn is_tar(head: &[u8]) -> bool {
    head.get(257..262) == Some(b"ustar")
}

fn is_zip(head: &[u8]) -> bool {
    head.starts_with(ZIP_MAGIC) || head.starts_with(ZIP_EMPTY_MAGIC)
}

fn read_source<R: Read>(reader: R, source_name: &str) -> Result<Staged, Error> {
    let count = Rc::new(Cell::new(0));
    let result = (|| {
        let mut outer = BufReader::with_capacity(64 * 1024, reader);
        let head = outer.fill_buf()?;
        if is_zip(head) {
            // The central directory is at the end: the whole archive is
            // read first, within the same limit as decompressed bytes.
            let mut bytes = Vec::new();
            outer.take(MAX_ARCHIVE_BYTES + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > MAX_ARCHIVE_BYTES {
                return Err(ReadError::Limit(format!(
                    "a zip archive of more than {MAX_ARCHIVE_BYTES} bytes"
                )));
            }
            let archive = ZipArchive::from_slice(bytes)
                .map_err(unlocated)?
                .into_reader_archive();
            return read_zip(&archive, &count);
        }
        if strip_suffix_ci(source_name, ".zip").is_some() {
            return Err(ReadError::Archive(
                "named .zip but not a zip archive (no PK\\x03\\x04 signature)".into(),
            ));
        }
        if head.starts_with(GZIP_MAGIC) {
            let inner = Counted {
                inner: flate2::read::MultiGzDecoder::new(outer),
                count: Rc::clone(&count),
            };
            let name = strip_suffix_ci(source_name, ".gz").unwrap_or(source_name);
            read_plain(inner, name)
        } else {
            let inner = Counted {
                inner: outer,
                count: Rc::clone(&count),
            };
            read_plain(inner, source_name)
        }
    })();
    finish(result, &count, source_name)
}

/// A zip archive whose central directory cannot be found or read.
fn unlocated(e: rawzip::Error) -> ReadError {
    ReadError::Archive(format!("no readable central directory (truncated?): {e}"))
}

/// A read's outcome as the crate's error, named after the source.
fn finish(
    result: Result<Staged, ReadError>,
    count: &Cell<u64>,
    source_name: &str,
) -> Result<Staged, Error> {
    match result {
        Ok(staged) => Ok(staged),
        Err(_) if count.get() > MAX_ARCHIVE_BYTES => Err(Error::Limit {
            source_name: source_name.to_owned(),
            message: format!("more than {MAX_ARCHIVE_BYTES} bytes when decompressed"),
        }),
        Err(ReadError::Io(source)) => Err(Error::Read {
            source_name: source_name.to_owned(),
            source,
        }),
        Err(ReadError::Limit(message)) => Err(Error::Limit {
            source_name: source_name.to_owned(),
            message,
        }),
        Err(ReadError::Archive(message)) => Err(Error::Archive {
            source_name: source_name.to_owned(),
            message,
        }),
    }
}

#[derive(Debug)]
enum ReadError {
    Io(io::Error),
    Limit(String),
    /// A zip archive that is malformed or hostile.
    Archive(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// A decompressed stream: a tar archive or one document.
fn read_plain<R: Read>(reader: R, name: &str) -> Result<Staged, ReadError> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let head = reader.fill_buf()?;
    if is_tar(head) {
        return read_tar(reader);
    }
    let mut staged = Staged::default();
    let mut bytes = Vec::new();
    reader
        .take(MAX_ADVISORY_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    let format = Format::from_path(name).unwrap_or_else(|| {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Format::Json,
            _ => Format::Yaml,
        }
    });
    if bytes.len() > MAX_ADVISORY_BYTES {
        staged.osv_files += 1;
        staged.errors.push(FileError {
            path: name.to_owned(),
            error: AdvisoryError::TooLarge { len: bytes.len() },
        });
    } else {
        staged.file(name.to_owned(), format, &bytes);
    }
    Ok(staged)
}

fn read_tar<R: Read>(reader: R) -> Result<Staged, ReadError> {
    let mut staged = Staged::default();
    let mut archive = tar::Archive::new(reader);
    let mut buf = Vec::new();
    for (n, entry) in archive.entries()?.enumerate() {
        if n >= MAX_ARCHIVE_ENTRIES {
            return Err(ReadError::Limit(format!(
                "more than {MAX_ARCHIVE_ENTRIES} entries"
            )));
        }
        let entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(format) = Format::from_path(&path) else {
            staged.skipped += 1;
            continue;
        };
        let size = entry.size();
        if size > MAX_ADVISORY_BYTES as u64 {
            staged.osv_files += 1;
            staged.errors.push(FileError {
                path,
                error: AdvisoryError::TooLarge {
                    len: usize::try_from(size).unwrap_or(usize::MAX),
                },
            });
            continue;
        }
        buf.clear();
        entry
            .take(MAX_ADVISORY_BYTES as u64 + 1)
            .read_to_end(&mut buf)?;
        staged.file(path, format, &buf);
    }
    Ok(staged)
}

/// Reads a zip archive's advisories through its central directory (the
/// source of truth; local headers only locate the data). `total` counts
/// inflated bytes.
fn read_zip<R: ReaderAt>(archive: &ZipArchive<R>, total: &Cell<u64>) -> Result<Staged, ReadError> {
    let bad = |message: String| ReadError::Archive(message);
    let declared = archive.entries_hint();
    if declared > MAX_ARCHIVE_ENTRIES as u64 {
        return Err(ReadError::Limit(format!(
            "declares {declared} entries, more than {MAX_ARCHIVE_ENTRIES}"
        )));
    }
    let mut staged = Staged::default();
    let mut names: HashSet<Vec<u8>> = HashSet::new();
    // Compressed data ranges, checked for overlap at the end (sorting once
    // instead of keeping a sorted list: no quadratic work on hostile order).
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut seen = 0u64;
    let mut data = Vec::new();
    let mut buf = vec![0u8; rawzip::RECOMMENDED_BUFFER_SIZE];
    let mut entries = archive.entries(&mut buf);
    while let Some(entry) = entries
        .next_entry()
        .map_err(|e| bad(format!("central directory: {e}")))?
    {
        seen += 1;
        if seen > declared {
            return Err(bad(format!(
                "the central directory holds more entries than the {declared} its end record declares"
            )));
        }
        let name = entry.file_path();
        let raw: &[u8] = name.as_ref();
        let path = String::from_utf8_lossy(raw).into_owned();
        if let Err(why) = check_entry_name(raw) {
            return Err(bad(format!("entry {path:?}: {why}")));
        }
        if !names.insert(raw.to_vec()) {
            return Err(bad(format!("entry {path:?} appears twice")));
        }
        if entry.is_dir() {
            continue;
        }
        let Some(format) = Format::from_path(&path) else {
            staged.skipped += 1;
            continue;
        };
        let method = entry.compression_method();
        if method != CompressionMethod::STORE && method != CompressionMethod::DEFLATE {
            return Err(bad(format!(
                "entry {path:?}: compression method {method} is not supported (stored and deflate are)"
            )));
        }
        if entry.flags().is_encrypted() {
            return Err(bad(format!("entry {path:?} is encrypted")));
        }
        let size = entry.uncompressed_size_hint();
        if size > MAX_ADVISORY_BYTES as u64 {
            staged.osv_files += 1;
            staged.errors.push(FileError {
                path,
                error: AdvisoryError::TooLarge {
                    len: usize::try_from(size).unwrap_or(usize::MAX),
                },
            });
            continue;
        }
        let local = archive
            .get_entry(entry.wayfinder())
            .map_err(|e| bad(format!("entry {path:?}: {e}")))?;
        ranges.push(local.compressed_data_range());
        data.clear();
        // The verifier fails the read that passes the declared size, and
        // checks the size and CRC at the end: a bomb lying about its size
        // is stopped one byte past its claim, at most MAX_ADVISORY_BYTES.
        let reader = local.reader();
        let read = if method == CompressionMethod::STORE {
            local
                .verifying_reader(reader)
                .take(size + 1)
                .read_to_end(&mut data)
        } else {
            local
                .verifying_reader(flate2::read::DeflateDecoder::new(reader))
                .take(size + 1)
                .read_to_end(&mut data)
        };
        read.map_err(|e| bad(format!("entry {path:?} does not inflate as declared: {e}")))?;
        total.set(total.get() + data.len() as u64);
        if total.get() > MAX_ARCHIVE_BYTES {
            return Err(ReadError::Limit(format!(
                "more than {MAX_ARCHIVE_BYTES} bytes when decompressed"
            )));
        }
        staged.file(path, format, &data);
    }
    if seen != declared {
        return Err(bad(format!(
            "its end record declares {declared} entries, the central directory holds {seen}"
        )));
    }
    ranges.sort_unstable();
    if ranges.windows(2).any(|w| w[0].1 > w[1].0) {
        return Err(bad(
            "entries share compressed data (the layout of a zip bomb)".into(),
        ));
    }
    Ok(staged)
}

/// Why a zip entry name is refused: names are only labels here (nothing
/// is unpacked), but one that escapes the archive marks it as hostile.
fn check_entry_name(raw: &[u8]) -> Result<(), &'static str> {
    if raw.is_empty() {
        return Err("an empty name");
    }
    if raw.contains(&0) {
        return Err("a NUL byte in the name");
    }
    if matches!(raw[0], b'/' | b'\\') {
        return Err("an absolute path");
    }
    if raw.len() >= 2 && raw[0].is_ascii_alphabetic() && raw[1] == b':' {
        return Err("a drive letter");
    }
    if raw.split(|b| matches!(b, b'/' | b'\\')).any(|c| c == b"..") {
        return Err("a path that escapes the archive (`..`)");
    }
    Ok(())
}

/// Walks a directory tree without following symlinks.
fn read_dir(root: &Path, source_name: &str) -> Result<Staged, Error> {
    let mut staged = Staged::default();
    let mut stack = vec![root.to_owned()];
    let (mut entries, mut total) = (0usize, 0u64);
    let read_err = |path: &Path| {
        let name = path.display().to_string();
        move |source| Error::Read {
            source_name: name,
            source,
        }
    };
    let limit = |message: String| Error::Limit {
        source_name: source_name.to_owned(),
        message,
    };
    while let Some(dir) = stack.pop() {
        let mut children: Vec<_> = std::fs::read_dir(&dir)
            .map_err(read_err(&dir))?
            .collect::<Result<_, _>>()
            .map_err(read_err(&dir))?;
        // Deterministic order, so duplicate ids resolve the same way.
        children.sort_by_key(|c| c.file_name());
        for child in children {
            entries += 1;
            if entries > MAX_ARCHIVE_ENTRIES {
                return Err(limit(format!("more than {MAX_ARCHIVE_ENTRIES} entries")));
            }
            let path = child.path();
            let kind = child.file_type().map_err(read_err(&path))?;
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let Some(format) = Format::from_path(&rel) else {
                staged.skipped += 1;
                continue;
            };
            let mut bytes = Vec::new();
            std::fs::File::open(&path)
                .and_then(|f| {
                    f.take(MAX_ADVISORY_BYTES as u64 + 1)
                        .read_to_end(&mut bytes)
                })
                .map_err(read_err(&path))?;
            total += bytes.len() as u64;
            if total > MAX_ARCHIVE_BYTES {
                return Err(limit(format!("more than {MAX_ARCHIVE_BYTES} bytes")));
            }
            if bytes.len() > MAX_ADVISORY_BYTES {
                staged.osv_files += 1;
                staged.errors.push(FileError {
                    path: rel,
                    error: AdvisoryError::TooLarge { len: bytes.len() },
                });
                continue;
            }
            staged.file(rel, format, &bytes);
        }
    }
    Ok(staged)
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    (s.is_char_boundary(cut) && s[cut..].eq_ignore_ascii_case(suffix)).then(|| &s[..cut])
}
