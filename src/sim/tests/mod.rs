//! HTTP-level tests of the simulator on 127.0.0.1:0 with hyper-util's client.

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::{start, SimConfig, SimHandle};

mod cdn;
mod control;
mod file_routes;
mod listing;
mod server;
mod service;
mod tools;
mod webhook;

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

    /// A request without a bearer token, with extra headers (CDN calls).
    async fn call_headers(&self, method: Method, url: &str, headers: &[(&str, &str)]) -> Answer {
        let mut b = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .client
            .request(b.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body,
        }
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
