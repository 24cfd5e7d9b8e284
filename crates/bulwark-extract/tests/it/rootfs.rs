//! Data-driven root filesystem cases: every `tests/fixtures/rootfs/<case>/`
//! holds a `root/` tree, an optional `links.txt` (`path -> target` symlink
//! lines) and `expected.json` (`components`, `files`, `warnings` substrings).
//! Each case is packed as tar, tar.gz, tar.zst, one- and two-layer OCI
//! archives (gzip and zstd layers, both entry orders), a gzipped OCI
//! archive and an OCI directory; all must give the expected result.
//! `UPDATE_EXPECT=1` rewrites `expected.json` from the plain tar result.

use std::{fs, path::Path};

use bulwark_extract::{Format, Limits, extract};
use serde::{Deserialize, Serialize};

use crate::support::{self, Entry, LAYER_GZIP, LAYER_TAR, LAYER_ZSTD, Layout};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Expected {
    components: Vec<String>,
    files: Vec<String>,
    /// Substrings each of which some warning must contain.
    #[serde(default)]
    warnings: Vec<String>,
}

fn collect_tree(root: &Path, dir: &Path, out: &mut Vec<Entry>) {
    let mut children: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    children.sort();
    for child in children {
        let rel = child
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .replace('\\', "/");
        if child.is_dir() {
            out.push(Entry::Dir(format!("{rel}/")));
            collect_tree(root, &child, out);
        } else {
            out.push(Entry::File(rel, fs::read(&child).unwrap()));
        }
    }
}

fn case_entries(case: &Path) -> Vec<Entry> {
    let mut entries = Vec::new();
    collect_tree(&case.join("root"), &case.join("root"), &mut entries);
    if let Ok(links) = fs::read_to_string(case.join("links.txt")) {
        for line in links.lines().filter(|l| !l.trim().is_empty()) {
            let (path, target) = line.split_once(" -> ").expect("links.txt: path -> target");
            entries.push(Entry::symlink(path.trim(), target.trim()));
        }
    }
    entries
}

/// Every packing of `entries`, named.
fn packings(entries: &[Entry]) -> Vec<(String, Vec<u8>)> {
    let tar = support::tar(entries);
    let half = entries.len() / 2;
    let (lower, upper) = (
        support::tar(&entries[..half]),
        support::tar(&entries[half..]),
    );
    let one = Layout::image(vec![(LAYER_GZIP, support::gzip(&tar))]);
    let two = Layout::image(vec![
        (LAYER_ZSTD, support::zstd(&lower)),
        (LAYER_TAR, upper),
    ]);
    vec![
        ("tar".into(), tar.clone()),
        ("tar.gz".into(), support::gzip(&tar)),
        ("tar.zst".into(), support::zstd(&tar)),
        ("oci, one layer, blobs first".into(), one.tar(true)),
        ("oci, two layers, index first".into(), two.tar(false)),
        (
            "oci.tar.gz, two layers".into(),
            support::gzip(&two.tar(true)),
        ),
    ]
}

#[test]
fn rootfs_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rootfs");
    let mut cases: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "fixture cases missing");
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let entries = case_entries(&case);
        let expected_path = case.join("expected.json");
        let mut results = Vec::new();
        for (packing, bytes) in packings(&entries) {
            let extraction = support::extract_ok(&bytes);
            results.push((packing, extraction));
        }
        let layout = Layout::image(vec![(LAYER_GZIP, support::gzip(&support::tar(&entries)))]);
        let dir = layout.dir();
        let mut ignore = |_: &str, _: usize, _: &[u8]| Ok(());
        let from_dir = extract(dir.path(), &Limits::default(), &mut ignore).unwrap();
        assert_eq!(from_dir.format, Format::OciDirectory);
        results.push(("oci directory".into(), from_dir));

        if std::env::var_os("UPDATE_EXPECT").is_some() {
            let e = &results[0].1;
            let expected = Expected {
                components: support::components(e),
                files: support::files(e),
                warnings: Vec::new(),
            };
            let old: Option<Expected> = fs::read(&expected_path)
                .ok()
                .and_then(|d| serde_json::from_slice(&d).ok());
            let expected = Expected {
                warnings: old.map(|o| o.warnings).unwrap_or_default(),
                ..expected
            };
            fs::write(
                &expected_path,
                serde_json::to_string_pretty(&expected).unwrap() + "\n",
            )
            .unwrap();
        }
        let expected: Expected =
            serde_json::from_slice(&fs::read(&expected_path).unwrap()).unwrap();
        for (packing, e) in &results {
            assert_eq!(
                support::components(e),
                expected.components,
                "{name} as {packing}"
            );
            assert_eq!(support::files(e), expected.files, "{name} as {packing}");
            for w in &expected.warnings {
                assert!(
                    support::warned(e, w),
                    "{name} as {packing}: no warning {w:?} in {:?}",
                    e.warnings
                );
            }
            assert!(e.removed.is_empty(), "{name} as {packing}: {:?}", e.removed);
        }
    }
}
