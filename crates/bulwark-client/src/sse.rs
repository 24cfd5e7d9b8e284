//! Server-Sent Events: [`EventStream`] reads `event:` / `data:` lines into
//! [`SseEvent`]s (comments, `id:` and `retry:` are ignored).

use bulwark_api::{EventKind, StreamEvent};

use crate::{ClientError, MAX_EVENT_BYTES};

/// One event: its name (`message` when the server gave none) and data
/// (several `data:` lines joined with `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name.
    pub event: String,
    /// The `data:` lines.
    pub data: String,
}

impl SseEvent {
    /// The alert of an alert-stream event (`detection` or
    /// `vulnerability`); `None` for the others (`lagged`, whose data is
    /// how many alerts this reader missed).
    pub fn alert(&self) -> Result<Option<StreamEvent>, ClientError> {
        let parsed = match self.event.parse::<EventKind>() {
            Ok(EventKind::Detection) => {
                serde_json::from_str(&self.data).map(StreamEvent::Detection)
            }
            Ok(EventKind::Vulnerability) => {
                serde_json::from_str(&self.data).map(StreamEvent::Vulnerability)
            }
            Err(_) => return Ok(None),
        };
        parsed.map(Some).map_err(ClientError::Shape)
    }
}

/// An open Server-Sent Events stream ([`crate::Client::sse`]).
#[derive(Debug)]
pub struct EventStream {
    url: String,
    resp: reqwest::Response,
    buf: Vec<u8>,
    event: String,
    data: String,
}

impl EventStream {
    pub(crate) fn new(url: String, resp: reqwest::Response) -> Self {
        EventStream {
            url,
            resp,
            buf: Vec::new(),
            event: String::new(),
            data: String::new(),
        }
    }

    /// The next event, or `None` once the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<SseEvent>, ClientError> {
        loop {
            while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\r', '\n']);
                if line.is_empty() {
                    if self.event.is_empty() && self.data.is_empty() {
                        continue;
                    }
                    let event = match std::mem::take(&mut self.event) {
                        e if e.is_empty() => "message".to_owned(),
                        e => e,
                    };
                    let data = std::mem::take(&mut self.data);
                    return Ok(Some(SseEvent { event, data }));
                } else if let Some(v) = line.strip_prefix("event:") {
                    self.event = v.trim_start().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
                if self.data.len() > MAX_EVENT_BYTES {
                    return Err(ClientError::EventTooLarge {
                        url: self.url.clone(),
                        limit: MAX_EVENT_BYTES,
                    });
                }
            }
            if self.buf.len() > MAX_EVENT_BYTES {
                return Err(ClientError::LineTooLong {
                    url: self.url.clone(),
                    limit: MAX_EVENT_BYTES,
                });
            }
            match self.resp.chunk().await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                Ok(None) => return Ok(None),
                Err(source) => {
                    return Err(ClientError::Read {
                        url: self.url.clone(),
                        source,
                    });
                }
            }
        }
    }
}
