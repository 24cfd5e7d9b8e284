//! [`ClientError`]: everything a call to the admin API can end in.

use std::path::PathBuf;

use bulwark_proto::ErrorBody;

/// Why a call failed. The `Display` of each variant is the message the
/// `bulwark` CLI prints (its tests assert on them); the causes are
/// `source`s, so `{:#}` through `anyhow` shows the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not an `http://` or `https://` URL.
    #[error("{0}")]
    InvalidUrl(String),
    /// The HTTP client could not be built (TLS configuration).
    #[error("building the HTTP client")]
    Build(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No answer: connection refused, DNS, TLS, or timed out before the
    /// answer's head.
    #[error("cannot reach {url}")]
    Unreachable {
        /// The request's URL.
        url: String,
        /// What the transport said.
        #[source]
        source: reqwest::Error,
    },
    /// The answer's body broke off (or timed out) while being read.
    #[error("reading the answer from {url}")]
    Read {
        /// The request's URL.
        url: String,
        /// What the transport said.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status. `code`, `message` and
    /// `request_id` come from its JSON [`ErrorBody`]; when the body is not
    /// one (a proxy's page, say), `message` is its first 300 characters.
    #[error("{message}{} (HTTP {status})", request_id.as_deref().map(|id| format!(" (request id {id})")).unwrap_or_default())]
    Http {
        /// The status code.
        status: u16,
        /// The stable error code (`not_found`, `forbidden`, …), when the
        /// body was an [`ErrorBody`].
        code: Option<String>,
        /// The human-readable message.
        message: String,
        /// The request id (the server sends one with a 5xx).
        request_id: Option<String>,
    },
    /// The answer is larger than the client reads ([`crate::MAX_RESPONSE_BYTES`]).
    #[error("answer from {url} is larger than {limit} bytes")]
    TooLarge {
        /// The request's URL.
        url: String,
        /// The cap.
        limit: usize,
    },
    /// A success without the body the route promises.
    #[error("empty answer from {url}")]
    Empty {
        /// The request's URL.
        url: String,
    },
    /// The answer is not JSON.
    #[error("the server's answer is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// The answer is JSON, but not the shape of the route's type.
    #[error("unexpected answer shape")]
    Shape(#[source] serde_json::Error),
    /// The answer of a text route is not UTF-8.
    #[error("the server's answer is not UTF-8 text")]
    NotText(#[source] std::string::FromUtf8Error),
    /// One event of a Server-Sent Events stream is larger than
    /// [`crate::MAX_EVENT_BYTES`].
    #[error("an event from {url} is larger than {limit} bytes")]
    EventTooLarge {
        /// The stream's URL.
        url: String,
        /// The cap.
        limit: usize,
    },
    /// One line of a Server-Sent Events stream is longer than
    /// [`crate::MAX_EVENT_BYTES`].
    #[error("a line from {url} is longer than {limit} bytes")]
    LineTooLong {
        /// The stream's URL.
        url: String,
        /// The cap.
        limit: usize,
    },
    /// A request body or query could not be encoded.
    #[error("encoding the request")]
    Encode(#[source] serde_json::Error),
    /// A file to upload could not be opened or measured.
    #[error("opening {}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// The error for an answer with a non-success `status` and `body`.
    pub(crate) fn from_answer(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(b) => ClientError::Http {
                status,
                code: Some(b.error.code),
                message: b.error.message,
                request_id: b.error.request_id,
            },
            Err(_) => ClientError::Http {
                status,
                code: None,
                message: String::from_utf8_lossy(body).chars().take(300).collect(),
                request_id: None,
            },
        }
    }

    /// The HTTP status, when the server answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's error code (`not_found`, `conflict`, …), when it sent
    /// a JSON error body.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Http { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}
