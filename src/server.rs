//! The listener: accept loop, HTTP/1.1 + h2c via hyper-util's auto builder, limits, the
//! per-request access log and metrics, and graceful shutdown.
//!
//! On shutdown hydrant stops accepting, marks itself draining (`/readyz` → 503), lets
//! in-flight requests finish within `drain_timeout`, then returns.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{self, BoxFuture, Either, Ready};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::body::Body;
use crate::routes;

/// What the access log needs of a request, taken before the request is handed to the router.
struct AccessLine {
    method: http::Method,
    /// The path, at most 200 characters; empty when INFO lines are filtered out (nothing is
    /// built for a line that is not written).
    path: String,
    path_truncated: bool,
}

impl AccessLine {
    fn of<B>(req: &Request<B>) -> AccessLine {
        let p = req.uri().path();
        let path = if tracing::enabled!(tracing::Level::INFO) {
            // Bound what a hostile path can put in a log line.
            p.chars().take(200).collect()
        } else {
            String::new()
        };
        AccessLine {
            method: req.method().clone(),
            path,
            path_truncated: p.len() > 200,
        }
    }
}

/// The future [`answer`] returns: ready at once for a cache hit, boxed for the rest.
pub type Answering<'a> = Either<Ready<hyper::Response<Body>>, BoxFuture<'a, hyper::Response<Body>>>;

/// Answer one request: dispatch, then count and log it. The log line never includes the
/// query string (signed URLs carry their signature there) nor any header value.
///
/// A cache hit is answered inside this call (the router answers hits synchronously), so the
/// future handed back to hyper is just the finished response: hyper moves the service's
/// future into its slot on every request, and a hit should not pay for the size of the miss
/// path's state machine.
pub fn answer(app: &Arc<App>, req: Request<Incoming>) -> Answering<'_> {
    let start = crate::clock::stopwatch();
    let line = AccessLine::of(&req);
    match routes::handle(app, req) {
        Either::Left(hit) => {
            Either::Left(future::ready(finish(app, start, &line, hit.into_inner())))
        }
        Either::Right(rest) => Either::Right(Box::pin(async move {
            let handled = rest.await;
            finish(app, start, &line, handled)
        })),
    }
}

/// Count and log one answered request.
fn finish(
    app: &App,
    start: std::time::Instant,
    line: &AccessLine,
    handled: routes::Handled,
) -> hyper::Response<Body> {
    let elapsed = start.elapsed();
    let status = handled.response.status().as_u16();
    app.metrics.observe_request(handled.route, status, elapsed);
    tracing::info!(
        method = %line.method,
        path = %line.path,
        path_truncated = line.path_truncated,
        route = handled.route.as_str(),
        status,
        latency_us = elapsed.as_micros() as u64,
        cache = handled.cache.map(|c| c.as_str()).unwrap_or("-"),
        upstream_ms = handled.upstream.map(|d| d.as_secs_f64() * 1000.0),
        "request"
    );
    handled.response
}

/// The connection settings every listener uses (also the bare-hyper benchmark ceiling's).
pub fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive(true)
        // Heads between 16 KiB and this are read and refused with a JSON 431 by the router;
        // beyond it hyper refuses by itself.
        .max_buf_size(64 * 1024);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(64 * 1024)
        .max_concurrent_streams(512)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    b
}

/// Serve on `listener` until `shutdown` resolves, then drain.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let builder = builder();
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let svc = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(answer(&app, req).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    app.start_draining();
    drop(listener);
    tracing::info!(
        drain_timeout_s = app.config.drain_timeout.as_secs_f64(),
        "draining"
    );
    match tokio::time::timeout(app.config.drain_timeout, graceful.shutdown()).await {
        Ok(()) => tracing::info!("drained; bye"),
        Err(_) => tracing::warn!("drain timeout passed; closing remaining connections"),
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// A server running in the background (tests, demo).
pub struct Running {
    /// Bound address.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    join: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Start serving `app` on `listen` (port 0 picks a free port).
    pub async fn start(app: Arc<App>, listen: SocketAddr) -> std::io::Result<Running> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let join = tokio::spawn(serve(app, listener, async {
            let _ = rx.await;
        }));
        Ok(Running {
            addr,
            stop: Some(tx),
            join,
        })
    }

    /// Base URL, `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Begin graceful shutdown and wait for it to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.join).await.unwrap_or(Ok(()))
    }
}
