//! CORS on the frontend routes (`/files/...`), for scripts on other origins: a web app that
//! `fetch()`es `GET /files/{id}`, hls.js loading `?rendition=hls` through the redirect, an
//! `<img crossorigin>` drawn on a canvas. `<img>`/`<video src>` need none of it.
//!
//! Only `/files/...` is ever decorated: `/v1/...` carries API keys, which do not belong in
//! browsers, so hydrant gives it no CORS headers at all. An origin that is not listed gets
//! no CORS headers, and the browser then refuses the script, as it should.

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ORIGIN,
    VARY,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::body::{self, Body};
use crate::config::CorsOrigins;

/// Headers a script may read besides the CORS-safelisted ones.
const EXPOSE: HeaderValue = HeaderValue::from_static("x-cache, age, x-request-id, retry-after");
/// The frontend routes are read-only.
const METHODS: HeaderValue = HeaderValue::from_static("GET, HEAD");
/// How long a browser may reuse a preflight answer, in seconds.
const MAX_AGE: HeaderValue = HeaderValue::from_static("600");
/// The answer varies with the request's `Origin` (allowed or not, echoed or not).
const VARY_ORIGIN: HeaderValue = HeaderValue::from_static("origin");
/// `Access-Control-Allow-Origin: *`.
const ANY: HeaderValue = HeaderValue::from_static("*");

/// Request headers a preflight may ask for: `range` (video elements and players seek with
/// it) and the CORS-safelisted ones a script may set on a GET.
const ALLOWED_REQUEST_HEADERS: &[&str] = &[
    "range",
    "accept",
    "accept-language",
    "content-language",
    "content-type",
];

/// Whether `path` is one of the routes CORS applies to.
pub(crate) fn applies(path: &str) -> bool {
    path.starts_with("/files/")
}

/// The CORS policy of a running proxy (`--cors-origins`).
#[derive(Debug)]
pub(crate) struct Cors {
    origins: CorsOrigins,
}

impl Cors {
    /// The policy for the configured origins.
    pub(crate) fn new(origins: CorsOrigins) -> Cors {
        Cors { origins }
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if it is allowed.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let origin = origin?;
        match &self.origins {
            CorsOrigins::Any => Some(ANY),
            CorsOrigins::List(list) => {
                let given = origin.to_str().ok()?;
                list.iter()
                    .any(|o| o.eq_ignore_ascii_case(given))
                    .then(|| origin.clone())
            }
        }
    }

    /// Add CORS headers to an answer on a frontend route. `Vary: Origin` goes on every such
    /// answer, whether or not the request had an `Origin`: a browser that cached a `302` for
    /// an `<img>` (no `Origin`) must not replay it to hls.js (with one) without its CORS
    /// headers.
    /// Idempotent: an answer that already varies on `Origin` (a preflight) is left alone.
    pub(crate) fn decorate(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        if headers.get_all(VARY).iter().any(|v| v == VARY_ORIGIN) {
            return;
        }
        headers.append(VARY, VARY_ORIGIN);
        if let Some(allow) = self.allow_origin(origin) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE);
        }
    }

    /// The `204` answer to a preflight (`OPTIONS`) on a frontend route. The request headers
    /// asked for are granted only when every one is `range` or safelisted; otherwise the
    /// answer leaves them out and the browser refuses the request.
    pub(crate) fn preflight(&self, request: &HeaderMap) -> Response<Body> {
        let mut resp = Response::new(body::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        h.insert(VARY, VARY_ORIGIN);
        let Some(allow) = self.allow_origin(request.get(ORIGIN)) else {
            return resp;
        };
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        h.insert(ACCESS_CONTROL_ALLOW_METHODS, METHODS);
        h.insert(ACCESS_CONTROL_MAX_AGE, MAX_AGE);
        if let Some(asked) = request.get(ACCESS_CONTROL_REQUEST_HEADERS) {
            if grantable(asked) {
                h.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
            }
        }
        resp
    }
}

/// Whether every header named in `Access-Control-Request-Headers` may be granted.
fn grantable(asked: &HeaderValue) -> bool {
    let Ok(list) = asked.to_str() else {
        return false;
    };
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .all(|name| {
            ALLOWED_REQUEST_HEADERS
                .iter()
                .any(|a| a.eq_ignore_ascii_case(name))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(origins: &[&str]) -> Cors {
        Cors::new(CorsOrigins::List(
            origins.iter().map(|o| o.to_string()).collect(),
        ))
    }

    fn hv(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn a_listed_origin_is_echoed_with_vary_and_exposed_headers() {
        let cors = list(&["https://app.example.com"]);
        let mut h = HeaderMap::new();
        cors.decorate(Some(&hv("https://app.example.com")), &mut h);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[VARY], "origin");
        assert_eq!(
            h[ACCESS_CONTROL_EXPOSE_HEADERS],
            "x-cache, age, x-request-id, retry-after"
        );
    }

    #[test]
    fn an_unlisted_or_missing_origin_gets_only_vary() {
        let cors = list(&["https://app.example.com"]);
        for origin in [
            Some(hv("https://evil.example.com")),
            Some(hv("https://app.example.com.evil.example")),
            Some(hv("null")),
            None,
        ] {
            let mut h = HeaderMap::new();
            cors.decorate(origin.as_ref(), &mut h);
            assert!(h.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "{origin:?}");
            assert!(h.get(ACCESS_CONTROL_EXPOSE_HEADERS).is_none());
            assert_eq!(h[VARY], "origin");
        }
    }

    #[test]
    fn any_answers_star() {
        let cors = Cors::new(CorsOrigins::Any);
        let mut h = HeaderMap::new();
        cors.decorate(Some(&hv("http://127.0.0.1:9999")), &mut h);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }

    #[test]
    fn an_existing_vary_is_kept() {
        let cors = Cors::new(CorsOrigins::Any);
        let mut h = HeaderMap::new();
        h.insert(VARY, hv("accept-encoding"));
        cors.decorate(None, &mut h);
        let all: Vec<_> = h.get_all(VARY).iter().collect();
        assert_eq!(all, [&hv("accept-encoding"), &hv("origin")]);
    }

    #[test]
    fn preflight_grants_range_and_safelisted_headers_only() {
        let cors = list(&["https://app.example.com"]);
        let mut req = HeaderMap::new();
        req.insert(ORIGIN, hv("https://app.example.com"));
        req.insert(ACCESS_CONTROL_REQUEST_HEADERS, hv("range, accept"));
        let resp = cors.preflight(&req);
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let h = resp.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "GET, HEAD");
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "range, accept");

        req.insert(ACCESS_CONTROL_REQUEST_HEADERS, hv("range, authorization"));
        let resp = cors.preflight(&req);
        assert!(resp.headers().get(ACCESS_CONTROL_ALLOW_HEADERS).is_none());
        assert_eq!(
            resp.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
    }

    #[test]
    fn decorating_a_preflight_adds_nothing() {
        let cors = list(&["https://app.example.com"]);
        let mut req = HeaderMap::new();
        req.insert(ORIGIN, hv("https://app.example.com"));
        let mut resp = cors.preflight(&req);
        let before = resp.headers().clone();
        cors.decorate(req.get(ORIGIN), resp.headers_mut());
        assert_eq!(resp.headers(), &before);
    }

    #[test]
    fn preflight_from_an_unlisted_origin_grants_nothing() {
        let cors = list(&["https://app.example.com"]);
        let mut req = HeaderMap::new();
        req.insert(ORIGIN, hv("https://evil.example.com"));
        req.insert(ACCESS_CONTROL_REQUEST_HEADERS, hv("range"));
        let resp = cors.preflight(&req);
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let h = resp.headers();
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[VARY], "origin");
    }

    #[test]
    fn only_frontend_routes_apply() {
        assert!(applies("/files/vg_file_1/redirect"));
        assert!(applies("/files/vg_file_1"));
        assert!(!applies("/v1/files/vg_file_1"));
        assert!(!applies("/files"));
        assert!(!applies("/metrics"));
    }
}
