//! The content-addressed blob store: `DATA/blobs/sha256/ab/abcdef…`.
//!
//! Uploads stream into `DATA/blobs/tmp/` while being hashed, are fsynced and
//! renamed into place under their digest (so a blob is either whole or
//! absent), and dedupe for free: a second upload of the same bytes finds
//! the file already there. Downloads stream from the file and honour one
//! HTTP `Range`, so devices resume interrupted downloads.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
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
pub(crate) fn valid_sha256(s: &str) -> bool {
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
    pub async fn ingest(
        &self,
        body: Body,
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

    async fn ingest_into(
        &self,
        tmp: &Path,
        body: Body,
        expected: Option<&str>,
    ) -> Result<(String, u64), UpdateError> {
        let mut file = tokio::fs::File::create(tmp)
            .await
            .map_err(UpdateError::internal)?;
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut len: u64 = 0;
        let mut stream = body.into_data_stream();
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

    /// Serves a blob, honouring a single `Range: bytes=…` request header.
    pub async fn serve(&self, sha256: &str, headers: &HeaderMap) -> Result<Response, UpdateError> {
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
        let range = match headers.get(header::RANGE) {
            None => None,
            Some(v) => {
                match parse_range(v.to_str().unwrap_or(""), total) {
                    Ok(r) => Some(r),
                    Err(RangeError::Unsatisfiable) => {
                        let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                            resp.headers_mut().insert(header::CONTENT_RANGE, v);
                        }
                        return Ok(resp);
                    }
                    Err(RangeError::Malformed) => {
                        return Err(UpdateError::Invalid("range: expected one range of the form bytes=START-[END] or bytes=-SUFFIX"
                            .into()));
                    }
                }
            }
        };
        let (start, end) = range.unwrap_or((0, total.saturating_sub(1)));
        let len = if total == 0 { 0 } else { end - start + 1 };
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(UpdateError::internal)?;
        // Reuses its buffer between reads (no per-chunk allocation or
        // zeroing); a file that shrinks ends the body early, which the
        // client sees as a short read against Content-Length.
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), CHUNK);
        let mut resp = Response::new(Body::from_stream(stream));
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        if let Ok(etag) = HeaderValue::from_str(&format!("\"{sha256}\"")) {
            h.insert(header::ETAG, etag);
        }
        if range.is_some() {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
        }
        Ok(resp)
    }
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
