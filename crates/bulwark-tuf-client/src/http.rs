//! HTTP: the [`Fetch`] for metadata and the streaming target download.

use std::path::Path;

use anyhow::{Context as _, bail};
use bulwark_tuf::{Fetch, FetchError, TargetFile, TargetVerifier};
use tokio::io::AsyncWriteExt as _;

/// Fetches metadata relative to a base URL, enforcing size limits while
/// streaming.
#[derive(Debug)]
pub(crate) struct HttpFetch {
    client: reqwest::Client,
    base: String,
}

impl HttpFetch {
    pub(crate) fn new(base: &str) -> anyhow::Result<HttpFetch> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(HttpFetch {
            client,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl Fetch for HttpFetch {
    async fn fetch(&mut self, path: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        let url = format!("{}/{path}", self.base);
        let mut response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| FetchError::Other(format!("GET {url}: {e}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::FORBIDDEN {
            return Err(FetchError::NotFound);
        }
        if !status.is_success() {
            return Err(FetchError::Other(format!("GET {url}: HTTP {status}")));
        }
        if response.content_length().is_some_and(|len| len > max_len) {
            return Err(FetchError::TooLarge { limit: max_len });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Other(format!("GET {url}: {e}")))?
        {
            if (body.len() + chunk.len()) as u64 > max_len {
                return Err(FetchError::TooLarge { limit: max_len });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Downloads `url` into `dest`, verifying against `info` while streaming.
/// The data goes to a temporary file next to `dest`, renamed into place only
/// once verified.
pub(crate) async fn download_verified(
    client: &reqwest::Client,
    url: &str,
    info: &TargetFile,
    dest: &Path,
) -> anyhow::Result<()> {
    let mut verifier =
        TargetVerifier::new(info).map_err(|e| anyhow::anyhow!("[{}] {e}", e.kind()))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("GET {url}: HTTP {status}");
    }
    let tmp = dest.with_file_name(format!(
        ".{}.part",
        dest.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .with_context(|| format!("creating {}", tmp.display()))?;
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("GET {url}"))?
        {
            verifier
                .update(&chunk)
                .map_err(|e| anyhow::anyhow!("[{}] {e}", e.kind()))?;
            file.write_all(&chunk).await.context("writing target")?;
        }
        verifier
            .finish()
            .map_err(|e| anyhow::anyhow!("[{}] {e}", e.kind()))?;
        file.sync_all().await.context("writing target")?;
        drop(file);
        tokio::fs::rename(&tmp, dest)
            .await
            .with_context(|| format!("renaming into {}", dest.display()))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}
