//! Blob downloads as HTTP: [`response`] turns what the blob store read
//! ([`BlobRead`]) into a response with `Range` semantics.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bulwark_services::updates::{BlobRead, BlobStore};

use crate::error::ApiError;

/// Serves a blob, honouring a single `Range: bytes=…` request header.
pub(crate) async fn serve(
    blobs: &BlobStore,
    sha256: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let range = headers.get(header::RANGE).map(|v| v.to_str().unwrap_or(""));
    Ok(response(sha256, blobs.read(sha256, range).await?))
}

/// The response for a blob read.
fn response(sha256: &str, read: BlobRead) -> Response {
    match read {
        BlobRead::Unsatisfiable { total } => {
            let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            resp
        }
        BlobRead::Bytes { body, len, range } => {
            let mut resp = Response::new(Body::from_stream(body));
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
            if let Some((start, end, total)) = range {
                *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
            }
            resp
        }
    }
}
