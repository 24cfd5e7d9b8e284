//! Data-driven tests over `tests/fixtures/`: canonical JSON vectors from
//! securesystemslib, metadata signed by python-tuf, and hostile documents.
//! Regenerate with `tests/fixtures/gen/gen.py`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bulwark_tuf::{Error, KeyId, Metadata, PublicKey, Role, Root, Snapshot, Targets, Timestamp};

fn fixtures(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir)
}

/// The files in `dir` ending in `suffix`, as (stem, path), sorted.
fn cases(dir: &str, suffix: &str) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(fixtures(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            Some((name.strip_suffix(suffix)?.to_owned(), p))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no {suffix} fixtures in {dir}");
    out
}

#[test]
fn canonical_json_matches_securesystemslib() {
    for (name, input) in cases("canonical", ".input.json") {
        let value: serde_json::Value = serde_json::from_slice(&fs::read(&input).unwrap()).unwrap();
        let expected = fs::read(fixtures("canonical").join(format!("{name}.canonical"))).unwrap();
        let actual = bulwark_tuf::canonical_json(&value).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&actual),
            String::from_utf8_lossy(&expected),
            "canonical JSON of case {name}"
        );
    }
}

#[test]
fn canonical_json_rejects_floats() {
    let err = bulwark_tuf::canonical_json(&serde_json::json!({"a": 1.5})).unwrap_err();
    assert!(matches!(err, Error::Canonical(_)), "{err}");
}

fn read<T: Role>(name: &str) -> Metadata<T> {
    let bytes = fs::read(fixtures("python-tuf").join(format!("{name}.json"))).unwrap();
    let md = Metadata::<T>::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let canonical =
        fs::read(fixtures("python-tuf").join(format!("{name}.signed.canonical"))).unwrap();
    assert_eq!(
        md.signed_bytes().unwrap(),
        canonical,
        "{name}: signed bytes differ from python-tuf's"
    );
    md
}

#[test]
fn python_tuf_metadata_verifies() {
    let root = read::<Root>("root");
    let r = root.signed();
    // 2-of-2 root: ed25519 + ecdsa.
    r.verify_role("root", &root).unwrap();
    assert_eq!(r.count_valid("root", &root), 2);
    assert!(r.unrecognized.contains_key("x-custom"));

    let timestamp = read::<Timestamp>("timestamp");
    r.verify_role("timestamp", &timestamp).unwrap(); // ecdsa
    let snapshot = read::<Snapshot>("snapshot");
    r.verify_role("snapshot", &snapshot).unwrap(); // rsassa-pss
    let targets = read::<Targets>("targets");
    r.verify_role("targets", &targets).unwrap(); // rsa-pkcs1v15
    assert_eq!(targets.signed().targets["file.txt"].length, 6);
    assert!(targets.signed().targets["file.txt"].custom.is_some());

    // Signatures of one role do not count for another.
    assert!(r.verify_role("timestamp", &targets).is_err());
    assert_eq!(r.count_valid("snapshot", &timestamp), 0);

    let delegated = read::<Targets>("delegated");
    targets
        .signed()
        .verify_delegate("delegated", &delegated)
        .unwrap();
    targets
        .signed()
        .verify_delegate("hashed", &delegated)
        .unwrap();
    assert!(
        targets
            .signed()
            .verify_delegate("other", &delegated)
            .is_err()
    );

    let bin = read::<Targets>("bin-3");
    let d = delegated.signed();
    d.verify_delegate("bin-3", &bin).unwrap();
    // bin-10 does not exist with bit_length 4 (bins 0..f).
    assert!(d.verify_delegate("bin-10", &bin).is_err());
}

#[test]
fn key_ids_match_securesystemslib() {
    let bytes = fs::read(fixtures("python-tuf").join("keyids.json")).unwrap();
    let keys: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
    for (name, entry) in keys {
        let key: PublicKey = serde_json::from_value(entry["key"].clone()).unwrap();
        let want: KeyId = entry["keyid"].as_str().unwrap().parse().unwrap();
        assert_eq!(key.key_id(), want, "key id of {name}");
    }
}

#[test]
fn hostile_documents_are_refused() {
    let root = read::<Root>("root");
    for (name, path) in cases("hostile", ".json") {
        let expect =
            fs::read_to_string(fixtures("hostile").join(format!("{name}.expect"))).unwrap();
        let parsed = Metadata::<Targets>::from_slice(&fs::read(&path).unwrap());
        match expect.trim() {
            "parse" => assert!(parsed.is_err(), "{name}: parsed but should not"),
            "verify" => {
                let md = parsed.unwrap_or_else(|e| panic!("{name}: should parse: {e}"));
                let err = root.signed().verify_role("targets", &md);
                assert!(err.is_err(), "{name}: verified but should not");
            }
            other => panic!("{name}: unknown expectation {other:?}"),
        }
    }
}
