//! A hostile upstream, on the routes hydrant interprets (`POST /v1/files/{id}/hydrate`,
//! `/files/{id}/redirect`, `GET /files/{id}`) and on the `/v1` pass-through: a response body
//! that never ends is a `504` once `upstream_timeout` has passed (a hydrate's body is read
//! within the same bound as its head); a response head over 64 KiB (or with too many
//! fields), a malformed chunked body and a truncated body are a `502`; none of them is
//! cached, so the next request asks the upstream again. A priming route's buffered body
//! gets `upstream_timeout` again after its head. On the pass-through, whose head has
//! already gone out, a body broken mid-stream ends the client's response abnormally.
//! (Location poisoning is in `redirect_safety`.)

use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hydrant::config::ServeArgs;

use crate::common::raw_http::{reply, CaptureUpstream, Then};
use crate::common::*;

const FILE: &str = "vg_file_hostile";

/// A valid StorageFile body.
fn storage_file() -> String {
    let exp = wall_unix() + 3600.0;
    format!(
        r#"{{"fileId":"{FILE}","type":"VIDEO","downloadSource":{{"status":"ready","url":"https://cdn.example/d?sig=1","expiresAt":{exp}}}}}"#
    )
}

/// hydrant (upstream timeout 1 s) in front of an upstream that answers every request with
/// `answer` and then does `then`.
async fn stack(answer: Vec<u8>, then: Then) -> (CaptureUpstream, Stack) {
    let up = CaptureUpstream::start(move |_| (answer.clone(), then)).await;
    let s = Stack::start(ServeArgs {
        upstream: Some(up.url()),
        upstream_timeout: Some("1s".into()),
        ..ServeArgs::default()
    })
    .await;
    (up, s)
}

/// The interpreted routes, each asked for [`FILE`].
async fn each_route(s: &Stack) -> Vec<(&'static str, Resp)> {
    vec![
        ("hydrate", hydrate(s, FILE, "k1").await),
        ("redirect", redirect(s, FILE, "").await),
        (
            "json",
            s.client.get(&s.url(&format!("/files/{FILE}")), None).await,
        ),
    ]
}

/// Every interpreted route answers `status`/`code`, and asking again asks the upstream again
/// (nothing was cached, not even negatively).
async fn assert_refused_uncached(up: &CaptureUpstream, s: &Stack, status: u16, code: &str) {
    for round in 0..2 {
        for (route, r) in each_route(s).await {
            assert_eq!(r.status, status, "{route}: {:?}", r.body);
            assert_error(&r, status, code);
            assert!(r.header("location").is_none(), "{route}");
        }
        assert_eq!(
            up.matching(&format!("/v1/files/{FILE}/hydrate")).len(),
            3 * (round + 1),
            "every request went upstream"
        );
    }
}

#[tokio::test]
async fn a_body_that_never_ends_is_504_within_the_upstream_timeout_and_not_cached() {
    let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n";
    for tail in [
        &b"content-length: 1000\r\n\r\n{\"fileId\":"[..],
        b"transfer-encoding: chunked\r\n\r\n5\r\n{\"fil\r\n",
    ] {
        let (up, s) = stack([&head[..], tail].concat(), Then::Hold).await;
        for (route, r) in each_route(&s).await {
            assert_error(&r, 504, "upstream_timeout");
            assert!(r.header("location").is_none(), "{route}");
        }
        let t = Instant::now();
        let r = redirect(&s, FILE, "").await;
        let took = t.elapsed();
        assert_error(&r, 504, "upstream_timeout");
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(took < Duration::from_secs(5), "bounded: {took:?}");
        assert_eq!(up.matching("/v1/files/").len(), 4, "nothing cached");
        s.stop().await;
    }
}

#[tokio::test]
async fn a_body_that_trickles_is_504_within_the_upstream_timeout() {
    // A byte every 100 ms keeps the connection busy but never finishes: the timeout covers
    // the hydrate's whole exchange, not the gap between bytes.
    let answer =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{";
    let (up, s) = stack(answer.to_vec(), Then::Trickle).await;
    let t = Instant::now();
    for (route, r) in each_route(&s).await {
        assert_error(&r, 504, "upstream_timeout");
        assert!(r.header("location").is_none(), "{route}");
    }
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_eq!(up.matching("/v1/files/").len(), 3, "nothing cached");
    s.stop().await;
}

#[tokio::test]
async fn a_priming_body_that_never_ends_is_504() {
    // `GET /v1/files` buffers a small JSON answer to prime the cache; a head and then
    // silence is a 504 once `upstream_timeout` has passed again, not a request that hangs.
    let answer =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"files\":[";
    let (_up, s) = stack(answer.to_vec(), Then::Hold).await;
    let t = Instant::now();
    let r = s.client.get(&s.url("/v1/files"), Some("k1")).await;
    assert_error(&r, 504, "upstream_timeout");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(s.client.get(&s.url("/healthz"), None).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn an_oversized_response_head_is_502_and_not_cached() {
    let file = storage_file();
    let big = "a".repeat(100 * 1024);
    let (up, s) = stack(
        reply(200, &[("x-big", &big)], file.as_bytes()),
        Then::KeepAlive,
    )
    .await;
    assert_refused_uncached(&up, &s, 502, "upstream_invalid").await;
    let r = s.client.get(&s.url("/v1/things"), Some("k1")).await;
    assert_error(&r, 502, "upstream_invalid");
    s.stop().await;
    // Too many fields: hyper's own limit (100).
    let many: Vec<(String, String)> = (0..150).map(|i| (format!("x-f{i}"), "1".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (up, s) = stack(reply(200, &many, file.as_bytes()), Then::KeepAlive).await;
    assert_refused_uncached(&up, &s, 502, "upstream_unavailable").await;
    s.stop().await;
}

#[tokio::test]
async fn a_malformed_chunked_body_is_502_and_not_cached() {
    for body in [
        &b"zz\r\n{}\r\n0\r\n\r\n"[..],
        b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
        b"2\r\n{}XX0\r\n\r\n",
    ] {
        let answer = [
            &b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"[..],
            body,
        ]
        .concat();
        let (up, s) = stack(answer, Then::Close).await;
        assert_refused_uncached(&up, &s, 502, "upstream_unavailable").await;
        s.stop().await;
    }
}

#[tokio::test]
async fn a_truncated_body_is_502_and_not_cached() {
    let file = storage_file();
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
        file.len() + 50,
        file
    );
    let (up, s) = stack(answer.into_bytes(), Then::Close).await;
    assert_refused_uncached(&up, &s, 502, "upstream_unavailable").await;
    s.stop().await;
}

#[tokio::test]
async fn a_pass_through_body_broken_mid_stream_never_looks_complete() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"[..],
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhello",
    ] {
        let (_up, s) = stack(answer.to_vec(), Then::Close).await;
        let client = hyper_client();
        let resp = tokio::time::timeout(
            Duration::from_secs(5),
            client.request(get_with_bearer(&s.url("/v1/things"), "k1")),
        )
        .await
        .expect("a head or an error promptly");
        // The head may or may not have gone out before the break; either way the client
        // never sees a complete 200.
        if let Ok(resp) = resp {
            assert_eq!(resp.status(), 200);
            let body = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect())
                .await
                .expect("the body ends (in an error) promptly");
            assert!(
                body.is_err(),
                "{:?}: a broken body must not look complete",
                String::from_utf8_lossy(answer)
            );
        }
        assert_eq!(s.client.get(&s.url("/healthz"), None).await.status, 200);
        s.stop().await;
    }
}
