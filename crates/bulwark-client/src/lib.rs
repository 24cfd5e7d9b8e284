//! The typed async client of Bulwark's admin API (`/api/v1` on the
//! server's `--listen` address), used by the `bulwark` CLI, the bench and
//! tests.
//!
//! [`Client`] holds a base URL and a bearer token. It has one method per
//! documented admin route (`whoami`, `list_devices`, `quarantine_device`,
//! `create_release`, …; see `routes.rs`) taking and returning the
//! [`bulwark_api`] types, and the generic calls they are built on
//! ([`Client::get`], [`Client::post`], [`Client::upload_file`],
//! [`Client::sse`], …) for anything else. A JSON answer comes back as
//! [`Raw`]: the typed value and the JSON it was read from, which the CLI
//! prints for `--json`. Every failure is a [`ClientError`]; an error answer
//! keeps the server's code, message and request id from its
//! [`bulwark_proto::ErrorBody`]. Answers are capped at
//! [`MAX_RESPONSE_BYTES`], Server-Sent Events at [`MAX_EVENT_BYTES`] each.
//!
//! What it is not: it knows nothing of the server (no `bulwark-server`,
//! no axum) and nothing of devices: the device listener's routes (mutual
//! TLS, `/api/v1/device/*`, enrollment) are the agent's, and MQTT is
//! `bulwark-mqtt`'s. It reads no environment variables (the CLI resolves
//! `BULWARK_SERVER` and `BULWARK_TOKEN`) and retries nothing.
//!
//! TLS: rustls with the aws-lc-rs provider given explicitly (no process
//! default needed, no second provider) and, for an `https://` server, the
//! platform's verifier and roots, as reqwest's default would.

mod error;
mod routes;
mod sse;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::ClientError;
pub use sse::{EventStream, SseEvent};

/// Largest answer the client reads, in bytes (64 MiB).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;
/// Largest Server-Sent Event (or line of one) the client reads (1 MiB).
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// Default time for one call, connection to the last byte of the answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a streamed upload may take: as long as the bytes take, not
/// [`DEFAULT_TIMEOUT`].
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Read size of a streamed upload.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// A JSON answer: the typed value and the JSON it was read from (what the
/// server sent, fields this client does not know included).
#[derive(Debug, Clone, PartialEq)]
pub struct Raw<T> {
    /// The answer as the route's type.
    pub value: T,
    /// The answer as sent.
    pub json: serde_json::Value,
}

impl<T> Raw<T> {
    /// The typed value alone.
    pub fn into_value(self) -> T {
        self.value
    }

    /// The typed value and the JSON.
    pub fn into_parts(self) -> (T, serde_json::Value) {
        (self.value, self.json)
    }
}

/// A client of one server's admin API, as one token. Cheap to clone (the
/// connection pool is shared).
#[derive(Clone)]
pub struct Client {
    base: String,
    token: String,
    timeout: Duration,
    http: reqwest::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Options of a [`Client`]; [`ClientBuilder::build`] checks the URL.
pub struct ClientBuilder {
    base: String,
    token: String,
    timeout: Duration,
    user_agent: String,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl ClientBuilder {
    /// Time for one call (default [`DEFAULT_TIMEOUT`]); uploads and event
    /// streams are not bound by it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `user-agent` header (default `bulwark-client/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Checks the URL (`http://` or `https://`) and builds the client.
    pub fn build(self) -> Result<Client, ClientError> {
        let base = self.base;
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::InvalidUrl(format!(
                "server URL must start with http:// or https:// (got {base:?})"
            )));
        }
        if let Err(e) = reqwest::Url::parse(&base) {
            return Err(ClientError::InvalidUrl(format!(
                "server URL {base:?} is not a URL: {e}"
            )));
        }
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(base.starts_with("https://"))?)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(self.user_agent)
            .build()
            .map_err(|e| ClientError::Build(Box::new(e)))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            token: self.token.trim().to_owned(),
            timeout: self.timeout,
            http,
        })
    }
}

/// rustls on aws-lc-rs, verifying with the platform's roots. The roots
/// are read (and required) only for an `https://` server: a plain-HTTP
/// client trusts no certificate, and works on a system without any.
fn tls_config(https: bool) -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Build(Box::new(e)))?;
    let mut cfg = if https {
        let verifier = rustls_platform_verifier::Verifier::new(provider)
            .map_err(|e| ClientError::Build(Box::new(e)))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

impl Client {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:8080`)
    /// with the default options.
    pub fn new(base_url: &str, token: &str) -> Result<Self, ClientError> {
        Self::builder(base_url, token).build()
    }

    /// A builder for a client with other options.
    pub fn builder(base_url: impl Into<String>, token: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base_url.into(),
            token: token.into(),
            timeout: DEFAULT_TIMEOUT,
            user_agent: concat!("bulwark-client/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// The base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(&self.token)
            .timeout(self.timeout)
    }

    /// Sends `req` and reads the whole answer; an error status is an
    /// error.
    async fn execute(&self, req: reqwest::RequestBuilder, url: &str) -> Result<Bytes, ClientError> {
        let resp = req
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.to_owned(),
                source,
            })?;
        let status = resp.status();
        let bytes = read_capped(resp, url).await?;
        if !status.is_success() {
            return Err(ClientError::from_answer(status.as_u16(), &bytes));
        }
        Ok(bytes)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.request(method, &url);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        self.execute(req, &url).await
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Raw<T>, ClientError> {
        let url = format!("{}{path}", self.base);
        let bytes = self.send(method, path, body).await?;
        decode(&bytes, &url)
    }

    /// `GET path` (e.g. `/api/v1/whoami`), a JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Raw<T>, ClientError> {
        self.send_json(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body, a JSON answer.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Raw<T>, ClientError> {
        self.send_json(Method::POST, path, Some(encode(body)?))
            .await
    }

    /// `PUT path` with a JSON body, a JSON answer.
    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Raw<T>, ClientError> {
        self.send_json(Method::PUT, path, Some(encode(body)?)).await
    }

    /// `POST path` without a body; the answer (often a 204) is dropped.
    pub async fn post_empty(&self, path: &str) -> Result<(), ClientError> {
        self.send(Method::POST, path, None).await.map(drop)
    }

    /// `DELETE path`; the answer (often a 204) is dropped.
    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.send(Method::DELETE, path, None).await.map(drop)
    }

    /// `GET path`, the answer's bytes as sent (signed metadata, tiles).
    pub async fn get_bytes(&self, path: &str) -> Result<Bytes, ClientError> {
        self.send(Method::GET, path, None).await
    }

    /// `GET path`, a text answer (a signed checkpoint note, metrics).
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let bytes = self.send(Method::GET, path, None).await?;
        String::from_utf8(bytes.to_vec()).map_err(ClientError::NotText)
    }

    /// `POST path` with JSON bytes sent byte for byte (signed metadata,
    /// whose signatures cover the exact bytes), a JSON answer.
    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<Raw<T>, ClientError> {
        let url = format!("{}{path}", self.base);
        let req = self
            .request(Method::POST, &url)
            .header("content-type", "application/json")
            .body(body.into());
        decode(&self.execute(req, &url).await?, &url)
    }

    /// `POST path` with `file` streamed as the body (never read whole into
    /// memory), a JSON answer. Bound by [`UPLOAD_TIMEOUT`], not the
    /// client's timeout.
    pub async fn upload_file<T: DeserializeOwned>(
        &self,
        path: &str,
        file: &Path,
    ) -> Result<Raw<T>, ClientError> {
        self.upload(path, file, &[]).await
    }

    async fn upload<T: DeserializeOwned>(
        &self,
        path: &str,
        file: &Path,
        headers: &[(&str, &str)],
    ) -> Result<Raw<T>, ClientError> {
        let file_error = |source| ClientError::File {
            path: file.to_owned(),
            source,
        };
        let f = tokio::fs::File::open(file).await.map_err(file_error)?;
        let len = f.metadata().await.map_err(file_error)?.len();
        let stream = tokio_util::io::ReaderStream::with_capacity(f, UPLOAD_CHUNK);
        let url = format!("{}{path}", self.base);
        let mut req = self
            .request(Method::POST, &url)
            .timeout(UPLOAD_TIMEOUT)
            .header("content-type", "application/octet-stream")
            .header("content-length", len);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(reqwest::Body::wrap_stream(stream));
        decode(&self.execute(req, &url).await?, &url)
    }

    /// `GET path` as a Server-Sent Events stream, open once the server
    /// answered with a success (an error status is an error here). No
    /// overall timeout: the stream lasts until either side ends it.
    pub async fn sse(&self, path: &str) -> Result<EventStream, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = read_capped(resp, &url).await.unwrap_or_default();
            return Err(ClientError::from_answer(status.as_u16(), &bytes));
        }
        Ok(EventStream::new(url, resp))
    }
}

/// Reads a whole answer, refusing one over [`MAX_RESPONSE_BYTES`] before
/// holding more than that.
async fn read_capped(mut resp: reqwest::Response, url: &str) -> Result<Bytes, ClientError> {
    let too_large = || ClientError::TooLarge {
        url: url.to_owned(),
        limit: MAX_RESPONSE_BYTES,
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|source| ClientError::Read {
        url: url.to_owned(),
        source,
    })? {
        if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn encode<B: Serialize + ?Sized>(body: &B) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(body).map_err(ClientError::Encode)
}

/// A JSON answer as `T`, with the JSON it was read from.
fn decode<T: DeserializeOwned>(bytes: &[u8], url: &str) -> Result<Raw<T>, ClientError> {
    if bytes.is_empty() {
        return Err(ClientError::Empty {
            url: url.to_owned(),
        });
    }
    let json: serde_json::Value = serde_json::from_slice(bytes).map_err(ClientError::NotJson)?;
    let value = T::deserialize(&json).map_err(ClientError::Shape)?;
    Ok(Raw { value, json })
}

/// `s` percent-encoded for one path segment or query value: everything but
/// RFC 3986's unreserved characters.
pub fn encode_component(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// `path` with `query`'s fields (a struct of scalars and options) as its
/// query string; `None` fields are left out.
fn with_query<Q: Serialize>(path: &str, query: &Q) -> Result<String, ClientError> {
    use serde_json::Value;
    let fields = match serde_json::to_value(query).map_err(ClientError::Encode)? {
        Value::Object(m) => m,
        Value::Null => return Ok(path.to_owned()),
        _ => {
            return Err(ClientError::Encode(serde::ser::Error::custom(
                "a query is a struct",
            )));
        }
    };
    let mut parts = Vec::new();
    for (k, v) in fields {
        let v = match v {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Bool(_) | Value::Number(_) => v.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(ClientError::Encode(serde::ser::Error::custom(format!(
                    "query field {k} is not a scalar"
                ))));
            }
        };
        parts.push(format!("{}={}", encode_component(&k), encode_component(&v)));
    }
    Ok(if parts.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", parts.join("&"))
    })
}
