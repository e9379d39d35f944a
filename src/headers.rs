//! Header names hydrant sets, and the hop-by-hop fields a proxy must not forward.
//!
//! A leaf: every layer that builds or relays a response uses it, and it uses nothing of
//! hydrant's.

use http::header::{self, HeaderMap, HeaderName};

/// `x-cache: HIT | MISS | STALE` on cache-served routes.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
/// hydrant's own request id, on every response hydrant builds itself.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Why hydrant itself refused with `429`/`503` (Envoy's `x-envoy-*` idea): a closed vocabulary.
pub const X_HYDRANT_REASON: HeaderName = HeaderName::from_static("x-hydrant-reason");

/// Fields RFC 9110 §7.6.1 names as connection-specific, beside those `Connection` lists.
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
