//! The listener: accept loop, HTTP/1.1 + h2 via hyper-util's auto builder (plain, or HTTPS
//! with rustls), connection limits, the per-request access log and metrics, and graceful
//! shutdown.
//!
//! | file | its one job |
//! |---|---|
//! | `server.rs` | [`answer`] (dispatch, count, log), the hyper [`builder`] settings, [`serve`], [`Running`] |
//! | `server/accept.rs` | the `max_connections` permits taken before `accept`; back-off on EMFILE, logged once |
//! | `server/conn.rs` | one connection's task: TLS handshake, hyper, head deadline |
//! | `server/head.rs` | the head deadline: idle and slow connections closed after [`HEAD_TIMEOUT`] |
//! | [`tls`] | the certificate pair, its atomic swap on `SIGHUP` |
//! | [`fds`] | `RLIMIT_NOFILE` raised at start-up, the connection limit fitted to it |
//!
//! On shutdown hydrant stops accepting, marks itself draining (`/readyz` → 503), lets
//! in-flight requests finish within `drain_timeout`, then returns.

mod accept;
mod conn;
pub mod fds;
mod head;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{self, Either};
use futures_util::FutureExt as _;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::body::Body;
use crate::config::defaults::HEAD_TIMEOUT;
use crate::config::{Config, ConfigError};
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

/// Answer one request: dispatch, then count and log it. The log line never includes the
/// query string (signed URLs carry their signature there) nor any header value.
///
/// A cache hit is answered inside this call (the router answers hits synchronously), so the
/// future handed back to hyper is just the finished response: hyper moves the service's
/// future into its slot on every request, and a hit should not pay for the size of the miss
/// path's state machine. Only a miss takes its own handle on the `App` (an `Arc` clone is an
/// atomic add and sub on one cache line every worker thread shares).
pub fn answer(
    app: &Arc<App>,
    req: Request<Incoming>,
) -> impl Future<Output = hyper::Response<Body>> + Send + 'static {
    // One clock read for the request: the hit path judges freshness at it, and the latency
    // the metrics and the access log report is measured from it (on hydrant's clock, so a
    // test that pauses time sees paused latencies).
    let start = crate::clock::now();
    let line = AccessLine::of(&req);
    match routes::handle_at(app, req, start) {
        Either::Left(hit) => {
            Either::Left(future::ready(finish(app, start, &line, hit.into_inner())))
        }
        Either::Right(rest) => {
            let app = app.clone();
            Either::Right(
                rest.map(move |handled: routes::Handled| finish(&app, start, &line, handled)),
            )
        }
    }
}

/// Count and log one answered request.
fn finish(
    app: &App,
    start: tokio::time::Instant,
    line: &AccessLine,
    handled: routes::Handled,
) -> hyper::Response<Body> {
    let elapsed = crate::clock::now().saturating_duration_since(start);
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
        // hyper's timer covers every head after the first on a keep-alive connection, idle or
        // slow (`server/head.rs` says who covers what).
        .header_read_timeout(HEAD_TIMEOUT)
        .keep_alive(true)
        // Heads between 16 KiB and this are read and refused with a JSON 431 by the router;
        // beyond it hyper refuses by itself.
        .max_buf_size(64 * 1024);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(64 * 1024)
        .max_concurrent_streams(512)
        // Rapid reset (CVE-2023-44487): a client that resets more than this many streams
        // before they are served gets GOAWAY (h2's default, stated so it stays on).
        .max_pending_accept_reset_streams(20)
        // Resets hydrant itself sends for a client's protocol errors (the "MadeYouReset"
        // variant): past this many, GOAWAY (h2's default).
        .max_local_error_reset_streams(1024)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    // The CONTINUATION flood defence is h2's and always on: a header block may span at most
    // about max_header_list_size / max_frame_size frames (here 5) before GOAWAY.
    b
}

/// How a listener serves, beyond the request handling in [`App`].
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Open client connections at most (see `server/accept.rs`).
    pub max_connections: usize,
    /// [`HEAD_TIMEOUT`]; tests shorten it (it is not an option users set).
    pub head_timeout: Duration,
    /// HTTPS only, when set.
    pub tls: Option<Arc<tls::Tls>>,
}

impl ServeOptions {
    /// The options `config` asks for; loads the TLS pair, whose errors name the option.
    pub fn from_config(config: &Config) -> Result<ServeOptions, ConfigError> {
        Ok(ServeOptions {
            max_connections: config.max_connections,
            head_timeout: HEAD_TIMEOUT,
            tls: config.tls.as_ref().map(tls::Tls::load).transpose()?,
        })
    }
}

/// Bind `addr` for [`serve`] (a listen backlog of 1024, where std's is 128: connections past
/// `max_connections` wait there).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    accept::bind(addr)
}

/// Serve on `listener` with the options `app.config` asks for until `shutdown` resolves,
/// then drain.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let options = ServeOptions::from_config(&app.config).map_err(std::io::Error::other)?;
    serve_with(app, listener, options, shutdown).await
}

/// Serve on `listener` with `options` until `shutdown` resolves, then drain.
pub async fn serve_with(
    app: Arc<App>,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = builder();
    builder.http1().header_read_timeout(options.head_timeout);
    let reload = tls::reload_on_sighup(options.tls.clone())?;
    let shared = Arc::new(conn::Shared {
        app: app.clone(),
        builder,
        tls: options.tls,
        head_timeout: options.head_timeout,
    });
    let mut acceptor = accept::Acceptor::new(listener, options.max_connections);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = acceptor.next() => conn::spawn(shared.clone(), graceful.watcher(), accepted),
            _ = &mut shutdown => break,
        }
    }
    app.start_draining();
    drop(acceptor);
    reload.abort();
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
        let options = ServeOptions::from_config(&app.config).map_err(std::io::Error::other)?;
        Self::start_with(app, listen, options).await
    }

    /// Like [`Running::start`], with `options` instead of those of `app.config`.
    pub async fn start_with(
        app: Arc<App>,
        listen: SocketAddr,
        options: ServeOptions,
    ) -> std::io::Result<Running> {
        let listener = bind(listen)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let join = tokio::spawn(serve_with(app, listener, options, async {
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
