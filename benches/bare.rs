//! The bare-hyper ceiling for the load comparison (`benches/compare.sh`).
//!
//! Any hyper-based proxy pays at least what this server pays per request: the same hyper 1 +
//! hyper-util auto builder (HTTP/1.1 + h2c) and accept loop as hydrant's server, but no routing,
//! no cache and no logging. It answers every request with a fixed response chosen by path:
//!
//! * a path starting with `/v1/` → `200` with a fixed JSON body (by default ~1.5 KB; pass
//!   `--body-file F` to serve the exact bytes hydrant serves, e.g. one captured hydrate body);
//! * anything else → `302` with a fixed `Location` (`--location URL`).
//!
//! Usage: `bare --listen 127.0.0.1:PORT [--body-file F] [--location URL]`. Prints
//! `bare listening on http://ADDR` once bound; runs until SIGTERM/SIGINT.

// A benchmark harness, not a request path: failing loudly on a broken set-up is right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Default `Location`: as long as a simulator-minted signed URL, so header bytes match.
const DEFAULT_LOCATION: &str = "http://127.0.0.1:8090/cdn/vg_file_alpha_0005/download?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The fixed answers, built once and cloned per request (a refcount bump, like a cache hit).
#[derive(Clone)]
struct Fixed {
    /// The `200` JSON body.
    json: Bytes,
    /// The `302` `Location` value.
    location: http::HeaderValue,
}

/// Why start-up failed.
#[derive(Debug, thiserror::Error)]
enum BareError {
    /// A flag is missing its value, unknown, or malformed.
    #[error("bad arguments: {0}")]
    Args(String),
    /// Reading the body file or binding failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A realistic ~1.5 KB StorageFile-shaped body, used when no `--body-file` is given.
fn default_json() -> Bytes {
    let mut s = String::from(
        r#"{"fileId":"vg_file_alpha_0005","type":"VIDEO","scope":"GLOBAL","displayName":"Teaser #5","description":null,"durationSeconds":17.5,"createdAt":"2025-01-01T00:00:00Z","isPublicPreviewEnabled":false,"publicPlaybackId":null"#,
    );
    for r in ["download", "preview", "thumbnail", "hls"] {
        s.push_str(&format!(
            r#","{r}Source":{{"status":"ready","url":"{DEFAULT_LOCATION}","expiresAt":1735693200,"width":1920,"height":1080}}"#
        ));
    }
    s.push('}');
    Bytes::from(s)
}

fn parse_args() -> Result<(SocketAddr, Fixed), BareError> {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 8099).into();
    let mut json = default_json();
    let mut location = DEFAULT_LOCATION.to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| BareError::Args(format!("{flag} needs a value")))?;
        match flag.as_str() {
            "--listen" => {
                listen = value
                    .parse()
                    .map_err(|_| BareError::Args(format!("--listen {value}")))?;
            }
            "--body-file" => json = Bytes::from(std::fs::read(&value)?),
            "--location" => location = value,
            other => return Err(BareError::Args(format!("unknown flag {other}"))),
        }
    }
    let location = http::HeaderValue::from_str(&location)
        .map_err(|_| BareError::Args("--location is not a valid header value".into()))?;
    Ok((listen, Fixed { json, location }))
}

fn answer(fixed: &Fixed, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    if req.uri().path().starts_with("/v1/") {
        *resp.body_mut() = Full::new(fixed.json.clone());
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    } else {
        *resp.status_mut() = http::StatusCode::FOUND;
        resp.headers_mut()
            .insert(http::header::LOCATION, fixed.location.clone());
    }
    resp
}

async fn serve(listener: TcpListener, fixed: Fixed) {
    // Exactly hydrant's connection settings, so the comparison measures only what hydrant adds.
    let builder = hydrant::server::builder();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let fixed = fixed.clone();
        let svc = service_fn(move |req: Request<Incoming>| {
            let resp = answer(&fixed, &req);
            async move { Ok::<_, Infallible>(resp) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

async fn run() -> Result<(), BareError> {
    let (listen, fixed) = parse_args()?;
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "bare listening on http://{addr}")?;
        out.flush()?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = serve(listener, fixed) => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bare: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
