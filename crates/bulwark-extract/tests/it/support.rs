//! Packing helpers: tar, compressed tar and OCI image layouts built in
//! memory, and a recording visitor.

use std::{
    collections::BTreeMap,
    io::{Cursor, Write},
};

use bulwark_extract::{ExtractError, Extraction, FileKind, Limits, extract_reader};
use serde_json::json;
use sha2::{Digest, Sha256};

/// One archive entry to pack.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    File(String, Vec<u8>),
    Dir(String),
    Symlink(String, String),
}

impl Entry {
    pub(crate) fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry {
        Entry::File(path.to_owned(), data.into())
    }

    pub(crate) fn symlink(path: &str, target: &str) -> Entry {
        Entry::Symlink(path.to_owned(), target.to_owned())
    }
}

/// A tar archive of `entries`, in order.
pub(crate) fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        match entry {
            Entry::File(path, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                builder
                    .append_data(&mut header, path, data.as_slice())
                    .unwrap();
            }
            Entry::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, &[][..]).unwrap();
            }
            Entry::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, target).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).unwrap()
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub(crate) const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub(crate) const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The files of an OCI image layout, by path.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layout {
    pub(crate) files: BTreeMap<String, Vec<u8>>,
}

impl Layout {
    /// Adds a blob and returns its descriptor.
    pub(crate) fn blob(&mut self, media_type: &str, data: Vec<u8>) -> serde_json::Value {
        let hex = sha256_hex(&data);
        let desc =
            json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": data.len()});
        self.files.insert(format!("blobs/sha256/{hex}"), data);
        desc
    }

    /// Adds a manifest over `layers` (media type, blob) and returns its
    /// descriptor.
    pub(crate) fn manifest(&mut self, layers: Vec<(&str, Vec<u8>)>) -> serde_json::Value {
        let config = self.blob("application/vnd.oci.image.config.v1+json", b"{}".to_vec());
        let layers: Vec<_> = layers
            .into_iter()
            .map(|(t, data)| self.blob(t, data))
            .collect();
        let manifest =
            json!({"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": layers});
        self.blob(MANIFEST, serde_json::to_vec(&manifest).unwrap())
    }

    /// Writes `index.json` listing `manifests`, and `oci-layout`.
    pub(crate) fn index(&mut self, manifests: Vec<serde_json::Value>) {
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
        self.files
            .insert("index.json".into(), serde_json::to_vec(&index).unwrap());
        self.files.insert(
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        );
    }

    /// A layout with one manifest over `layers`.
    pub(crate) fn image(layers: Vec<(&str, Vec<u8>)>) -> Layout {
        let mut layout = Layout::default();
        let manifest = layout.manifest(layers);
        layout.index(vec![manifest]);
        layout
    }

    /// The layout as a tar: blobs first (as `docker save` writes it), or
    /// `index.json` and `oci-layout` first.
    pub(crate) fn tar(&self, blobs_first: bool) -> Vec<u8> {
        let mut entries: Vec<Entry> = vec![
            Entry::Dir("blobs/".into()),
            Entry::Dir("blobs/sha256/".into()),
        ];
        let mut files: Vec<(&String, &Vec<u8>)> = self.files.iter().collect();
        files.sort_by_key(|(path, _)| (path.starts_with("blobs/") != blobs_first, path.as_str()));
        entries.extend(files.into_iter().map(|(p, d)| Entry::file(p, d.clone())));
        tar(&entries)
    }

    /// The layout written to a temporary directory.
    pub(crate) fn dir(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, data) in &self.files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, data).unwrap();
        }
        dir
    }
}

/// Files the visitor saw: (path, layer, length).
pub(crate) type Visited = Vec<(String, usize, usize)>;

/// Runs [`extract_reader`] over `bytes`, recording visits.
pub(crate) fn run(bytes: &[u8], limits: &Limits) -> (Result<Extraction, ExtractError>, Visited) {
    let mut visited = Vec::new();
    let mut visitor = |path: &str, layer: usize, data: &[u8]| {
        visited.push((path.to_owned(), layer, data.len()));
        Ok(())
    };
    let result = extract_reader(Cursor::new(bytes), "artifact", limits, &mut visitor);
    (result, visited)
}

/// Runs with default limits and expects success.
pub(crate) fn extract_ok(bytes: &[u8]) -> Extraction {
    match run(bytes, &Limits::default()).0 {
        Ok(e) => e,
        Err(e) => panic!("extraction failed: {e}"),
    }
}

/// Components as `purl @ found_in` lines.
pub(crate) fn components(e: &Extraction) -> Vec<String> {
    e.components
        .iter()
        .map(|c| format!("{} @ {}", c.purl, c.found_in.as_deref().unwrap_or("?")))
        .collect()
}

/// Non-directory entries as `path` or `path -> target` lines.
pub(crate) fn files(e: &Extraction) -> Vec<String> {
    e.files
        .iter()
        .filter(|(_, m)| m.kind != FileKind::Dir)
        .map(|(p, m)| match (&m.kind, &m.link_target) {
            (FileKind::Symlink, Some(t)) => format!("{p} -> {t}"),
            _ => p.clone(),
        })
        .collect()
}

/// Whether some warning contains `needle`.
pub(crate) fn warned(e: &Extraction, needle: &str) -> bool {
    e.warnings.iter().any(|w| w.contains(needle))
}
