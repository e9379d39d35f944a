//! Hostile and malformed input: broken request lines, oversized heads, junk ids, long paths,
//! unknown routes and methods, garbage from the upstream. hydrant answers with a JSON error
//! (or hyper's own 4xx for unparseable HTTP), calls no upstream, and keeps serving.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::Method;
use hydrant::config::ServeArgs;
use hydrant::sim::FaultKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Whether `buf` holds one whole HTTP/1.1 response (content-length or chunked).
fn response_complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let body = &buf[end + 4..];
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("content-length:") {
            return v.trim().parse::<usize>().is_ok_and(|n| body.len() >= n);
        }
        if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            return body.ends_with(b"0\r\n\r\n");
        }
    }
    false
}

/// Write raw bytes, read one response (or until close / reset / 3 s).
async fn raw_exchange_on(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    // The server may refuse before reading everything; a failed write is fine.
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if response_complete(&out) {
                    break;
                }
            }
        }
    }
    out
}

async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    raw_exchange_on(&mut stream, bytes).await
}

fn status_of(reply: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(reply);
    let line = text.lines().next().unwrap_or("");
    assert!(line.starts_with("HTTP/1.1 "), "no status line: {text:?}");
    line[9..12].parse().unwrap()
}

async fn assert_alive(s: &Stack) {
    let r = s.client.get(&s.url("/healthz"), None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn malformed_request_lines_get_4xx_and_serving_continues() {
    let s = Stack::start(ServeArgs::default()).await;
    let addr = s.hydrant.addr;
    // A keep-alive connection opened before the junk keeps working after it.
    let mut keep = TcpStream::connect(addr).await.unwrap();
    let good = b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(status_of(&raw_exchange_on(&mut keep, good).await), 200);
    for junk in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /healthz\r\n\r\n",
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost h\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: h\r\nbad header\r\n\r\n",
        b"GET /files/\xff\xfe/redirect HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n",
    ] {
        let reply = raw_exchange(addr, junk).await;
        let st = status_of(&reply);
        assert!(
            (400..500).contains(&st),
            "{:?} -> {st}",
            String::from_utf8_lossy(junk)
        );
        // And the server answers a good request on a fresh connection right after.
        assert_eq!(status_of(&raw_exchange(addr, good).await), 200);
    }
    // Half a request, then hang up: nothing breaks.
    {
        let mut half = TcpStream::connect(addr).await.unwrap();
        half.write_all(b"GET /heal").await.unwrap();
    }
    assert_eq!(status_of(&raw_exchange_on(&mut keep, good).await), 200);
    assert_alive(&s).await;
    assert_eq!(s.sim.stats().total_requests, 0);
    s.stop().await;
}

#[tokio::test]
async fn head_between_16_and_64_kib_is_a_json_431() {
    let s = Stack::start(ServeArgs::default()).await;
    let big = "a".repeat(20 * 1024);
    for (m, path, bearer) in [
        (Method::GET, "/healthz".to_string(), None),
        (Method::GET, "/v1/me".to_string(), Some(ALPHA)),
        (
            Method::POST,
            format!("/v1/files/{READY}/hydrate"),
            Some(ALPHA),
        ),
        (Method::GET, format!("/files/{READY}/redirect"), None),
    ] {
        let r = s
            .client
            .send_with(m, &s.url(&path), bearer, None, &[("x-big", &big)])
            .await;
        assert_error(&r, 431, "headers_too_large");
    }
    // Many small fields add up too (90 fields: under hyper's own field-count limit).
    let many: Vec<(String, String)> = (0..90)
        .map(|i| (format!("x-field-{i}"), "v".repeat(200)))
        .collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = s
        .client
        .send_with(Method::GET, &s.url("/v1/me"), Some(ALPHA), None, &refs)
        .await;
    assert_error(&r, 431, "headers_too_large");
    // Past hyper's field-count limit it refuses by itself: still a 431.
    let many: Vec<(String, String)> = (0..300)
        .map(|i| (format!("x-field-{i}"), "v".to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = s
        .client
        .send_with(Method::GET, &s.url("/v1/me"), Some(ALPHA), None, &refs)
        .await;
    assert_eq!(r.status, 431);
    assert_eq!(
        s.sim.stats().total_requests,
        0,
        "refused before any upstream call"
    );
    // Just under the limit is fine.
    let r = s
        .client
        .send_with(
            Method::GET,
            &s.url("/v1/me"),
            Some(ALPHA),
            None,
            &[("x-big", &"a".repeat(15 * 1024))],
        )
        .await;
    assert_eq!(r.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn head_over_64_kib_is_refused_by_hyper() {
    let s = Stack::start(ServeArgs::default()).await;
    let mut req = b"GET /healthz HTTP/1.1\r\nHost: h\r\nx-big: ".to_vec();
    req.extend_from_slice(&vec![b'a'; 100 * 1024]);
    req.extend_from_slice(b"\r\n\r\n");
    let reply = raw_exchange(s.hydrant.addr, &req).await;
    assert_eq!(
        status_of(&reply),
        431,
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
    assert_alive(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn junk_ids_are_400_invalid_id_without_upstream_calls() {
    let s = Stack::start(ServeArgs::default()).await;
    let long = "a".repeat(129);
    let ids = [
        "%ff%fe",
        "%2e%2e",
        "..",
        ".",
        "a%20b",
        "vg_file%2F0001",
        "vg_file_alpha_0001%00",
        "vg_file.alpha",
        "vg_file_alpha_0001;x",
        "%3Cscript%3E",
        "",
        long.as_str(),
    ];
    for id in ids {
        for path in [format!("/files/{id}/redirect"), format!("/files/{id}")] {
            if id.is_empty() && !path.ends_with("/redirect") {
                continue; // "/files/" is a different shape
            }
            let r = s.client.get(&s.url(&path), None).await;
            assert_error(&r, 400, "invalid_id");
        }
        if !id.is_empty() {
            let r = s
                .client
                .post(
                    &s.url(&format!("/v1/files/{id}/hydrate")),
                    Some(ALPHA),
                    None,
                )
                .await;
            assert_error(&r, 400, "invalid_id");
            let r = s
                .client
                .post(
                    &s.url(&format!("/v1/files/{id}/archive")),
                    Some(ALPHA),
                    None,
                )
                .await;
            assert_error(&r, 400, "invalid_id");
        }
    }
    assert_eq!(
        s.sim.stats().total_requests,
        0,
        "no upstream call for a junk id"
    );
    // The boundary: 128 characters is a valid (unknown) id and does reach the upstream.
    let r = s
        .client
        .get(&s.url(&format!("/files/{}/redirect", &long[..128])), None)
        .await;
    assert_error(&r, 404, "not_found");
    assert_eq!(s.sim.stats().hydrate_calls, 1);
    s.stop().await;
}

#[tokio::test]
async fn ten_kb_paths_are_4xx_and_the_process_stays_up() {
    let s = Stack::start(ServeArgs::default()).await;
    let ten = "a".repeat(10 * 1024);
    let r = s
        .client
        .get(&s.url(&format!("/files/{ten}/redirect")), None)
        .await;
    assert_error(&r, 400, "invalid_id");
    let r = s
        .client
        .post(
            &s.url(&format!("/v1/files/{ten}/hydrate")),
            Some(ALPHA),
            None,
        )
        .await;
    assert_error(&r, 400, "invalid_id");
    let r = s.client.get(&s.url(&format!("/{ten}")), None).await;
    assert_error(&r, 404, "not_found");
    assert_eq!(s.sim.stats().total_requests, 0);
    // A long pass-through path is the upstream's to judge; still a 4xx.
    let r = s
        .client
        .get(&s.url(&format!("/v1/{ten}")), Some(ALPHA))
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    // Raw, with a 10 KB path of percent-encoded junk.
    let junk = "%ff".repeat(3500);
    let reply = raw_exchange(
        s.hydrant.addr,
        format!("GET /files/{junk}/redirect HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert_eq!(status_of(&reply), 400);
    assert_alive(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn unknown_rendition_is_400() {
    let s = Stack::start(ServeArgs::default()).await;
    for q in ["poster", "", "DOWNLOAD%00", "download%20"] {
        let r = s
            .client
            .get(&s.url(&format!("/files/x/redirect?rendition={q}")), None)
            .await;
        assert_error(&r, 400, "invalid_parameters");
    }
    let r = s
        .client
        .get(
            &s.url(&format!("/files/{READY}/redirect?rendition=poster")),
            None,
        )
        .await;
    assert_error(&r, 400, "invalid_parameters");
    assert_eq!(s.sim.stats().hydrate_calls, 0);
    s.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let s = Stack::start(ServeArgs::default()).await;
    for p in [
        "/",
        "/nope",
        "/files",
        "/files/x/other",
        "/files/x/redirect/more",
        "/v2/files",
        "/healthz/x",
        "/admin",
        "/favicon.ico",
    ] {
        let r = s.client.get(&s.url(p), None).await;
        assert_error(&r, 404, "not_found");
    }
    assert_eq!(s.sim.stats().total_requests, 0);
    s.stop().await;
}

#[tokio::test]
async fn wrong_methods_are_json_405() {
    let s = Stack::start(ServeArgs::default()).await;
    for (m, p) in [
        (Method::POST, "/files/x"),
        (Method::PUT, "/files/x"),
        (Method::DELETE, "/files/x/redirect"),
        (Method::POST, "/files/x/redirect"),
        (Method::POST, "/healthz"),
        (Method::DELETE, "/metrics"),
        (Method::GET, "/webhooks/videogen"),
        (Method::GET, "/admin/files/x"),
    ] {
        let r = s.client.send(m.clone(), &s.url(p), None, None).await;
        assert_error(&r, 405, "method_not_allowed");
    }
    assert_eq!(s.sim.stats().total_requests, 0);
    s.stop().await;
}

/// RFC 9110 §15.5.6: a 405 response MUST carry `Allow`.
#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods() {
    let s = Stack::start(ServeArgs::default()).await;
    let r = s.client.post(&s.url("/files/x"), None, None).await;
    assert_eq!(r.status, 405);
    let allow = r.header("allow").expect("Allow header on 405");
    assert!(allow.contains("GET") && allow.contains("HEAD"), "{allow}");
    s.stop().await;
}

#[tokio::test]
async fn garbage_from_upstream_is_502_and_serving_continues() {
    let s = Stack::start(ServeArgs::default()).await;
    s.sim.push_fault(fault(FaultKind::Malformed));
    let r = s
        .client
        .get(&s.url(&format!("/files/{READY}/redirect")), None)
        .await;
    assert_eq!(r.status, 502, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert!(
        v["code"]
            .as_str()
            .is_some_and(|c| c.starts_with("upstream_")),
        "{v}"
    );
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(r.header("location").is_none());
    // The garbage was not cached: the next request hydrates again and redirects.
    let r = s
        .client
        .get(&s.url(&format!("/files/{READY}/redirect")), None)
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(s.sim.hydrate_calls(READY), 2);
    // The JSON view fails the same way, and recovers the same way.
    s.sim.push_fault(fault(FaultKind::Malformed));
    let r = s
        .client
        .get(&s.url(&format!("/files/{PARTIAL}")), None)
        .await;
    assert_eq!(r.status, 502);
    assert!(r.json()["code"].is_string());
    let r = s
        .client
        .get(&s.url(&format!("/files/{PARTIAL}")), None)
        .await;
    assert_eq!(r.status, 200);
    assert_alive(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn errors_do_not_echo_the_input() {
    // An error message never reflects the request's path, query or headers.
    let s = Stack::start(ServeArgs::default()).await;
    let marker = "zz_marker_7c1";
    let t = Instant::now();
    for p in [
        format!("/files/{marker}%3C/redirect"),
        format!("/files/x/redirect?rendition={marker}"),
        format!("/{marker}"),
    ] {
        let r = s.client.get(&s.url(&p), None).await;
        assert!(r.status.is_client_error());
        assert!(
            !String::from_utf8_lossy(&r.body).contains(marker),
            "{:?}",
            r.body
        );
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    s.stop().await;
}
