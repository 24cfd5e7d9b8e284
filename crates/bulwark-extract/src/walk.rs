//! The [`Walker`]: reads archive entries, hands regular files to the
//! visitor, scans them for components, and feeds the merged [`View`].

use std::io::{self, Read};

use sha2::{Digest, Sha256};

use crate::{
    ExtractError, Extraction, FileVisitor, components,
    model::{FileKind, FileMeta, Format, Skipped},
    path::{PathIssue, normalise, split_last},
    stream::Budget,
    tar::{TarEntry, TarError, TarKind, TarReader},
    view::View,
};

/// Whiteout prefix of OCI layers (`.wh.<name>` deletes `<name>`).
const WHITEOUT_PREFIX: &str = ".wh.";
/// Opaque-directory marker of OCI layers.
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Converts a tar-reader error, recovering parked limit violations.
pub(crate) fn tar_error(budget: &Budget, err: TarError) -> ExtractError {
    match err {
        TarError::Io(e) => budget.error(e),
        TarError::Invalid { offset, reason } => ExtractError::InvalidTar { offset, reason },
    }
}

/// Drives one extraction's visiting and bookkeeping.
pub(crate) struct Walker<'a> {
    pub(crate) budget: &'a Budget,
    visitor: &'a mut dyn FileVisitor,
    pub(crate) view: View,
    /// Reused buffer for file contents.
    buf: Vec<u8>,
}

impl std::fmt::Debug for Walker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walker")
            .field("view", &self.view)
            .finish_non_exhaustive()
    }
}

impl<'a> Walker<'a> {
    pub(crate) fn new(budget: &'a Budget, visitor: &'a mut dyn FileVisitor) -> Walker<'a> {
        Walker {
            budget,
            visitor,
            view: View::default(),
            buf: Vec::new(),
        }
    }

    /// Walks a whole tar stream as `layer`; `whiteouts` enables OCI
    /// whiteout handling.
    pub(crate) fn walk_tar(
        &mut self,
        stream: impl Read,
        layer: usize,
        whiteouts: bool,
    ) -> Result<(), ExtractError> {
        let mut tar = TarReader::new(stream);
        while let Some(entry) = tar.next_entry().map_err(|e| tar_error(self.budget, e))? {
            self.budget.count_entry()?;
            self.entry(&mut tar, entry, layer, whiteouts)?;
        }
        if tar.missing_end_marker {
            self.view.warnings.push(format!(
                "layer {layer}: tar archive ends without its end-of-archive blocks"
            ));
        }
        Ok(())
    }

    /// Processes one entry whose content is next in `tar`.
    pub(crate) fn entry<R: Read>(
        &mut self,
        tar: &mut TarReader<R>,
        entry: TarEntry,
        layer: usize,
        whiteouts: bool,
    ) -> Result<(), ExtractError> {
        let shown = String::from_utf8_lossy(&entry.path[..entry.path.len().min(200)]).into_owned();
        let normalised = match normalise(&entry.path, self.budget.limits.max_path_len) {
            Ok(n) => n,
            Err(PathIssue::TooLong) => {
                self.view.warnings.push(format!(
                    "layer {layer}: entry {shown}... skipped: path longer than {} bytes",
                    self.budget.limits.max_path_len
                ));
                return Ok(());
            }
            Err(PathIssue::Nul) => {
                self.view.warnings.push(format!(
                    "layer {layer}: entry {shown:?} skipped: path contains NUL"
                ));
                return Ok(());
            }
        };
        let path = normalised.path;
        if normalised.escaped {
            self.view.warnings.push(format!(
                "layer {layer}: entry {shown} climbs above the archive root; kept as {path}"
            ));
        }
        if path.is_empty() {
            if entry.kind != TarKind::Dir {
                self.view.warnings.push(format!(
                    "layer {layer}: entry {shown:?} has an empty path; skipped"
                ));
            }
            return Ok(());
        }
        let (parent, name) = split_last(&path);
        if whiteouts && name.starts_with(WHITEOUT_PREFIX) {
            if name == OPAQUE_MARKER {
                self.view.opaque(parent, layer);
            } else {
                let target = &name[WHITEOUT_PREFIX.len()..];
                let target = if parent.is_empty() {
                    target.to_owned()
                } else {
                    format!("{parent}/{target}")
                };
                self.view.whiteout(&target, layer);
            }
            return Ok(());
        }
        let mut meta = FileMeta {
            kind: FileKind::Other,
            size: 0,
            layer,
            mode: entry.mode,
            sha256: None,
            link_target: None,
        };
        match entry.kind {
            TarKind::File => {
                return self.regular_file(path, meta, entry.size, &mut tar.data());
            }
            TarKind::Dir => meta.kind = FileKind::Dir,
            TarKind::Special => {}
            TarKind::Symlink => {
                meta.kind = FileKind::Symlink;
                meta.link_target = Some(String::from_utf8_lossy(&entry.link).into_owned());
            }
            TarKind::Hardlink => {
                meta.kind = FileKind::Hardlink;
                let target = normalise(&entry.link, self.budget.limits.max_path_len)
                    .map(|n| n.path)
                    .unwrap_or_default();
                if let Some(t) = self
                    .view
                    .files
                    .get(&target)
                    .filter(|t| t.kind == FileKind::File)
                {
                    meta.size = t.size;
                    meta.sha256.clone_from(&t.sha256);
                }
                meta.link_target = Some(target);
            }
            TarKind::Unsupported(flag) => {
                let reason = format!("unsupported tar entry type {:?}", char::from(flag));
                self.view.warnings.push(format!(
                    "layer {layer}: {path}: {reason}; content not scanned"
                ));
                self.view.skipped.push(Skipped {
                    path: path.clone(),
                    layer,
                    size: entry.size,
                    reason,
                });
            }
        }
        self.view.insert(path, meta);
        Ok(())
    }

    /// Reads one regular file of (declared) `size` bytes, visits it, scans
    /// it and adds it to the view.
    fn regular_file(
        &mut self,
        path: String,
        mut meta: FileMeta,
        size: u64,
        data: &mut impl Read,
    ) -> Result<(), ExtractError> {
        meta.kind = FileKind::File;
        let max = self.budget.limits.max_file_bytes;
        self.buf.clear();
        let cap = size.min(max).min(16 * 1024 * 1024);
        self.buf.reserve(usize::try_from(cap).unwrap_or(0));
        // One byte more than the limit tells a too-big file apart.
        data.take(max.saturating_add(1))
            .read_to_end(&mut self.buf)
            .map_err(|e| self.budget.error(e))?;
        let mut hasher = Sha256::new();
        hasher.update(&self.buf);
        if self.buf.len() as u64 > max {
            let rest =
                io::copy(data, &mut HashWriter(&mut hasher)).map_err(|e| self.budget.error(e))?;
            meta.size = self.buf.len() as u64 + rest;
            meta.sha256 = Some(hex::encode(hasher.finalize()));
            self.view.skipped.push(Skipped {
                path: path.clone(),
                layer: meta.layer,
                size: meta.size,
                reason: format!("larger than the {max}-byte limit for scanning"),
            });
            self.view.insert(path, meta);
            return Ok(());
        }
        meta.size = self.buf.len() as u64;
        meta.sha256 = Some(hex::encode(hasher.finalize()));
        let layer = meta.layer;
        self.visitor
            .file(&path, layer, &self.buf)
            .map_err(|message| ExtractError::Visitor {
                path: path.clone(),
                layer,
                message,
            })?;
        let go = components::golang::scan_binary(&self.buf);
        self.view.insert(path.clone(), meta);
        match go {
            Some(Ok(found)) => {
                self.view.go.insert(path.clone(), found);
            }
            Some(Err(problem)) => self.view.warnings.push(format!("{path}: {problem}")),
            None => {}
        }
        if components::worth_keeping(&path) {
            self.retain(path);
        }
        Ok(())
    }

    /// Keeps the buffer's content for component detection at the end, if
    /// the limits allow.
    fn retain(&mut self, path: String) {
        let limits = &self.budget.limits;
        let len = self.buf.len() as u64;
        if len > limits.max_pkgdb_bytes {
            self.view.warnings.push(format!(
                "{path}: {len} bytes, larger than the {}-byte package database limit; not parsed",
                limits.max_pkgdb_bytes
            ));
        } else if self.view.retained_bytes + len > limits.max_retained_bytes {
            self.view.warnings.push(format!(
                "{path}: not parsed, package databases exceed {} bytes in total",
                limits.max_retained_bytes
            ));
        } else {
            self.view.retained_bytes += len;
            self.view.retained.insert(path, self.buf.clone());
        }
    }

    /// Visits a non-archive artifact as one file called `name`.
    pub(crate) fn single_file(
        &mut self,
        name: &str,
        mut stream: impl Read,
    ) -> Result<(), ExtractError> {
        let path = normalise(name.as_bytes(), self.budget.limits.max_path_len)
            .ok()
            .map(|n| n.path)
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "artifact".to_owned());
        let meta = FileMeta {
            kind: FileKind::File,
            size: 0,
            layer: 0,
            mode: 0o644,
            sha256: None,
            link_target: None,
        };
        self.regular_file(path, meta, u64::MAX, &mut stream)
    }

    /// Parses the retained files against the final view and assembles the
    /// result.
    pub(crate) fn finish(self, format: Format) -> Extraction {
        let mut view = self.view;
        let components = components::collect(&mut view);
        Extraction {
            format,
            files: view.files,
            components,
            removed: view.removed,
            skipped: view.skipped,
            warnings: view.warnings.into_vec(),
        }
    }
}

/// Feeds written bytes to a hasher.
struct HashWriter<'h>(&'h mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
