//! Shared harness for integration tests: the simulator and hydrant on ephemeral loopback
//! ports, and a small HTTP client. Everything binds 127.0.0.1:0.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hydrant::app::App;
use hydrant::config::{Config, ServeArgs};
use hydrant::server::Running;
use hydrant::sim::{self, SimConfig, SimHandle};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// The simulator account hydrant uses as its own key.
pub const ALPHA: &str = "vg_sim_key_alpha";
/// A second simulator account.
pub const BETA: &str = "vg_sim_key_beta";
/// A fully ready seeded VIDEO of alpha.
pub const READY: &str = "vg_file_alpha_0001";
/// Preview pending.
pub const PENDING: &str = "vg_file_alpha_0002";
/// hls skipped, download failed.
pub const PARTIAL: &str = "vg_file_alpha_0003";
/// IMAGE with public preview.
pub const PUBLIC: &str = "vg_file_alpha_0004";

/// A simulator plus a hydrant in front of it.
pub struct Stack {
    pub sim: SimHandle,
    pub hydrant: Running,
    pub app: Arc<App>,
    pub client: HttpClient,
}

impl Stack {
    /// Simulator with defaults, hydrant with the proxy key `ALPHA` and `args` on top.
    pub async fn start(args: ServeArgs) -> Stack {
        Self::start_with(SimConfig::default(), args).await
    }

    /// Custom simulator config.
    pub async fn start_with(sim_cfg: SimConfig, args: ServeArgs) -> Stack {
        let sim = sim::start(sim_cfg, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("simulator starts");
        let args = ServeArgs {
            listen: Some(args.listen.unwrap_or_else(|| "127.0.0.1:0".into())),
            upstream: Some(args.upstream.clone().unwrap_or_else(|| sim.base_url())),
            api_key: args.api_key.clone().or_else(|| Some(ALPHA.into())),
            ..args
        };
        let config = Config::resolve(args).expect("valid config");
        let app = App::new(config).expect("app builds");
        let hydrant = Running::start(app.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .expect("hydrant starts");
        Stack {
            sim,
            hydrant,
            app,
            client: HttpClient::new(),
        }
    }

    /// Absolute URL on hydrant.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.hydrant.url(), path)
    }

    /// Absolute URL on the simulator.
    pub fn sim_url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }

    /// Stop both.
    pub async fn stop(self) {
        let _ = self.hydrant.stop().await;
        self.sim.shutdown();
    }
}

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A plain HTTP/1.1 client for tests (every request bounded by a 20 s timeout).
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    pub fn new() -> HttpClient {
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Send a request with optional bearer and body.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        bearer: Option<&str>,
        body: Option<&[u8]>,
    ) -> Resp {
        self.send_with(method, url, bearer, body, &[]).await
    }

    /// Send with extra headers.
    pub async fn send_with(
        &self,
        method: Method,
        url: &str,
        bearer: Option<&str>,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(url);
        if let Some(k) = bearer {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(Full::new(Bytes::copy_from_slice(body.unwrap_or(b""))))
            .unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(20), self.inner.request(req))
            .await
            .expect("request finished within 20 s")
            .expect("request succeeded");
        let (parts, body) = resp.into_parts();
        let body = tokio::time::timeout(Duration::from_secs(20), body.collect())
            .await
            .expect("body within 20 s")
            .expect("body read")
            .to_bytes();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, url: &str, bearer: Option<&str>) -> Resp {
        self.send(Method::GET, url, bearer, None).await
    }

    pub async fn post(&self, url: &str, bearer: Option<&str>, body: Option<&[u8]>) -> Resp {
        self.send(Method::POST, url, bearer, body).await
    }
}

// ---- added for cache.rs / redirect.rs: a scripted fake upstream ----

/// A loopback server standing in for VideoGen that answers every request with `status` and
/// exactly the bytes of `body` (as JSON). Returns its base URL and a count of requests served.
/// Lets tests control the upstream body byte for byte (odd formatting, unsafe URLs).
pub async fn fake_upstream(
    status: u16,
    body: String,
) -> (String, Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicU64::new(0));
    let body = Bytes::from(body);
    let counter = served.clone();
    // Ends with the test's runtime.
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (body, counter) = (body.clone(), counter.clone());
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let resp = hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(Full::new(body.clone()))
                            .unwrap();
                        async move { Ok::<_, std::convert::Infallible>(resp) }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), served)
}

// ---- added for cache.rs / cache_limits.rs / redirect.rs: timing windows ----

/// A timing-sensitive scenario missed its window because the machine stalled.
#[derive(Debug)]
pub struct Stalled;

/// `Err(Stalled)` once `deadline` has passed; checked after a time-critical response, so
/// the assertions that follow are only judged on runs that kept to their timing window.
pub fn before(deadline: tokio::time::Instant) -> Result<(), Stalled> {
    if tokio::time::Instant::now() < deadline {
        Ok(())
    } else {
        Err(Stalled)
    }
}

/// Runs a timing-sensitive scenario (a fresh stack each time) up to 3 times until one run
/// keeps to its timing windows; panics if none does. Its assertions always apply.
pub async fn retry_if_stalled<F, Fut>(mut scenario: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Stalled>>,
{
    for attempt in 1..=3 {
        if scenario().await.is_ok() {
            return;
        }
        eprintln!("attempt {attempt}: timing window missed (machine stalled), retrying");
    }
    panic!("timing window missed 3 times in a row");
}

// ---- shared by the cache tests (cache.rs, cache_limits.rs, redirect.rs) --------------------

/// `POST /v1/files/{id}/hydrate` through hydrant with `key`.
pub async fn hydrate(s: &Stack, id: &str, key: &str) -> Resp {
    s.client
        .post(&s.url(&format!("/v1/files/{id}/hydrate")), Some(key), None)
        .await
}

/// Polls `f` every 10 ms for at most `limit`.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

/// One fault on the next upstream hydrate.
pub fn fault(kind: hydrant::sim::FaultKind) -> hydrant::sim::Fault {
    hydrant::sim::Fault {
        route: hydrant::sim::FaultRoute::Hydrate,
        kind,
        count: 1,
    }
}

// ---- shared by gateway.rs and bad_input.rs ------------------------------------------------

/// A hydrant-built error: status, JSON `{"message","code"}`, and its own request id.
pub fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(
        r.status,
        status,
        "body: {:?}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    let v = r.json();
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(
        r.header("x-request-id")
            .is_some_and(|id| id.starts_with("hyd-")),
        "{:?}",
        r.headers
    );
}
