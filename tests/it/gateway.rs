//! The `/v1/...` gateway: pass-through fidelity against the simulator and a local echo
//! upstream, hop-by-hop handling, auth swap, streaming both ways, upstream failures, h2c.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full, StreamBody};
use hydrant::config::ServeArgs;
use hydrant::sim::FaultKind;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::common::fake_upstream::{
    echo_stack, echoed_header, pattern, raw_upstream, refused_addr, sha, EchoUpstream, FIXED_BODY,
};
use crate::common::*;

/// Replace everything that legitimately differs between two calls (signed URLs carry a
/// random credential, expiries move with the clock) so bodies can be compared.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if k.ends_with("xpiresAt") && v.is_number() {
                        json!(0)
                    } else if k == "url" || k.ends_with("Url") {
                        json!(v.is_string() && !v.as_str().unwrap().is_empty())
                    } else {
                        normalize(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// Same status, same content-type, same headers (by name) but for per-response ones.
fn assert_same_head(direct: &Resp, via: &Resp) {
    assert_eq!(direct.status, via.status);
    assert_eq!(direct.header("content-type"), via.header("content-type"));
    let names = |r: &Resp| {
        let mut n: Vec<String> = r
            .headers
            .keys()
            .map(|k| k.as_str().to_string())
            .filter(|k| k != "date" && k != "content-length")
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(direct), names(via));
    assert_eq!(
        direct.header("x-ratelimit-limit"),
        via.header("x-ratelimit-limit")
    );
    let rid = via.header("x-request-id").expect("x-request-id");
    assert!(rid.starts_with("req_"), "upstream request id kept: {rid}");
}

#[tokio::test]
async fn list_with_query_passes_through_like_direct() {
    let s = Stack::start(ServeArgs::default()).await;
    let q = "/v1/files?limit=3&cursor=cur_vg_file_alpha_0003";
    let direct = s.client.get(&s.sim_url(q), Some(ALPHA)).await;
    let via = s.client.get(&s.url(q), Some(ALPHA)).await;
    assert_eq!(direct.status, 200);
    assert_same_head(&direct, &via);
    assert_eq!(normalize(&direct.json()), normalize(&via.json()));
    let ids: Vec<String> = via.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "vg_file_alpha_0004",
            "vg_file_alpha_0005",
            "vg_file_alpha_0006"
        ],
        "limit and cursor reached the upstream"
    );
    assert_eq!(via.json()["nextCursor"], "cur_vg_file_alpha_0006");
    assert_eq!(s.sim.stats().list_files_calls, 2);
    s.stop().await;
}

#[tokio::test]
async fn search_body_passes_through_like_direct() {
    let s = Stack::start(ServeArgs::default()).await;
    let body = br##"{"query": "#1", "numResults": 3}"##;
    let direct = s
        .client
        .post(&s.sim_url("/v1/files/search"), Some(ALPHA), Some(body))
        .await;
    let via = s
        .client
        .post(&s.url("/v1/files/search"), Some(ALPHA), Some(body))
        .await;
    assert_eq!(direct.status, 200);
    assert_same_head(&direct, &via);
    let v = via.json();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "numResults from the body was honoured");
    for r in results {
        let name = r["file"]["displayName"].as_str().unwrap();
        assert!(
            name.contains("#1"),
            "query from the body was honoured: {name}"
        );
    }
    assert_eq!(normalize(&direct.json()), normalize(&v));
    assert_eq!(s.sim.stats().search_calls, 2);
    s.stop().await;
}

#[tokio::test]
async fn me_is_byte_identical_and_ratelimit_headers_come_from_upstream() {
    let s = Stack::start(ServeArgs::default()).await;
    let d1 = s.client.get(&s.sim_url("/v1/me"), Some(ALPHA)).await;
    let via = s.client.get(&s.url("/v1/me"), Some(ALPHA)).await;
    let d2 = s.client.get(&s.sim_url("/v1/me"), Some(ALPHA)).await;
    assert_eq!(via.status, 200);
    assert_eq!(d1.body, via.body, "body byte for byte");
    assert_same_head(&d1, &via);
    let rem = |r: &Resp| -> u64 { r.header("x-ratelimit-remaining").unwrap().parse().unwrap() };
    assert_eq!(rem(&via), rem(&d1) - 1, "the upstream's own counter");
    assert_eq!(rem(&d2), rem(&via) - 1);
    assert!(via.header("x-ratelimit-reset").is_some());
    assert_ne!(via.header("x-request-id"), d1.header("x-request-id"));
    assert_eq!(s.sim.stats().by_route.get("GET /v1/me"), Some(&3));
    s.stop().await;
}

#[tokio::test]
async fn tool_start_and_execution_poll_pass_through() {
    let s = Stack::start(ServeArgs::default()).await;
    let r = s
        .client
        .post(
            &s.url("/v1/tools/generate-image"),
            Some(ALPHA),
            Some(br#"{"prompt": "gateway test cat"}"#),
        )
        .await;
    assert_eq!(r.status, 202);
    assert!(r.header("x-request-id").unwrap().starts_with("req_"));
    let v = r.json();
    assert_eq!(v["status"], "pending");
    assert_eq!(v["toolType"], "GENERATE_IMAGE");
    let exec = v["toolExecutionId"].as_str().unwrap().to_string();
    let p1 = s
        .client
        .get(&s.url(&format!("/v1/tools/executions/{exec}")), Some(ALPHA))
        .await;
    assert_eq!(p1.status, 200);
    assert_eq!(p1.json()["toolExecutionId"], exec.as_str());
    assert_eq!(p1.json()["status"], "pending");
    let p2 = s
        .client
        .get(&s.url(&format!("/v1/tools/executions/{exec}")), Some(ALPHA))
        .await;
    assert_eq!(p2.status, 200);
    let v2 = p2.json();
    assert_eq!(v2["status"], "succeeded");
    assert_eq!(
        v2["results"][0]["file"]["displayName"], "gateway test cat",
        "the prompt in the request body reached the upstream"
    );
    let st = s.sim.stats();
    assert_eq!(st.tool_calls, 1);
    assert_eq!(st.execution_get_calls, 2);
    s.stop().await;
}

#[tokio::test]
async fn no_bearer_is_refused_locally() {
    let s = Stack::start(ServeArgs::default()).await;
    for (m, p) in [
        (Method::GET, "/v1/me"),
        (Method::GET, "/v1/files"),
        (Method::POST, "/v1/files/vg_file_alpha_0001/hydrate"),
        (Method::POST, "/v1/tools/generate-image"),
    ] {
        let r = s.client.send(m, &s.url(p), None, None).await;
        assert_error(&r, 401, "missing_api_key");
        // A non-bearer scheme or an empty token is no bearer either.
        for auth in [
            "Basic dXNlcjpwYXNz",
            "Bearer ",
            "Bearer",
            "Bearer    ",
            "Token abc",
        ] {
            let r = s
                .client
                .send_with(
                    Method::GET,
                    &s.url(p),
                    None,
                    None,
                    &[("authorization", auth)],
                )
                .await;
            assert_error(&r, 401, "missing_api_key");
        }
    }
    assert_eq!(s.sim.stats().total_requests, 0, "no upstream call");
    s.stop().await;
}

#[tokio::test]
async fn invalid_key_gets_the_upstreams_401() {
    let s = Stack::start(ServeArgs::default()).await;
    let direct = s.client.get(&s.sim_url("/v1/me"), Some("vg_bogus")).await;
    let via = s.client.get(&s.url("/v1/me"), Some("vg_bogus")).await;
    assert_eq!(via.status, 401);
    assert_eq!(via.json()["code"], "invalid_api_key");
    assert_eq!(direct.body, via.body);
    assert!(via.header("x-request-id").unwrap().starts_with("req_"));
    assert_eq!(s.sim.stats().by_route.get("GET /v1/me"), Some(&2));
    s.stop().await;
}

#[tokio::test]
async fn upstream_500_passes_through() {
    let s = Stack::start(ServeArgs::default()).await;
    s.sim.push_fault(me_fault(FaultKind::Status(500), 1));
    let r = s.client.get(&s.url("/v1/me"), Some(ALPHA)).await;
    assert_eq!(r.status, 500);
    let v = r.json();
    assert_eq!(v["code"], "internal_error");
    assert_eq!(v["message"], "Simulated upstream error (500).");
    assert!(r.header("x-request-id").unwrap().starts_with("req_"));
    // Not retried, and the next call is fine.
    assert_eq!(s.sim.stats().total_requests, 1);
    assert_eq!(
        s.client.get(&s.url("/v1/me"), Some(ALPHA)).await.status,
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn upstream_drop_is_502() {
    let s = Stack::start(ServeArgs::default()).await;
    s.sim.push_fault(me_fault(FaultKind::Drop, 1));
    let r = s.client.get(&s.url("/v1/me"), Some(ALPHA)).await;
    assert_error(&r, 502, "upstream_unavailable");
    assert!(r.header("x-request-id").unwrap().starts_with("hyd-"));
    assert_eq!(
        s.client.get(&s.url("/v1/me"), Some(ALPHA)).await.status,
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn upstream_hang_is_504_within_the_timeout() {
    let s = Stack::start(ServeArgs {
        upstream_timeout: Some("1s".into()),
        ..ServeArgs::default()
    })
    .await;
    s.sim.push_fault(me_fault(FaultKind::Hang, 1));
    let t = Instant::now();
    let r = s.client.get(&s.url("/v1/me"), Some(ALPHA)).await;
    let took = t.elapsed();
    assert_error(&r, 504, "upstream_timeout");
    assert!(
        took >= Duration::from_millis(900),
        "waited the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "bounded: {took:?}");
    s.stop().await;
}

#[tokio::test]
async fn connection_refused_upstream_is_502() {
    let dead = refused_addr();
    let s = Stack::start(ServeArgs {
        upstream: Some(format!("http://{dead}")),
        ..ServeArgs::default()
    })
    .await;
    let t = Instant::now();
    let r = s.client.get(&s.url("/v1/me"), Some(ALPHA)).await;
    assert_error(&r, 502, "upstream_unavailable");
    let r = s
        .client
        .get(&s.url(&format!("/files/{READY}/redirect")), None)
        .await;
    assert_eq!(r.status, 502);
    assert!(t.elapsed() < Duration::from_secs(5));
    s.stop().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_works() {
    let s = Stack::start(ServeArgs::default()).await;
    let client = h2c_client();
    let req = get_with_bearer(&s.url("/v1/me"), ALPHA);
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-ratelimit-remaining"));
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["name"], "Alpha Studio");

    let req = Request::get(s.url(&format!("/files/{READY}/redirect")))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 302);
    assert!(resp.headers().contains_key("location"));

    // A POST body over h2 reaches the upstream.
    let req = Request::post(s.url("/v1/files/search"))
        .header("authorization", format!("Bearer {ALPHA}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br##"{"query":"#2","numResults":1}"##,
        )))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    s.stop().await;
}

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
async fn large_request_body_arrives_intact() {
    let (_echo, s) = echo_stack().await;
    let big = pattern(8 << 20);
    let r = s
        .client
        .post(&s.url("/v1/echo/upload"), Some("k1"), Some(&big))
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["body_len"], 8 << 20);
    assert_eq!(v["body_sha256"], sha(&big));
    s.stop().await;
}

#[tokio::test]
async fn large_chunked_response_arrives_intact() {
    let (_echo, s) = echo_stack().await;
    let n = 8 << 20;
    let r = s
        .client
        .get(&s.url(&format!("/v1/big?n={n}")), Some("k1"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), n);
    assert_eq!(sha(&r.body), sha(&pattern(n)));
    s.stop().await;
}

/// A plain hyper HTTP/1.1 connection whose request body is fed through a channel.
type ChanBody =
    StreamBody<futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

fn chan_body() -> (tokio::sync::mpsc::Sender<Bytes>, ChanBody) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok(Frame::data(b)), rx))
    });
    (tx, StreamBody::new(Box::pin(stream)))
}

async fn next_data(body: &mut Incoming) -> Bytes {
    loop {
        let f = tokio::time::timeout(Duration::from_secs(3), body.frame())
            .await
            .expect("a frame within 3 s (streamed, not buffered)")
            .expect("body not ended")
            .expect("body ok");
        if let Ok(d) = f.into_data() {
            if !d.is_empty() {
                return d;
            }
        }
    }
}

#[tokio::test]
async fn response_streams_before_upstream_finishes() {
    let (echo, s) = echo_stack().await;
    let stream = tokio::net::TcpStream::connect(s.hydrant.addr)
        .await
        .unwrap();
    let (mut send, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/v1/held")
        .header("host", "hydrant")
        .header("authorization", "Bearer k1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(3), send.send_request(req))
        .await
        .expect("head before the upstream body ends")
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    assert_eq!(&next_data(&mut body).await[..], b"first-chunk;");
    echo.release.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(3), body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(&rest[..], b"second-chunk");
    s.stop().await;
}

#[tokio::test]
async fn request_body_streams_to_upstream() {
    let (_echo, s) = echo_stack().await;
    let stream = tokio::net::TcpStream::connect(s.hydrant.addr)
        .await
        .unwrap();
    let (mut send, conn) =
        hyper::client::conn::http1::handshake::<_, ChanBody>(TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let (tx, body) = chan_body();
    let req = Request::post("/v1/duplex")
        .header("host", "hydrant")
        .header("authorization", "Bearer k1")
        .body(body)
        .unwrap();
    let pending = tokio::spawn(async move { send.send_request(req).await });
    tx.send(Bytes::from_static(b"part-one;")).await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(3), pending)
        .await
        .expect("the upstream answered while the request body was still open")
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut rbody = resp.into_body();
    assert_eq!(&next_data(&mut rbody).await[..], b"part-one;");
    tx.send(Bytes::from_static(b"part-two")).await.unwrap();
    assert_eq!(&next_data(&mut rbody).await[..], b"part-two");
    drop(tx);
    let rest = tokio::time::timeout(Duration::from_secs(3), rbody.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert!(rest.is_empty());
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

#[tokio::test]
async fn expect_100_continue_upload_passes_through() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_echo, s) = echo_stack().await;
    let mut tcp = tokio::net::TcpStream::connect(s.hydrant.addr)
        .await
        .unwrap();
    let body = b"{\"upload\": true}";
    tcp.write_all(
        format!(
            "POST /v1/echo/up HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer k1\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             Expect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // A client waits for the interim response before sending the body.
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf))
        .await
        .expect("100 Continue (or a final answer) within 3 s")
        .unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(first.starts_with("HTTP/1.1 100"), "{first:?}");
    tcp.write_all(body).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    let all = format!("{first}{}", String::from_utf8_lossy(&rest));
    assert!(all.contains("HTTP/1.1 200"), "{all}");
    let json = &all[all.find("{\"").unwrap()..];
    let json = &json[..=json.rfind('}').unwrap()];
    let v: Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["body_sha256"], sha(body));
    s.stop().await;
}

#[tokio::test]
async fn garbage_status_line_from_upstream_is_502() {
    let up = raw_upstream(b"NOT HTTP AT ALL\r\n\r\n").await;
    let s = Stack::start(ServeArgs {
        upstream: Some(format!("http://{up}")),
        ..ServeArgs::default()
    })
    .await;
    let r = s.client.get(&s.url("/v1/me"), Some("k1")).await;
    assert_error(&r, 502, "upstream_unavailable");
    let r = s.client.get(&s.url("/v1/files"), Some("k1")).await;
    assert_error(&r, 502, "upstream_unavailable");
    assert_eq!(s.client.get(&s.url("/healthz"), None).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn truncated_upstream_body_is_never_a_complete_response() {
    let up = raw_upstream(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"short\":",
    )
    .await;
    let s = Stack::start(ServeArgs {
        upstream: Some(format!("http://{up}")),
        ..ServeArgs::default()
    })
    .await;
    // Streamed pass-through: the head went out, so the body must end in an error.
    let client = hyper_client();
    let req = get_with_bearer(&s.url("/v1/me"), "k1");
    let resp = tokio::time::timeout(Duration::from_secs(5), client.request(req))
        .await
        .unwrap();
    if let Ok(resp) = resp {
        let body = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect())
            .await
            .expect("body ends (in an error) promptly");
        assert!(body.is_err(), "a truncated body must not look complete");
    }
    // Buffered for priming (GET /v1/files): a JSON 502.
    let r = s.client.get(&s.url("/v1/files"), Some("k1")).await;
    assert_error(&r, 502, "upstream_unavailable");
    s.stop().await;
}
