//! Streamed pass-through of `/v1/...` calls to the VideoGen API.
//!
//! Method, path, query, headers and body go upstream unchanged but for what RFC 9110 §7.6.1
//! says a proxy must not forward (hop-by-hop fields and those named in `Connection`), `Host`
//! (rewritten to the upstream) and `Authorization` (the resolved upstream credentials).
//! Bodies stream both ways; nothing is buffered here.

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName};
use http::{request, Request, Response};

use crate::app::App;
use crate::auth::UpstreamAuth;
use crate::body::{self, Body};
use crate::error::Error;
use crate::telemetry::RouteClass;
use crate::tenant::Tenant;

const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

/// Remove hop-by-hop fields: the fixed list, `Keep-Alive`, `Proxy-Connection`, and every field
/// the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// Build the upstream request for `parts`, sent with `auth`.
pub fn upstream_request(
    app: &App,
    mut parts: request::Parts,
    body: Body,
    auth: &UpstreamAuth,
) -> Result<Request<Body>, Error> {
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let uri = app.upstream.uri(pq)?;
    let mut headers = std::mem::take(&mut parts.headers);
    strip_hop_by_hop(&mut headers);
    headers.insert(header::HOST, app.upstream.host());
    headers.insert(header::AUTHORIZATION, auth.header.clone());
    let mut req = Request::new(body);
    *req.method_mut() = parts.method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    Ok(req)
}

/// Forward a request upstream and stream the response back.
pub async fn forward(
    app: &App,
    parts: request::Parts,
    body: Body,
    auth: &UpstreamAuth,
    route: RouteClass,
) -> Result<(Response<Body>, Duration), Error> {
    let req = upstream_request(app, parts, body, auth)?;
    match app.upstream.send(req).await {
        Ok((resp, took)) => {
            app.metrics
                .observe_upstream(route, resp.status().as_u16(), took);
            let (mut head, body) = resp.into_parts();
            strip_hop_by_hop(&mut head.headers);
            Ok((Response::from_parts(head, body::boxed(body)), took))
        }
        Err(e) => {
            app.metrics.observe_upstream(route, 0, Duration::ZERO);
            Err(e.into())
        }
    }
}

/// Largest pass-through body hydrant buffers to look for hydrated files in.
pub const MAX_PRIMING_BODY: u64 = 1 << 20;

/// Priming hook: when `resp` is a successful, small JSON response (declared length at most
/// [`MAX_PRIMING_BODY`]), buffer it, store every hydrated file object it carries for `tenant`,
/// and return it unchanged. Anything else streams through untouched.
pub async fn prime_from(app: &App, tenant: Tenant, resp: Response<Body>) -> Response<Body> {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let small = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n <= MAX_PRIMING_BODY);
    if !resp.status().is_success() || !is_json || !small {
        return resp;
    }
    let (head, body) = resp.into_parts();
    let bytes = match body::collect_limited(body, MAX_PRIMING_BODY as usize).await {
        Ok(b) => b,
        Err(e) => {
            // The body broke mid-way: the client gets an error, as it would have streaming.
            tracing::debug!(error = %e, "pass-through body failed while buffering for priming");
            let mut r = Error::UpstreamUnavailable("upstream body interrupted").into_response();
            r.headers_mut()
                .insert("x-request-id", crate::header_arena::request_id());
            return r;
        }
    };
    let mut primed = 0usize;
    for (id, raw) in crate::hydration::prime::embedded_files(&bytes) {
        if app.hydrator.prime(tenant, id, raw) {
            primed += 1;
        }
    }
    if primed > 0 {
        tracing::debug!(primed, "primed cache from pass-through response");
    }
    Response::from_parts(head, body::full(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn strips_hop_by_hop_and_connection_named() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        h.insert("x-request-id", HeaderValue::from_static("req_1"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("10"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 2, "{h:?}");
        assert!(h.contains_key("x-request-id"));
        assert!(h.contains_key("x-ratelimit-remaining"));
    }
}
