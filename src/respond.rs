//! Rendering cache answers as HTTP: the hydrate answer (the upstream body byte for byte),
//! `x-cache`/`age`, and upstream replies passed on as they are.
//!
//! Nothing here parses JSON or copies a body: entries carry `Bytes` and ready header values.

use http::{header, HeaderValue, Response};
use tokio::time::Instant;

use crate::body::{self, Body};
use crate::header_arena;
use crate::headers::{X_CACHE, X_REQUEST_ID};
use crate::hydration::entry::Entry;
use crate::telemetry::CacheStatus;
use crate::upstream::Reply;

/// Add `x-cache`, `age` (on HIT and STALE) and a fresh `x-request-id`.
pub(crate) fn cache_headers(
    resp: &mut Response<Body>,
    entry: &Entry,
    cache: CacheStatus,
    now: Instant,
) {
    let h = resp.headers_mut();
    h.insert(X_CACHE, HeaderValue::from_static(cache.as_str()));
    if cache != CacheStatus::Miss {
        h.insert(header::AGE, header_arena::decimal(entry.age(now)));
    }
    h.insert(X_REQUEST_ID, header_arena::request_id());
}

/// The upstream's StorageFile (or stored 404) body, from cache.
pub(crate) fn entry_body(entry: &Entry, cache: CacheStatus, now: Instant) -> Response<Body> {
    let mut resp = Response::new(body::full(entry.body.clone()));
    *resp.status_mut() = entry.status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, entry.content_type());
    cache_headers(&mut resp, entry, cache, now);
    resp
}

/// An upstream answer that was not cached, passed on with its own headers.
pub(crate) fn reply(r: &Reply) -> Response<Body> {
    let mut resp = Response::new(body::full(r.body.clone()));
    *resp.status_mut() = r.status;
    *resp.headers_mut() = r.headers.clone();
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    resp
}
