//! The content-addressed blob store: `DATA/blobs/sha256/ab/abcdef…`.
//!
//! Uploads stream into `DATA/blobs/tmp/` while being hashed, are fsynced and
//! renamed into place under their digest (so a blob is either whole or
//! absent), and dedupe for free: a second upload of the same bytes finds
//! the file already there. Downloads stream from the file and honour one
//! HTTP `Range`, so devices resume interrupted downloads.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use super::UpdateError;

/// Read and write chunk size.
const CHUNK: usize = 256 * 1024;

/// The blob directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    max_bytes: u64,
}

/// Is `s` a lowercase hex SHA-256?
pub fn valid_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl BlobStore {
    /// A store rooted at `root` (created if missing) accepting blobs up to
    /// `max_bytes`.
    pub fn open(root: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join("sha256"))?;
        std::fs::create_dir_all(root.join("tmp"))?;
        // Leftovers of uploads interrupted by a crash.
        for e in std::fs::read_dir(root.join("tmp"))?.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
        Ok(Self {
            root: root.to_owned(),
            max_bytes,
        })
    }

    /// Largest blob accepted.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Where the blob with this digest lives.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.root.join("sha256").join(&sha256[..2]).join(sha256)
    }

    /// Streams `body` into the store; returns (sha256, length). Refuses a
    /// body over the size limit (413) or one that does not match an
    /// expected digest (400); in both cases nothing is kept.
    pub async fn ingest<E: std::fmt::Display>(
        &self,
        body: impl Stream<Item = Result<Bytes, E>> + Unpin,
        expected_sha256: Option<&str>,
    ) -> Result<(String, u64), UpdateError> {
        #[expect(
            clippy::disallowed_methods,
            reason = "temporary file name, unique per upload: not a secret"
        )]
        let tmp = self
            .root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string());
        let result = self.ingest_into(&tmp, body, expected_sha256).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    async fn ingest_into<E: std::fmt::Display>(
        &self,
        tmp: &Path,
        mut stream: impl Stream<Item = Result<Bytes, E>> + Unpin,
        expected: Option<&str>,
    ) -> Result<(String, u64), UpdateError> {
        let mut file = tokio::fs::File::create(tmp)
            .await
            .map_err(UpdateError::internal)?;
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut len: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk: Bytes =
                chunk.map_err(|e| UpdateError::Invalid(format!("upload interrupted: {e}")))?;
            len += chunk.len() as u64;
            if len > self.max_bytes {
                return Err(UpdateError::TooLarge);
            }
            ctx.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(UpdateError::internal)?;
        }
        file.sync_all().await.map_err(UpdateError::internal)?;
        drop(file);
        let sha = hex::encode(ctx.finish().as_ref());
        if let Some(want) = expected
            && want != sha
        {
            return Err(UpdateError::Invalid(format!(
                "upload has sha256 {sha}, not the announced {want}"
            )));
        }
        let dest = self.path(&sha);
        if tokio::fs::try_exists(&dest).await.unwrap_or(false) {
            tokio::fs::remove_file(tmp)
                .await
                .map_err(UpdateError::internal)?;
        } else {
            let dir = dest.parent().map(Path::to_owned).unwrap_or_default();
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(UpdateError::internal)?;
            tokio::fs::rename(tmp, &dest)
                .await
                .map_err(UpdateError::internal)?;
            let dir2 = dir.clone();
            tokio::task::spawn_blocking(move || std::fs::File::open(&dir2)?.sync_all())
                .await
                .map_err(UpdateError::internal)?
                .map_err(UpdateError::internal)?;
        }
        Ok((sha, len))
    }

    /// Deletes the files of these blobs (after the store forgot them).
    pub async fn remove(&self, digests: &[String]) -> u64 {
        let mut freed = 0;
        for d in digests.iter().filter(|d| valid_sha256(d)) {
            let p = self.path(d);
            if let Ok(m) = tokio::fs::metadata(&p).await
                && tokio::fs::remove_file(&p).await.is_ok()
            {
                freed += m.len();
            }
        }
        freed
    }

    /// Opens a blob for reading, honouring one HTTP `Range` header value
    /// (`bytes=…`); the edge turns the result into a response.
    pub async fn read(&self, sha256: &str, range: Option<&str>) -> Result<BlobRead, UpdateError> {
        if !valid_sha256(sha256) {
            return Err(UpdateError::Invalid(
                "digest: expected 64 lowercase hex characters".into(),
            ));
        }
        let path = self.path(sha256);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(UpdateError::NotFound(format!("blob {sha256}")));
            }
            Err(e) => return Err(UpdateError::internal(e)),
        };
        let total = file.metadata().await.map_err(UpdateError::internal)?.len();
        let range = match range {
            None => None,
            Some(v) => match parse_range(v, total) {
                Ok(r) => Some(r),
                Err(RangeError::Unsatisfiable) => return Ok(BlobRead::Unsatisfiable { total }),
                Err(RangeError::Malformed) => {
                    return Err(UpdateError::Invalid(
                        "range: expected one range of the form bytes=START-[END] or bytes=-SUFFIX"
                            .into(),
                    ));
                }
            },
        };
        let (start, end) = range.unwrap_or((0, total.saturating_sub(1)));
        let len = if total == 0 { 0 } else { end - start + 1 };
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(UpdateError::internal)?;
        // Reuses its buffer between reads (no per-chunk allocation or
        // zeroing); a file that shrinks ends the body early, which the
        // client sees as a short read against Content-Length.
        let body = tokio_util::io::ReaderStream::with_capacity(file.take(len), CHUNK);
        Ok(BlobRead::Bytes {
            body,
            len,
            range: range.map(|(start, end)| (start, end, total)),
        })
    }
}

/// What [`BlobStore::read`] found.
#[derive(Debug)]
pub enum BlobRead {
    /// The requested range starts past the end of a blob of `total` bytes.
    Unsatisfiable {
        /// The blob's length.
        total: u64,
    },
    /// The bytes to send.
    Bytes {
        /// The blob, or the requested part of it.
        body: tokio_util::io::ReaderStream<tokio::io::Take<tokio::fs::File>>,
        /// How many bytes `body` yields.
        len: u64,
        /// `(start, end, total)` when a range was asked for (inclusive end).
        range: Option<(u64, u64, u64)>,
    },
}

#[derive(Debug, PartialEq, Eq)]
enum RangeError {
    Malformed,
    Unsatisfiable,
}

/// Parses one `bytes=` range against a file of `total` bytes into an
/// inclusive `(start, end)`.
fn parse_range(s: &str, total: u64) -> Result<(u64, u64), RangeError> {
    let spec = s
        .trim()
        .strip_prefix("bytes=")
        .ok_or(RangeError::Malformed)?;
    if spec.contains(',') {
        return Err(RangeError::Malformed);
    }
    let (a, b) = spec.split_once('-').ok_or(RangeError::Malformed)?;
    let num = |x: &str| x.trim().parse::<u64>().map_err(|_| RangeError::Malformed);
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, true) => Err(RangeError::Malformed),
        (true, false) => {
            let n = num(b)?;
            if n == 0 || total == 0 {
                return Err(RangeError::Unsatisfiable);
            }
            Ok((total.saturating_sub(n), total - 1))
        }
        (false, b_empty) => {
            let start = num(a)?;
            let end = if b_empty { u64::MAX } else { num(b)? };
            if end < start {
                return Err(RangeError::Malformed);
            }
            if start >= total {
                return Err(RangeError::Unsatisfiable);
            }
            Ok((start, end.min(total - 1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        type Case = (&'static str, u64, Result<(u64, u64), RangeError>);
        let cases: &[Case] = &[
            ("bytes=0-", 10, Ok((0, 9))),
            ("bytes=2-4", 10, Ok((2, 4))),
            ("bytes=5-100", 10, Ok((5, 9))),
            ("bytes=-3", 10, Ok((7, 9))),
            ("bytes=-30", 10, Ok((0, 9))),
            ("bytes=10-", 10, Err(RangeError::Unsatisfiable)),
            ("bytes=-0", 10, Err(RangeError::Unsatisfiable)),
            ("bytes=0-", 0, Err(RangeError::Unsatisfiable)),
            ("bytes=4-2", 10, Err(RangeError::Malformed)),
            ("bytes=0-1,3-4", 10, Err(RangeError::Malformed)),
            ("items=0-1", 10, Err(RangeError::Malformed)),
            ("bytes=a-b", 10, Err(RangeError::Malformed)),
            ("bytes=-", 10, Err(RangeError::Malformed)),
            (
                "bytes=99999999999999999999999-",
                10,
                Err(RangeError::Malformed),
            ),
        ];
        for (s, total, want) in cases {
            assert_eq!(&parse_range(s, *total), want, "{s} of {total}");
        }
    }

    #[test]
    fn digests() {
        assert!(valid_sha256(&"a".repeat(64)));
        assert!(!valid_sha256(&"A".repeat(64)));
        assert!(!valid_sha256("../etc/passwd"));
        assert!(!valid_sha256(&"a".repeat(63)));
    }
}
