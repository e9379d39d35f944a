//! One client connection, in its own task: the TLS handshake (when serving HTTPS), hyper-util's
//! auto connection, and the head deadline; the connection permit is returned when it ends.
//!
//! The handshake runs here, off the accept loop, so a slow or silent client never delays the
//! next accept, and within the head deadline, so it cannot hold its permit for longer than a
//! plain-HTTP client could.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite};

use super::accept::Accepted;
use super::head::{self, Activity};
use super::tls::Tls;
use crate::app::App;
use crate::body::Body;

/// What every connection of one listener shares.
pub(crate) struct Shared {
    pub app: Arc<App>,
    pub builder: auto::Builder<TokioExecutor>,
    pub tls: Option<Arc<Tls>>,
    pub head_timeout: Duration,
}

/// Serve `accepted` in a task of its own.
pub(crate) fn spawn(shared: Arc<Shared>, watcher: Watcher, accepted: Accepted) {
    tokio::spawn(async move {
        let Accepted {
            stream,
            peer,
            permit,
        } = accepted;
        let opened = crate::clock::now();
        let _ = stream.set_nodelay(true);
        match &shared.tls {
            None => serve(&shared, watcher, stream, peer, opened).await,
            Some(tls) => {
                let deadline = opened + shared.head_timeout;
                match tokio::time::timeout_at(deadline, tls.acceptor().accept(stream)).await {
                    Ok(Ok(stream)) => serve(&shared, watcher, stream, peer, opened).await,
                    // Plain HTTP to the HTTPS port lands here too: rustls answers with an
                    // alert at most, never with HTTP.
                    Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                }
            }
        }
        drop(permit);
    });
}

/// What becomes of each response on its way to hyper: on h2, its body holds the stream's
/// guard (the idle deadline counts from the end of the last stream). A named function, so
/// the closure's types are those of its signature (inferred ones trip rustc's `Send` check
/// of the connection task).
fn tracked(
    stream: Option<head::StreamGuard>,
) -> impl FnOnce(hyper::Response<Body>) -> Result<hyper::Response<Body>, Infallible> {
    move |resp| {
        Ok(match stream {
            Some(guard) => resp.map(|body| head::track(body, guard)),
            None => resp,
        })
    }
}

async fn serve<I>(
    shared: &Shared,
    watcher: Watcher,
    io: I,
    peer: SocketAddr,
    opened: tokio::time::Instant,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new(opened);
    let app = shared.app.clone();
    let seen = activity.clone();
    // No clone of the `App` per request: `answer` borrows it, and its future owns what a
    // miss needs.
    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let stream = seen.request(req.version());
        super::answer(&app, req).map(tracked(stream))
    });
    let conn = shared.builder.serve_connection(TokioIo::new(io), svc);
    tokio::select! {
        ended = watcher.watch(conn) => {
            if let Err(e) = ended {
                tracing::debug!(peer = %peer, error = %e, "connection ended with error");
            }
        }
        () = activity.expired(shared.head_timeout) => {
            // Dropping the connection closes it: no 408, no GOAWAY to wait on.
            tracing::debug!(peer = %peer, "closed: no request head within the head timeout");
        }
    }
}
