//! Small durable-filesystem helpers: atomic writes, directory fsync,
//! streaming SHA-256.

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::Path;

use aws_lc_rs::digest;

use super::error::io;
use super::{Step, UpdateError};

/// Buffer size for every streaming copy and hash.
pub(super) const CHUNK: usize = 64 * 1024;

/// Lowercase hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// A running SHA-256 with a byte count.
#[derive(Clone)]
pub(super) struct Hasher {
    ctx: digest::Context,
    len: u64,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("len", &self.len).finish()
    }
}

impl Hasher {
    pub(super) fn new() -> Self {
        Self {
            ctx: digest::Context::new(&digest::SHA256),
            len: 0,
        }
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        self.ctx.update(data);
        self.len += data.len() as u64;
    }

    pub(super) fn len(&self) -> u64 {
        self.len
    }

    pub(super) fn finish(self) -> (u64, String) {
        (self.len, hex(self.ctx.finish().as_ref()))
    }
}

/// Fsyncs a directory so that renames and creations in it are durable.
pub(super) fn sync_dir(step: Step, dir: &Path) -> Result<(), UpdateError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(step, "syncing directory", dir))
}

/// The directory holding `path` (`.` for a bare name).
pub(super) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically: temp file (created with `mode`),
/// fsync, rename, fsync dir. The one atomic write of the agent: its
/// identity, its trusted TUF metadata and its update state.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    fs::File::open(parent(path))?.sync_all()
}

/// [`write_atomic`] for the update engine's files.
pub(super) fn atomic_write(step: Step, path: &Path, bytes: &[u8]) -> Result<(), UpdateError> {
    write_atomic(path, bytes, 0o644).map_err(io(step, "writing atomically", path))
}

/// Hashes the whole file at `path`, streaming.
pub(super) fn hash_file(step: Step, path: &Path) -> Result<Hasher, UpdateError> {
    let mut f = fs::File::open(path).map_err(io(step, "opening", path))?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf).map_err(io(step, "reading", path))?;
        if n == 0 {
            return Ok(h);
        }
        h.update(&buf[..n]);
    }
}

/// Copies `from` to a new file `to` (replacing it), hashing what is copied,
/// and fsyncs `to`. `midway` runs once after the first chunk is written
/// (the fail point hook). Returns the length and hex digest of the copy.
pub(super) fn copy_hashed(
    step: Step,
    from: &Path,
    to: &Path,
    midway: &dyn Fn() -> Result<(), UpdateError>,
) -> Result<(u64, String), UpdateError> {
    let mut src = fs::File::open(from).map_err(io(step, "opening", from))?;
    let _ = fs::remove_file(to);
    let mut dst = fs::File::create(to).map_err(io(step, "creating", to))?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut first = true;
    loop {
        let n = src.read(&mut buf).map_err(io(step, "reading", from))?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n]).map_err(io(step, "writing", to))?;
        h.update(&buf[..n]);
        if first {
            first = false;
            dst.flush().map_err(io(step, "writing", to))?;
            midway()?;
        }
    }
    dst.sync_all().map_err(io(step, "syncing", to))?;
    Ok(h.finish())
}

/// Checks that a copy has the plan's length and digest.
pub(super) fn check_digest(
    step: Step,
    path: &Path,
    (len, sha): (u64, String),
    expected_len: u64,
    expected_sha: &str,
) -> Result<(), UpdateError> {
    if len != expected_len {
        return Err(UpdateError::LengthMismatch {
            step,
            path: path.to_owned(),
            expected: expected_len,
            actual: len,
        });
    }
    if sha != expected_sha {
        return Err(UpdateError::HashMismatch {
            step,
            path: path.to_owned(),
            expected: expected_sha.to_owned(),
            actual: sha,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_of_empty_sha256() {
        let (len, sha) = Hasher::new().finish();
        assert_eq!(len, 0);
        assert_eq!(
            sha,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        atomic_write(Step::Stage, &p, b"one").unwrap();
        atomic_write(Step::Stage, &p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert!(!dir.path().join("x.json.tmp").exists());
    }
}
