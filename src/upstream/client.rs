//! The upstream HTTP client: hyper-util's pooled client over rustls (ring), with timeouts.
//!
//! One client for the process: keep-alive pooling, HTTP/2 when the server offers it by ALPN,
//! plain `http://` for simulators and sidecars. hyper-util's client has no whole-request
//! timeout, so every call is wrapped in `tokio::time::timeout` (until the response head for
//! streamed calls, until the last byte for buffered ones).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::{Body, BoxError, CollectError};
use crate::clock;
use crate::config::{Config, UpstreamBase};

/// Why an upstream exchange produced no usable response. The cause is kept for logs; what a
/// client sees is decided in `error.rs`.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No response head (or body) within the timeout.
    #[error("upstream timed out")]
    Timeout,
    /// Could not connect, or the connection broke (reset, TLS failure, protocol error).
    #[error("upstream connection failed")]
    Connect(#[source] BoxError),
    /// A buffered body exceeded its limit.
    #[error("upstream body too large")]
    TooLarge,
    /// The response head exceeded `MAX_RESPONSE_HEAD` (64 KiB).
    #[error("upstream response head too large")]
    HeadTooLarge,
    /// The request's path and query cannot be joined to the upstream base.
    #[error("request path cannot be sent upstream")]
    InvalidPath,
    /// The client's request body broke off or was malformed while it streamed upstream (the
    /// client's fault, not the upstream's: a `400`).
    #[error("request body failed while forwarding")]
    RequestBody(#[source] BoxError),
}

/// A buffered upstream response.
#[derive(Debug, Clone)]
pub struct Buffered {
    /// Status and headers.
    pub head: http::response::Parts,
    /// The whole body.
    pub body: Bytes,
}

/// The pooled upstream client.
#[derive(Clone)]
pub struct UpstreamClient {
    http: Client<Connector, Body>,
    base: Arc<UpstreamBase>,
    timeout: Duration,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("authority", &self.base.authority)
            .finish()
    }
}

/// Bounds a whole connection set-up (TCP connect *and* TLS handshake) by one timeout;
/// `HttpConnector`'s own timeout covers only the TCP part.
#[derive(Clone, Debug)]
pub struct TimeoutConnector<C> {
    inner: C,
    timeout: Duration,
}

/// The connector stack every outbound client uses.
pub type Connector = TimeoutConnector<HttpsConnector<HttpConnector>>;

impl<C> tower_service::Service<Uri> for TimeoutConnector<C>
where
    C: tower_service::Service<Uri> + Send,
    C::Future: Send + 'static,
    C::Error: Into<crate::body::BoxError>,
{
    type Response = C::Response;
    type Error = crate::body::BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<C::Response, crate::body::BoxError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(r) => r.map_err(Into::into),
                Err(_) => Err("connect timed out (TCP + TLS)".into()),
            }
        })
    }
}

/// Largest response head hydrant accepts from an upstream: a longer one is refused (`502`),
/// the same bound hydrant puts on its clients' heads; a StorageFile answer's head is well
/// under 2 KiB. On HTTP/2 it is advertised and enforced by h2. On HTTP/1.1 hyper bounds only
/// its read buffer (about 400 KiB, and only while a head is incomplete; hyper-util's client
/// exposes no head limit), so the parsed head is measured here ([`head_size`]).
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// The size of a response head as sent on HTTP/1.1 (status line + `name: value\r\n` lines).
fn head_size(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .fold(16, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}

/// Refuse a response whose head is over [`MAX_RESPONSE_HEAD`].
fn check_head<B>(resp: Response<B>) -> Result<Response<B>, UpstreamError> {
    if head_size(resp.headers()) > MAX_RESPONSE_HEAD {
        return Err(UpstreamError::HeadTooLarge);
    }
    Ok(resp)
}

/// A client for outbound calls to arbitrary http(s) URLs (webhook relay), sharing the TLS set-up.
pub fn build_client(
    connect_timeout: Duration,
    native_roots: bool,
) -> std::io::Result<Client<Connector, Body>> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = if native_roots {
        builder.with_provider_and_native_roots(provider)?
    } else {
        builder
            .with_provider_and_webpki_roots(provider)
            .map_err(std::io::Error::other)?
    };
    let https = builder
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .http2_max_header_list_size(MAX_RESPONSE_HEAD as u32)
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(512)
        .build(TimeoutConnector {
            inner: https,
            timeout: connect_timeout,
        }))
}

impl UpstreamClient {
    /// Build from configuration.
    pub fn new(cfg: &Config) -> std::io::Result<UpstreamClient> {
        Ok(UpstreamClient {
            http: build_client(cfg.connect_timeout, cfg.native_roots)?,
            base: Arc::new(cfg.upstream.clone()),
            timeout: cfg.upstream_timeout,
        })
    }

    /// The upstream base.
    pub fn base(&self) -> &UpstreamBase {
        &self.base
    }

    /// The upstream URI for a request's path and query.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, UpstreamError> {
        let pq = if self.base.path_prefix.is_empty() {
            http::uri::PathAndQuery::try_from(path_and_query)
        } else {
            http::uri::PathAndQuery::try_from(format!(
                "{}{}",
                self.base.path_prefix, path_and_query
            ))
        }
        .map_err(|_| UpstreamError::InvalidPath)?;
        Uri::builder()
            .scheme(self.base.scheme.clone())
            .authority(self.base.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|_| UpstreamError::InvalidPath)
    }

    /// `Host` value for upstream requests.
    pub fn host(&self) -> http::HeaderValue {
        // An Authority is always a valid header value.
        http::HeaderValue::from_str(self.base.authority.as_str())
            .unwrap_or_else(|_| http::HeaderValue::from_static("invalid"))
    }

    /// Send a request; resolve at the response head (the body streams afterwards).
    pub async fn send(
        &self,
        req: Request<Body>,
    ) -> Result<(Response<Incoming>, Duration), UpstreamError> {
        let start = clock::stopwatch();
        match tokio::time::timeout(self.timeout, self.http.request(req)).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(Err(e)) => Err(UpstreamError::Connect(e.into())),
            Ok(Ok(resp)) => Ok((check_head(resp)?, start.elapsed())),
        }
    }

    /// Send a request and read the whole body (at most `limit` bytes), all within the timeout.
    pub async fn send_buffered(
        &self,
        req: Request<Body>,
        limit: usize,
    ) -> Result<(Buffered, Duration), UpstreamError> {
        let start = clock::stopwatch();
        let exchange = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| UpstreamError::Connect(e.into()))?;
            let (head, body) = check_head(resp)?.into_parts();
            let body = crate::body::collect_limited(body, limit)
                .await
                .map_err(|e| match e {
                    CollectError::TooLarge => UpstreamError::TooLarge,
                    CollectError::Broken(cause) => UpstreamError::Connect(cause),
                })?;
            Ok::<_, UpstreamError>(Buffered { head, body })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(r) => r.map(|b| (b, start.elapsed())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServeArgs;

    #[tokio::test]
    async fn tls_handshake_is_bounded_by_the_connect_timeout() {
        // Accepts TCP but never speaks TLS: only a timeout around the handshake ends it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                conns.push(s);
            }
        });
        let cfg = Config::resolve(ServeArgs {
            upstream: Some(format!("https://{addr}")),
            connect_timeout: Some("300ms".into()),
            upstream_timeout: Some("20s".into()),
            ..Default::default()
        })
        .unwrap();
        let client = UpstreamClient::new(&cfg).unwrap();
        let mut req = Request::new(crate::body::empty());
        *req.uri_mut() = client.uri("/v1/me").unwrap();
        let start = clock::stopwatch();
        let r = client.send(req).await;
        assert!(
            matches!(r, Err(UpstreamError::Connect(_))),
            "{:?}",
            r.map(|_| ())
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        held.abort();
    }
}
