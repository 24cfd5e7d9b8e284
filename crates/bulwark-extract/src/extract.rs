//! Entry points: format detection and the passes over an artifact.

use std::{
    collections::HashMap,
    fs::{self, File},
    io::{BufReader, Read, Seek, SeekFrom},
    path::Path,
};

use crate::{
    ExtractError, Extraction, FileVisitor, Limits,
    limits::MAX_JSON_BYTES,
    model::{Compression, Format},
    oci::{ArchiveBlobs, DirBlobs, walk_layout},
    path::normalise,
    stream::{Budget, decode, sniff_tar},
    tar::{TarKind, TarReader},
    view::View,
    walk::{Walker, tar_error},
};

/// Takes the artifact at `path` apart: a file (tar, tar.gz, tar.zst, an OCI
/// layout packed in a tar, or any other file) or an OCI image layout
/// directory.
///
/// Every regular file's bytes go to `visitor` as they are read; nothing is
/// written to disk.
pub fn extract(
    path: &Path,
    limits: &Limits,
    visitor: &mut dyn FileVisitor,
) -> Result<Extraction, ExtractError> {
    let open_error = |source| ExtractError::Open {
        path: path.to_owned(),
        source,
    };
    if fs::metadata(path).map_err(open_error)?.is_dir() {
        return extract_layout_dir(path, limits, visitor);
    }
    let file = File::open(path).map_err(open_error)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    extract_reader(BufReader::new(file), &name, limits, visitor)
}

/// Like [`extract`] for an artifact already open as `reader` (a file, or a
/// `std::io::Cursor` over bytes); `name` is the path given to a
/// non-archive artifact. Never panics, whatever the bytes: this is the
/// fuzzing entry point.
pub fn extract_reader<R: Read + Seek>(
    mut reader: R,
    name: &str,
    limits: &Limits,
    visitor: &mut dyn FileVisitor,
) -> Result<Extraction, ExtractError> {
    let budget = Budget::new(limits);
    let mut walker = Walker::new(&budget, visitor);
    reader
        .seek(SeekFrom::Start(0))
        .map_err(ExtractError::Read)?;
    let (compression, stream) = decode(&mut reader, &budget)?;
    let (is_tar, stream) = sniff_tar(stream, &budget)?;
    if !is_tar {
        let format = match compression {
            Compression::None => {
                walker.single_file(name, stream)?;
                Format::File
            }
            c => {
                walker.single_file(strip_compression_suffix(name), stream)?;
                Format::CompressedFile(c)
            }
        };
        return Ok(walker.finish(format));
    }
    let Some(scan) = walk_outer(&mut walker, stream)? else {
        return Ok(walker.finish(Format::Tar(compression)));
    };
    walker.view = View::default();
    match (scan.index_json, scan.oci_layout) {
        (Some(index_json), true) => {
            let mut store = ArchiveBlobs {
                reader: &mut reader,
                compression,
                entries: scan.blobs,
                budget: &budget,
            };
            walk_layout(&mut store, &index_json, &mut walker)?;
            Ok(walker.finish(Format::OciArchive(compression)))
        }
        _ => {
            // It only looked like a layout: read it again as a root
            // filesystem.
            reader
                .seek(SeekFrom::Start(0))
                .map_err(ExtractError::Read)?;
            let (_, stream) = decode(&mut reader, &budget)?;
            walker.walk_tar(stream, 0, false)?;
            Ok(walker.finish(Format::Tar(compression)))
        }
    }
}

/// What the first pass over a tar that looks like an image layout found.
#[derive(Debug, Default)]
struct LayoutScan {
    /// `blobs/...` path → (offset, size) in the uncompressed tar.
    blobs: HashMap<String, (u64, u64)>,
    index_json: Option<Vec<u8>>,
    oci_layout: bool,
}

/// Whether an archive whose first non-directory entry is `path` is likely
/// an image layout (`docker save`, `skopeo copy oci-archive:`).
fn looks_like_layout(path: &str) -> bool {
    matches!(
        path,
        "oci-layout" | "index.json" | "manifest.json" | "repositories"
    ) || path.starts_with("blobs/")
}

/// First pass over a tar: a root filesystem is walked right away (`None`);
/// a likely image layout is only indexed.
fn walk_outer(
    walker: &mut Walker<'_>,
    stream: impl Read,
) -> Result<Option<LayoutScan>, ExtractError> {
    let budget = walker.budget;
    let mut tar = TarReader::new(stream);
    let mut layout: Option<bool> = None;
    let mut scan = LayoutScan::default();
    while let Some(entry) = tar.next_entry().map_err(|e| tar_error(budget, e))? {
        budget.count_entry()?;
        if layout.is_none() && entry.kind != TarKind::Dir {
            let path = normalise(&entry.path, budget.limits.max_path_len).map(|n| n.path);
            layout = Some(path.is_ok_and(|p| looks_like_layout(&p)));
        }
        if layout != Some(true) {
            walker.entry(&mut tar, entry, 0, false)?;
            continue;
        }
        let Ok(path) = normalise(&entry.path, budget.limits.max_path_len).map(|n| n.path) else {
            continue;
        };
        if entry.kind != TarKind::File {
            continue;
        }
        match path.as_str() {
            "index.json" => {
                if entry.size > MAX_JSON_BYTES {
                    return Err(ExtractError::InvalidLayout {
                        reason: format!("index.json is larger than {MAX_JSON_BYTES} bytes"),
                    });
                }
                let mut data = Vec::new();
                tar.data()
                    .read_to_end(&mut data)
                    .map_err(|e| budget.error(e))?;
                scan.index_json = Some(data);
            }
            "oci-layout" => scan.oci_layout = true,
            p if p.starts_with("blobs/") => {
                scan.blobs.insert(path, (entry.data_offset, entry.size));
            }
            _ => {}
        }
    }
    if layout == Some(true) {
        return Ok(Some(scan));
    }
    if tar.missing_end_marker {
        walker
            .view
            .warnings
            .push("tar archive ends without its end-of-archive blocks".to_owned());
    }
    Ok(None)
}

fn strip_compression_suffix(name: &str) -> &str {
    [".gz", ".zst", ".zstd"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// Extracts an OCI image layout directory.
fn extract_layout_dir(
    root: &Path,
    limits: &Limits,
    visitor: &mut dyn FileVisitor,
) -> Result<Extraction, ExtractError> {
    let read_small = |name: &str| -> Result<Vec<u8>, ExtractError> {
        let path = root.join(name);
        let open_error = |source| ExtractError::Open {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(open_error)?;
        let mut data = Vec::new();
        file.take(MAX_JSON_BYTES + 1)
            .read_to_end(&mut data)
            .map_err(open_error)?;
        if data.len() as u64 > MAX_JSON_BYTES {
            return Err(ExtractError::InvalidLayout {
                reason: format!("{name} is larger than {MAX_JSON_BYTES} bytes"),
            });
        }
        Ok(data)
    };
    read_small("oci-layout")?;
    let index_json = read_small("index.json")?;
    let budget = Budget::new(limits);
    let mut walker = Walker::new(&budget, visitor);
    let mut store = DirBlobs {
        root: root.to_owned(),
    };
    walk_layout(&mut store, &index_json, &mut walker)?;
    Ok(walker.finish(Format::OciDirectory))
}
