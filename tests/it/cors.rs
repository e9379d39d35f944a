//! CORS on the frontend routes (`--cors-origins`): a listed origin's scripts may read
//! `/files/...` answers (the `302`, the JSON view, and the errors a player must see, such as
//! a pending rendition's `503` + `Retry-After`); preflights answer `204`; an unlisted origin
//! gets no CORS headers; `/v1/...` never gets any; without the option nothing changes.

use http::Method;
use hydrant::config::ServeArgs;

use crate::common::*;

const APP: &str = "http://app.example.test:5173";
const OTHER: &str = "https://evil.example.test";

fn with_origins(origins: &str) -> ServeArgs {
    ServeArgs {
        cors_origins: Some(origins.to_string()),
        ..ServeArgs::default()
    }
}

async fn get_from(s: &Stack, path: &str, origin: &str) -> Resp {
    s.client
        .send_with(Method::GET, &s.url(path), None, None, &[("origin", origin)])
        .await
}

fn assert_allowed(r: &Resp, origin: &str) {
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(origin),
        "{r:?}"
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-cache, age, x-request-id, retry-after")
    );
    assert_eq!(r.header("vary"), Some("origin"));
}

fn assert_no_cors(r: &Resp) {
    for name in [
        "access-control-allow-origin",
        "access-control-expose-headers",
        "access-control-allow-methods",
        "access-control-allow-headers",
    ] {
        assert!(r.header(name).is_none(), "{name} on {r:?}");
    }
}

#[tokio::test]
async fn a_listed_origin_reads_redirects_views_and_errors() {
    let s = Stack::start(with_origins(&format!("{APP}, https://other.example.test"))).await;
    let r = get_from(&s, &format!("/files/{READY}/redirect?rendition=hls"), APP).await;
    assert_eq!(r.status, 302);
    assert_allowed(&r, APP);
    let r = get_from(&s, &format!("/files/{READY}"), APP).await;
    assert_eq!(r.status, 200);
    assert_allowed(&r, APP);
    // The hit path decorates too (the second redirect is a cache hit).
    let r = get_from(&s, &format!("/files/{READY}/redirect"), APP).await;
    assert_eq!(r.header("x-cache"), Some("HIT"));
    assert_allowed(&r, APP);
    // A player must be able to read a pending rendition's Retry-After.
    let r = get_from(
        &s,
        &format!("/files/{PENDING}/redirect?rendition=preview"),
        APP,
    )
    .await;
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
    assert_allowed(&r, APP);
    let r = get_from(&s, "/files/bad.id/redirect", APP).await;
    assert_error(&r, 400, "invalid_id");
    assert_allowed(&r, APP);
    s.stop().await;
}

#[tokio::test]
async fn an_unlisted_origin_gets_no_cors_headers_but_the_same_answer() {
    let s = Stack::start(with_origins(APP)).await;
    let r = get_from(&s, &format!("/files/{READY}/redirect"), OTHER).await;
    assert_eq!(r.status, 302, "CORS never changes what is answered");
    assert_no_cors(&r);
    assert_eq!(r.header("vary"), Some("origin"));
    // No Origin at all (an <img>): no CORS headers, but Vary, so a browser cache never
    // replays this 302 to a script without them.
    let r = s
        .client
        .get(&s.url(&format!("/files/{READY}/redirect")), None)
        .await;
    assert_no_cors(&r);
    assert_eq!(r.header("vary"), Some("origin"));
    s.stop().await;
}

#[tokio::test]
async fn star_allows_any_origin() {
    let s = Stack::start(with_origins("*")).await;
    let r = get_from(&s, &format!("/files/{READY}"), OTHER).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    s.stop().await;
}

#[tokio::test]
async fn v1_never_gets_cors_headers() {
    let s = Stack::with_client_token(with_origins("*")).await;
    for (method, path) in [
        (Method::POST, format!("/v1/files/{READY}/hydrate")),
        (Method::GET, format!("/v1/files/{READY}")),
        (Method::GET, "/v1/me".to_string()),
        (Method::OPTIONS, format!("/v1/files/{READY}")),
    ] {
        let r = s
            .client
            .send_with(
                method.clone(),
                &s.url(&path),
                Some(CLIENT_TOKEN),
                None,
                &[("origin", APP), ("access-control-request-method", "GET")],
            )
            .await;
        assert_no_cors(&r);
        assert!(
            r.header("vary").is_none_or(|v| !v.contains("origin")),
            "{method} {path}"
        );
    }
    s.stop().await;
}

async fn preflight(s: &Stack, path: &str, origin: &str, headers: Option<&str>) -> Resp {
    let mut h = vec![("origin", origin), ("access-control-request-method", "GET")];
    if let Some(asked) = headers {
        h.push(("access-control-request-headers", asked));
    }
    s.client
        .send_with(Method::OPTIONS, &s.url(path), None, None, &h)
        .await
}

#[tokio::test]
async fn preflights_grant_get_head_and_range_to_listed_origins() {
    let s = Stack::start(with_origins(APP)).await;
    let path = format!("/files/{READY}/redirect?rendition=hls");
    let r = preflight(&s, &path, APP, Some("range")).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, HEAD"));
    assert_eq!(r.header("access-control-allow-headers"), Some("range"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.headers.get_all("vary").iter().count(), 1);
    // A header beyond range and the safelisted ones is not granted: the browser refuses.
    let r = preflight(
        &s,
        &format!("/files/{READY}"),
        APP,
        Some("range, x-api-key"),
    )
    .await;
    assert_eq!(r.status, 204);
    assert!(r.header("access-control-allow-headers").is_none());
    // An unlisted origin: 204 without any grant.
    let r = preflight(&s, &path, OTHER, Some("range")).await;
    assert_eq!(r.status, 204);
    assert_no_cors(&r);
    // A preflight never reaches the upstream.
    assert_eq!(s.sim.stats().hydrate_calls, 0);
    s.stop().await;
}

#[tokio::test]
async fn without_cors_origins_nothing_changes() {
    let s = Stack::start(ServeArgs::default()).await;
    let r = get_from(&s, &format!("/files/{READY}/redirect"), APP).await;
    assert_eq!(r.status, 302);
    assert_no_cors(&r);
    assert!(r.header("vary").is_none());
    let r = preflight(&s, &format!("/files/{READY}"), APP, None).await;
    assert_error(&r, 405, "method_not_allowed");
    s.stop().await;
}
