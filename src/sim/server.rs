//! Accept loop: hyper-util's auto (HTTP/1.1 + h2) connection builder on tokio, closed down
//! when the handle's shutdown flag flips.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

use super::http::Resp;
use super::service::{self, SlowBody};
use super::state::Shared;

/// How long open connections may finish after shutdown.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How many pieces a [`SlowBody`] fault cuts a body into.
const SLOW_PIECES: usize = 8;

/// The body type the accept loop sends: whole, or trickled for a [`SlowBody`] fault.
type WireBody = UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// Sends the head now and the body in [`SLOW_PIECES`] pieces spread over the fault's
/// duration (the first piece after one interval), so the response starts and then stalls.
fn wire(resp: Resp) -> http::Response<WireBody> {
    let slow = resp.extensions().get::<SlowBody>().copied();
    let (parts, body) = resp.into_parts();
    let Some(SlowBody(total)) = slow else {
        return http::Response::from_parts(parts, body.boxed_unsync());
    };
    let gap = total / u32::try_from(SLOW_PIECES).unwrap_or(1);
    let full = body.into_inner().unwrap_or_default();
    let step = full.len().div_ceil(SLOW_PIECES).max(1);
    let pieces: Vec<Bytes> = (0..full.len())
        .step_by(step)
        .map(|i| full.slice(i..(i + step).min(full.len())))
        .collect();
    let stream = futures_util::stream::unfold(pieces.into_iter(), move |mut it| async move {
        let piece = it.next()?;
        tokio::time::sleep(gap).await;
        Some((Ok(hyper::body::Frame::data(piece)), it))
    });
    http::Response::from_parts(parts, StreamBody::new(stream).boxed_unsync())
}

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
            let svc = service_fn(move |req| {
                let shared = svc_shared.clone();
                async move { service::handle(shared, req).await.map(wire) }
            });
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
