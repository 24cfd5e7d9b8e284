//! Entry path normalisation and symlink resolution inside the image.

use std::collections::BTreeMap;

use crate::{
    limits::MAX_SYMLINK_HOPS,
    model::{FileKind, FileMeta},
};

/// Why an entry path was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathIssue {
    Nul,
    TooLong,
}

/// A normalised entry path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Normalised {
    /// Relative, `/`-separated, without empty, `.` or `..` components;
    /// empty for the root itself.
    pub(crate) path: String,
    /// Some `..` tried to climb above the root and was dropped (as a
    /// `chroot` would).
    pub(crate) escaped: bool,
}

/// Normalises a raw archive path: leading `/` and `./` are stripped, `..`
/// is applied lexically and clamped at the root. Invalid UTF-8 is replaced
/// with U+FFFD.
pub(crate) fn normalise(raw: &[u8], max_len: usize) -> Result<Normalised, PathIssue> {
    if raw.len() > max_len {
        return Err(PathIssue::TooLong);
    }
    if raw.contains(&0) {
        return Err(PathIssue::Nul);
    }
    let text = String::from_utf8_lossy(raw);
    let mut parts: Vec<&str> = Vec::new();
    let mut escaped = false;
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => escaped |= parts.pop().is_none(),
            part => parts.push(part),
        }
    }
    Ok(Normalised {
        path: parts.join("/"),
        escaped,
    })
}

/// The parent directory of a normalised path (`""` for top-level paths)
/// and its last component.
pub(crate) fn split_last(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((parent, name)) => (parent, name),
        None => ("", path),
    }
}

/// Resolves `path` in the final view the way the kernel would inside a
/// chroot: symlinks are followed (absolute targets from the image root,
/// `..` clamped at the root) up to [`MAX_SYMLINK_HOPS`] times, and a final
/// hard link is replaced by the path it names.
pub(crate) fn resolve(files: &BTreeMap<String, FileMeta>, path: &str) -> Result<String, String> {
    // Components still to walk, last one first.
    let mut pending: Vec<String> = path.rsplit('/').map(str::to_owned).collect();
    let mut current: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        current.push(part);
        let joined = current.join("/");
        let Some(meta) = files.get(&joined) else {
            continue;
        };
        if meta.kind != FileKind::Symlink {
            continue;
        }
        hops += 1;
        if hops > MAX_SYMLINK_HOPS {
            return Err(format!(
                "more than {MAX_SYMLINK_HOPS} symlinks while resolving {path} (loop?)"
            ));
        }
        current.pop();
        let target = meta.link_target.as_deref().unwrap_or_default();
        if target.starts_with('/') {
            current.clear();
        }
        pending.extend(target.rsplit('/').map(str::to_owned));
    }
    let resolved = current.join("/");
    match files.get(&resolved) {
        Some(FileMeta {
            kind: FileKind::Hardlink,
            link_target: Some(target),
            ..
        }) => Ok(target.clone()),
        _ => Ok(resolved),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> (String, bool) {
        let n = normalise(raw.as_bytes(), 4096).unwrap();
        (n.path, n.escaped)
    }

    #[test]
    fn normalises_lexically() {
        assert_eq!(norm("./usr/bin/x"), ("usr/bin/x".into(), false));
        assert_eq!(norm("/etc//passwd"), ("etc/passwd".into(), false));
        assert_eq!(norm("a/../b/./c/"), ("b/c".into(), false));
        assert_eq!(norm("../../etc/shadow"), ("etc/shadow".into(), true));
        assert_eq!(norm("a/../../x"), ("x".into(), true));
        assert_eq!(norm("./"), (String::new(), false));
        assert_eq!(normalise(b"a\0b", 10), Err(PathIssue::Nul));
        assert_eq!(normalise(b"abcdef", 5), Err(PathIssue::TooLong));
    }

    fn meta(kind: FileKind, target: Option<&str>) -> FileMeta {
        FileMeta {
            kind,
            size: 0,
            layer: 0,
            mode: 0,
            sha256: None,
            link_target: target.map(str::to_owned),
        }
    }

    #[test]
    fn resolves_within_the_root() {
        let mut files = BTreeMap::new();
        files.insert(
            "var/lib/dpkg".into(),
            meta(FileKind::Symlink, Some("../../data/dpkg")),
        );
        files.insert("data/dpkg/status".into(), meta(FileKind::File, None));
        files.insert("lib".into(), meta(FileKind::Symlink, Some("/usr/lib")));
        files.insert(
            "up".into(),
            meta(FileKind::Symlink, Some("../../../../../data")),
        );
        files.insert("loop1".into(), meta(FileKind::Symlink, Some("loop2")));
        files.insert("loop2".into(), meta(FileKind::Symlink, Some("/loop1")));
        files.insert(
            "hard".into(),
            meta(FileKind::Hardlink, Some("data/dpkg/status")),
        );
        assert_eq!(
            resolve(&files, "var/lib/dpkg/status").unwrap(),
            "data/dpkg/status"
        );
        assert_eq!(
            resolve(&files, "lib/apk/db/installed").unwrap(),
            "usr/lib/apk/db/installed"
        );
        assert_eq!(
            resolve(&files, "up/dpkg/status").unwrap(),
            "data/dpkg/status"
        );
        assert_eq!(resolve(&files, "hard").unwrap(), "data/dpkg/status");
        assert!(resolve(&files, "loop1/x").unwrap_err().contains("loop"));
    }
}
