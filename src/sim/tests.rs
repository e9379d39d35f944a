//! HTTP-level tests of the simulator on 127.0.0.1:0 with hyper-util's client.

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// Named, not globbed: a glob would bring in `sim::http`, which shadows the `http` crate.
use super::{
    clock, start, webhook, DeliveryReport, Fault, FaultKind, FaultRoute, FileSpec, SimConfig,
    SimHandle,
};

const ALPHA: &str = "vg_sim_key_alpha";
const BETA: &str = "vg_sim_key_beta";

struct Sim {
    h: SimHandle,
    client: Client<HttpConnector, Full<Bytes>>,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn sim_with(cfg: SimConfig) -> Sim {
    let h = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http();
    Sim { h, client }
}

async fn sim() -> Sim {
    sim_with(SimConfig::default()).await
}

impl Sim {
    async fn try_call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Result<Answer, String> {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.h.base_url(), path)
        };
        let mut b = Request::builder().method(method).uri(url);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        let body = body.map(|v| Bytes::from(v.to_string())).unwrap_or_default();
        let req = b.body(Full::new(body)).unwrap();
        let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(Answer {
            status,
            headers,
            body: body.to_bytes(),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        self.try_call(method, path, key, body).await.unwrap()
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, Some(ALPHA), None).await
    }

    async fn post(&self, path: &str, body: Option<Value>) -> Answer {
        self.call(Method::POST, path, Some(ALPHA), body).await
    }
}

fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "body: {:?}", a.body);
    let v = a.json();
    assert_eq!(v["code"], code);
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(a
        .header("x-request-id")
        .is_some_and(|r| r.starts_with("req_")));
}

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
async fn get_has_no_urls_hydrate_has_fresh_ones() {
    let s = sim().await;
    let g = s.get("/v1/files/vg_file_alpha_0001").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.header("content-type"), Some("application/json"));
    let v = g.json();
    for r in ["download", "preview", "thumbnail", "hls"] {
        let src = &v[format!("{r}Source")];
        assert_eq!(src["status"], "ready");
        assert!(src.get("url").is_none() && src.get("expiresAt").is_none());
    }
    assert!(v.get("downloadUrl").is_none() && v.get("thumbnailUrl").is_none());
    assert_eq!(v["scope"], "GLOBAL");
    assert_eq!(v["staticPublicPreviewSource"], Value::Null);

    let before = clock::now_f64();
    let h1 = s.post("/v1/files/vg_file_alpha_0001/hydrate", None).await;
    let h2 = s.post("/v1/files/vg_file_alpha_0001/hydrate", None).await;
    assert_eq!(h1.status, 200);
    assert!(
        (1000..2600).contains(&h1.body.len()),
        "hydrated body is {} bytes",
        h1.body.len()
    );
    assert_ne!(h1.header("x-request-id"), h2.header("x-request-id"));
    let (v1, v2) = (h1.json(), h2.json());
    for r in ["download", "preview", "thumbnail", "hls"] {
        let (a, b) = (&v1[format!("{r}Source")], &v2[format!("{r}Source")]);
        let url = a["url"].as_str().unwrap();
        assert!(url.starts_with(&format!(
            "{}/cdn/vg_file_alpha_0001/{r}?X-Amz-Algorithm=AWS4-HMAC-SHA256",
            s.h.base_url()
        )));
        assert!(
            url.contains("&X-Amz-Date=")
                && url.contains("&X-Amz-Expires=")
                && url.contains("&X-Amz-Signature=")
        );
        assert_ne!(a["url"], b["url"]);
        let exp = a["expiresAt"].as_f64().unwrap();
        assert!(exp >= before + 3599.0 && exp <= clock::now_f64() + 3601.0);
    }
    assert_eq!(v1["downloadUrl"], v1["downloadSource"]["url"]);
    assert_eq!(
        v1["thumbnailUrlExpiresAt"],
        v1["thumbnailSource"]["expiresAt"]
    );
    assert_eq!(v1["downloadSource"]["width"], 1920);
    assert_eq!(s.h.hydrate_calls("vg_file_alpha_0001"), 2);
    assert_eq!(s.h.stats().hydrate_calls, 2);
    assert_eq!(s.h.stats().get_file_calls, 1);
    assert_eq!(s.h.stats().by_route["POST /v1/files/{id}/hydrate"], 2);

    let p = s
        .post("/v1/files/vg_file_alpha_0002/hydrate", None)
        .await
        .json();
    assert_eq!(p["previewSource"], json!({"status": "pending"}));
    let f = s
        .post("/v1/files/vg_file_alpha_0003/hydrate", None)
        .await
        .json();
    assert_eq!(
        f["hlsSource"],
        json!({"status": "skipped", "url": "", "expiresAt": 0})
    );
    assert_eq!(f["downloadSource"], json!({"status": "failed"}));
    assert_eq!(f["downloadUrl"], Value::Null);
    let i = s.get("/v1/files/vg_file_alpha_0004").await.json();
    assert_eq!(i["type"], "IMAGE");
    assert_eq!(i["isPublicPreviewEnabled"], true);
    assert_eq!(i["staticPublicPreviewSource"]["status"], "ready");
    assert_eq!(i["staticPublicPreviewSource"]["expiresAt"], Value::Null);
    assert!(i["staticPublicPreviewSource"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/cdn/public/vg_file_alpha_0004"));

    // Runtime changes.
    assert!(s.h.set_status("vg_file_alpha_0002", "preview", "ready"));
    assert!(!s.h.set_status("vg_file_alpha_0002", "preview", "bogus"));
    s.h.set_url_lifetime(Duration::from_secs(60));
    let p = s
        .post("/v1/files/vg_file_alpha_0002/hydrate", None)
        .await
        .json();
    let exp = p["previewSource"]["expiresAt"].as_f64().unwrap();
    assert!(exp < clock::now_f64() + 61.0);
    let id = s.h.create_file(
        ALPHA,
        FileSpec {
            file_type: "AUDIO".into(),
            display_name: "Podcast".into(),
            ..FileSpec::default()
        },
    );
    assert_eq!(id, "vg_file_alpha_0021");
    assert_eq!(
        s.get(&format!("/v1/files/{id}")).await.json()["type"],
        "AUDIO"
    );
    assert_eq!(s.h.create_file("vg_unknown", FileSpec::default()), "");
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
async fn cdn_checks_signatures_and_expiry() {
    let s = sim().await;
    let v = s
        .post("/v1/files/vg_file_alpha_0001/hydrate", None)
        .await
        .json();
    let url = v["downloadSource"]["url"].as_str().unwrap().to_string();
    let ok = s.call(Method::GET, &url, None, None).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("content-type"), Some("video/mp4"));
    assert_eq!(
        ok.body.len() as u64,
        v["downloadSource"]["fileBytes"].as_u64().unwrap()
    );
    assert_eq!(ok.body, s.call(Method::GET, &url, None, None).await.body);
    let thumb = v["thumbnailSource"]["url"].as_str().unwrap();
    assert_eq!(
        s.call(Method::GET, thumb, None, None)
            .await
            .header("content-type"),
        Some("image/jpeg")
    );

    // Tampered: flip one hex digit of the signature.
    let mut bad = url.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    assert_error(
        &s.call(Method::GET, &bad, None, None).await,
        403,
        "forbidden",
    );
    // Signed for another rendition.
    let swapped = url.replace("/download?", "/preview?");
    assert_eq!(s.call(Method::GET, &swapped, None, None).await.status, 403);
    // Expired: a correctly signed URL whose window ended.
    let expired = s.h.shared.signer.url(
        &s.h.base_url(),
        "vg_file_alpha_0001",
        "download",
        "SIMTEST",
        clock::now_secs() - 7200,
        3600,
    );
    assert_error(
        &s.call(Method::GET, &expired, None, None).await,
        403,
        "forbidden",
    );
    // Missing parameters.
    let bare = format!("{}/cdn/vg_file_alpha_0001/download", s.h.base_url());
    assert_eq!(s.call(Method::GET, &bare, None, None).await.status, 403);

    // Public preview: no signature needed, only where enabled.
    let p = s.get("/cdn/public/vg_file_alpha_0004").await;
    assert_eq!(p.status, 200);
    assert_eq!(p.header("content-type"), Some("image/webp"));
    assert_eq!(s.get("/cdn/public/vg_file_alpha_0001").await.status, 404);
    assert_eq!(
        s.post("/v1/files/vg_file_alpha_0001/enable-public-preview", None)
            .await
            .json()["isPublicPreviewEnabled"],
        true
    );
    assert_eq!(s.get("/cdn/public/vg_file_alpha_0001").await.status, 200);
    s.post("/v1/files/vg_file_alpha_0001/disable-public-preview", None)
        .await;
    assert_eq!(s.get("/cdn/public/vg_file_alpha_0001").await.status, 404);
    assert_eq!(s.h.stats().cdn_calls, 11);
}

#[tokio::test]
async fn list_paging_search_and_archive() {
    let s = sim().await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/files?limit=7&cursor={c}"),
            None => "/v1/files?limit=7".to_string(),
        };
        let v = s.get(&path).await.json();
        pages += 1;
        for f in v["files"].as_array().unwrap() {
            assert!(
                f["downloadSource"].get("url").is_some()
                    || f["downloadSource"]["status"] != "ready"
            );
            seen.push(f["fileId"].as_str().unwrap().to_string());
        }
        if v["hasMore"] == false {
            assert_eq!(v["nextCursor"], Value::Null);
            break;
        }
        cursor = Some(v["nextCursor"].as_str().unwrap().to_string());
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 20);
    assert_eq!(seen[0], "vg_file_alpha_0001");
    assert_eq!(seen[19], "vg_file_alpha_0020");
    assert_error(
        &s.get("/v1/files?cursor=bogus").await,
        400,
        "invalid_parameters",
    );
    assert_error(&s.get("/v1/files?limit=0").await, 400, "invalid_parameters");
    assert_error(
        &s.get("/v1/files?limit=201").await,
        400,
        "invalid_parameters",
    );

    let r = s
        .post("/v1/files/search", Some(json!({"query": "intro"})))
        .await
        .json();
    let results = r["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for hit in results {
        assert!(hit["file"]["displayName"]
            .as_str()
            .unwrap()
            .contains("Intro"));
        assert!(hit["similarity"].as_f64().unwrap() > 0.0);
    }
    let all = s
        .post(
            "/v1/files/search",
            Some(json!({"query": "", "numResults": 100, "selfOnly": true})),
        )
        .await
        .json();
    assert_eq!(all["results"].as_array().unwrap().len(), 20);

    let a = s.post("/v1/files/vg_file_alpha_0005/archive", None).await;
    assert_eq!(a.status, 200);
    assert_eq!(s.get("/v1/files/vg_file_alpha_0005").await.status, 404);
    assert_eq!(
        s.post("/v1/files/vg_file_alpha_0005/hydrate", None)
            .await
            .status,
        404
    );
    assert_eq!(
        s.get("/v1/files?limit=200").await.json()["files"]
            .as_array()
            .unwrap()
            .len(),
        19
    );
    let st = s.h.stats();
    assert_eq!((st.list_files_calls, st.search_calls), (7, 2));
}

#[tokio::test]
async fn tool_execution_pending_then_succeeded() {
    let s = sim().await;
    let started = s
        .post(
            "/v1/tools/generate-image",
            Some(json!({"prompt": "A red fox"})),
        )
        .await;
    assert_eq!(started.status, 202);
    let sv = started.json();
    assert_eq!(sv["status"], "pending");
    let id = sv["toolExecutionId"].as_str().unwrap().to_string();
    assert!(id.starts_with("vg_exec_"));
    let path = format!("/v1/tools/executions/{id}");
    let first = s.get(&path).await.json();
    assert_eq!(first["status"], "pending");
    let done = s.get(&path).await.json();
    assert_eq!(done["status"], "succeeded");
    let r = &done["results"][0];
    let fid = r["fileId"].as_str().unwrap();
    assert_eq!(r["type"], "IMAGE");
    assert_eq!(r["file"]["displayName"], "A red fox");
    assert_eq!(r["file"]["sourceToolExecutionId"], id.as_str());
    assert!(r["downloadUrl"]
        .as_str()
        .unwrap()
        .contains("X-Amz-Signature="));
    assert_eq!(r["downloadUrl"], r["file"]["downloadSource"]["url"]);
    assert!(r["thumbnailUrlExpiresAt"].as_f64().is_some());
    assert_eq!(s.get(&format!("/v1/files/{fid}")).await.status, 200);
    // Same output on later polls.
    assert_eq!(s.get(&path).await.json()["results"][0]["fileId"], fid);
    // Other accounts cannot see it.
    assert_eq!(
        s.call(Method::GET, &path, Some(BETA), None).await.status,
        404
    );
    let list = s.get("/v1/tools/executions").await.json();
    assert_eq!(list["executions"][0]["toolExecutionId"], id.as_str());
    assert_eq!(
        s.post("/v1/tools/not-a-tool", Some(json!({}))).await.status,
        404
    );
    let st = s.h.stats();
    assert_eq!((st.tool_calls, st.execution_get_calls), (1, 4));
}

/// A local receiver that answers 500 to the first `fail` requests, then 204, and records
/// what it got.
async fn receiver(fail: u32) -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(AtomicU32::new(0));
    let got2 = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (got, seen) = (got2.clone(), seen.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (got, seen) = (got.clone(), seen.clone());
                    async move {
                        let headers = req.headers().clone();
                        let body = req.into_body().collect().await?.to_bytes();
                        got.lock().unwrap().push((headers, body));
                        let n = seen.fetch_add(1, Ordering::SeqCst);
                        let status = if n < fail { 500 } else { 204 };
                        let mut r = hyper::Response::new(Full::new(Bytes::new()));
                        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                        Ok::<_, hyper::Error>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (url, got)
}

#[tokio::test]
async fn webhook_delivery_retries_until_2xx() {
    let s = sim_with(SimConfig {
        webhook_secret: Some("whsec_aHlkcmFudC1zaW0tdGVzdC1zZWNyZXQ=".into()),
        ..SimConfig::default()
    })
    .await;
    let (url, got) = receiver(2).await;
    let event =
        s.h.file_event("file.playback_ready", "vg_file_alpha_0001")
            .unwrap();
    assert_eq!(event["fileId"], "vg_file_alpha_0001");
    assert!(event["file"]["downloadSource"]["url"].is_string());
    let t = Instant::now();
    let report =
        s.h.deliver_webhook(&url, "", event.clone(), 5, Duration::from_millis(20))
            .await;
    assert_eq!(
        report,
        DeliveryReport {
            attempts: 3,
            delivered: true,
            last_status: Some(204)
        }
    );
    assert!(t.elapsed() >= Duration::from_millis(60)); // 20 + 40 ms of backoff
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    let key = webhook::decode_secret("whsec_aHlkcmFudC1zaW0tdGVzdC1zZWNyZXQ=");
    let first_id = got[0].0["webhook-id"].to_str().unwrap().to_string();
    assert!(first_id.starts_with("msg_"));
    for (h, body) in &got {
        let id = h["webhook-id"].to_str().unwrap();
        assert_eq!(id, first_id);
        let ts: u64 = h["webhook-timestamp"].to_str().unwrap().parse().unwrap();
        assert!(ts.abs_diff(clock::now_secs()) < 5);
        assert_eq!(
            h["webhook-signature"].to_str().unwrap(),
            webhook::sign(&key, id, ts, body)
        );
        assert_eq!(serde_json::from_slice::<Value>(body).unwrap(), event);
    }

    // Gives up after max_attempts; nothing listening → no status.
    let (url, _) = receiver(10).await;
    let r =
        s.h.deliver_webhook(&url, "whsec_AAAA", json!({}), 2, Duration::from_millis(1))
            .await;
    assert_eq!(
        (r.attempts, r.delivered, r.last_status),
        (2, false, Some(500))
    );
    let r =
        s.h.deliver_webhook(
            "http://127.0.0.1:9/x",
            "",
            json!({}),
            1,
            Duration::from_millis(1),
        )
        .await;
    assert_eq!((r.attempts, r.delivered, r.last_status), (1, false, None));

    // Control plane form.
    let (url, got) = receiver(0).await;
    let c = s
        .call(
            Method::POST,
            "/_sim/webhooks",
            None,
            Some(
                json!({"url": url, "event": "file.download_ready", "fileId": "vg_file_alpha_0003"}),
            ),
        )
        .await;
    assert_eq!(
        c.json(),
        json!({"attempts": 1, "delivered": true, "lastStatus": 204})
    );
    let body: Value = serde_json::from_slice(&got.lock().unwrap()[0].1).unwrap();
    assert_eq!(body["event"], "file.download_ready");
    assert_eq!(body["file"]["fileId"], "vg_file_alpha_0003");
}

#[tokio::test]
async fn control_plane() {
    let s = sim().await;
    s.post("/v1/files/vg_file_alpha_0001/hydrate", None).await;
    let st = s.call(Method::GET, "/_sim/stats", None, None).await.json();
    assert_eq!(st["hydrateCalls"], 1);
    assert_eq!(st["totalRequests"], 1);
    assert_eq!(st["byFile"]["vg_file_alpha_0001"], 1);
    assert_eq!(st["byRoute"]["POST /v1/files/{id}/hydrate"], 1);
    let f = s
        .call(
            Method::POST,
            "/_sim/files",
            None,
            Some(
                json!({"apiKey": BETA, "type": "VIDEO", "displayName": "Staged",
                        "statuses": {"download": "pending"}, "publicPreview": true}),
            ),
        )
        .await;
    assert_eq!(f.status, 201);
    let fv = f.json();
    assert_eq!(fv["fileId"], "vg_file_beta_0006");
    assert_eq!(fv["downloadSource"]["status"], "pending");
    let c = s
        .call(
            Method::POST,
            "/_sim/url-lifetime",
            None,
            Some(json!({"seconds": 30})),
        )
        .await;
    assert_eq!(c.status, 200);
    let h = s
        .post("/v1/files/vg_file_alpha_0001/hydrate", None)
        .await
        .json();
    assert!(h["downloadSource"]["expiresAt"].as_f64().unwrap() < clock::now_f64() + 31.0);
    let c = s
        .call(
            Method::POST,
            "/_sim/status",
            None,
            Some(json!({"fileId": "vg_file_alpha_0001", "rendition": "hls", "status": "failed"})),
        )
        .await;
    assert_eq!(c.status, 200);
    assert_eq!(
        s.get("/v1/files/vg_file_alpha_0001").await.json()["hlsSource"]["status"],
        "failed"
    );
    s.call(
        Method::POST,
        "/_sim/quota",
        None,
        Some(json!({"hydrate": 0})),
    )
    .await;
    assert_eq!(
        s.post("/v1/files/vg_file_alpha_0001/hydrate", None)
            .await
            .status,
        429
    );
    s.call(Method::POST, "/_sim/reset", None, None).await;
    let st = s.h.stats();
    assert_eq!((st.total_requests, st.hydrate_calls), (0, 0));
    assert_eq!(s.h.hydrate_calls("vg_file_alpha_0001"), 0);
    let accts = s
        .call(Method::GET, "/_sim/accounts", None, None)
        .await
        .json();
    assert_eq!(accts[0]["apiKey"], ALPHA);
    assert_eq!(
        s.call(Method::GET, "/_sim/nope", None, None).await.status,
        404
    );
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let s = sim().await;
    assert_eq!(s.get("/v1/me").await.status, 200);
    s.h.shutdown();
    s.h.shutdown();
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(s.h.addr()).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused);
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
