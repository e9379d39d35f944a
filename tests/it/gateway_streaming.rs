//! Bodies through the `/v1/...` gateway, against an echo upstream: 8 MiB request and response
//! bodies arrive intact; a response streams to the client before the upstream has finished it;
//! a request body streams to the upstream while the client is still sending it (duplex); an
//! `Expect: 100-continue` upload gets its interim response and then the upstream's answer.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::common::fake_upstream::{echo_stack, pattern, sha};

#[tokio::test]
async fn large_request_body_arrives_intact() {
    let (_echo, s) = echo_stack().await;
    let big = pattern(8 << 20);
    let r = s
        .client
        .post(&s.url("/v1/echo/upload"), Some("k1"), Some(&big))
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["body_len"], 8 << 20);
    assert_eq!(v["body_sha256"], sha(&big));
    s.stop().await;
}

#[tokio::test]
async fn large_chunked_response_arrives_intact() {
    let (_echo, s) = echo_stack().await;
    let n = 8 << 20;
    let r = s
        .client
        .get(&s.url(&format!("/v1/big?n={n}")), Some("k1"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), n);
    assert_eq!(sha(&r.body), sha(&pattern(n)));
    s.stop().await;
}

/// A plain hyper HTTP/1.1 connection whose request body is fed through a channel.
type ChanBody =
    StreamBody<futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

fn chan_body() -> (tokio::sync::mpsc::Sender<Bytes>, ChanBody) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok(Frame::data(b)), rx))
    });
    (tx, StreamBody::new(Box::pin(stream)))
}

async fn next_data(body: &mut Incoming) -> Bytes {
    loop {
        let f = tokio::time::timeout(Duration::from_secs(3), body.frame())
            .await
            .expect("a frame within 3 s (streamed, not buffered)")
            .expect("body not ended")
            .expect("body ok");
        if let Ok(d) = f.into_data() {
            if !d.is_empty() {
                return d;
            }
        }
    }
}

#[tokio::test]
async fn response_streams_before_upstream_finishes() {
    let (echo, s) = echo_stack().await;
    let stream = tokio::net::TcpStream::connect(s.hydrant.addr)
        .await
        .unwrap();
    let (mut send, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/v1/held")
        .header("host", "hydrant")
        .header("authorization", "Bearer k1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(3), send.send_request(req))
        .await
        .expect("head before the upstream body ends")
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    assert_eq!(&next_data(&mut body).await[..], b"first-chunk;");
    echo.release.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(3), body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(&rest[..], b"second-chunk");
    s.stop().await;
}

#[tokio::test]
async fn request_body_streams_to_upstream() {
    let (_echo, s) = echo_stack().await;
    let stream = tokio::net::TcpStream::connect(s.hydrant.addr)
        .await
        .unwrap();
    let (mut send, conn) =
        hyper::client::conn::http1::handshake::<_, ChanBody>(TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let (tx, body) = chan_body();
    let req = Request::post("/v1/duplex")
        .header("host", "hydrant")
        .header("authorization", "Bearer k1")
        .body(body)
        .unwrap();
    let pending = tokio::spawn(async move { send.send_request(req).await });
    tx.send(Bytes::from_static(b"part-one;")).await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(3), pending)
        .await
        .expect("the upstream answered while the request body was still open")
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut rbody = resp.into_body();
    assert_eq!(&next_data(&mut rbody).await[..], b"part-one;");
    tx.send(Bytes::from_static(b"part-two")).await.unwrap();
    assert_eq!(&next_data(&mut rbody).await[..], b"part-two");
    drop(tx);
    let rest = tokio::time::timeout(Duration::from_secs(3), rbody.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert!(rest.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn expect_100_continue_upload_passes_through() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_echo, s) = echo_stack().await;
    let mut tcp = tokio::net::TcpStream::connect(s.hydrant.addr)
        .await
        .unwrap();
    let body = b"{\"upload\": true}";
    tcp.write_all(
        format!(
            "POST /v1/echo/up HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer k1\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             Expect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // A client waits for the interim response before sending the body.
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf))
        .await
        .expect("100 Continue (or a final answer) within 3 s")
        .unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(first.starts_with("HTTP/1.1 100"), "{first:?}");
    tcp.write_all(body).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    let all = format!("{first}{}", String::from_utf8_lossy(&rest));
    assert!(all.contains("HTTP/1.1 200"), "{all}");
    let json = &all[all.find("{\"").unwrap()..];
    let json = &json[..=json.rfind('}').unwrap()];
    let v: Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["body_sha256"], sha(body));
    s.stop().await;
}
