//! The request pipeline: auth, ownership, rate limits, injected faults, and JSON errors for
//! odd input anywhere.

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use super::{assert_error, sim, sim_with, ALPHA, BETA};
use crate::sim::{clock, Fault, FaultKind, FaultRoute, SimConfig};

#[tokio::test]
async fn auth_errors_and_ownership() {
    let s = sim().await;
    let a = s
        .call(Method::GET, "/v1/files/vg_file_alpha_0001", None, None)
        .await;
    assert_error(&a, 401, "missing_api_key");
    let a = s
        .call(
            Method::GET,
            "/v1/files/vg_file_alpha_0001",
            Some("vg_nope"),
            None,
        )
        .await;
    assert_error(&a, 401, "invalid_api_key");
    let a = s
        .call(
            Method::GET,
            "/v1/files/vg_file_alpha_0001",
            Some(BETA),
            None,
        )
        .await;
    assert_error(&a, 404, "not_found");
    assert_eq!(
        s.call(Method::GET, "/v1/files/vg_file_beta_0001", Some(BETA), None)
            .await
            .status,
        200
    );
    assert_error(
        &s.get("/v1/files/bad%20id").await,
        400,
        "invalid_parameters",
    );
    assert_error(&s.get("/v1/nope").await, 404, "not_found");
    assert_error(
        &s.post("/v1/files/search", Some(json!([1]))).await,
        400,
        "invalid_request",
    );
    let me = s.get("/v1/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["name"], "Alpha Studio");
    assert_eq!(s.get("/v1/account").await.json()["name"], "Alpha Studio");
}

#[tokio::test]
async fn rate_limit_headers_and_429() {
    let s = sim_with(SimConfig {
        hydrate_quota_per_hour: 2,
        ..SimConfig::default()
    })
    .await;
    let now = clock::now_secs();
    let reset = (now - now % 3600 + 3600).to_string();
    let a = s.post("/v1/files/vg_file_alpha_0001/hydrate", None).await;
    assert_eq!(a.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(a.header("x-ratelimit-remaining"), Some("1"));
    assert_eq!(a.header("x-ratelimit-reset"), Some(reset.as_str()));
    let a = s.post("/v1/files/vg_file_alpha_0001/hydrate", None).await;
    assert_eq!(a.header("x-ratelimit-remaining"), Some("0"));
    let a = s.post("/v1/files/vg_file_alpha_0001/hydrate", None).await;
    assert_error(&a, 429, "rate_limited");
    assert_eq!(a.header("x-ratelimit-remaining"), Some("0"));
    let retry: u64 = a.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry));
    // Other groups and other keys are unaffected.
    let g = s.get("/v1/files/vg_file_alpha_0001").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.header("x-ratelimit-limit"), Some("50000"));
    let b = s
        .call(
            Method::POST,
            "/v1/files/vg_file_beta_0001/hydrate",
            Some(BETA),
            None,
        )
        .await;
    assert_eq!(b.status, 200);
    s.h.reset_rate_limits();
    assert_eq!(
        s.post("/v1/files/vg_file_alpha_0001/hydrate", None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn every_fault_kind() {
    let s = sim().await;
    let push = |route: FaultRoute, kind: FaultKind| {
        s.h.push_fault(Fault {
            route,
            kind,
            count: 1,
        });
    };
    let hyd = "/v1/files/vg_file_alpha_0001/hydrate";

    push(FaultRoute::Hydrate, FaultKind::Status(503));
    assert_eq!(s.get("/v1/files/vg_file_alpha_0001").await.status, 200);
    assert_error(&s.post(hyd, None).await, 503, "service_unavailable");
    assert_eq!(s.post(hyd, None).await.status, 200);

    push(
        FaultRoute::GetFile,
        FaultKind::RateLimited {
            retry_after: Some(7),
        },
    );
    let a = s.get("/v1/files/vg_file_alpha_0001").await;
    assert_error(&a, 429, "rate_limited");
    assert_eq!(a.header("retry-after"), Some("7"));
    assert_eq!(a.header("x-ratelimit-remaining"), Some("0"));

    push(FaultRoute::Any, FaultKind::InsufficientCredits);
    let a = s.post(hyd, None).await;
    assert_error(&a, 429, "insufficient_credits");
    assert!(a.header("retry-after").is_none());

    push(FaultRoute::Hydrate, FaultKind::Malformed);
    let a = s.post(hyd, None).await;
    assert_eq!(a.status, 200);
    assert!(serde_json::from_slice::<Value>(&a.body).is_err());

    push(FaultRoute::Other("/v1/me".into()), FaultKind::Drop);
    assert!(s
        .try_call(Method::GET, "/v1/me", Some(ALPHA), None)
        .await
        .is_err());
    assert_eq!(s.get("/v1/me").await.status, 200);

    push(
        FaultRoute::Hydrate,
        FaultKind::Latency(Duration::from_millis(150)),
    );
    let t = Instant::now();
    assert_eq!(s.post(hyd, None).await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));

    push(FaultRoute::Hydrate, FaultKind::Hang);
    let hung = tokio::time::timeout(Duration::from_millis(200), s.post(hyd, None)).await;
    assert!(hung.is_err());
    assert_eq!(s.post(hyd, None).await.status, 200);

    // Faulted requests are counted too (the hung one included).
    assert_eq!(s.h.hydrate_calls("vg_file_alpha_0001"), 7);

    // Control plane form.
    let c = s
        .call(
            Method::POST,
            "/_sim/faults",
            None,
            Some(json!({"route": "hydrate", "kind": "status", "status": 502, "count": 2})),
        )
        .await;
    assert_eq!(c.status, 200);
    assert_error(&s.post(hyd, None).await, 502, "bad_gateway");
    s.h.clear_faults();
    assert_eq!(s.post(hyd, None).await.status, 200);
    let c = s
        .call(
            Method::POST,
            "/_sim/faults",
            None,
            Some(json!({"kind": "explode"})),
        )
        .await;
    assert_error(&c, 400, "invalid_parameters");
}

#[tokio::test]
async fn odd_inputs_get_json_errors() {
    let s = sim().await;
    for (method, path, status) in [
        ("GET", "/v1/files/%ff", 400),
        ("POST", "/v1/files/%00/hydrate", 400),
        ("GET", "/v1/files?limit=abc&cursor=%00", 400),
        ("GET", "/v1/files?cursor=cur_", 400),
        ("BREW", "/v1/files", 404),
        ("GET", "/v1/tools/executions/vg_exec_missing", 404),
        ("POST", "/v1/tools/executions/vg_exec_missing/cancel", 404),
        ("DELETE", "/v1/webhooks/endpoints/nope", 404),
        ("GET", "/cdn/vg_file_alpha_0001/download?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x&X-Amz-Date=99999999T999999Z&X-Amz-Expires=1&X-Amz-Signature=zz", 403),
        ("GET", "/cdn/vg_file_alpha_0001/original?x=1", 404),
        ("GET", "/cdn/public/nope", 404),
        ("GET", "//v1//files", 404),
    ] {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let a = s.call(m, path, Some(ALPHA), None).await;
        assert_eq!(a.status, status, "{method} {path}: {:?}", a.body);
        assert!(a.json()["code"].is_string());
    }
    // Body too large, bad JSON, wrong JSON types.
    let big = json!({"query": "x".repeat(2 * 1024 * 1024)});
    assert_error(
        &s.post("/v1/files/search", Some(big)).await,
        413,
        "payload_too_large",
    );
    let bad = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/v1/tools/generate-image", s.h.base_url()))
        .header("authorization", format!("Bearer {ALPHA}"))
        .body(Full::new(Bytes::from_static(b"{not json")))
        .unwrap();
    let resp = s.client.request(bad).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_error(
        &s.post("/v1/files/search", Some(json!({"numResults": "many"})))
            .await,
        400,
        "invalid_parameters",
    );
    assert_error(
        &s.post("/v1/webhooks/endpoints", Some(json!({"url": 5})))
            .await,
        400,
        "invalid_parameters",
    );
    for body in [json!({"seconds": -1}), json!({"seconds": "x"}), json!(null)] {
        let c = s
            .call(Method::POST, "/_sim/url-lifetime", None, Some(body))
            .await;
        assert_eq!(c.status, 400);
    }
    let c = s
        .call(
            Method::POST,
            "/_sim/files",
            None,
            Some(json!({"apiKey": "nope"})),
        )
        .await;
    assert_error(&c, 400, "invalid_parameters");
    // HEAD on the CDN: headers only.
    let v = s
        .post("/v1/files/vg_file_alpha_0001/hydrate", None)
        .await
        .json();
    let head = s
        .call(
            Method::HEAD,
            v["hlsSource"]["url"].as_str().unwrap(),
            None,
            None,
        )
        .await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert!(head.body.is_empty());
    // Still serving.
    assert_eq!(s.get("/v1/me").await.status, 200);
}

/// A `slow_body` fault sends the head at once and the body in several frames spread over the
/// fault's duration; the body is the normal answer, and the hydrate is counted per account.
#[tokio::test]
async fn slow_body_trickles_the_normal_answer() {
    use http_body_util::BodyExt as _;
    let s = sim().await;
    s.h.push_fault(Fault {
        route: FaultRoute::Hydrate,
        kind: FaultKind::SlowBody(Duration::from_millis(400)),
        count: 1,
    });
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!(
            "{}/v1/files/vg_file_alpha_0001/hydrate",
            s.h.base_url()
        ))
        .header("authorization", format!("Bearer {ALPHA}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let started = Instant::now();
    let resp = s.client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut frames = 0;
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames += 1;
            bytes.extend_from_slice(&data);
        }
    }
    assert!(frames > 1, "one frame: not trickled");
    assert!(started.elapsed() >= Duration::from_millis(400));
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["fileId"], "vg_file_alpha_0001");
    assert_eq!(s.h.stats().hydrate_by_account.get("alpha"), Some(&1));
    // The fault is spent: the next answer is whole at once.
    assert_eq!(
        s.post("/v1/files/vg_file_alpha_0001/hydrate", None)
            .await
            .status,
        200
    );
    assert_eq!(s.h.stats().hydrate_by_account.get("alpha"), Some(&2));
}
