//! OCI image layouts: `index.json` → (nested indexes →) one image manifest
//! → layers, every blob checked against its descriptor's digest and size
//! while it is read.
//!
//! Manifest choice: the first image manifest in depth-first index order,
//! skipping attestation manifests (platform `unknown/unknown`); a warning
//! says when the index offered more. One artifact is one image, so a
//! multi-platform index yields the components of its first platform only.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, BufReader, Read, Seek, SeekFrom},
    path::PathBuf,
};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{
    ExtractError,
    limits::MAX_JSON_BYTES,
    model::Compression,
    stream::{Budget, decode, skip},
    walk::Walker,
};

/// Most index blobs read while looking for a manifest.
const MAX_INDEX_READS: usize = 64;

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const LAYER_TYPE_PREFIXES: [&str; 2] = [
    "application/vnd.oci.image.layer.",
    "application/vnd.docker.image.rootfs.",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
struct Platform {
    #[serde(default)]
    os: String,
}

#[derive(Debug, Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    media_type: Option<String>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// Where blobs come from: a layout directory or a layout packed in a tar.
pub(crate) trait BlobStore {
    /// The raw bytes of the blob with this (validated) hex SHA-256.
    fn open(&mut self, hex: &str) -> Result<Box<dyn Read + '_>, ExtractError>;
}

/// Blobs of a layout directory, `blobs/sha256/<hex>`.
#[derive(Debug)]
pub(crate) struct DirBlobs {
    pub(crate) root: PathBuf,
}

impl BlobStore for DirBlobs {
    fn open(&mut self, hex: &str) -> Result<Box<dyn Read + '_>, ExtractError> {
        let path = self.root.join("blobs").join("sha256").join(hex);
        match File::open(&path) {
            Ok(file) => Ok(Box::new(BufReader::new(file))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ExtractError::MissingBlob {
                digest: format!("sha256:{hex}"),
            }),
            Err(source) => Err(ExtractError::Open { path, source }),
        }
    }
}

/// Blobs of a layout packed in a (possibly compressed) tar, located by a
/// first pass. An uncompressed archive is read by seeking; a compressed one
/// is decompressed again from the start for every blob.
#[derive(Debug)]
pub(crate) struct ArchiveBlobs<'r, R> {
    pub(crate) reader: &'r mut R,
    pub(crate) compression: Compression,
    /// `blobs/sha256/<hex>` → (offset, size) in the uncompressed tar.
    pub(crate) entries: HashMap<String, (u64, u64)>,
    pub(crate) budget: &'r Budget,
}

impl<R: Read + Seek> BlobStore for ArchiveBlobs<'_, R> {
    fn open(&mut self, hex: &str) -> Result<Box<dyn Read + '_>, ExtractError> {
        let &(offset, size) = self
            .entries
            .get(&format!("blobs/sha256/{hex}"))
            .ok_or_else(|| ExtractError::MissingBlob {
                digest: format!("sha256:{hex}"),
            })?;
        let budget = self.budget;
        if self.compression == Compression::None {
            self.reader
                .seek(SeekFrom::Start(offset))
                .map_err(ExtractError::Read)?;
            return Ok(Box::new((&mut *self.reader).take(size)));
        }
        self.reader
            .seek(SeekFrom::Start(0))
            .map_err(ExtractError::Read)?;
        let (_, mut decoded) = decode(&mut *self.reader, budget)?;
        skip(&mut decoded, offset).map_err(|e| budget.error(e))?;
        Ok(Box::new(decoded.take(size)))
    }
}

/// Reads a blob, hashing it; refuses to read past the declared size.
struct Verified<'b, R> {
    inner: io::Take<R>,
    hasher: Sha256,
    read: u64,
    size: u64,
    digest: String,
    budget: &'b Budget,
}

impl<'b, R: Read> Verified<'b, R> {
    fn new(inner: R, desc: &Descriptor, budget: &'b Budget) -> Verified<'b, R> {
        Verified {
            inner: inner.take(desc.size.saturating_add(1)),
            hasher: Sha256::new(),
            read: 0,
            size: desc.size,
            digest: desc.digest.clone(),
            budget,
        }
    }

    fn size_error(&self) -> ExtractError {
        ExtractError::BlobSize {
            digest: self.digest.clone(),
            expected: self.size,
        }
    }

    /// Reads what is left and checks size and digest.
    fn finish(mut self) -> Result<(), ExtractError> {
        io::copy(&mut self, &mut io::sink()).map_err(|e| self.budget.error(e))?;
        if self.read != self.size {
            return Err(self.size_error());
        }
        let actual = hex::encode(self.hasher.finalize());
        if self.digest.strip_prefix("sha256:") != Some(actual.as_str()) {
            return Err(ExtractError::DigestMismatch {
                digest: self.digest,
            });
        }
        Ok(())
    }
}

impl<R: Read> Read for Verified<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if self.read > self.size {
            return Err(self.budget.trip(self.size_error()));
        }
        Ok(n)
    }
}

/// The hex part of a `sha256:<64 lower-case hex>` digest.
fn sha256_hex(digest: &str) -> Result<&str, ExtractError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| ExtractError::InvalidLayout {
            reason: format!("unsupported or malformed digest {digest:?}"),
        })
}

fn invalid(reason: impl Into<String>) -> ExtractError {
    ExtractError::InvalidLayout {
        reason: reason.into(),
    }
}

/// Reads a small JSON blob, verified.
fn read_json_blob(
    store: &mut dyn BlobStore,
    desc: &Descriptor,
    budget: &Budget,
) -> Result<Vec<u8>, ExtractError> {
    let hex = sha256_hex(&desc.digest)?;
    if desc.size > MAX_JSON_BYTES {
        return Err(invalid(format!(
            "blob {} is {} bytes, more than {MAX_JSON_BYTES} for a JSON document",
            desc.digest, desc.size
        )));
    }
    let mut verified = Verified::new(store.open(hex)?, desc, budget);
    let mut data = Vec::new();
    verified
        .by_ref()
        .read_to_end(&mut data)
        .map_err(|e| budget.error(e))?;
    verified.finish()?;
    Ok(data)
}

fn parse<'de, T: Deserialize<'de>>(data: &'de [u8], what: &str) -> Result<T, ExtractError> {
    serde_json::from_slice(data).map_err(|e| invalid(format!("{what}: {e}")))
}

/// Extracts the image described by `index_json`.
pub(crate) fn walk_layout(
    store: &mut dyn BlobStore,
    index_json: &[u8],
    walker: &mut Walker<'_>,
) -> Result<(), ExtractError> {
    let budget = walker.budget;
    let index: Index = parse(index_json, "index.json")?;
    let mut reads = 0;
    let desc = find_manifest(store, &index.manifests, 0, &mut reads, walker)?
        .ok_or_else(|| invalid("no image manifest in index.json"))?;
    if index.manifests.len() > 1 {
        walker.view.warnings.push(format!(
            "index.json lists {} manifests; only {} was extracted",
            index.manifests.len(),
            desc.digest
        ));
    }
    let data = read_json_blob(store, &desc, budget)?;
    let manifest: Manifest = parse(&data, "image manifest")?;
    if let Some(t) = manifest
        .media_type
        .filter(|t| !MANIFEST_TYPES.contains(&t.as_str()))
    {
        return Err(ExtractError::UnsupportedMediaType { media_type: t });
    }
    let limit = budget.limits.max_layers;
    if manifest.layers.len() > limit {
        return Err(ExtractError::TooManyLayers {
            count: manifest.layers.len(),
            limit,
        });
    }
    for (layer, desc) in manifest.layers.iter().enumerate() {
        let t = desc.media_type.as_str();
        if !LAYER_TYPE_PREFIXES.iter().any(|p| t.starts_with(p)) || t.contains("encrypted") {
            return Err(ExtractError::UnsupportedMediaType {
                media_type: desc.media_type.clone(),
            });
        }
        let hex = sha256_hex(&desc.digest)?;
        let mut verified = Verified::new(store.open(hex)?, desc, budget);
        // Compression is detected from the bytes: Docker labels
        // uncompressed layers `tar.gzip` in some versions.
        let walked =
            decode(&mut verified, budget).and_then(|(_, s)| walker.walk_tar(s, layer, true));
        // A corrupt blob is reported as such even if it also broke the tar.
        match (walked, verified.finish()) {
            (_, Err(e @ (ExtractError::DigestMismatch { .. } | ExtractError::BlobSize { .. }))) => {
                return Err(e);
            }
            (Err(e), _) | (Ok(()), Err(e)) => return Err(e),
            (Ok(()), Ok(())) => {}
        }
    }
    Ok(())
}

/// Depth-first search for the first image manifest.
fn find_manifest(
    store: &mut dyn BlobStore,
    descriptors: &[Descriptor],
    depth: usize,
    reads: &mut usize,
    walker: &mut Walker<'_>,
) -> Result<Option<Descriptor>, ExtractError> {
    let budget = walker.budget;
    for desc in descriptors {
        let t = desc.media_type.as_str();
        if MANIFEST_TYPES.contains(&t) {
            if desc.platform.as_ref().is_some_and(|p| p.os == "unknown") {
                continue; // build attestation, not an image
            }
            return Ok(Some(desc.clone()));
        }
        if !INDEX_TYPES.contains(&t) {
            walker
                .view
                .warnings
                .push(format!("ignoring {} of media type {t:?}", desc.digest));
            continue;
        }
        let limit = budget.limits.max_index_depth;
        if depth + 1 > limit {
            return Err(ExtractError::IndexTooDeep { limit });
        }
        *reads += 1;
        if *reads > MAX_INDEX_READS {
            return Err(invalid(format!(
                "more than {MAX_INDEX_READS} nested indexes"
            )));
        }
        let data = read_json_blob(store, desc, budget)?;
        let nested: Index = parse(&data, "nested image index")?;
        if let Some(found) = find_manifest(store, &nested.manifests, depth + 1, reads, walker)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}
