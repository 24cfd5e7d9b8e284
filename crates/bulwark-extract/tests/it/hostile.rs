//! Hostile artifacts, generated here (with hand-written tar headers where
//! the `tar` crate's builder refuses): each gives a clear error or a capped
//! result with a warning, never a panic or a hang.

use bulwark_extract::{ExtractError, Format, Limits};

use crate::support::{self, Entry};

/// A raw ustar header block for `name` (any bytes), with a valid checksum.
fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    h[100..107].copy_from_slice(b"0000644");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = typeflag;
    h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

/// A raw tar archive of (header, content) records plus the end marker.
fn raw_tar(records: &[([u8; 512], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (h, data) in records {
        out.extend_from_slice(h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

fn file(name: &[u8], data: &[u8]) -> ([u8; 512], Vec<u8>) {
    (header(name, b'0', data.len() as u64, b""), data.to_vec())
}

fn raw(records: Vec<([u8; 512], Vec<u8>)>) -> Vec<u8> {
    let borrowed: Vec<([u8; 512], &[u8])> =
        records.iter().map(|(h, d)| (*h, d.as_slice())).collect();
    raw_tar(&borrowed)
}

#[test]
fn traversal_and_absolute_paths_stay_inside_the_root() {
    let tar = raw(vec![
        file(b"../../../etc/cron.d/evil", b"* * * * * root sh"),
        file(b"/etc/shadow", b"root:!:"),
        file(b"./a/../../b", b"b"),
        (header(b"link", b'2', 0, b"/../../../../etc/passwd"), vec![]),
    ]);
    let (result, visited) = support::run(&tar, &Limits::default());
    let e = result.unwrap();
    assert_eq!(
        support::files(&e),
        [
            "b",
            "etc/cron.d/evil",
            "etc/shadow",
            "link -> /../../../../etc/passwd"
        ]
    );
    assert_eq!(visited.len(), 3);
    assert!(support::warned(
        &e,
        "../../../etc/cron.d/evil climbs above the archive root"
    ));
    assert!(support::warned(&e, "./a/../../b climbs above"));
}

#[test]
fn bad_names_are_skipped_with_warnings() {
    let long = vec![b'a'; 5000];
    let mut long_name = long.clone();
    long_name.push(0);
    let pax = b"30 path=bad\0name/with/nul.txt\n".to_vec();
    let tar = raw(vec![
        (
            header(b"././@LongLink", b'L', long_name.len() as u64, b""),
            long_name,
        ),
        file(b"ignored-short-name", b"x"),
        (header(b"pax", b'x', pax.len() as u64, b""), pax),
        file(b"also-ignored", b"y"),
        file(b"ok", b"z"),
    ]);
    let e = support::extract_ok(&tar);
    assert_eq!(support::files(&e), ["ok"]);
    assert!(support::warned(&e, "path longer than 4096 bytes"));
    assert!(support::warned(&e, "path contains NUL"));
}

#[test]
fn oversized_extension_headers_are_rejected() {
    let mut tar = header(b"././@LongLink", b'L', 1 << 32, b"").to_vec();
    tar.extend_from_slice(&[b'a'; 4096]);
    let err = support::run(&tar, &Limits::default()).0.unwrap_err();
    assert!(
        matches!(
            err,
            ExtractError::InvalidTar {
                reason: "extension header too large",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bad_checksums_and_garbage_numbers_are_rejected() {
    let mut bad = header(b"f", b'0', 1, b"");
    bad[0] = b'g';
    let err = support::run(&raw_tar(&[(bad, b"x")]), &Limits::default())
        .0
        .unwrap_err();
    assert!(
        matches!(
            err,
            ExtractError::InvalidTar {
                reason: "checksum mismatch",
                ..
            }
        ),
        "{err}"
    );

    let mut garbage = header(b"f", b'0', 0, b"");
    garbage[124..136].copy_from_slice(b"9999zzzz\0\0\0\0");
    garbage[148..156].copy_from_slice(b"        ");
    let sum: u32 = garbage.iter().map(|&b| u32::from(b)).sum();
    garbage[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let err = support::run(&raw_tar(&[(garbage, b"")]), &Limits::default())
        .0
        .unwrap_err();
    assert!(matches!(err, ExtractError::InvalidTar { .. }), "{err}");
}

#[test]
fn gzip_bomb_exceeds_the_ratio() {
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let bomb = support::gzip(&support::tar(&[Entry::file("zeros", zeros.clone())]));
    let err = support::run(&bomb, &Limits::default()).0.unwrap_err();
    assert!(
        matches!(err, ExtractError::RatioExceeded { limit: 200 }),
        "{err}"
    );
    let err = support::run(&support::zstd(&zeros), &Limits::default())
        .0
        .unwrap_err();
    assert!(matches!(err, ExtractError::RatioExceeded { .. }), "{err}");
    // Allowed with a generous ratio.
    let limits = Limits {
        max_ratio: 100_000,
        ..Limits::default()
    };
    assert!(support::run(&bomb, &limits).0.is_ok());
}

#[test]
fn total_size_and_entry_count_are_limited() {
    let entries: Vec<Entry> = (0..50)
        .map(|i| Entry::file(&format!("f{i}"), vec![b'x'; 1000]))
        .collect();
    let tar = support::tar(&entries);
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let err = support::run(&tar, &limits).0.unwrap_err();
    assert!(
        matches!(err, ExtractError::TooManyEntries { limit: 10 }),
        "{err}"
    );
    let limits = Limits {
        max_total_bytes: 20_000,
        ..Limits::default()
    };
    let err = support::run(&support::gzip(&tar), &limits).0.unwrap_err();
    assert!(
        matches!(err, ExtractError::TooLarge { limit: 20_000 }),
        "{err}"
    );
}

#[test]
fn large_files_are_skipped_but_hashed() {
    let big = vec![7u8; 10_000];
    let tar = support::tar(&[Entry::file("big", big.clone()), Entry::file("small", "s")]);
    let limits = Limits {
        max_file_bytes: 4096,
        ..Limits::default()
    };
    let (result, visited) = support::run(&tar, &limits);
    let e = result.unwrap();
    assert_eq!(visited, [("small".to_owned(), 0, 1)]);
    assert_eq!(e.skipped.len(), 1);
    assert_eq!(
        (e.skipped[0].path.as_str(), e.skipped[0].size),
        ("big", 10_000)
    );
    assert_eq!(
        e.files["big"].sha256.as_deref(),
        Some(support::sha256_hex(&big).as_str())
    );
}

#[test]
fn truncated_archives_fail_cleanly() {
    let tar = support::tar(&[
        Entry::file("a", vec![b'a'; 700]),
        Entry::file("var/lib/dpkg/status", "Package: x\n"),
        Entry::symlink("l", "a"),
    ]);
    for cut in (1..tar.len()).step_by(97) {
        match support::run(&tar[..cut], &Limits::default()).0 {
            Err(ExtractError::Truncated) => {}
            Ok(e) if e.format == Format::File || support::warned(&e, "end-of-archive") => {}
            Ok(e) if cut >= tar.len() - 1024 => {
                assert!(e.warnings.is_empty() || support::warned(&e, "status"))
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    for compressed in [support::gzip(&tar), support::zstd(&tar)] {
        for cut in (1..compressed.len()).step_by(13) {
            let result = support::run(&compressed[..cut], &Limits::default()).0;
            assert!(
                matches!(result, Err(ExtractError::Truncated | ExtractError::Read(_)))
                    || result.is_ok(),
                "cut at {cut}: {result:?}"
            );
        }
    }
}

#[test]
fn garbage_bytes_never_panic() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let valid = support::tar(&[Entry::file(
        "usr/lib/opkg/status",
        "Package: a\nVersion: 1\nStatus: install ok installed\n",
    )]);
    for round in 0..300 {
        let mut bytes = match round % 3 {
            0 => (0..(next() % 2048)).map(|_| next() as u8).collect(),
            1 => {
                let mut v = valid.clone();
                for _ in 0..4 {
                    let i = (next() as usize) % v.len();
                    v[i] = next() as u8;
                }
                v
            }
            _ => support::gzip(&valid),
        };
        if round % 3 == 2 {
            let i = 10 + (next() as usize) % (bytes.len() - 10);
            bytes[i] ^= 0xff;
        }
        // Any outcome but a panic is acceptable.
        let _ = support::run(&bytes, &Limits::default());
    }
    let e = support::extract_ok(b"just some text\n");
    assert_eq!(e.format, Format::File);
    assert_eq!(support::files(&e), ["artifact"]);
}

#[test]
fn visitor_errors_abort() {
    let tar = support::tar(&[Entry::file("eicar", "X5O!P%@AP")]);
    let mut reject = |path: &str, _: usize, _: &[u8]| Err(format!("malware in {path}"));
    let err = bulwark_extract::extract_reader(
        std::io::Cursor::new(tar),
        "x",
        &Limits::default(),
        &mut reject,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "scanning eicar (layer 0) failed: malware in eicar"
    );
}
