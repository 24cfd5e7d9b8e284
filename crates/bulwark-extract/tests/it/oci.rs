//! OCI image layouts: layer order, whiteouts, opaque directories, nested
//! indexes, media types and blob verification.

use bulwark_extract::{ExtractError, Format, Limits, RemovalReason};
use serde_json::json;

use crate::support::{self, Entry, INDEX, LAYER_GZIP, LAYER_TAR, LAYER_ZSTD, Layout, MANIFEST};

fn dpkg(package: &str) -> Vec<u8> {
    format!("Package: {package}\nStatus: install ok installed\nArchitecture: arm64\nVersion: 1.0\n")
        .into_bytes()
}

fn two_layers() -> Layout {
    let lower = support::tar(&[
        Entry::file("etc/a", "a"),
        Entry::file("etc/b", "b"),
        Entry::file("opt/x", "x"),
        Entry::file("opt/y", "y"),
        Entry::file("var/lib/dpkg/status", dpkg("old")),
    ]);
    let upper = support::tar(&[
        Entry::file("etc/c", "c"),
        Entry::file("etc/.wh..wh..opq", ""),
        Entry::file("opt/.wh.x", ""),
        Entry::file("var/lib/dpkg/status", dpkg("new")),
    ]);
    Layout::image(vec![
        (LAYER_GZIP, support::gzip(&lower)),
        (LAYER_ZSTD, support::zstd(&upper)),
    ])
}

#[test]
fn whiteouts_opaque_dirs_and_replacements() {
    let layout = two_layers();
    let (result, visited) = support::run(&layout.tar(true), &Limits::default());
    let e = result.unwrap();
    assert_eq!(
        e.format,
        Format::OciArchive(bulwark_extract::Compression::None)
    );
    assert_eq!(
        support::files(&e),
        ["etc/c", "opt/y", "var/lib/dpkg/status"]
    );
    assert_eq!(
        support::components(&e),
        ["pkg:deb/debian/new@1.0?arch=arm64 @ var/lib/dpkg/status"]
    );
    assert_eq!(e.files["etc/c"].layer, 1);
    assert_eq!(e.files["opt/y"].layer, 0);
    let removed: Vec<_> = e
        .removed
        .iter()
        .map(|r| (r.path.as_str(), r.layer, r.by_layer, r.reason))
        .collect();
    assert_eq!(
        removed,
        [
            ("etc/a", 0, 1, RemovalReason::OpaqueDir),
            ("etc/b", 0, 1, RemovalReason::OpaqueDir),
            ("opt/x", 0, 1, RemovalReason::Whiteout),
            ("var/lib/dpkg/status", 0, 1, RemovalReason::Replaced),
        ]
    );
    // Every file was visited, whiteout markers excepted.
    assert_eq!(visited.len(), 7);
    assert!(visited.contains(&("opt/x".into(), 0, 1)));

    // The same from a directory and from a compressed archive.
    let dir = layout.dir();
    let mut ignore = |_: &str, _: usize, _: &[u8]| Ok(());
    let from_dir = bulwark_extract::extract(dir.path(), &Limits::default(), &mut ignore).unwrap();
    assert_eq!(from_dir.files, e.files);
    assert_eq!(from_dir.removed, e.removed);
    let gz = support::extract_ok(&support::gzip(&layout.tar(false)));
    assert_eq!(
        gz.format,
        Format::OciArchive(bulwark_extract::Compression::Gzip)
    );
    assert_eq!(gz.files, e.files);
}

#[test]
fn nested_indexes_docker_media_types_and_manifest_choice() {
    let mut layout = Layout::default();
    let layer = support::gzip(&support::tar(&[Entry::file(
        "lib/apk/db/installed",
        "P:musl\nV:1.2.4-r2\nA:aarch64\n",
    )]));
    let first = layout.manifest(vec![(
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        layer,
    )]);
    let second = layout.manifest(vec![]);
    let attestation = json!({"mediaType": MANIFEST, "digest": second["digest"], "size": second["size"],
        "platform": {"os": "unknown", "architecture": "unknown"}});
    let inner = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [attestation, first, second]});
    let inner = layout.blob(INDEX, serde_json::to_vec(&inner).unwrap());
    let odd =
        json!({"mediaType": "application/vnd.example+json", "digest": inner["digest"], "size": 1});
    layout.index(vec![odd, inner]);
    let e = support::extract_ok(&layout.tar(true));
    assert_eq!(
        support::components(&e),
        ["pkg:apk/alpine/musl@1.2.4-r2?arch=aarch64 @ lib/apk/db/installed"]
    );
    assert!(support::warned(&e, "index.json lists 2 manifests"));
    assert!(support::warned(&e, "application/vnd.example+json"));
}

fn nested(depth: usize) -> Layout {
    let mut layout = Layout::default();
    let mut desc = layout.manifest(vec![]);
    for _ in 0..depth {
        let index = json!({"schemaVersion": 2, "manifests": [desc]});
        desc = layout.blob(INDEX, serde_json::to_vec(&index).unwrap());
    }
    layout.index(vec![desc]);
    layout
}

#[test]
fn index_depth_is_limited() {
    let limits = Limits::default();
    assert!(support::run(&nested(8).tar(true), &limits).0.is_ok());
    let err = support::run(&nested(9).tar(true), &limits).0.unwrap_err();
    assert!(
        matches!(err, ExtractError::IndexTooDeep { limit: 8 }),
        "{err}"
    );
}

#[test]
fn layer_count_is_limited() {
    let layer = support::tar(&[Entry::file("f", "x")]);
    let layout = Layout::image(vec![
        (LAYER_TAR, layer.clone()),
        (LAYER_TAR, layer.clone()),
        (LAYER_TAR, layer),
    ]);
    let limits = Limits {
        max_layers: 2,
        ..Limits::default()
    };
    let err = support::run(&layout.tar(true), &limits).0.unwrap_err();
    assert!(
        matches!(err, ExtractError::TooManyLayers { count: 3, limit: 2 }),
        "{err}"
    );
}

/// Rewrites the content of the first blob whose content is `from`.
fn tamper(layout: &mut Layout, from: &[u8], to: &[u8]) {
    let blob = layout
        .files
        .values_mut()
        .find(|d| d.as_slice() == from)
        .unwrap();
    *blob = to.to_vec();
}

#[test]
fn blobs_are_verified() {
    let layer = support::tar(&[Entry::file("etc/motd", "hello")]);
    let mut bad = layer.clone();
    let at = bad.len() - 1500;
    bad[at] ^= 1;
    let mut layout = Layout::image(vec![(LAYER_TAR, layer.clone())]);
    tamper(&mut layout, &layer, &bad);
    let err = support::run(&layout.tar(true), &Limits::default())
        .0
        .unwrap_err();
    assert!(matches!(err, ExtractError::DigestMismatch { .. }), "{err}");

    let mut longer = layer.clone();
    longer.extend_from_slice(&[0; 512]);
    let mut layout = Layout::image(vec![(LAYER_TAR, layer.clone())]);
    tamper(&mut layout, &layer, &longer);
    let err = support::run(&layout.tar(true), &Limits::default())
        .0
        .unwrap_err();
    assert!(matches!(err, ExtractError::BlobSize { .. }), "{err}");

    // A tampered manifest is caught before its layers are read.
    let mut layout = Layout::image(vec![(LAYER_TAR, layer)]);
    let manifest = layout
        .files
        .values_mut()
        .find(|d| {
            d.windows(MANIFEST.len()).any(|w| w == MANIFEST.as_bytes())
                // The manifest, not the index that names its media type
                // (key order depends on serde_json's features).
                && d.windows(8).any(|w| w == b"\"layers\"")
        })
        .unwrap();
    let last = manifest.len() - 1;
    manifest[last] = b' ';
    let err = support::run(&layout.tar(true), &Limits::default())
        .0
        .unwrap_err();
    assert!(matches!(err, ExtractError::DigestMismatch { .. }), "{err}");
}

#[test]
fn missing_blobs_and_bad_media_types() {
    let layer = support::tar(&[Entry::file("f", "x")]);
    let mut layout = Layout::image(vec![(LAYER_TAR, layer.clone())]);
    layout.files.retain(|_, d| d.as_slice() != layer.as_slice());
    let err = support::run(&layout.tar(true), &Limits::default())
        .0
        .unwrap_err();
    assert!(matches!(err, ExtractError::MissingBlob { .. }), "{err}");

    let layout = Layout::image(vec![(
        "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
        layer,
    )]);
    let err = support::run(&layout.tar(true), &Limits::default())
        .0
        .unwrap_err();
    assert!(
        matches!(err, ExtractError::UnsupportedMediaType { .. }),
        "{err}"
    );

    let mut layout = Layout::default();
    layout.index(vec![
        json!({"mediaType": MANIFEST, "digest": "sha256:../../etc/passwd", "size": 1}),
    ]);
    let err = support::run(&layout.tar(true), &Limits::default())
        .0
        .unwrap_err();
    assert!(matches!(err, ExtractError::InvalidLayout { .. }), "{err}");

    let mut layout = Layout::default();
    layout
        .files
        .insert("index.json".into(), b"{not json".to_vec());
    layout.files.insert("oci-layout".into(), b"{}".to_vec());
    let err = support::run(&layout.tar(true), &Limits::default())
        .0
        .unwrap_err();
    assert!(matches!(err, ExtractError::InvalidLayout { .. }), "{err}");
}

#[test]
fn a_tar_that_only_looks_like_a_layout_is_a_rootfs() {
    let tar = support::tar(&[
        Entry::file("blobs/readme.txt", "not an image"),
        Entry::file("etc/passwd", "root"),
    ]);
    let e = support::extract_ok(&tar);
    assert_eq!(e.format, Format::Tar(bulwark_extract::Compression::None));
    assert_eq!(support::files(&e), ["blobs/readme.txt", "etc/passwd"]);
}
