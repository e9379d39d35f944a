//! Accept loop: hyper-util's auto (HTTP/1.1 + h2) connection builder on tokio, closed down
//! when the handle's shutdown flag flips.

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

use super::service;
use super::state::Shared;

/// How long open connections may finish after shutdown.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Serves `listener` until shutdown; the listener is dropped on return (stops accepting).
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Also the idle keep-alive limit: long, so pooled clients rarely race a close.
        .header_read_timeout(Duration::from_secs(120));
    builder.http2().timer(TokioTimer::new());
    loop {
        let accepted = tokio::select! {
            _ = shared.wait_shutdown() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors and the like: back off briefly instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc_shared = shared.clone();
            let svc = service_fn(move |req| service::handle(svc_shared.clone(), req));
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shared.wait_shutdown() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(CLOSE_GRACE, conn.as_mut()).await;
                }
            }
        });
    }
}
