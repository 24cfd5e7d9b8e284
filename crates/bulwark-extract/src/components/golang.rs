//! Go binaries' embedded build information.
//!
//! The Go linker writes a 32-byte header, 16-byte aligned, starting with
//! [`MAGIC`]; byte 14 is the pointer size, byte 15 flags. Since Go 1.18
//! (flag bit 2) the Go version and the module information follow the
//! header inline as two varint-length-prefixed strings; the module
//! information is wrapped in two 16-byte sentinels. Older binaries store
//! pointers into the data segment instead, which would require parsing the
//! executable format; they are reported, not guessed at.

use bulwark_sbom::{Component, ComponentEcosystem};

/// Start of the build-info header.
pub(crate) const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
const ALIGN: usize = 16;
const FLAG_INLINE: u8 = 2;
/// Longest module-information string accepted.
const MAX_MODINFO: u64 = 16 * 1024 * 1024;

/// Whether `data` starts like an executable (ELF, PE or Mach-O).
fn is_executable(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
        || data.starts_with(b"MZ")
        || [
            [0xfe, 0xed, 0xfa, 0xce],
            [0xfe, 0xed, 0xfa, 0xcf],
            [0xce, 0xfa, 0xed, 0xfe],
            [0xcf, 0xfa, 0xed, 0xfe],
        ]
        .iter()
        .any(|m| data.starts_with(m))
}

/// The Go modules and standard library of an executable: `None` when it is
/// not a Go binary, `Err` when its build info cannot be read.
pub(crate) fn scan_binary(data: &[u8]) -> Option<Result<Vec<Component>, String>> {
    if !is_executable(data) {
        return None;
    }
    let start = data
        .chunks_exact(ALIGN)
        .position(|chunk| chunk.starts_with(MAGIC))?
        * ALIGN;
    Some(parse_build_info(&data[start..]))
}

fn parse_build_info(info: &[u8]) -> Result<Vec<Component>, String> {
    let header = info
        .get(..HEADER_LEN)
        .ok_or("truncated Go build info header")?;
    if header[15] & FLAG_INLINE == 0 {
        return Err("unsupported Go build info format (pre-1.18 pointer layout)".to_owned());
    }
    let mut rest = &info[HEADER_LEN..];
    let version = read_string(&mut rest).ok_or("malformed Go version in build info")?;
    let modinfo = read_string(&mut rest).ok_or("malformed module info in build info")?;
    let mut out = parse_modinfo(modinfo);
    if let Some(v) = std::str::from_utf8(version).ok().and_then(stdlib_version) {
        out.push(Component::new(ComponentEcosystem::Golang, "stdlib", v, &[]));
    }
    Ok(out)
}

/// A varint-length-prefixed byte string.
fn read_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let mut len: u64 = 0;
    let mut used = 0;
    loop {
        let b = *rest.get(used)?;
        len |= u64::from(b & 0x7f) << (7 * used);
        used += 1;
        if b & 0x80 == 0 {
            break;
        }
        if used == 9 {
            return None;
        }
    }
    if len > MAX_MODINFO {
        return None;
    }
    let end = used.checked_add(usize::try_from(len).ok()?)?;
    let s = rest.get(used..end)?;
    *rest = &rest[end..];
    Some(s)
}

/// Modules from the `mod`, `dep` and `=>` (replacement) lines. The main
/// module is kept only with a real version (not `(devel)`); a replacement
/// by a local directory (no version) drops the module.
fn parse_modinfo(mut modinfo: &[u8]) -> Vec<Component> {
    let n = modinfo.len();
    if n >= 33 && modinfo[n - 17] == b'\n' {
        modinfo = &modinfo[16..n - 16];
    }
    let text = String::from_utf8_lossy(modinfo);
    let mut modules: Vec<Option<(&str, &str)>> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["mod" | "dep", path, version, ..] => modules.push(Some((path, version))),
            ["=>", path, version, ..] => {
                if let Some(last) = modules.last_mut() {
                    *last = (!version.is_empty()).then_some((path, version));
                }
            }
            ["=>", ..] => {
                if let Some(last) = modules.last_mut() {
                    *last = None;
                }
            }
            _ => {}
        }
    }
    modules
        .into_iter()
        .flatten()
        .filter(|(path, version)| {
            !path.is_empty() && version.starts_with('v') && !path.contains(char::is_whitespace)
        })
        .map(|(path, version)| Component::new(ComponentEcosystem::Golang, path, version, &[]))
        .collect()
}

/// `go1.21.3` → `v1.21.3`, `go1.22` → `v1.22.0`, `go1.21rc2` →
/// `v1.21.0-rc.2` (the semver spelling of Go's vulnerability database);
/// `None` for development builds.
pub(crate) fn stdlib_version(go: &str) -> Option<String> {
    // "go1.21.3 X:boringcrypto": experiments follow a space.
    let go = go.split_whitespace().next()?.strip_prefix("go")?;
    let (release, pre) = match go.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&go[..i], Some(&go[i..])),
        None => (go, None),
    };
    let mut numbers = release.split('.');
    let mut next = || -> Option<u64> { numbers.next().map_or(Some(0), |n| n.parse().ok()) };
    let (major, minor, patch) = (next()?, next()?, next()?);
    if numbers.next().is_some() {
        return None;
    }
    let pre = match pre {
        None => String::new(),
        Some(pre) => {
            let i = pre.find(|c: char| c.is_ascii_digit())?;
            let (kind, n) = pre.split_at(i);
            if !matches!(kind, "rc" | "beta") || n.parse::<u64>().is_err() {
                return None;
            }
            format!("-{kind}.{n}")
        }
    };
    Some(format!("v{major}.{minor}.{patch}{pre}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdlib_versions() {
        assert_eq!(stdlib_version("go1.21.3").as_deref(), Some("v1.21.3"));
        assert_eq!(stdlib_version("go1.22").as_deref(), Some("v1.22.0"));
        assert_eq!(stdlib_version("go1.21rc2").as_deref(), Some("v1.21.0-rc.2"));
        assert_eq!(
            stdlib_version("go1.20beta1").as_deref(),
            Some("v1.20.0-beta.1")
        );
        assert_eq!(
            stdlib_version("go1.21.3 X:boringcrypto").as_deref(),
            Some("v1.21.3")
        );
        assert_eq!(stdlib_version("devel go1.23-abc"), None);
        assert_eq!(stdlib_version("go1.2.3.4"), None);
    }

    #[test]
    fn hostile_varints_do_not_panic() {
        let mut header = [0u8; 32];
        header[..14].copy_from_slice(MAGIC);
        header[15] = FLAG_INLINE;
        for tail in [
            &[0xffu8; 12][..],
            &[0x80, 0x80, 0x80, 0x80, 0x10],
            &[5, b'g'],
            &[],
        ] {
            let mut info = header.to_vec();
            info.extend_from_slice(tail);
            assert!(parse_build_info(&info).is_err());
        }
        assert!(parse_build_info(&header[..20]).is_err());
    }
}
