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
