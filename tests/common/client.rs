//! Test clients: [`HttpClient`] for whole responses (it panics on a failed or slow request),
//! plain hyper clients for tests that look at a failure or a stream themselves, and the check
//! every hydrant-built error must pass.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

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

/// A raw hyper client (HTTP/1.1, no timeouts of its own): for requests whose failure, hang or
/// stream the test inspects itself rather than let [`HttpClient`] panic.
pub fn hyper_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A raw hyper client that speaks HTTP/2 only, in cleartext with prior knowledge (h2c).
pub fn h2c_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// `GET url` with `Authorization: Bearer {key}` and an empty body, for the raw clients.
pub fn get_with_bearer(url: &str, key: &str) -> Request<Full<Bytes>> {
    Request::get(url)
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// The value of query parameter `key` in `url`, if present.
pub fn query_param<'a>(url: &'a str, key: &str) -> Option<&'a str> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

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
