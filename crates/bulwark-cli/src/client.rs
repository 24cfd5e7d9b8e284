//! A small client for the admin API.

use anyhow::{Context as _, Result, bail};
use bulwark_proto::ErrorBody;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest API response the CLI reads.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

#[derive(Debug)]
pub(crate) struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub(crate) fn from_env(server: Option<String>, token: Option<String>) -> Result<Self> {
        let base = server
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("BULWARK_SERVER").ok())
            .context(
                "no server: set BULWARK_SERVER (e.g. http://127.0.0.1:8080) or pass --server",
            )?;
        let token = token
            .or_else(|| std::env::var("BULWARK_TOKEN").ok())
            .context("no API token: set BULWARK_TOKEN (e.g. $(cat DATA_DIR/admin.token)) or pass --token")?;
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("server URL must start with http:// or https:// (got {base:?})");
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .user_agent(concat!("bulwark-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            http,
        })
    }

    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&dyn erased::Body>,
    ) -> Result<bytes::Bytes> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_json()?);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("reading the answer from {url}"))?;
        if bytes.len() > MAX_RESPONSE_BYTES {
            bail!("answer from {url} is larger than {MAX_RESPONSE_BYTES} bytes");
        }
        if !status.is_success() {
            bail!("{}", error_message(status, &bytes));
        }
        Ok(bytes)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&dyn erased::Body>,
    ) -> Result<Option<serde_json::Value>> {
        let bytes = self.send_raw(method, path, body).await?;
        if bytes.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            serde_json::from_slice(&bytes).context("the server's answer is not JSON")?,
        ))
    }

    /// Follows a Server-Sent Events stream, calling `on_event(event, data)`
    /// for each event until it returns false or the server ends the stream.
    /// No overall timeout (the stream is long-lived); one event's data is
    /// capped at 1 MiB.
    pub(crate) async fn sse(
        &self,
        path: &str,
        mut on_event: impl FnMut(&str, &str) -> bool,
    ) -> Result<()> {
        const MAX_EVENT: usize = 1 << 20;
        let url = format!("{}{path}", self.base);
        let http = reqwest::Client::builder()
            .user_agent(concat!("bulwark-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut resp = http
            .get(&url)
            .bearer_auth(&self.token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.unwrap_or_default();
            bail!("{}", error_message(status, &bytes));
        }
        let mut buf: Vec<u8> = Vec::new();
        let (mut event, mut data) = (String::new(), String::new());
        while let Some(chunk) = resp
            .chunk()
            .await
            .with_context(|| format!("reading the stream from {url}"))?
        {
            buf.extend_from_slice(&chunk);
            while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\r', '\n']);
                if line.is_empty() {
                    if !data.is_empty() || !event.is_empty() {
                        let name = if event.is_empty() { "message" } else { &event };
                        if !on_event(name, &data) {
                            return Ok(());
                        }
                    }
                    event.clear();
                    data.clear();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim_start().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
                if data.len() > MAX_EVENT {
                    bail!("an event from {url} is larger than {MAX_EVENT} bytes");
                }
            }
            if buf.len() > MAX_EVENT {
                bail!("a line from {url} is longer than {MAX_EVENT} bytes");
            }
        }
        Ok(())
    }

    /// A GET whose answer is text (e.g. a signed checkpoint note).
    pub(crate) async fn get_text(&self, path: &str) -> Result<String> {
        let bytes = self.send_raw(Method::GET, path, None).await?;
        String::from_utf8(bytes.to_vec()).context("the server's answer is not UTF-8 text")
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<(T, serde_json::Value)> {
        let v = self
            .send(Method::GET, path, None)
            .await?
            .context("empty answer")?;
        Ok((
            serde_json::from_value(v.clone()).context("unexpected answer shape")?,
            v,
        ))
    }

    pub(crate) async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(T, serde_json::Value)> {
        let v = self
            .send(Method::POST, path, Some(body))
            .await?
            .context("empty answer")?;
        Ok((
            serde_json::from_value(v.clone()).context("unexpected answer shape")?,
            v,
        ))
    }

    pub(crate) async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(T, serde_json::Value)> {
        let v = self
            .send(Method::PUT, path, Some(body))
            .await?
            .context("empty answer")?;
        Ok((
            serde_json::from_value(v.clone()).context("unexpected answer shape")?,
            v,
        ))
    }

    /// A POST without a body whose answer may be empty (204).
    pub(crate) async fn post_empty(&self, path: &str) -> Result<()> {
        self.send(Method::POST, path, None).await.map(|_| ())
    }

    /// A GET whose answer is returned as raw bytes (signed metadata).
    pub(crate) async fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        Ok(self.send_raw(Method::GET, path, None).await?.to_vec())
    }

    /// A POST of raw JSON bytes (signed metadata, sent byte for byte).
    pub(crate) async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(T, serde_json::Value)> {
        let url = format!("{}{path}", self.base);
        let req = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body);
        self.finish(req, &url).await
    }

    /// Streams a file as the request body (never read whole into memory).
    pub(crate) async fn upload_file<T: DeserializeOwned>(
        &self,
        path: &str,
        file: &std::path::Path,
    ) -> Result<(T, serde_json::Value)> {
        let f = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("opening {}", file.display()))?;
        let len = f.metadata().await?.len();
        let stream = tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024);
        let url = format!("{}{path}", self.base);
        let req = self
            .http
            .post(&url)
            // Uploads take as long as the bytes take; not the API timeout.
            .timeout(UPLOAD_TIMEOUT)
            .bearer_auth(&self.token)
            .header("content-type", "application/octet-stream")
            .header("content-length", len)
            .body(reqwest::Body::wrap_stream(stream));
        self.finish(req, &url).await
    }

    async fn finish<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<(T, serde_json::Value)> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if !status.is_success() {
            bail!("{}", error_message(status, &bytes));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).context("the server's answer is not JSON")?;
        Ok((
            serde_json::from_value(v.clone()).context("unexpected answer shape")?,
            v,
        ))
    }

    pub(crate) async fn delete(&self, path: &str) -> Result<()> {
        self.send(Method::DELETE, path, None).await.map(|_| ())
    }
}

/// Longest a streamed upload may take.
const UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The message of an API error answer (JSON error body, else the text).
fn error_message(status: reqwest::StatusCode, bytes: &[u8]) -> String {
    let msg = serde_json::from_slice::<ErrorBody>(bytes)
        .map(|b| match b.error.request_id {
            Some(id) => format!("{} (request id {id})", b.error.message),
            None => b.error.message,
        })
        .unwrap_or_else(|_| String::from_utf8_lossy(bytes).chars().take(300).collect());
    format!("{msg} (HTTP {})", status.as_u16())
}

mod erased {
    pub(crate) trait Body {
        fn to_json(&self) -> serde_json::Result<Vec<u8>>;
    }
    impl<T: serde::Serialize> Body for T {
        fn to_json(&self) -> serde_json::Result<Vec<u8>> {
            serde_json::to_vec(self)
        }
    }
}
