//! The `/v1/...` gateway as an HTTP proxy, in front of an echo upstream that reports what it
//! received: the request keeps its method, path, query, body and end-to-end headers, loses its
//! hop-by-hop fields and gets the upstream's `Host`; a client token is swapped for the proxy
//! key while any other bearer is forwarded as is; the response keeps status, body and headers
//! but for hop-by-hop fields; the upstream's path prefix is kept; an h2c client reaches the
//! HTTP/1.1 upstream with a proper request head.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hydrant::config::ServeArgs;
use serde_json::Value;

use crate::common::fake_upstream::{echo_stack, echoed_header, sha, EchoUpstream, FIXED_BODY};
use crate::common::*;

#[tokio::test]
async fn request_head_rewritten_as_a_proxy_must() {
    let (echo, s) = echo_stack().await;
    let extra = [
        ("connection", "X-Foo, keep-alive"),
        ("x-foo", "1"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("upgrade", "foo/1"),
        ("proxy-connection", "keep-alive"),
        ("x-videogen-client", "python/1.2.3"),
        ("x-custom", "abc"),
        ("accept", "application/json"),
    ];
    let pq = "/v1/echo/a%2Fb?x=1&y=%20z&x=2";
    // Sanity: sent directly, the echo sees every one of them.
    let direct = s
        .client
        .send_with(
            Method::PUT,
            &format!("{}{pq}", echo.url()),
            Some("user_key_123"),
            Some(b"{}"),
            &extra,
        )
        .await
        .json();
    for h in [
        "x-foo",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-connection",
        "connection",
    ] {
        assert!(direct["headers"].get(h).is_some(), "test client sends {h}");
    }
    let r = s
        .client
        .send_with(
            Method::PUT,
            &s.url(pq),
            Some("user_key_123"),
            Some(b"{\"k\": 1}"),
            &extra,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["method"], "PUT");
    assert_eq!(
        v["uri"], "/v1/echo/a%2Fb?x=1&y=%20z&x=2",
        "path and query unchanged"
    );
    assert_eq!(
        echoed_header(&v, "host"),
        Some(echo.addr.to_string().as_str())
    );
    assert_eq!(
        echoed_header(&v, "authorization"),
        Some("Bearer user_key_123")
    );
    for gone in [
        "x-foo",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-connection",
        "connection",
    ] {
        assert!(
            v["headers"].get(gone).is_none(),
            "{gone} must not be forwarded: {}",
            v["headers"]
        );
    }
    assert_eq!(echoed_header(&v, "x-videogen-client"), Some("python/1.2.3"));
    assert_eq!(echoed_header(&v, "x-custom"), Some("abc"));
    assert_eq!(echoed_header(&v, "accept"), Some("application/json"));
    assert_eq!(echoed_header(&v, "content-type"), Some("application/json"));
    assert_eq!(v["body_len"], 8);
    assert_eq!(v["body_sha256"], sha(b"{\"k\": 1}"));
    s.stop().await;
}

#[tokio::test]
async fn client_token_is_swapped_for_the_proxy_key() {
    let (_echo, s) = echo_stack().await;
    let r = s.client.get(&s.url("/v1/echo"), Some(CLIENT_TOKEN)).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(
        echoed_header(&v, "authorization"),
        Some(format!("Bearer {ALPHA}").as_str())
    );
    assert!(!r
        .body
        .windows(CLIENT_TOKEN.len())
        .any(|w| w == CLIENT_TOKEN.as_bytes()));
    // The scheme is case-insensitive.
    let v = s
        .client
        .send_with(
            Method::GET,
            &s.url("/v1/echo"),
            None,
            None,
            &[("authorization", &format!("bearer {CLIENT_TOKEN}"))],
        )
        .await
        .json();
    assert_eq!(
        echoed_header(&v, "authorization"),
        Some(format!("Bearer {ALPHA}").as_str())
    );
    // A near miss is forwarded as the client's own key.
    let near = format!("{CLIENT_TOKEN}x");
    let v = s.client.get(&s.url("/v1/echo"), Some(&near)).await.json();
    assert_eq!(
        echoed_header(&v, "authorization"),
        Some(format!("Bearer {near}").as_str())
    );
    s.stop().await;
}

#[tokio::test]
async fn response_head_and_body_unchanged_but_hop_by_hop() {
    let (echo, s) = echo_stack().await;
    // Sanity: the echo really sends the hop-by-hop fields.
    let direct = s
        .client
        .get(&format!("{}/v1/fixed", echo.url()), Some("k1"))
        .await;
    assert_eq!(direct.header("x-up-private"), Some("hop"));
    assert!(direct.header("keep-alive").is_some());
    let r = s.client.get(&s.url("/v1/fixed"), Some("k1")).await;
    assert_eq!(r.status, 203);
    assert_eq!(&r.body[..], FIXED_BODY, "body byte for byte");
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.weird+json; charset=utf-8")
    );
    assert_eq!(r.header("x-request-id"), Some("req_echo_fixed_0001"));
    assert_eq!(r.header("x-ratelimit-limit"), Some("77"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("76"));
    assert_eq!(r.header("x-ratelimit-reset"), Some("1999999999"));
    assert_eq!(r.header("x-custom-upstream"), Some("yes"));
    assert!(r.header("x-up-private").is_none(), "named in Connection");
    assert!(r.header("keep-alive").is_none());
    assert!(r.header("x-cache").is_none());
    // Upstream statuses pass through, including client errors.
    let r = s
        .client
        .get(&s.url("/v1/echo?status=418"), Some("k1"))
        .await;
    assert_eq!(r.status, 418);
    assert_eq!(r.json()["uri"], "/v1/echo?status=418");
    s.stop().await;
}

#[tokio::test]
async fn upstream_path_prefix_is_kept() {
    let echo = EchoUpstream::start().await;
    let s = Stack::start(ServeArgs {
        upstream: Some(format!("{}/api/base/", echo.url())),
        ..ServeArgs::default()
    })
    .await;
    let v = s
        .client
        .get(&s.url("/v1/echo?x=1"), Some("k1"))
        .await
        .json();
    assert_eq!(v["uri"], "/api/base/v1/echo?x=1");
    assert_eq!(
        echoed_header(&v, "host"),
        Some(echo.addr.to_string().as_str())
    );
    s.stop().await;
}

#[tokio::test]
async fn h2c_client_reaches_an_http1_upstream_with_a_proper_head() {
    let (echo, s) = echo_stack().await;
    let client = h2c_client();
    let req = Request::post(s.url("/v1/echo/h2?q=%2F"))
        .header("authorization", format!("Bearer {CLIENT_TOKEN}"))
        .header("x-videogen-client", "node/9")
        .body(Full::new(Bytes::from_static(b"h2-body")))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "req_echo_fixed_0001");
    assert!(!resp.headers().contains_key("x-up-private"));
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["uri"], "/v1/echo/h2?q=%2F");
    assert_eq!(
        echoed_header(&v, "host"),
        Some(echo.addr.to_string().as_str())
    );
    assert_eq!(
        echoed_header(&v, "authorization"),
        Some(format!("Bearer {ALPHA}").as_str())
    );
    assert_eq!(echoed_header(&v, "x-videogen-client"), Some("node/9"));
    assert_eq!(v["body_sha256"], sha(b"h2-body"));
    s.stop().await;
}
