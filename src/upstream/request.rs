//! Building requests to the VideoGen API, and the buffered reply hydrant passes on.
//!
//! Two shapes: a client's `/v1/...` request forwarded with hop-by-hop fields removed, `Host`
//! rewritten and the resolved credentials, and hydrant's own `POST /v1/files/{id}/hydrate`.

use bytes::Bytes;
use http::{header, request, HeaderMap, HeaderValue, Method, Request, StatusCode};

use crate::body::{self, Body};
use crate::framing::Framing;
use crate::headers::strip_hop_by_hop;
use crate::upstream::client::{UpstreamClient, UpstreamError};

/// A whole upstream answer, buffered: what a hydrate produced when it is not cached (401, 403,
/// 429, 5xx, ...), passed on as it is. Hop-by-hop fields are already removed.
#[derive(Debug)]
pub struct Reply {
    /// Upstream status.
    pub status: StatusCode,
    /// Upstream headers.
    pub headers: HeaderMap,
    /// Upstream body.
    pub body: Bytes,
}

/// The upstream request for a client's `parts`, sent with `authorization`.
///
/// Its framing is `framing` and nothing else: whatever `Content-Length` / `Transfer-Encoding`
/// the client sent is dropped, then exactly one of them is set (none for an unframed request,
/// whose body size hyper takes from the body itself), so the upstream never sees both.
pub(crate) fn forwarded(
    client: &UpstreamClient,
    mut parts: request::Parts,
    body: Body,
    framing: Framing,
    authorization: HeaderValue,
) -> Result<Request<Body>, UpstreamError> {
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let uri = client.uri(pq)?;
    let mut headers = std::mem::take(&mut parts.headers);
    strip_hop_by_hop(&mut headers);
    headers.remove(header::CONTENT_LENGTH);
    match framing {
        Framing::Unframed => {}
        Framing::Length(n) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        // Also for a GET: hyper would otherwise send a GET of unknown length with no body.
        Framing::Chunked { .. } => {
            headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
    }
    headers.insert(header::HOST, client.host());
    headers.insert(header::AUTHORIZATION, authorization);
    let mut req = Request::new(body);
    *req.method_mut() = parts.method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    Ok(req)
}

/// hydrant's own hydrate call for `file`, sent with `authorization`.
pub(crate) fn hydrate(
    client: &UpstreamClient,
    file: &str,
    authorization: HeaderValue,
) -> Result<Request<Body>, UpstreamError> {
    let uri = client.uri(&format!("/v1/files/{file}/hydrate"))?;
    let mut req = Request::new(body::empty());
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri;
    let h = req.headers_mut();
    h.insert(header::HOST, client.host());
    h.insert(header::AUTHORIZATION, authorization);
    h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    h.insert("x-videogen-client", HeaderValue::from_static("hydrant"));
    Ok(req)
}
