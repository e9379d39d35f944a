//! The `/v1/...` gateway when the upstream fails: an upstream error status passes through
//! unchanged and is not retried; a dropped connection, a refused connection or a response
//! that is not HTTP is a JSON 502 of hydrant's own; a hang is a 504 once `upstream_timeout`
//! has passed; a truncated body never reaches the client as a complete response. After a
//! one-off fault the next call is served normally.

use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hydrant::config::ServeArgs;
use hydrant::sim::FaultKind;

use crate::common::fake_upstream::{raw_upstream, refused_addr};
use crate::common::*;

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
