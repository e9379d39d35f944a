//! Liveness, readiness, graceful drain (in-flight requests finish, new connections are
//! refused, the drain timeout bounds shutdown) and the Prometheus endpoint.

use std::time::{Duration, Instant};

use http::{Method, Request};
use http_body_util::BodyExt;
use hydrant::config::ServeArgs;
use hydrant::sim::FaultKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// `/readyz` through the router, in process (a draining server accepts no new connections).
async fn readyz_in_process(app: &std::sync::Arc<hydrant::app::App>) -> u16 {
    let req = Request::get("/readyz")
        .body(hydrant::body::empty())
        .unwrap();
    hydrant::routes::handle(app, req)
        .await
        .response
        .status()
        .as_u16()
}

#[tokio::test]
async fn healthz_and_readyz_answer_without_the_upstream() {
    // A dead upstream: liveness and readiness must not depend on it.
    let dead = fake_upstream::refused_addr();
    let s = Stack::start(ServeArgs {
        upstream: Some(format!("http://{dead}")),
        ..ServeArgs::default()
    })
    .await;
    let r = s.client.get(&s.url("/healthz"), None).await;
    assert_eq!(r.status, 200);
    assert!(r.header("x-request-id").is_some());
    let r = s.client.get(&s.url("/readyz"), None).await;
    assert_eq!(r.status, 200);
    let r = s
        .client
        .send(Method::HEAD, &s.url("/healthz"), None, None)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let r = s
        .client
        .send(Method::HEAD, &s.url("/readyz"), None, None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(readyz_in_process(&s.app).await, 200);
    s.stop().await;
}

#[tokio::test]
async fn drain_finishes_in_flight_requests_and_refuses_new_connections() {
    let s = Stack::start(ServeArgs::default()).await;
    let Stack {
        sim,
        hydrant,
        app,
        client,
    } = s;
    let addr = hydrant.addr;
    let base = hydrant.url();
    // An idle keep-alive connection, used once before the drain.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    sim.push_fault(me_fault(FaultKind::Latency(Duration::from_millis(1500)), 2));
    let c = client.clone();
    let url = format!("{base}/v1/me");
    let in_flight = tokio::spawn(async move { c.get(&url, Some(ALPHA)).await });
    // A second one over HTTP/2 (h2c): its stream must finish too.
    let h2 = h2c_client();
    let req = get_with_bearer(&format!("{base}/v1/me"), ALPHA);
    let in_flight_h2 = tokio::spawn(async move {
        let resp = h2.request(req).await.expect("h2 response");
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("h2 body")
            .to_bytes();
        (status, body)
    });
    assert!(
        eventually(Duration::from_secs(3), || sim.stats().total_requests >= 2).await,
        "the slow requests reached the upstream"
    );
    let t = Instant::now();
    let stopping = tokio::spawn(hydrant.stop());
    assert!(eventually(Duration::from_secs(2), || app.is_draining()).await);
    assert_eq!(
        readyz_in_process(&app).await,
        503,
        "not ready while draining"
    );

    // New connections are refused once draining began.
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "listener closed while draining");

    // The idle keep-alive connection is closed rather than left open.
    let n = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut buf))
        .await
        .expect("idle connection closed promptly")
        .unwrap_or(0);
    assert_eq!(n, 0);

    // The in-flight request completes normally.
    let r = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["name"], "Alpha Studio");
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), in_flight_h2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(&body[..], &r.body[..]);
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("stop returns once drained")
        .unwrap()
        .unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1000),
        "stop waited for the in-flight request: {took:?}"
    );
    sim.shutdown();
}

#[tokio::test]
async fn drain_timeout_bounds_shutdown() {
    let s = Stack::start(ServeArgs {
        drain_timeout: Some("1s".into()),
        ..ServeArgs::default()
    })
    .await;
    s.sim.push_fault(me_fault(FaultKind::Hang, 1));
    // A client whose failure does not panic: the hung request never gets an answer.
    let client = hyper_client();
    let req = get_with_bearer(&s.url("/v1/me"), ALPHA);
    let hung = tokio::spawn(async move {
        match client.request(req).await {
            Ok(resp) => Some(resp.status().as_u16()),
            Err(_) => None,
        }
    });
    let sim = s.sim.clone();
    assert!(eventually(Duration::from_secs(3), || sim.stats().total_requests >= 1).await);
    let t = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(3), s.hydrant.stop()).await;
    let took = t.elapsed();
    assert!(stopped.is_ok(), "stop() returned within 3 s");
    assert!(
        took >= Duration::from_millis(900),
        "stop() waited for the drain timeout: {took:?}"
    );
    assert!(s.app.is_draining());
    s.sim.shutdown();
    hung.abort();
}

#[tokio::test]
async fn metrics_are_prometheus_text_without_secrets() {
    let client_token = "ctok_metrics_secret_41";
    let signing_key = "sk_metrics_secret_42";
    let s = Stack::start(ServeArgs {
        client_tokens: Some(client_token.into()),
        signing_keys: Some(signing_key.into()),
        admin_token: Some("adm_metrics_secret_43".into()),
        ..ServeArgs::default()
    })
    .await;
    let signer = hydrant::signing::Signer::new(vec![signing_key.into()]).unwrap();
    let exp = hydrant::clock::now_unix() as u64 + 600;
    let sig = signer.sign(READY, exp);
    let r = s
        .client
        .get(
            &s.url(&format!("/files/{READY}/redirect?exp={exp}&sig={sig}")),
            None,
        )
        .await;
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap().to_string();
    let r = s
        .client
        .get(&s.url(&format!("/files/{READY}/redirect")), None)
        .await;
    assert_eq!(r.status, 403);
    for bearer in [client_token, ALPHA] {
        let r = s.client.get(&s.url("/v1/me"), Some(bearer)).await;
        assert_eq!(r.status, 200);
    }
    let r = s
        .client
        .post(
            &s.url(&format!("/v1/files/{READY}/hydrate")),
            Some(client_token),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(s.client.get(&s.url("/v1/me"), None).await.status, 401);
    assert_eq!(s.client.get(&s.url("/nope"), None).await.status, 404);
    let r = s
        .client
        .send(
            Method::DELETE,
            &s.url(&format!("/admin/files/{READY}")),
            Some("adm_metrics_secret_43"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);

    let m = s.client.get(&s.url("/metrics"), None).await;
    assert_eq!(m.status, 200);
    let ct = m.header("content-type").unwrap();
    assert!(ct.contains("text"), "{ct}");
    let text = String::from_utf8(m.body.to_vec()).unwrap();
    let total = "hydrant_http_requests_total";
    assert!(
        text.contains("# TYPE hydrant_http_requests counter"),
        "{text}"
    );
    let v = |labels: &[(&str, &str)]| metric(&text, total, labels);
    assert_eq!(
        v(&[("route", "redirect"), ("status", "302")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(v(&[("route", "redirect"), ("status", "403")]), Some(1.0));
    assert_eq!(v(&[("route", "passthrough"), ("status", "200")]), Some(2.0));
    assert_eq!(v(&[("route", "passthrough"), ("status", "401")]), Some(1.0));
    assert_eq!(v(&[("route", "hydrate"), ("status", "200")]), Some(1.0));
    assert_eq!(v(&[("route", "unknown"), ("status", "404")]), Some(1.0));
    assert_eq!(v(&[("route", "admin"), ("status", "200")]), Some(1.0));
    assert!(text.contains("hydrant_http_request_duration_seconds"));
    assert!(text.contains("hydrant_cache_lookups_total"));
    assert!(text.contains("hydrant_upstream_requests_total"));

    for secret in [
        ALPHA,
        client_token,
        signing_key,
        "adm_metrics_secret_43",
        sig.as_str(),
        READY,
        "Bearer",
        "X-Amz-Signature",
    ] {
        assert!(!text.contains(secret), "metrics leak {secret:?}");
    }
    let amz_sig = location
        .split("X-Amz-Signature=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(!text.contains(amz_sig));

    // The scrape itself is counted on the next one.
    let m2 = s.client.get(&s.url("/metrics"), None).await;
    let text2 = String::from_utf8(m2.body.to_vec()).unwrap();
    assert!(metric(&text2, total, &[("route", "ops"), ("status", "200")]).unwrap_or(0.0) >= 1.0);
    s.stop().await;
}
