//! Zip archives: OSV's `all.zip` layout imports like the tarball of the
//! same advisories (from memory and from a file), and hostile archives are
//! refused whole with a message that names the fault, never a panic.
//!
//! The real-shaped `all.zip` is built here from the vendored Go
//! vulnerability database snapshot (CC-BY-4.0; provenance and attribution
//! in `data/advisories/PROVENANCE.md`), so no advisory text is copied.

use std::io::{Read as _, Write as _};

use bulwark_osv::{AdvisoryDb, Error, MAX_ADVISORY_BYTES};

use crate::advisory_data;

const GO_TARBALL: &str = "golang/golang-vulndb-osv-a752ea54.tar.gz";

/// Every `.json` file of the Go tarball, as (base name, bytes).
fn go_advisories() -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(advisory_data().join(GO_TARBALL)).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        if path.extension().is_some_and(|x| x == "json") {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            out.push((name, bytes));
        }
    }
    out
}

/// An archive as OSV publishes it: flat `<ID>.json` entries, deflated,
/// sizes in data descriptors (written by `rawzip`'s writer).
fn all_zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut archive = rawzip::ZipArchiveWriter::new(&mut out);
    for (name, bytes) in files {
        let (mut entry, config) = archive
            .new_file(name)
            .compression_method(rawzip::CompressionMethod::DEFLATE)
            .start()
            .unwrap();
        let encoder = flate2::write::DeflateEncoder::new(&mut entry, flate2::Compression::fast());
        let mut writer = config.wrap(encoder);
        writer.write_all(bytes).unwrap();
        let (encoder, descriptor) = writer.finish().unwrap();
        encoder.finish().unwrap();
        entry.finish(descriptor).unwrap();
    }
    archive.finish().unwrap();
    out
}

#[test]
fn osv_all_zip_imports_like_the_tarball() {
    let files = go_advisories();
    assert!(files.len() > 4000, "{}", files.len());
    let zip = all_zip(&files);
    assert!(zip.starts_with(b"PK\x03\x04"));

    let mut from_tar = AdvisoryDb::new();
    let tar = from_tar
        .import_path(&advisory_data().join(GO_TARBALL))
        .unwrap();
    // No `.zip` in the name: the bytes decide.
    let mut from_memory = AdvisoryDb::new();
    let mem = from_memory.import_archive(&zip[..], "go-osv").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("all.zip");
    std::fs::write(&path, &zip).unwrap();
    let mut from_file = AdvisoryDb::new();
    let file = from_file.import_path(&path).unwrap();
    assert_eq!(file.source, "all.zip");
    for r in [&mem, &file] {
        assert_eq!(
            (r.imported, r.withdrawn, r.skipped, r.errors.len()),
            (tar.imported, tar.withdrawn, 0, 0),
            "{r}"
        );
        assert_eq!(r.changed_ids, tar.changed_ids);
    }
    for db in [&from_memory, &from_file] {
        assert!(
            db.advisories()
                .zip(from_tar.advisories())
                .all(|(a, b)| a == b)
        );
    }
}

/// One entry of a hand-made archive; `declared` overrides the uncompressed
/// size the headers state, `crc` the checksum, `flags` and `method` theirs.
struct Entry {
    name: Vec<u8>,
    data: Vec<u8>,
    deflate: bool,
    declared: Option<u32>,
    crc: Option<u32>,
    flags: u16,
    method: Option<u16>,
}

fn entry(name: &str, data: &[u8]) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        data: data.to_vec(),
        deflate: true,
        declared: None,
        crc: None,
        flags: 0,
        method: None,
    }
}

/// A zip archive written field by field (APPNOTE 4.3), so every header can
/// lie. `aliases` adds central directory records (name, index of an
/// earlier entry) pointing at that entry's data; `declared_entries`
/// overrides the count in the end record.
fn handmade(
    entries: &[Entry],
    aliases: &[(&str, usize)],
    declared_entries: Option<u16>,
) -> Vec<u8> {
    fn u16le(out: &mut Vec<u8>, v: u16) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn u32le(out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    #[derive(Clone)]
    struct Record {
        name: Vec<u8>,
        flags: u16,
        method: u16,
        crc: u32,
        compressed: u32,
        size: u32,
        offset: u32,
    }
    let mut out = Vec::new();
    let mut records = Vec::new();
    for e in entries {
        let body = if e.deflate {
            let mut enc =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(&e.data).unwrap();
            enc.finish().unwrap()
        } else {
            e.data.clone()
        };
        let r = Record {
            name: e.name.clone(),
            flags: e.flags,
            method: e.method.unwrap_or(if e.deflate { 8 } else { 0 }),
            crc: e.crc.unwrap_or_else(|| rawzip::crc32(&e.data)),
            compressed: body.len() as u32,
            size: e.declared.unwrap_or(e.data.len() as u32),
            offset: out.len() as u32,
        };
        u32le(&mut out, 0x0403_4b50);
        for v in [20, r.flags, r.method, 0, 0x21] {
            u16le(&mut out, v);
        }
        for v in [r.crc, r.compressed, r.size] {
            u32le(&mut out, v);
        }
        u16le(&mut out, r.name.len() as u16);
        u16le(&mut out, 0);
        out.extend_from_slice(&r.name);
        out.extend_from_slice(&body);
        records.push(r);
    }
    for (name, index) in aliases {
        let mut alias = records[*index].clone();
        alias.name = name.as_bytes().to_vec();
        records.push(alias);
    }
    let directory = out.len() as u32;
    for r in &records {
        u32le(&mut out, 0x0201_4b50);
        for v in [20, 20, r.flags, r.method, 0, 0x21] {
            u16le(&mut out, v);
        }
        for v in [r.crc, r.compressed, r.size] {
            u32le(&mut out, v);
        }
        for v in [r.name.len() as u16, 0, 0, 0, 0] {
            u16le(&mut out, v);
        }
        u32le(&mut out, 0);
        u32le(&mut out, r.offset);
        out.extend_from_slice(&r.name);
    }
    let size = out.len() as u32 - directory;
    let count = declared_entries.unwrap_or(records.len() as u16);
    u32le(&mut out, 0x0605_4b50);
    for v in [0, 0, count, count] {
        u16le(&mut out, v);
    }
    u32le(&mut out, size);
    u32le(&mut out, directory);
    u16le(&mut out, 0);
    out
}

fn advisory(id: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","modified":"2024-01-01T00:00:00Z","affected":[{{"package":{{"ecosystem":"Go","name":"example.com/m"}},"ranges":[{{"type":"SEMVER","events":[{{"introduced":"0"}},{{"fixed":"1.0.0"}}]}}]}}]}}"#
    )
    .into_bytes()
}

#[test]
fn hand_made_archive_imports() {
    let stored = Entry {
        deflate: false,
        ..entry("GO-2.json", &advisory("GO-2"))
    };
    let zip = handmade(
        &[
            entry("GO-1.json", &advisory("GO-1")),
            stored,
            entry("README.md", b"not an advisory"),
            entry("dir/", b""),
        ],
        &[],
        None,
    );
    let mut db = AdvisoryDb::new();
    let r = db.import_archive(&zip[..], "all.zip").unwrap();
    assert_eq!((r.imported, r.skipped, r.errors.len()), (2, 1, 0), "{r}");
}

/// Every hostile archive is refused with its fault named, through memory
/// and through a file, and leaves the database as it was.
#[test]
fn hostile_zip_archives_are_refused_whole() {
    let good = || entry("GO-1.json", &advisory("GO-1"));
    let valid = handmade(&[good(), entry("GO-2.json", &advisory("GO-2"))], &[], None);
    // Ten MiB of spaces deflate to about ten KiB; the headers claim 100 bytes.
    let bomb = Entry {
        declared: Some(100),
        ..entry("GO-3.json", &vec![b' '; 10 << 20])
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            valid[..valid.len() / 2].to_vec(),
            "not a usable zip archive: no readable central directory (truncated?)",
        ),
        (
            "end record cut short",
            valid[..valid.len() - 4].to_vec(),
            "not a usable zip archive",
        ),
        (
            "zip bomb",
            handmade(&[good(), bomb], &[], None),
            r#"entry "GO-3.json" does not inflate as declared: Invalid size: expected 100"#,
        ),
        (
            "parent path",
            handmade(&[good(), entry("../../etc/GO-2.json", b"{}")], &[], None),
            r#"entry "../../etc/GO-2.json": a path that escapes the archive (`..`)"#,
        ),
        (
            "backslash parent path",
            handmade(&[entry("a\\..\\..\\GO-2.json", b"{}")], &[], None),
            "a path that escapes the archive",
        ),
        (
            "absolute path",
            handmade(&[entry("/etc/GO-2.json", b"{}")], &[], None),
            r#"entry "/etc/GO-2.json": an absolute path"#,
        ),
        (
            "duplicate names",
            handmade(&[good(), entry("GO-1.json", &advisory("GO-9"))], &[], None),
            r#"entry "GO-1.json" appears twice"#,
        ),
        (
            "overlapping entries",
            handmade(&[good()], &[("GO-1-again.json", 0)], None),
            "entries share compressed data",
        ),
        (
            "more entries than declared",
            handmade(
                &[good(), entry("GO-2.json", &advisory("GO-2"))],
                &[],
                Some(1),
            ),
            "more entries than the 1 its end record declares",
        ),
        (
            "fewer entries than declared",
            handmade(&[good()], &[], Some(2)),
            "not a usable zip archive",
        ),
        (
            "bad checksum",
            handmade(
                &[Entry {
                    crc: Some(0xdead_beef),
                    ..good()
                }],
                &[],
                None,
            ),
            "Invalid checksum",
        ),
        (
            "bzip2",
            handmade(
                &[Entry {
                    method: Some(12),
                    ..good()
                }],
                &[],
                None,
            ),
            "compression method 12 (BZIP2) is not supported",
        ),
        (
            "encrypted",
            handmade(&[Entry { flags: 1, ..good() }], &[], None),
            r#"entry "GO-1.json" is encrypted"#,
        ),
        (
            "garbage after the signature",
            b"PK\x03\x04 and then nothing a zip has".to_vec(),
            "not a usable zip archive",
        ),
        (
            "not a zip, named .zip",
            advisory("GO-1"),
            "named .zip but not a zip archive",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (what, bytes, expected) in cases {
        let mut db = AdvisoryDb::new();
        let err = db.import_archive(&bytes[..], "all.zip").unwrap_err();
        assert!(matches!(err, Error::Archive { .. }), "{what}: {err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with("all.zip: ") && message.contains(expected),
            "{what}: {message}"
        );
        assert!(db.is_empty() && db.generation() == 0, "{what}");
        let path = tmp.path().join("all.zip");
        std::fs::write(&path, &bytes).unwrap();
        let err = db.import_path(&path).unwrap_err().to_string();
        assert!(err.contains(expected), "{what} (file): {err}");
        assert!(db.is_empty(), "{what} (file)");
    }
    // The valid one imports both ways.
    let mut db = AdvisoryDb::new();
    assert_eq!(
        db.import_archive(&valid[..], "all.zip").unwrap().imported,
        2
    );
}

#[test]
fn oversized_entries_are_per_file_errors_not_inflated() {
    // Declared (honestly) larger than an advisory may be: reported, not read.
    let big = entry("GO-4.json", &vec![b' '; MAX_ADVISORY_BYTES + 1]);
    let zip = handmade(&[entry("GO-1.json", &advisory("GO-1")), big], &[], None);
    let mut db = AdvisoryDb::new();
    let r = db.import_archive(&zip[..], "all.zip").unwrap();
    assert_eq!((r.imported, r.errors.len()), (1, 1), "{r}");
    assert!(
        r.errors[0]
            .to_string()
            .starts_with("GO-4.json: advisory is"),
        "{}",
        r.errors[0]
    );
}

#[test]
fn an_empty_zip_holds_no_osv() {
    let empty = handmade(&[], &[], None);
    assert!(empty.starts_with(b"PK\x05\x06"));
    let mut db = AdvisoryDb::new();
    let r = db.import_archive(&empty[..], "all.zip").unwrap();
    assert!(r.contains_no_osv());
    assert_eq!(
        r.to_string(),
        "all.zip: contains no OSV files (0 other files skipped); nothing imported"
    );
    assert_eq!(db.generation(), 0);
}
