//! Hostile HTTP/1.1 requests, written byte for byte on a raw socket, against the `/v1`
//! pass-through and the routes hydrant interprets (`/v1/files/{id}/hydrate`, `/files/...`),
//! in front of an upstream that records the exact bytes it receives.
//!
//! What reaches the upstream is always unambiguous: one framing (`Content-Length` xor
//! chunked), the declared body exactly, never a second request smuggled inside the first,
//! and the upstream's own `Host`. Every refusal is a 4xx (a JSON one where hydrant refuses;
//! hyper's own bare `400` where hyper refuses before hydrant sees the request, as noted per
//! case), and the server keeps serving.

use hydrant::config::ServeArgs;

use crate::common::raw_http::{exchange, reply, CaptureUpstream, RawConn, RawResp, Then};
use crate::common::*;

const FILE: &str = "vg_file_hostile";

/// A StorageFile with one ready https download URL.
fn storage_file() -> String {
    let exp = wall_unix() + 3600.0;
    format!(
        r#"{{"fileId":"{FILE}","type":"VIDEO","downloadSource":{{"status":"ready","url":"https://cdn.example/d?sig=1","expiresAt":{exp}}}}}"#
    )
}

/// A capturing upstream (hydrates answer a file, everything else `{"ok":true}`) with
/// hydrant in front of it.
async fn stack() -> (CaptureUpstream, Stack) {
    let file = storage_file();
    let up = CaptureUpstream::start(move |req| {
        let body = if req.target.ends_with("/hydrate") {
            file.as_bytes().to_vec()
        } else {
            b"{\"ok\":true}".to_vec()
        };
        (reply(200, &[], &body), Then::KeepAlive)
    })
    .await;
    let s = Stack::start(ServeArgs {
        upstream: Some(up.url()),
        ..ServeArgs::default()
    })
    .await;
    (up, s)
}

/// `{request line}` with `Host`, a bearer, `fields` (each ending in CRLF), then `body`.
fn req(line: &str, fields: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{line} HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer k1\r\n{fields}\r\n")
        .into_bytes();
    out.extend_from_slice(body);
    out
}

const PASS: &str = "POST /v1/things";
const HYDRATE: &str = "POST /v1/files/vg_file_hostile/hydrate";
const REDIRECT: &str = "GET /files/vg_file_hostile/redirect";

/// Every request the upstream got was unambiguous, and it could parse all it was sent.
fn assert_clean(up: &CaptureUpstream) {
    up.assert_nothing_rejected();
    for r in up.requests() {
        r.assert_unambiguous();
    }
}

async fn assert_alive(s: &Stack) {
    assert_eq!(s.client.get(&s.url("/healthz"), None).await.status, 200);
}

/// A refusal: `status`, and the connection is closed after it.
async fn assert_refused(s: &Stack, bytes: &[u8], status: u16) -> RawResp {
    let (r, mut c) = exchange(s.hydrant.addr, bytes).await;
    let what = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
    assert_eq!(r.status, status, "{what}");
    assert!(c.closed().await, "connection left open after {what}");
    r
}

/// hydrant's own framing refusal: a JSON 400 with `connection: close`.
fn assert_json_400(r: &RawResp, needle: &str) {
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["code"], "invalid_request", "{v}");
    assert!(v["message"].as_str().unwrap().contains(needle), "{v}");
    assert!(r.closes(), "{:?}", r.fields);
}

#[tokio::test]
async fn content_length_with_chunked_is_forwarded_chunked_and_the_connection_closed() {
    // hyper drops the Content-Length and closes after the response; hydrant sets the
    // forwarded framing from the chunked coding alone.
    let (up, s) = stack().await;
    let chunked = b"5\r\nhello\r\n0\r\n\r\n";
    for fields in [
        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n",
    ] {
        for line in [PASS, HYDRATE, REDIRECT] {
            let (r, mut c) = exchange(s.hydrant.addr, &req(line, fields, chunked)).await;
            assert!(r.status == 200 || r.status == 302, "{line}: {}", r.status);
            assert!(r.closes(), "{line}: no connection: close");
            assert!(c.closed().await, "{line}: connection kept");
        }
    }
    let passed = up.matching("/v1/things");
    assert_eq!(passed.len(), 2, "{passed:?}");
    for p in &passed {
        assert_eq!(p.header("transfer-encoding").as_deref(), Some("chunked"));
        assert_eq!(p.count("content-length"), 0);
        assert_eq!(p.body, b"hello");
    }
    // One per tenant (the bearer's, the proxy key's), then cached.
    assert_eq!(up.matching("/v1/files/").len(), 2);
    assert_clean(&up);
    assert_alive(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn equal_content_lengths_pass_as_one_and_differing_ones_are_400() {
    let (up, s) = stack().await;
    let (r, _) = exchange(
        s.hydrant.addr,
        &req(PASS, "Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
    )
    .await;
    assert_eq!(r.status, 200);
    let p = up.matching("/v1/things");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].count("content-length"), 1);
    assert_eq!(p[0].header("content-length").as_deref(), Some("5"));
    assert_eq!(p[0].body, b"hello");
    // hyper refuses these itself (a bare 400 and a close).
    for fields in [
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 6\r\n",
        "Content-Length: 5, 5\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: 0x5\r\n",
    ] {
        for line in [PASS, HYDRATE, REDIRECT] {
            assert_refused(&s, &req(line, fields, b"hello!"), 400).await;
        }
    }
    assert_eq!(
        up.requests().len(),
        1,
        "no refused request reached the upstream"
    );
    assert_clean(&up);
    assert_alive(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn connection_naming_the_framing_fields_cannot_strip_the_framing() {
    // `Connection: content-length` would have a proxy drop the field as hop-by-hop and
    // forward a body without its length; hydrant sets the forwarded framing itself.
    let (up, s) = stack().await;
    for (fields, body) in [
        (
            "Connection: content-length, transfer-encoding\r\nContent-Length: 5\r\n",
            &b"hello"[..],
        ),
        (
            "Connection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
        ),
    ] {
        let (r, _) = exchange(s.hydrant.addr, &req(PASS, fields, body)).await;
        assert_eq!(r.status, 200);
    }
    let p = up.matching("/v1/things");
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].header("content-length").as_deref(), Some("5"));
    assert_eq!(p[1].header("transfer-encoding").as_deref(), Some("chunked"));
    assert!(p.iter().all(|r| r.body == b"hello"), "{p:?}");
    assert_clean(&up);
    s.stop().await;
}

#[tokio::test]
async fn transfer_codings_other_than_one_chunked_are_400_and_a_close() {
    let (up, s) = stack().await;
    // Warm both tenants' entries first: the refusals below come before the cache-hit path.
    assert_eq!(
        exchange(s.hydrant.addr, &req(HYDRATE, "", b""))
            .await
            .0
            .status,
        200
    );
    assert_eq!(
        exchange(s.hydrant.addr, &req(REDIRECT, "", b""))
            .await
            .0
            .status,
        302
    );
    let body = b"5\r\nhello\r\n0\r\n\r\n";
    // hyper accepts these (the final coding is chunked): hydrant refuses them itself.
    for fields in [
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: x-custom, CHUNKED\r\n",
    ] {
        for line in [PASS, HYDRATE, REDIRECT] {
            let r = assert_refused(&s, &req(line, fields, body), 400).await;
            assert_json_400(&r, "Transfer-Encoding");
        }
    }
    // hyper refuses these before hydrant sees them (chunked not final, or HTTP/1.0).
    for fields in [
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
    ] {
        for line in [PASS, HYDRATE, REDIRECT] {
            assert_refused(&s, &req(line, fields, body), 400).await;
        }
    }
    let http10 = b"POST /v1/things HTTP/1.0\r\nAuthorization: Bearer k1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    assert_refused(&s, http10, 400).await;
    assert_eq!(
        up.requests().len(),
        2,
        "the warm-up only: {:?}",
        up.requests()
    );
    assert_clean(&up);
    assert_alive(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn obs_fold_and_invalid_field_bytes_are_refused_by_hyper() {
    let (up, s) = stack().await;
    for fields in [
        &b"X-A: 1\r\n  folded\r\n"[..],
        b"Transfer-Encoding: gzip,\r\n chunked\r\n",
        b"Content-Length: 5\r\n\t5\r\n",
        b"X-A: a\x00b\r\n",
        b"X-A: a\rb\r\n",
        b"X-A: a\x7fb\r\n",
        b"X A: 1\r\n",
        b"X(A): 1\r\n",
        b"X\x01A: 1\r\n",
        b"Content-Length : 5\r\n",
        b"Transfer-Encoding : chunked\r\n",
        b": empty-name\r\n",
    ] {
        for line in [PASS, HYDRATE, REDIRECT] {
            let mut bytes =
                format!("{line} HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer k1\r\n").into_bytes();
            bytes.extend_from_slice(fields);
            bytes.extend_from_slice(b"\r\nhello");
            assert_refused(&s, &bytes, 400).await;
        }
    }
    assert_eq!(up.requests().len(), 0, "{:?}", up.requests());
    assert_alive(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn bare_lf_heads_are_read_like_crlf_and_forwarded_with_crlf() {
    // RFC 9112 §2.2 lets a recipient accept a bare LF; hyper does, and the forwarded
    // request is written anew (CRLF), so the upstream cannot read it differently.
    let (up, s) = stack().await;
    let (r, _) = exchange(
        s.hydrant.addr,
        b"POST /v1/things HTTP/1.1\nHost: h\nAuthorization: Bearer k1\nContent-Length: 5\n\nhello",
    )
    .await;
    assert_eq!(r.status, 200);
    let (r, _) = exchange(
        s.hydrant.addr,
        b"GET /files/vg_file_hostile/redirect HTTP/1.1\nHost: h\n\n",
    )
    .await;
    assert_eq!(r.status, 302);
    let p = up.matching("/v1/things");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].body, b"hello");
    assert_eq!(up.matching("/v1/files/").len(), 1);
    assert_clean(&up); // checks every head line ends in CRLF
    s.stop().await;
}

#[tokio::test]
async fn absolute_form_and_host_never_choose_where_a_request_goes() {
    let (up, s) = stack().await;
    let upstream_host = up.addr.to_string();
    let (r, _) = exchange(
        s.hydrant.addr,
        b"GET http://evil.example/v1/things?q=1 HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer k1\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    let (r, _) = exchange(
        s.hydrant.addr,
        b"GET /v1/things HTTP/1.1\r\nHost: evil.example\r\nHost: other.example\r\nX-Forwarded-Host: evil.example\r\nAuthorization: Bearer k1\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    let (r, _) = exchange(
        s.hydrant.addr,
        b"GET http://evil.example/files/vg_file_hostile/redirect HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location").as_deref(),
        Some("https://cdn.example/d?sig=1")
    );
    let (r, _) = exchange(
        s.hydrant.addr,
        b"GET http://evil.example/files/vg_file_hostile HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    let url = r.json()["renditions"]["download"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.contains("evil"),
        "{url}"
    );
    let passed = up.matching("/v1/things");
    assert_eq!(passed.len(), 2);
    assert_eq!(
        passed[0].target, "/v1/things?q=1",
        "routed on the path only"
    );
    for p in up.requests() {
        assert_eq!(p.count("host"), 1, "{p:?}");
        assert_eq!(p.header("host").as_deref(), Some(upstream_host.as_str()));
    }
    assert_clean(&up);
    s.stop().await;
}

#[tokio::test]
async fn connect_and_authority_form_are_refused() {
    let (up, s) = stack().await;
    let r = assert_refused(
        &s,
        b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
        400,
    )
    .await;
    assert_json_400(&r, "forward proxy");
    let r = assert_refused(
        &s,
        b"GET evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nAuthorization: Bearer k1\r\n\r\n",
        400,
    )
    .await;
    assert_json_400(&r, "forward proxy");
    assert_eq!(up.requests().len(), 0);
    assert_alive(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn expect_100_continue_gets_100_then_the_answer_and_the_body_once() {
    let (up, s) = stack().await;
    let mut c = RawConn::open(s.hydrant.addr).await;
    c.send(&req(
        PASS,
        "Content-Length: 5\r\nExpect: 100-continue\r\n",
        b"",
    ))
    .await;
    assert_eq!(c.informational().await, Some(100), "100 before the body");
    c.send(b"hello").await;
    let r = c.response().await.unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.informational.is_empty(),
        "one 100 only: {:?}",
        r.informational
    );
    // The same connection serves the next request.
    c.send(&req("GET /v1/after", "", b"")).await;
    assert_eq!(c.response().await.unwrap().status, 200);
    let p = up.matching("/v1/things");
    assert_eq!(p.len(), 1, "the body reached the upstream once");
    assert_eq!(p[0].body, b"hello");
    // A route that reads no body answers without waiting for it.
    let mut c = RawConn::open(s.hydrant.addr).await;
    c.send(&req(
        HYDRATE,
        "Content-Length: 5\r\nExpect: 100-continue\r\n",
        b"",
    ))
    .await;
    let r = c.response().await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["fileId"], FILE);
    assert_clean(&up);
    s.stop().await;
}

#[tokio::test]
async fn a_malformed_chunked_body_is_400_and_never_a_whole_upstream_request() {
    let (up, s) = stack().await;
    for body in [
        &b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"[..],
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
    ] {
        let r = assert_refused(&s, &req(PASS, "Transfer-Encoding: chunked\r\n", body), 400).await;
        assert_json_400(&r, "Request body");
    }
    // A route that reads no body answers; the connection is closed, not reused.
    let (r, mut c) = exchange(
        s.hydrant.addr,
        &req(
            HYDRATE,
            "Transfer-Encoding: chunked\r\n",
            b"ffffffffffffffffff\r\nGET /v1/smuggled HTTP/1.1\r\n\r\n",
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(c.closed().await);
    assert_eq!(up.matching("/v1/things").len(), 0, "no whole request");
    assert_eq!(up.matching("/v1/smuggled").len(), 0);
    assert_clean(&up);
    assert_alive(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn bytes_past_the_declared_body_are_a_new_request_of_hydrant_never_the_upstream_body() {
    let (up, s) = stack().await;
    let smuggled = b"GET /v1/smuggled HTTP/1.1\r\nHost: h\r\n\r\n";
    for (line, fields, body) in [
        (PASS, "Content-Length: 5\r\n", &b"hello"[..]),
        (
            PASS,
            "Transfer-Encoding: chunked\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
        ),
        (HYDRATE, "Content-Length: 5\r\n", b"hello"),
    ] {
        let mut c = RawConn::open(s.hydrant.addr).await;
        let mut bytes = req(line, fields, body);
        bytes.extend_from_slice(smuggled);
        c.send(&bytes).await;
        assert_eq!(c.response().await.unwrap().status, 200, "{line}");
        // The extra bytes are hydrant's next request: no bearer, so a local 401.
        let second = c.response().await.unwrap();
        assert_eq!(second.status, 401, "{line}");
        assert_eq!(second.json()["code"], "missing_api_key");
    }
    // Pipelined requests with a bearer are two requests upstream, each with its own body.
    let mut c = RawConn::open(s.hydrant.addr).await;
    let mut bytes = req(PASS, "Content-Length: 5\r\n", b"hello");
    bytes.extend_from_slice(&req("POST /v1/second", "Content-Length: 3\r\n", b"abc"));
    c.send(&bytes).await;
    assert_eq!(c.response().await.unwrap().status, 200);
    assert_eq!(c.response().await.unwrap().status, 200);
    let first = up.matching("/v1/things");
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|p| p.body == b"hello"), "{first:?}");
    assert_eq!(up.matching("/v1/second")[0].body, b"abc");
    assert!(up.matching("/v1/smuggled").is_empty());
    assert_clean(&up);
    s.stop().await;
}

#[tokio::test]
async fn a_get_with_a_chunked_body_is_forwarded_with_its_body() {
    // hydrant's own rule: the forwarded framing follows the request's, even on a GET
    // (hyper alone would send a GET of unknown length as bodiless).
    let (up, s) = stack().await;
    let (r, _) = exchange(
        s.hydrant.addr,
        &req(
            "GET /v1/things",
            "Transfer-Encoding: chunked\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    let p = up.matching("/v1/things");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].method, "GET");
    assert_eq!(p[0].header("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(p[0].body, b"hello");
    assert_clean(&up);
    s.stop().await;
}
