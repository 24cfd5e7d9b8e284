//! Go build info: a synthetic executable carrying the Go ≥ 1.18 inline
//! build-info blob, and the older pointer format.

use crate::support::{self, Entry, LAYER_TAR, Layout};

/// A fake ELF file with a `.go.buildinfo`-style blob at a 16-byte aligned
/// offset: 32-byte header (magic, pointer size, flags), then the Go
/// version and the module info (between 16-byte sentinels) as
/// varint-length-prefixed strings.
fn go_binary(version: &str, modinfo: &str, flags: u8) -> Vec<u8> {
    let mut out = b"\x7fELF\x02\x01\x01".to_vec();
    out.resize(100, 0xcc);
    out.extend_from_slice(b"\xff Go buildinf:"); // unaligned decoy
    out.resize(4096, 0);
    out.extend_from_slice(b"\xff Go buildinf:");
    out.push(8);
    out.push(flags);
    out.resize(4096 + 32, 0);
    let mut wrapped = vec![0x30u8; 16];
    wrapped.extend_from_slice(modinfo.as_bytes());
    wrapped.extend_from_slice(&[
        0xf9, 0x32, 0x43, 0x31, 0x86, 0x18, 0x20, 0x72, 0x00, 0x82, 0x42, 0x10, 0x41, 0x16, 0xd8,
        0xf2,
    ]);
    for s in [version.as_bytes(), &wrapped] {
        let mut n = s.len();
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(s);
    }
    out.extend_from_slice(&[0u8; 64]);
    out
}

const MODINFO: &str = "path\texample.com/app\n\
mod\texample.com/app\t(devel)\t\n\
dep\tgolang.org/x/net\tv0.17.0\th1:abc=\n\
dep\tgithub.com/old/mod\tv1.0.0\th1:def=\n\
=>\tgithub.com/new/mod\tv1.2.0\th1:ghi=\n\
dep\tgithub.com/local/mod\tv0.1.0\th1:jkl=\n\
=>\t../local\t\t\n\
build\t-compiler=gc\n\
build\tGOOS=linux\n";

#[test]
fn go_build_info_in_a_rootfs_and_an_image() {
    let binary = go_binary("go1.21.3", MODINFO, 2);
    let expected = [
        "pkg:golang/github.com/new/mod@v1.2.0 @ usr/bin/app",
        "pkg:golang/golang.org/x/net@v0.17.0 @ usr/bin/app",
        "pkg:golang/stdlib@v1.21.3 @ usr/bin/app",
    ];
    let tar = support::tar(&[Entry::file("usr/bin/app", binary.clone())]);
    assert_eq!(support::components(&support::extract_ok(&tar)), expected);

    // As a single file (not an archive) it is found too.
    let single = support::extract_ok(&binary);
    assert_eq!(single.components.len(), 3);
    assert_eq!(single.components[0].found_in.as_deref(), Some("artifact"));

    // Deleted by an upper layer: visited, but no components.
    let lower = support::tar(&[Entry::file("usr/bin/app", binary)]);
    let upper = support::tar(&[Entry::file("usr/bin/.wh.app", "")]);
    let image = Layout::image(vec![(LAYER_TAR, lower), (LAYER_TAR, upper)]);
    let (result, visited) = support::run(&image.tar(true), &Default::default());
    let e = result.unwrap();
    assert!(e.components.is_empty());
    assert_eq!(visited.len(), 1);
    assert_eq!(e.removed[0].path, "usr/bin/app");
}

#[test]
fn old_go_build_info_format_is_a_warning() {
    let tar = support::tar(&[Entry::file("bin/old", go_binary("go1.16", MODINFO, 0))]);
    let e = support::extract_ok(&tar);
    assert!(e.components.is_empty());
    assert!(support::warned(
        &e,
        "bin/old: unsupported Go build info format"
    ));
}

#[test]
fn truncated_go_build_info_is_a_warning() {
    let mut binary = go_binary("go1.22", MODINFO, 2);
    binary.truncate(4096 + 40);
    let e = support::extract_ok(&support::tar(&[Entry::file("bin/cut", binary)]));
    assert!(e.components.is_empty());
    assert!(
        support::warned(&e, "bin/cut: malformed"),
        "{:?}",
        e.warnings
    );
}
