//! The fake CDN, behaving like a presigned S3/R2 bucket with CORS configured:
//!
//! * `GET|HEAD /cdn/{fileId}/{rendition}?X-Amz-...` checks the presigned URL (403 when tampered
//!   or expired) and serves the rendition's real media (see `media`);
//! * for `hls` it writes the playlist, each segment URI signed on its own
//!   (`hls/seg0.ts?X-Amz-...`, with the playlist's credential and expiry), because a relative
//!   URI resolves against the playlist's URL without its query;
//! * `GET|HEAD /cdn/{fileId}/hls/{segment}?X-Amz-...` serves one segment;
//! * `GET|HEAD /cdn/public/{fileId}` serves public previews, no signature;
//! * every answer honours one `Range` (`206` + `Content-Range`, `416` past the end) and
//!   carries `Accept-Ranges: bytes`;
//! * CORS as a bucket's: `Access-Control-Allow-Origin` (`*`, or the request's origin when
//!   listed in [`SimConfig::cdn_cors_origins`](super::SimConfig::cdn_cors_origins)), the range
//!   headers exposed, and `OPTIONS` preflights for `Range` answered.
//!
//! No bearer token, as with a real CDN.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::Method;

use super::clock;
use super::files::{self, CdnError, RENDITIONS};
use super::http::{error_resp, raw_resp, valid_id, ApiError, Resp};
use super::media;
use super::state::Shared;

/// What a request asks for besides its path: method, query and the headers that matter.
pub(super) struct CdnRequest<'a> {
    pub(super) method: &'a Method,
    pub(super) query: &'a str,
    pub(super) headers: &'a HeaderMap,
}

/// A signed rendition URL.
pub(super) fn signed(shared: &Shared, id: &str, rendition: &str, req: &CdnRequest<'_>) -> Resp {
    let resp = signed_inner(shared, id, rendition, req);
    with_cors(shared, req.headers, resp)
}

fn signed_inner(shared: &Shared, id: &str, rendition: &str, req: &CdnRequest<'_>) -> Resp {
    if !valid_id(id) || !RENDITIONS.contains(&rendition) {
        return error_resp(&ApiError::not_found("Object"));
    }
    if let Err(e) = shared
        .signer
        .verify(id, rendition, req.query, clock::now_f64())
    {
        return refused(&e);
    }
    let file_type = shared
        .lock()
        .files
        .get(id)
        .map(|f| f.file_type.clone())
        .unwrap_or_default();
    if rendition == "hls" {
        let mut bad = None;
        let text =
            media::playlist(
                |segment| match shared.signer.segment_query(id, segment, req.query) {
                    Ok(q) => format!("hls/{segment}?{q}"),
                    Err(e) => {
                        bad = Some(e);
                        String::new()
                    }
                },
            );
        if let Some(e) = bad {
            return refused(&e);
        }
        return ranged(req, media::PLAYLIST_TYPE, Bytes::from(text));
    }
    ranged(
        req,
        files::content_type(&file_type, rendition),
        files::cdn_bytes(&file_type, id, rendition),
    )
}

/// One hls segment, signed by the URI its playlist wrote.
pub(super) fn segment(shared: &Shared, id: &str, name: &str, req: &CdnRequest<'_>) -> Resp {
    let resp = match media::segment(name) {
        Some(bytes) if valid_id(id) => {
            let rendition = files::segment_rendition(name);
            match shared
                .signer
                .verify(id, &rendition, req.query, clock::now_f64())
            {
                Ok(()) => ranged(req, media::SEGMENT_TYPE, Bytes::from_static(bytes)),
                Err(e) => refused(&e),
            }
        }
        _ => error_resp(&ApiError::not_found("Object")),
    };
    with_cors(shared, req.headers, resp)
}

/// A public preview: only while the file is live and its preview is enabled.
pub(super) fn public(shared: &Shared, id: &str, req: &CdnRequest<'_>) -> Resp {
    let file_type = {
        let inner = shared.lock();
        match inner.files.get(id) {
            Some(f) if f.public_preview && !f.archived => Some(f.file_type.clone()),
            _ => None,
        }
    };
    let resp = match file_type {
        Some(t) => ranged(
            req,
            files::content_type(&t, "public"),
            files::cdn_bytes(&t, id, "public"),
        ),
        None => error_resp(&ApiError::not_found("Object")),
    };
    with_cors(shared, req.headers, resp)
}

/// `OPTIONS` on a CDN path: a CORS preflight, answered as a bucket allowing `GET`/`HEAD` with
/// a `Range` header would.
pub(super) fn preflight(shared: &Shared, headers: &HeaderMap) -> Resp {
    let mut resp = raw_resp(204, "text/plain", Bytes::new());
    let asked = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let allowed = asked
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .all(|h| {
            ["range", "accept", "accept-language", "content-language"]
                .contains(&h.to_ascii_lowercase().as_str())
        });
    if allowed_origin(shared, headers).is_some() {
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD"),
        );
        if allowed && !asked.is_empty() {
            if let Ok(v) = HeaderValue::from_str(asked) {
                h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
            }
        }
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    with_cors(shared, headers, resp)
}

/// 403 for a refused presigned URL.
fn refused(e: &CdnError) -> Resp {
    error_resp(&ApiError::new(403, "forbidden", e.to_string()))
}

/// The `Access-Control-Allow-Origin` value for this request, if its origin is allowed.
fn allowed_origin(shared: &Shared, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    if shared.cdn_cors_origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let listed = shared
        .cdn_cors_origins
        .iter()
        .any(|o| o.as_bytes() == origin.as_bytes());
    listed.then(|| origin.clone())
}

/// Adds the bucket's CORS headers (on errors too, so a script can read a 403's status).
fn with_cors(shared: &Shared, headers: &HeaderMap, mut resp: Resp) -> Resp {
    let allow = allowed_origin(shared, headers);
    let h = resp.headers_mut();
    if !shared.cdn_cors_origins.iter().any(|o| o == "*") {
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(v) = allow {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Content-Range, Content-Length, Accept-Ranges"),
        );
    }
    resp
}

/// A `200` with the whole body, or the one range the request asks for: `206` with
/// `Content-Range`, or `416` when it starts past the end. A malformed or multi-range `Range`
/// is ignored (RFC 9110 allows a server to), and the whole body served.
fn ranged(req: &CdnRequest<'_>, content_type: &'static str, body: Bytes) -> Resp {
    let total = body.len() as u64;
    let range = req
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| *req.method == Method::GET || *req.method == Method::HEAD)
        .map(|v| http_range_header::parse_range_header(v).and_then(|p| p.validate(total)));
    let (mut resp, len) = match range {
        Some(Ok(ranges)) if ranges.len() == 1 => {
            let r = &ranges[0];
            let (start, end) = (*r.start(), *r.end());
            let part = body.slice(start as usize..=end as usize);
            let len = part.len();
            let mut resp = raw_resp(206, content_type, part);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            (resp, len)
        }
        Some(Err(http_range_header::RangeUnsatisfiableError::Unsatisfiable)) => {
            let mut resp = raw_resp(416, content_type, Bytes::new());
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            (resp, 0)
        }
        _ => (raw_resp(200, content_type, body), total as usize),
    };
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}
