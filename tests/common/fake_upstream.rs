//! Servers that stand in for VideoGen where the simulator cannot say what a test needs. Each
//! listens on 127.0.0.1:0 and lives as long as the test's runtime.
//!
//! - [`fixed_upstream`]: one JSON body, byte for byte, for every request (odd formatting,
//!   unsafe or oddly expiring URLs), counting the requests.
//! - [`EchoUpstream`]: reports the request it received as JSON, and serves a few fixed,
//!   large, held and duplex streams; [`echo_stack`] puts hydrant in front of it.
//! - [`raw_upstream`]: the same raw bytes (broken HTTP, truncated bodies) to every connection.
//! - [`refused_addr`]: an address where nothing listens.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hydrant::config::ServeArgs;
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::{Stack, CLIENT_TOKEN};

type BoxError = Box<dyn StdError + Send + Sync>;

/// Serves HTTP/1.1 on every connection `listener` accepts, answering each request with
/// `handle`; until the test's runtime ends.
pub fn serve_http1<H, Fut, B>(listener: TcpListener, handle: H)
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let answer = handle(req);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}

/// A loopback listener on an ephemeral port.
async fn loopback() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

// ---------------------------------------------------------------- fixed JSON

/// A loopback server standing in for VideoGen that answers every request with `status` and
/// exactly the bytes of `body` (as JSON). Returns its base URL and a count of requests served.
/// Lets tests control the upstream body byte for byte (odd formatting, unsafe URLs).
pub async fn fixed_upstream(status: u16, body: String) -> (String, Arc<AtomicU64>) {
    fixed_upstream_with(status, &[], body).await
}

/// [`fixed_upstream`] with `extra` response fields (a `Location`, say).
pub async fn fixed_upstream_with(
    status: u16,
    extra: &[(&'static str, &'static str)],
    body: String,
) -> (String, Arc<AtomicU64>) {
    let (listener, addr) = loopback().await;
    let served = Arc::new(AtomicU64::new(0));
    let body = Bytes::from(body);
    let counter = served.clone();
    let extra = extra.to_vec();
    serve_http1(listener, move |_req| {
        counter.fetch_add(1, Ordering::SeqCst);
        let mut b = Response::builder()
            .status(status)
            .header("content-type", "application/json");
        for (k, v) in &extra {
            b = b.header(*k, *v);
        }
        let resp = b.body(Full::new(body.clone())).unwrap();
        async move { resp }
    });
    (format!("http://{addr}"), served)
}

// ---------------------------------------------------------------- echo

/// An upstream that reports what it received. By path:
/// - `/v1/fixed`: status 203, an odd content type, and [`FIXED_BODY`].
/// - `/v1/big?n=N`: [`pattern`]`(N)`, chunked in 64 KiB frames, without a content-length.
/// - `/v1/held`: `first-chunk;`, then `second-chunk` once [`EchoUpstream::release`] is
///   notified.
/// - `/v1/duplex`: the request body, frame by frame, as it arrives.
/// - anything else: JSON `{method, uri, headers: {name: [values]}, body_len, body_sha256}`,
///   with the status of a `status=` query parameter (200 without one).
///
/// Every answer carries `x-request-id: req_echo_fixed_0001`, the rate-limit fields
/// (limit 77, remaining 76, reset 1999999999), `x-custom-upstream: yes`, and the hop-by-hop
/// fields `connection: x-up-private`, `x-up-private: hop` and `keep-alive` that a proxy must
/// not relay.
pub struct EchoUpstream {
    pub addr: SocketAddr,
    /// Releases the second half of `/v1/held`.
    pub release: Arc<Notify>,
}

type EchoBody = BoxBody<Bytes, BoxError>;

/// The fixed response of `/v1/fixed`: odd formatting so any re-encoding shows.
pub const FIXED_BODY: &[u8] = b"{ \"b\" :2,\n  \"a\":[ 1 ,2],\"u\":\"\\u00e9\" }\n";

/// Lowercase hex SHA-256 of `b`, as the echo reports `body_sha256`.
pub fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The deterministic `n` bytes of `/v1/big`, also used for large request bodies.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 9)) as u8)
        .collect()
}

/// The first value of header `name` in an echo report.
pub fn echoed_header<'a>(echoed: &'a Value, name: &str) -> Option<&'a str> {
    echoed["headers"][name].get(0).and_then(Value::as_str)
}

fn full_body(b: impl Into<Bytes>) -> EchoBody {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

async fn echo_handle(req: Request<Incoming>, release: Arc<Notify>) -> Response<EchoBody> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let mut resp = if path == "/v1/fixed" {
        let mut r = Response::new(full_body(FIXED_BODY));
        *r.status_mut() = StatusCode::from_u16(203).unwrap();
        r.headers_mut().insert(
            "content-type",
            "application/vnd.weird+json; charset=utf-8".parse().unwrap(),
        );
        r
    } else if path == "/v1/big" {
        let n: usize = query
            .strip_prefix("n=")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let data = Bytes::from(pattern(n));
        let chunks: Vec<Result<Frame<Bytes>, BoxError>> = (0..n)
            .step_by(64 * 1024)
            .map(|s| Ok(Frame::data(data.slice(s..(s + 64 * 1024).min(n)))))
            .collect();
        // No content-length: chunked, streamed.
        Response::new(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
            chunks,
        ))))
    } else if path == "/v1/held" {
        let stream = futures_util::stream::unfold(0u8, move |state| {
            let release = release.clone();
            async move {
                match state {
                    0 => Some((
                        Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"first-chunk;"))),
                        1,
                    )),
                    1 => {
                        release.notified().await;
                        Some((Ok(Frame::data(Bytes::from_static(b"second-chunk"))), 2))
                    }
                    _ => None,
                }
            }
        });
        Response::new(BodyExt::boxed(StreamBody::new(stream)))
    } else if path == "/v1/duplex" {
        let body = req.into_body().map_err(|e| Box::new(e) as BoxError).boxed();
        Response::new(body)
    } else {
        let method = req.method().to_string();
        let uri = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let mut headers = serde_json::Map::new();
        for (k, v) in req.headers() {
            let e = headers
                .entry(k.as_str().to_string())
                .or_insert_with(|| json!([]));
            e.as_array_mut()
                .unwrap()
                .push(json!(String::from_utf8_lossy(v.as_bytes())));
        }
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let v = json!({
            "method": method,
            "uri": uri,
            "headers": headers,
            "body_len": body.len(),
            "body_sha256": sha(&body),
        });
        let status: u16 = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("status="))
            .and_then(|s| s.parse().ok())
            .unwrap_or(200);
        let mut r = Response::new(full_body(serde_json::to_vec(&v).unwrap()));
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        r
    };
    let h = resp.headers_mut();
    h.insert("x-request-id", "req_echo_fixed_0001".parse().unwrap());
    h.insert("x-ratelimit-limit", "77".parse().unwrap());
    h.insert("x-ratelimit-remaining", "76".parse().unwrap());
    h.insert("x-ratelimit-reset", "1999999999".parse().unwrap());
    h.insert("x-custom-upstream", "yes".parse().unwrap());
    // Response-side hop-by-hop fields hydrant must not relay.
    h.insert("connection", "x-up-private".parse().unwrap());
    h.insert("x-up-private", "hop".parse().unwrap());
    h.insert("keep-alive", "timeout=5".parse().unwrap());
    resp
}

impl EchoUpstream {
    /// Starts one on 127.0.0.1:0.
    pub async fn start() -> EchoUpstream {
        let (listener, addr) = loopback().await;
        let release = Arc::new(Notify::new());
        let rel = release.clone();
        serve_http1(listener, move |req| echo_handle(req, rel.clone()));
        EchoUpstream { addr, release }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// An [`EchoUpstream`] with hydrant in front of it (proxy key `ALPHA`, client token
/// [`CLIENT_TOKEN`]); the stack's simulator is not hydrant's upstream.
pub async fn echo_stack() -> (EchoUpstream, Stack) {
    let echo = EchoUpstream::start().await;
    let s = Stack::start(ServeArgs {
        upstream: Some(echo.url()),
        client_tokens: Some(CLIENT_TOKEN.into()),
        ..ServeArgs::default()
    })
    .await;
    (echo, s)
}

// ---------------------------------------------------------------- raw bytes, nothing

/// An upstream that answers every connection with `reply` verbatim, then closes.
pub async fn raw_upstream(reply: &'static [u8]) -> SocketAddr {
    let (listener, addr) = loopback().await;
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the request head (bounded), then answer.
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tcp.write_all(reply).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    addr
}

/// A loopback address where nothing listens (a port bound, then released): connections to it
/// are refused until something binds it again.
pub fn refused_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}
